"""torch tensors and GPUs: a data source and a reducer for the engine's fold.

EM on a GPU is the engine's usual fold with two pieces swapped in; the chunk
kernels are the same (written against the array API standard), only their
arrays are torch tensors on the device:

- :class:`TorchSource` yields chunks as tensors on one device. Rows already
  there (a tensor on the device) are cut into views. Rows on the host (a NumPy
  array, a CPU tensor or any data source) are copied to the device once when
  they take at most half its free memory, else *streamed* every pass: each chunk is cast
  into a pinned host buffer and copied to the device on a side stream while
  the previous chunk is computed (two buffers used in turn).
- :class:`TorchReducer` runs the chunks in turn (the device runs each chunk's
  products in parallel) with the float32 matrix-product precision the
  estimator asks for, restored after each pass.

The estimator's side (:mod:`gaussmix.inputs`) routes here when X is a
``torch.Tensor`` or ``device`` is set. The rules:

- Compute dtype: a tensor's dtype is kept (float32 or float64; other dtypes
  become float32 on a GPU, float64 elsewhere). Host data fitted on a GPU runs
  in **float32** (a float64 array is cast chunk by chunk): GPUs multiply
  float32 many times faster. Pass a float64 tensor to fit in float64 there.
  Statistics are accumulated in float64 on the host as on NumPy.
- Matrix products: strict float32 (``matmul_precision="highest"``, TF32 off)
  unless ``matmul_precision="tf32"``; only CUDA products are affected.
- Fitted attributes (``weights_``, ``means_``, ``covariances_``,
  ``precisions_``, ``precisions_cholesky_``, ``labels_``) are NumPy arrays by
  default and float64 tensors on X's device when X was a tensor (the rule of
  scikit-learn's array-API mode); :func:`as_numpy` and :func:`as_tensors`
  convert a fitted model either way. Saved models hold NumPy arrays.
- Predictions on a tensor (``predict``, ``predict_proba``, ``score_samples``)
  are tensors on its device (labels int64, densities in the compute dtype);
  on a NumPy array they are NumPy arrays, computed on ``device`` if set.
- Initialisation (k-means and the other ``init_params``) runs on the host on
  all rows when there are at most
  :data:`~gaussmix.engine.init.INIT_SAMPLE_ROWS` (then it starts where NumPy
  starts), else on a uniform random sample of that many rows copied to the
  host; EM then runs on every row on the device.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .._optional import require
from ..engine.covariance import ComputeSpec, CovarianceType
from ..engine.reducers import Reducer, Sequential
from ..engine.sources import Chunk, auto_chunk_size, is_data_source
from ..engine.xp import array_namespace, is_torch_array, to_host

T = TypeVar("T")

__all__ = ["MATMUL_PRECISIONS", "TorchReducer", "TorchSource", "as_numpy", "as_tensors",
           "matmul_precision", "resolve_device"]

#: ``matmul_precision`` values: strict float32 products, or TF32 on CUDA.
MATMUL_PRECISIONS = ("highest", "tf32")
#: Share of the device's free memory that resident rows may take.
RESIDENT_SHARE = 0.5
#: Share of the free memory left after that which one chunk's work may take.
WORK_SHARE = 0.25
#: Work arrays of a chunk's size alive at once (kernel output and temporaries;
#: with the blocked copy of the scaled whitened chunk, see ``weighted_grams``).
WORK_COPIES = 4
FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_", "labels_")


def _torch() -> Any:
    return require("torch", "torch", "fitting on torch tensors or a GPU (device=...)")


def resolve_device(device: Any) -> Any:
    """``device`` ("cuda", "cuda:1", "cpu", a ``torch.device``) as a
    ``torch.device``, checked to exist.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    torch = _torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device: pass e.g. 'cuda', "
                         "'cuda:0', 'cpu' or a torch.device (None fits with NumPy)."
                         ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for a CUDA GPU, but torch "
                f"{torch.__version__} sees none (torch.cuda.is_available() is False: "
                "a CPU-only torch build, or no GPU/driver visible). Use device=None "
                "(NumPy) or 'cpu', or install a CUDA build of torch.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: torch sees only "
                             f"{torch.cuda.device_count()} CUDA device(s).")
    return dev


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """float32 matrix products on CUDA in strict IEEE float32 (``"highest"``)
    or TF32 (``"tf32"``) inside the block; the previous setting is restored."""
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"matmul_precision must be one of {list(MATMUL_PRECISIONS)}, "
                         f"got {precision!r}.")
    torch = _torch()
    tf32 = precision == "tf32"
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9: the per-backend setting
        old = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if tf32 else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = old
        return
    old_global = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old_global)


# ---------------------------------------------------------------- the source
class TorchSource:
    """Rows as torch tensors on one device, in chunks.

    Parameters
    ----------
    X : torch.Tensor, ndarray or data source
        The rows (n, d). A tensor on ``device`` is used in place; host rows
        are copied to the device (once, or every pass: see ``stream``).
    sample_weight : tensor or array-like of shape (n,), optional
        Kept on the device as float64; not with a data source (its chunks
        carry their weights).
    device : str or torch.device, optional
        Where chunks are computed; default: X's device (CPU for host data).
    dtype : torch.dtype, optional
        Compute dtype; default: a float tensor's own, float32 for host data
        on a GPU, else X's (float64 for anything but float32).
    chunk_size : int, optional
        Rows per chunk; default from the device's free memory on a GPU
        (``torch.cuda.mem_get_info``), about 2^20 numbers per chunk on a CPU.
    stream : bool, optional
        Stream host rows to the device every pass (pinned buffers, copies on
        a side stream overlapped with compute) instead of copying them once;
        default: stream only when the rows take more than half the device's
        free memory. Chunks of a streamed source are valid until the next one.
    matmul_precision : {'highest', 'tf32'}, default='highest'
    returns_tensors : bool, optional
        Whether predictions come back as tensors; default: X is a tensor.
    n_components, piece :
        Size the default chunks for this problem.

    Examples
    --------
    >>> import torch
    >>> source = TorchSource(torch.ones((10, 3), dtype=torch.float64), chunk_size=4)
    >>> [tuple(c.X.shape) for c in source.chunks()], source.device
    ([(4, 3), (4, 3), (2, 3)], device(type='cpu'))
    """

    reiterable = True
    # Not all rows are handed over at once: initialisation asks for a bounded
    # sample (:meth:`sample`) and prediction for :meth:`map_rows`.
    in_memory = False

    def __init__(self, X: Any, sample_weight: Any = None, *, device: Any = None,
                 dtype: Any = None, chunk_size: int | None = None,
                 stream: bool | None = None, matmul_precision: str = "highest",
                 returns_tensors: bool | None = None, n_components: int = 1,
                 piece: CovarianceType | None = None) -> None:
        torch = _torch()
        self.matmul_precision = matmul_precision
        self.returns_tensors = is_torch_array(X) if returns_tensors is None else returns_tensors
        # a data source is copied before its chunk size is set (the caller's stays)
        self.inner = copy.copy(X) if is_data_source(X) else None
        self.device = resolve_device(device if device is not None else _device_of(X))
        self.dtype = dtype or _compute_dtype(torch, X, self.device)
        self.n_features = int(X.n_features if self.inner is not None else X.shape[1])
        self.n_rows = self.inner.n_rows if self.inner is not None else int(X.shape[0])
        self.X: Any = None if self.inner is not None else _as_tensor(torch, X)
        self.sample_weight = _device_weights(torch, sample_weight, self.n_rows,
                                             self.device)
        if self.X is None or stream:  # a data source is always streamed
            resident = False
        elif stream is None:
            resident = (self.X.device == self.device
                        or _fits(torch, self.X, self.dtype, self.device))
        else:
            resident = True
        if resident:  # on the device (or copied there once, cast, in chunks)
            self.X = _on_device(torch, self.X, self.dtype, self.device)
        self.streamed = not resident
        self.chunk_size = chunk_size or self._auto_chunk_size(n_components, piece)
        if self.inner is not None and getattr(self.inner, "chunk_size", 0) is None:
            self.inner.chunk_size = self.chunk_size
        self.spec = ComputeSpec(array_namespace(torch.empty(0, dtype=self.dtype)),
                                self.dtype, self.device)

    @property
    def n_chunks(self) -> int | None:
        if self.inner is not None:
            return self.inner.n_chunks  # type: ignore[no-any-return]
        return -(-self.n_rows // self.chunk_size)

    @property
    def buffer_rows(self) -> int:
        """Rows of the largest chunk a pass yields (staging buffers' size)."""
        inner = getattr(self.inner, "chunk_size", None) or 0
        return max(self.chunk_size, int(inner))

    def reducer(self, local: Reducer | None = None) -> TorchReducer:
        """The reducer for this source (``local`` serves host sources, such
        as the initialisation sample)."""
        return TorchReducer(local or Sequential(), self.matmul_precision)

    def chunks(self) -> Iterator[Chunk]:
        """A pass over the rows as chunks on the device."""
        if not self.streamed:
            for a, b in _ranges(self.n_rows, self.chunk_size):
                yield Chunk(self.X[a:b], _part(self.sample_weight, a, b))
            return
        yield from _Staging(_torch(), self).chunks(self._host_chunks())

    def _host_chunks(self) -> Iterator[Chunk]:
        if self.inner is not None:
            yield from self.inner.chunks()
            return
        for a, b in _ranges(self.n_rows, self.chunk_size):
            yield Chunk(self.X[a:b], _part(self.sample_weight, a, b))

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[np.ndarray, Any]:
        """Rows (and weights) on the host for initialisation: all rows, in
        order and with no random draws, when there are at most ``size``; else
        ``size`` distinct rows drawn uniformly with ``rng`` (see :meth:`_drawn`),
        in order."""
        if self.inner is not None:
            from ..engine.sampling import sample_rows

            X, w = sample_rows(self.inner, size, rng)
            return to_host(X, _numpy_dtype(self.dtype)), None if w is None else to_host(w)
        if self.n_rows <= size:
            X, w = self.X, self.sample_weight
        else:
            index = _torch().as_tensor(self._drawn(rng, size), device=self.X.device)
            X = self.X[index]
            w = None if self.sample_weight is None else self.sample_weight[
                index.to(self.sample_weight.device)]
        return to_host(X, _numpy_dtype(self.dtype)), None if w is None else to_host(w)

    def _drawn(self, rng: np.random.RandomState, size: int) -> np.ndarray:
        """``size`` distinct row indices drawn uniformly, sorted: among the rows
        of positive weight (absent rows of weight zero only if too few)."""
        order = rng.permutation(self.n_rows)
        if self.sample_weight is not None:
            absent = to_host(self.sample_weight == 0, bool)[order]
            order = order[np.argsort(absent, kind="stable")]
        return np.sort(order[:size])

    def result(self, a: Any, dtype: Any = np.float64) -> Any:
        """A per-row result as the caller gets it: the tensor itself, or NumPy."""
        return a if self.returns_tensors else to_host(a, dtype)

    def map_rows(self, func: Callable[[Chunk], Any], n_columns: int | None,
                 dtype: Any) -> Any:
        """``func`` over every chunk, results concatenated (tensors stay on the
        device; see :meth:`result`)."""
        parts = list(self.reducer().map(func, self))
        if self.returns_tensors:
            return _torch().cat(parts)
        return np.concatenate(parts)

    def place_attributes(self, est: Any) -> None:
        """Fitted arrays of ``est`` as tensors on the device, when the training
        rows were a tensor (see the module's rules)."""
        if self.returns_tensors:
            _convert(est, lambda a: _tensor_on(a, self.device))

    def _auto_chunk_size(self, n_components: int, piece: CovarianceType | None) -> int:
        d = self.n_features
        if self.device.type != "cuda":
            return auto_chunk_size(n_components, d, piece)
        per_row = (piece.numbers_per_row(n_components, d) if piece is not None
                   else n_components * (d + 1))
        free, _ = _torch().cuda.mem_get_info(self.device)
        itemsize = _torch().empty(0, dtype=self.dtype).element_size()
        budget = WORK_SHARE * free / (WORK_COPIES * itemsize * (per_row + 2 * d))
        return int(max(4096, min(budget, self.n_rows or budget)))


# ------------------------------------------------------------- the reducer
@dataclass(frozen=True)
class TorchReducer:
    """Chunks of a :class:`TorchSource` in turn, in the requested matrix-product
    precision; other sources (host rows) go to ``local``."""

    local: Reducer = field(default_factory=Sequential)
    precision: str = "highest"

    def map(self, func: Callable[[Any], T], source: Any) -> Iterator[T]:
        if not isinstance(source, TorchSource):
            yield from self.local.map(func, source)
            return
        with matmul_precision(self.precision):
            yield from map(func, source.chunks())


# ---------------------------------------------------------------- streaming
class _Staging:
    """Host rows to the device through two pinned buffers, used in turn.

    Chunk ``i + 1`` is cast into its pinned buffer and its copy queued on a
    side stream before chunk ``i`` is handed out, so the copy runs while the
    device computes. Events order the reuse: a pinned buffer is refilled once
    its copy is done, a device buffer overwritten once the compute stream has
    finished with the chunk it held. On a CPU device the same buffers are
    used with plain copies (no streams), which is what the tests exercise.
    """

    def __init__(self, torch: Any, source: TorchSource) -> None:
        self.torch, self.device = torch, source.device
        cuda = source.device.type == "cuda"
        rows, d = source.buffer_rows, source.n_features
        self.host = [torch.empty((rows, d), dtype=source.dtype, pin_memory=cuda)
                     for _ in range(2)]
        self.on_device = [torch.empty((rows, d), dtype=source.dtype, device=self.device)
                          for _ in range(2)]
        self.side = torch.cuda.Stream(self.device) if cuda else None
        self.copied: list[Any] = [torch.cuda.Event() if cuda else None for _ in range(2)]
        self.released: list[Any] = [torch.cuda.Event() if cuda else None for _ in range(2)]
        self.weights = source.sample_weight is not None and source.inner is None

    def chunks(self, host_chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        try:
            pending = self._stage(0, next(host_chunks, None))
            i = 0
            while pending is not None:
                slot, rows, w = pending
                pending = self._stage(i + 1, next(host_chunks, None))
                if self.side is not None:
                    self._compute().wait_event(self.copied[slot])
                yield Chunk(self.on_device[slot][:rows], w)
                if self.side is not None:  # the compute stream is done with the slot
                    self.released[slot].record(self._compute())
                i += 1
        finally:
            if self.side is not None:  # buffers are freed after the pass (even
                self._compute().wait_stream(self.side)  # a broken one): no copy in flight

    def _compute(self) -> Any:
        return self.torch.cuda.current_stream(self.device)

    def _stage(self, i: int, chunk: Chunk | None) -> tuple[int, int, Any] | None:
        if chunk is None:
            return None
        torch, slot = self.torch, i % 2
        X = chunk.X if is_torch_array(chunk.X) else torch.from_numpy(np.asarray(chunk.X))
        rows = int(X.shape[0])
        if self.side is None:
            self.host[slot][:rows].copy_(X)
            self.on_device[slot][:rows].copy_(self.host[slot][:rows])
        else:
            self.copied[slot].synchronize()  # the pinned buffer's last copy is done
            self.host[slot][:rows].copy_(X)
            with torch.cuda.stream(self.side):
                self.side.wait_event(self.released[slot])
                self.on_device[slot][:rows].copy_(self.host[slot][:rows],
                                                  non_blocking=True)
                self.copied[slot].record(self.side)
        w = chunk.sample_weight
        if w is not None and not self.weights:  # a data source's host weights
            w = torch.as_tensor(np.asarray(w, dtype=np.float64), device=self.device)
        return slot, rows, w


# ------------------------------------------------------------------ helpers
def as_numpy(model: Any) -> Any:
    """A shallow copy of a fitted model whose fitted arrays are NumPy arrays
    (for plotting, or code that expects NumPy); the model itself if they are."""
    if not any(is_torch_array(getattr(model, n, None)) for n in FITTED_ARRAYS):
        return model
    out = copy.copy(model)
    _convert(out, lambda a: a.detach().cpu().numpy())
    return out


def as_tensors(model: Any, device: Any = "cpu") -> Any:
    """A shallow copy of a fitted model whose fitted arrays are float64 tensors
    (labels int64) on ``device``."""
    dev = resolve_device(device)
    out = copy.copy(model)
    _convert(out, lambda a: _tensor_on(to_host(a, None) if is_torch_array(a) else a, dev))
    return out


def like_fitted(model: Any, a: np.ndarray) -> Any:
    """``a`` as a tensor on the device of ``model``'s fitted arrays when those
    are tensors, else unchanged."""
    means: Any = getattr(model, "means_", None)
    if not is_torch_array(means):
        return a
    return _torch().as_tensor(a, device=means.device)


def _tensor_on(a: Any, device: Any) -> Any:
    """A host array as a float64 (integers: int64) tensor on ``device``."""
    torch = _torch()
    a = np.asarray(a)
    return torch.as_tensor(a, dtype=torch.int64 if a.dtype.kind in "iu" else torch.float64,
                           device=device)


def _convert(est: Any, convert: Callable[[Any], Any]) -> None:
    for name in FITTED_ARRAYS:
        if hasattr(est, name):
            setattr(est, name, convert(getattr(est, name)))


def _device_of(X: Any) -> Any:
    return X.device if is_torch_array(X) else "cpu"


def _compute_dtype(torch: Any, X: Any, device: Any) -> Any:
    """A float tensor's dtype; float32 for host data on a GPU; else float64
    unless the rows are float32."""
    if is_torch_array(X) and X.dtype in (torch.float32, torch.float64):
        return X.dtype
    if device.type == "cuda":
        return torch.float32
    dtype = X.spec.dtype if is_data_source(X) else getattr(X, "dtype", None)
    float32 = dtype in (np.float32, torch.float32) or str(dtype) == "float32"
    return torch.float32 if float32 else torch.float64


def _numpy_dtype(dtype: Any) -> Any:
    return np.float32 if str(dtype).endswith("float32") else np.float64


def _as_tensor(torch: Any, X: Any) -> Any:
    """Rows as a tensor where they are (host NumPy rows shared, not copied)."""
    if is_torch_array(X):
        return X.detach()
    return torch.from_numpy(np.ascontiguousarray(X))


def _fits(torch: Any, X: Any, dtype: Any, device: Any) -> bool:
    """Whether the rows, cast, fit in the device's share for resident rows."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    return bool(X.shape[0] * X.shape[1] * itemsize <= RESIDENT_SHARE * free)


def _on_device(torch: Any, X: Any, dtype: Any, device: Any) -> Any:
    """``X`` cast to ``dtype`` on ``device``; host rows are copied in slices of
    about 64 MiB, so no cast copy of all rows is ever made on the host."""
    if X.device == device and X.dtype == dtype:
        return X
    out = torch.empty(tuple(X.shape), dtype=dtype, device=device)
    step = max(1, (64 << 20) // max(1, X.shape[1] * X.element_size()))
    for a, b in _ranges(int(X.shape[0]), step):
        out[a:b].copy_(X[a:b])
    return out


def _device_weights(torch: Any, sample_weight: Any, n_rows: int | None,
                    device: Any) -> Any:
    """Weights as a float64 tensor on the device (checked by the caller)."""
    if sample_weight is None:
        return None
    if is_torch_array(sample_weight):
        return sample_weight.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(sample_weight, dtype=np.float64), device=device)


def _ranges(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _part(w: Any, a: int, b: int) -> Any:
    return None if w is None else w[a:b]
