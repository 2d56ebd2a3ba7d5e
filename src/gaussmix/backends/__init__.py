"""Glue to other array libraries and schedulers, imported lazily.

Each backend supplies a source and a reducer for the engine's fold (and, for
GPUs, an array namespace for its kernels):

- :mod:`gaussmix.backends.dask`: Dask arrays and DataFrames
  (:class:`~gaussmix.backends.dask.DaskSource`) and a tree reduction on the
  cluster (:class:`~gaussmix.backends.dask.DaskTree`); ``pip install
  'gaussmix[dask]'``.
- :mod:`gaussmix.backends.torch`: torch tensors on a CPU or GPU
  (:class:`~gaussmix.backends.torch.TorchSource`: rows on the device, or host
  rows copied once or streamed through pinned buffers) and a reducer that sets
  the float32 matrix-product precision (:class:`~gaussmix.backends.torch.TorchReducer`);
  the estimator routes here for tensors or ``device=...``; ``pip install
  'gaussmix[torch]'``.

Nothing here is imported by ``import gaussmix``.
"""
