"""Glue to other array libraries and schedulers, imported lazily.

Each backend supplies a source and a reducer for the engine's fold (and, for
GPUs, an array namespace for its kernels):

- :mod:`gaussmix.backends.dask`: Dask arrays and DataFrames
  (:class:`~gaussmix.backends.dask.DaskSource`) and a tree reduction on the
  cluster (:class:`~gaussmix.backends.dask.DaskTree`); ``pip install
  'gaussmix[dask]'``.
- torch: to come.

Nothing here is imported by ``import gaussmix``.
"""
