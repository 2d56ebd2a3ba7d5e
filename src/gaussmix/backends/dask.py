"""Dask arrays and DataFrames: a data source and a tree reducer on the cluster.

EM over a Dask collection is the engine's usual fold with two pieces swapped
in (the loop and the fold do not know about Dask):

- :class:`DaskSource` holds the rows as a ``dask.array.Array`` with whole
  rows in every block (a DataFrame of numeric columns becomes one), the
  optional weights as a 1-D array with the same row blocks, and says what it
  knows (rows, features, dtype). It brings its own reducer.
- :class:`DaskTree` maps a chunk function over the blocks *on the workers*
  and adds the results in a tree (``split_every`` values per node); the
  blocks never travel to the client, only a few statistics values (a few
  K x d x d arrays each) do. Values are added in a fixed order (block index,
  then tree level), so a fit does not depend on the scheduler, the number of
  workers or where the blocks lie.

The passes run on the active scheduler: a ``distributed.Client`` if one
exists, otherwise Dask's local (threaded) scheduler, in one of two ways:

- rows **persisted on the client as they are fitted** (whole rows per block,
  float32 or float64: ``X = X.rechunk({1: -1}).persist()``) are used where
  they lie: each pass submits one task per worker and tree node on the
  blocks' futures, with no Dask graph to build (see
  :mod:`gaussmix.backends.dask_futures`). Their scaled weights are computed
  once per fit and kept next to the rows (one float per row). This is the
  fast path: the fixed cost of an iteration is a few scheduler round trips.
- **any other collection** is fitted with one Dask graph per pass, computed
  with ``dask.compute`` (the chunk function is one task every block task
  depends on, so it travels to each worker once per pass). If it is not
  persisted, each iteration recomputes its whole graph (reading files again,
  redrawing random data...), with bounded memory; persist it first when the
  rows fit in the cluster's memory.

Initialisation draws a uniform random sample of at most
:data:`gaussmix.engine.init.INIT_SAMPLE_ROWS` rows on the cluster
(:meth:`DaskSource.sample`: random keys per block, the smallest keys kept in a
tree), then runs k-means on the sample in the client; all rows are taken (in
order) when there are no more than that.

Prediction maps the kernel over the blocks with ``map_blocks`` and returns a
lazy Dask array (so are ``fit_predict``'s labels and ``labels_`` after a fit of
a Dask array); ``score``, ``bic`` and ``aic`` compute their sums on the
scheduler.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from .._optional import require
from ..engine.chunk_checks import check_chunk, check_chunk_weights, check_rows_observed
from ..engine.covariance import ComputeSpec
from ..engine.reducers import Reducer, Sequential
from ..engine.sources import Chunk, ReadsMissing, times_power_of_two
from ..engine.xp import array_namespace
from .dask_futures import PersistedBlocks, active_client, block_futures, submit_pass

T = TypeVar("T")

# Values added per node of the reduction tree.
SPLIT_EVERY = 8
# Rows per chunk inside a block when the estimator sets none.
DEFAULT_CHUNK_ROWS = 65536

__all__ = ["DaskSource", "DaskTree", "is_dask_collection"]


def is_dask_collection(X: Any) -> bool:
    """Whether ``X`` is a Dask collection (checked without importing Dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "__dask_keys__")


def _distributed() -> Any:
    return require("distributed", "dask", "fitting Dask arrays")


def _dask() -> Any:
    _distributed()
    return require("dask", "dask", "fitting Dask arrays")


def _dask_array() -> Any:
    _dask()
    return require("dask.array", "dask", "fitting Dask arrays")


class DaskSource(ReadsMissing):
    """Rows of a Dask array (or a Dask DataFrame of numeric columns).

    Blocks are re-chunked to hold whole rows; integer and boolean data are read
    as float64, float32 stays float32. Weights (a Dask array aligned with the
    rows, or an in-memory array) are checked and scaled by a power of two on
    the cluster (exact, see :func:`gaussmix.engine.sources.scale_weights`);
    they were multiplied by ``2.0 ** weight_exponent`` (0 without weights), so
    that totals over the scaled weights (log-likelihoods, the number of rows)
    can be undone;
    ``n_weighted`` is the number of rows of positive weight (counted in the
    same pass; ``n_rows`` without weights).

    Persist the collection first (``X = X.persist()``): otherwise every EM
    iteration recomputes its whole graph.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features), or dask DataFrame
    sample_weight : dask.array.Array or array-like of shape (n_samples,), optional
    chunk_size : int, optional
        Rows per kernel call inside a block (bounds workers' memory); None lets
        the estimator choose.

    Examples
    --------
    >>> import dask.array as da
    >>> source = DaskSource(da.ones((10, 3), chunks=(4, 2)))
    >>> source.n_rows, source.n_features, source.n_chunks
    (10, 3, 3)
    >>> source.X.chunks[1]
    (3,)
    """

    reiterable = True
    in_memory = False

    def __init__(self, X: Any, sample_weight: Any = None,
                 chunk_size: int | None = None) -> None:
        X, self.feature_names = _as_array(X)
        self.X = X
        self.n_rows, self.n_features = int(X.shape[0]), int(X.shape[1])
        self.spec = ComputeSpec(array_namespace(np.empty(0, X.dtype)), X.dtype,
                                rows_elsewhere=self.n_rows)  # (on the workers)
        self.sample_weight, self.weight_exponent, self.n_weighted = _aligned_weights(
            sample_weight, X)
        self.chunk_size = chunk_size
        self._persisted: PersistedBlocks | None = None

    @property
    def n_chunks(self) -> int:
        return len(self.X.chunks[0])

    def persisted_blocks(self, client: Any) -> PersistedBlocks | None:
        """The blocks' futures when the rows are persisted on ``client`` as they
        are (None otherwise), kept for the source's later passes."""
        if self._persisted is not None and self._persisted.client is client:
            return self._persisted
        rows = block_futures(self.X, client)
        if rows is None:
            return None
        with client.as_current():
            _distributed().wait(rows)  # their placement is needed
        self._persisted = PersistedBlocks(client, rows, self.X.chunks[0],
                                          self.sample_weight)
        return self._persisted

    def reducer(self, local: Reducer | None = None) -> DaskTree:
        """The tree reducer for this source (``local`` for in-memory sources,
        such as the initialisation sample)."""
        return DaskTree(local=local or Sequential())

    @cached_property
    def blocks(self) -> list[tuple[Any, Any]]:
        """``(rows, weights)`` of every block as Dask delayed values."""
        xs = self.X.to_delayed().ravel().tolist()
        w = self.sample_weight
        ws = [None] * len(xs) if w is None else w.to_delayed().ravel().tolist()
        return list(zip(xs, ws, strict=True))

    def chunks(self) -> Iterator[Chunk]:
        """A pass over the rows *in the caller*, one block at a time (each
        block computed and sent here); the estimator uses :attr:`blocks` and
        :class:`DaskTree` instead, which keep rows on the workers."""
        for block, where in zip(self.blocks, block_names(self.X.chunks[0]), strict=True):
            X, w = _dask().compute(*block)
            yield from _split(X, w, self.n_features, self.chunk_size,
                              missing=self.missing, where=where)

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[np.ndarray, Any]:
        """A uniform random sample of at most ``size`` rows (and their weights),
        in their original order, drawn on the cluster among the rows of
        positive weight (then zero-weight rows if too few); all rows when there are
        no more than ``size`` (then no random numbers are drawn); checked
        (finite) before initialisation reads it."""
        dask = _dask()
        if self.n_rows <= size:
            X, w = dask.compute(self.X, self.sample_weight)
            return check_chunk(X, self.n_features, "the Dask array", self.missing), w
        seeds = rng.randint(0, 2**31 - 1, size=self.n_chunks)
        offsets = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]])
        draw = dask.delayed(_block_sample, pure=True)
        parts = [draw(X, w, int(seed), int(offset), size)
                 for (X, w), seed, offset in zip(self.blocks, seeds, offsets,
                                                         strict=True)]
        _, rows, weights, positions = dask.compute(
            _tree(parts, lambda values: _merge_samples(values, size)))[0]
        order = np.argsort(positions, kind="stable")
        rows = _checked_sample(rows[order], positions[order], self.n_features,
                               self.missing)
        return rows, None if weights is None else weights[order]

    def map_rows(self, func: Callable[[Chunk], np.ndarray], n_columns: int | None,
                 dtype: Any) -> Any:
        """``func`` over every block as a lazy Dask array: (n,) results when
        ``n_columns`` is None, else (n, n_columns)."""
        X, d, size = self.X, self.n_features, self.chunk_size
        # (also the result of a block of zero rows, so it has the columns)
        meta = np.empty((0,) if n_columns is None else (0, n_columns), dtype=dtype)
        if n_columns is None:
            return X.map_blocks(_rows_of, func, d, size, meta, self.missing, drop_axis=1,
                                dtype=dtype, meta=meta)
        return X.map_blocks(_rows_of, func, d, size, meta, self.missing,
                            chunks=(X.chunks[0], (n_columns,)), dtype=dtype, meta=meta)


@dataclass(frozen=True)
class _Bound:
    """The chunk function, wrapped so that a graph holds it as data (in a
    graph: one task that block tasks depend on, sent once to each worker)."""

    func: Callable[[Any], Any]


@dataclass(frozen=True)
class DaskTree:
    """Maps a chunk function over a :class:`DaskSource`'s blocks on the active
    Dask scheduler and adds the values in a tree on the workers.

    :meth:`map` yields one value, the sum (what the engine's ``fold`` adds):
    submitted on the blocks' futures for rows persisted on the active client,
    else computed as one graph (:meth:`graph`). The chunk function's values may
    be of any type with ``+``. Sources without Dask blocks (the in-memory
    initialisation sample) go to ``local``.
    """

    split_every: int = SPLIT_EVERY
    local: Reducer = field(default_factory=Sequential)

    def map(self, func: Callable[[Any], T], source: Any) -> Iterator[T]:
        if not isinstance(source, DaskSource):
            yield from self.local.map(func, source)
            return
        client = active_client(source.X)
        blocks = None if client is None else source.persisted_blocks(client)
        if blocks is None:
            yield _dask().compute(self.graph(func, source))[0]
        else:
            yield submit_pass(func, blocks, source.n_features, source.chunk_size,
                              self.split_every, source.missing)

    def graph(self, func: Callable[[Any], T], source: DaskSource) -> Any:
        """The pass as one delayed value: ``func`` held by one key that every
        block's task depends on, block values added in a tree."""
        dask = _dask()
        bound = dask.delayed(_Bound(func), name=f"gaussmix-kernel-{uuid.uuid4().hex}",
                             traverse=False)
        apply = dask.delayed(_apply_block, pure=True)
        size, rows = source.chunk_size, source.X.chunks[0]
        values = [apply(bound, X, w, source.n_features, size, where, source.missing)
                  for (X, w), where in zip(source.blocks, block_names(rows), strict=True)
                  if where]
        return _tree(values, _sum, self.split_every)


def _tree(values: list[Any], combine: Callable[[list[Any]], Any],
          split_every: int = SPLIT_EVERY) -> Any:
    """A delayed tree that combines ``values`` ``split_every`` at a time, in order."""
    node = _dask().delayed(combine, pure=True)
    while len(values) > 1:
        values = [node(values[i:i + split_every])
                  for i in range(0, len(values), split_every)]
    return values[0]


def _sum(values: Sequence[T]) -> T:
    total = values[0]
    for value in values[1:]:
        total = total + value  # type: ignore[operator]
    return total


def _checked_sample(rows: np.ndarray, positions: np.ndarray, n_features: int,
                    missing: str | None) -> np.ndarray:
    """:func:`~gaussmix.engine.chunk_checks.check_chunk` of rows drawn at
    ``positions`` of the array: a row with nothing observed is named by its
    row in the array (not its place in the sample)."""
    where = "the rows of the Dask array sampled for initialisation"
    rows = check_chunk(rows, n_features, where, "allow" if missing == "fit" else missing)
    if missing == "fit":
        check_rows_observed(rows, where, lambda i: f"row {positions[i]} of the Dask array")
    return rows


#: What errors call a block whose rows are not known.
A_BLOCK = "a block of the Dask array"


def _rows_name(start: int, stop: int) -> str:
    """What errors call the rows ``start`` to ``stop - 1`` of the array."""
    return f"rows {start}..{stop - 1} of the Dask array"


def block_names(rows: Sequence[int]) -> list[str]:
    """What errors call each block of rows of these sizes ('' for no rows)."""
    stops = np.cumsum(rows, dtype=np.int64)
    return [_rows_name(stop - n, stop) if n else ""
            for n, stop in zip(rows, stops.tolist(), strict=True)]


def _split(X: np.ndarray, w: Any, n_features: int, size: int | None,
           check: bool = True, missing: str | None = None,
           where: str = A_BLOCK) -> Iterator[Chunk]:
    """A block's chunks of at most ``size`` rows, checked (finite, shape; NaN
    as ``missing`` says, see :func:`~gaussmix.engine.chunk_checks.check_chunk`)
    unless ``check`` is False (a block already checked); ``where`` names the
    block in errors."""
    if check:
        X = check_chunk(X, n_features, where, missing)
        if w is not None:
            w = check_chunk_weights(w, X.shape[0], where)
    size = size or DEFAULT_CHUNK_ROWS
    for start in range(0, X.shape[0], size):
        stop = start + size
        yield Chunk(X[start:stop], None if w is None else w[start:stop])


def _block_values(bound: _Bound, X: np.ndarray, w: Any, n_features: int,
                  size: int | None, check: bool = True, missing: str | None = None,
                  where: str = A_BLOCK) -> Any:
    """The chunk function's values over one block, added in row order."""
    return _sum([bound.func(chunk)
                 for chunk in _split(X, w, n_features, size, check, missing, where)])


def _apply_block(bound: _Bound, X: np.ndarray, w: Any, n_features: int,
                 size: int | None, where: str, missing: str | None = None) -> Any:
    """:func:`_block_values` as a graph task (``where``, the block's rows,
    tells blocks apart)."""
    return _block_values(bound, X, w, n_features, size, missing=missing, where=where)


def _rows_of(X: np.ndarray, func: Callable[[Chunk], np.ndarray], n_features: int,
             size: int | None, empty: np.ndarray, missing: str | None = None,
             block_info: dict[Any, Any] | None = None) -> np.ndarray:
    where = A_BLOCK
    if block_info and 0 in block_info:  # (Dask passes it by name)
        where = _rows_name(*block_info[0]["array-location"][0])
    parts = [func(chunk) for chunk in _split(X, None, n_features, size,
                                             missing=missing, where=where)]
    return np.concatenate(parts) if parts else empty


SampleValue = tuple[np.ndarray, np.ndarray, Any, np.ndarray]


def _block_sample(X: np.ndarray, w: Any, seed: int, offset: int, size: int
                  ) -> SampleValue:
    """The ``size`` rows of a block with the smallest random keys; rows of
    weight zero (absent from the fit) get keys above all others, so they are
    drawn only where there are fewer than ``size`` rows of positive weight."""
    keys = np.asarray(np.random.RandomState(seed).random_sample(X.shape[0]))
    if w is not None:
        keys = np.where(np.asarray(w) > 0, keys, keys + 1.0)
    positions = offset + np.arange(X.shape[0])
    return _smallest(keys, np.asarray(X), None if w is None else np.asarray(w),
                     positions, size)


def _merge_samples(values: Sequence[SampleValue], size: int) -> SampleValue:
    keys, rows, weights, positions = zip(*values, strict=True)
    w = None if weights[0] is None else np.concatenate(weights)
    return _smallest(np.concatenate(keys), np.concatenate(rows), w,
                     np.concatenate(positions), size)


def _smallest(keys: np.ndarray, rows: np.ndarray, w: Any, positions: np.ndarray,
              size: int) -> SampleValue:
    if len(keys) > size:
        keep = np.argpartition(keys, size - 1)[:size]
        keys, rows, positions = keys[keep], rows[keep], positions[keep]
        w = None if w is None else w[keep]
    return keys, rows, w, positions


def _as_array(X: Any) -> tuple[Any, list[str] | None]:
    """A 2-D float Dask array with whole rows per block and known block sizes,
    and the column names of a DataFrame."""
    da = _dask_array()
    names = None
    if not isinstance(X, da.Array):
        if not (hasattr(X, "to_dask_array") and hasattr(X, "dtypes")):
            raise TypeError(f"Expected a Dask array or a Dask DataFrame, got "
                            f"{type(X).__name__}.")
        if X.ndim != 2:  # a Series
            raise ValueError("Expected a 2-D Dask DataFrame (rows x features), got a "
                             "Series; pass series.to_frame() for a single feature.")
        X, names = _frame_as_array(X), [str(c) for c in X.columns]
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D Dask array (rows x features), got {X.ndim}-D; "
                         "reshape a single feature with X.reshape(-1, 1).")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"Expected a real-valued numeric Dask array, got dtype {X.dtype}.")
    if X.shape[1] < 1:
        raise ValueError(f"Found a Dask array of shape {X.shape} while at least 1 "
                         "feature is required.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    return X.rechunk({1: -1}), names


def _frame_as_array(frame: Any) -> Any:
    """A Dask DataFrame of numeric columns as a float Dask array: float32 when
    every column is, else float64 (bool and pandas' nullable columns too, whose
    missing values become NaN, rejected as the rows are checked)."""
    import pandas as pd

    dtypes = frame.dtypes
    bad = [str(c) for c, t in dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
    if bad:
        raise ValueError(f"A Dask DataFrame must have numeric columns only; {bad} are "
                         "not numeric: convert or drop them first (e.g. "
                         "frame.select_dtypes('number')).")
    dtype = np.float32 if all(t == np.float32 for t in dtypes) else np.float64
    if any(t != dtype for t in dtypes):
        frame = frame.astype(dtype)
    return frame.to_dask_array(lengths=True)


def _aligned_weights(sample_weight: Any, X: Any, scale: bool = True
                     ) -> tuple[Any, int, int]:
    """Weights as a float64 Dask array with X's row blocks, checked and (with
    ``scale``) scaled by a power of two (one small pass over the weights), the
    exponent of that power and the number of rows of positive weight (all
    rows without weights)."""
    if sample_weight is None:
        return None, 0, int(X.shape[0])
    da = _dask_array()
    n = X.shape[0]
    if isinstance(sample_weight, da.Array):
        w = sample_weight
        if any(math.isnan(c) for c in w.chunks[0]):
            w = w.compute_chunk_sizes()
    else:
        try:
            w = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"sample_weight must be numeric: {err}") from err
        w = np.full(n, float(w)) if w.ndim == 0 else w
    if tuple(w.shape) != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per row "
                         f"of X, but got shape {tuple(w.shape)}.")
    w = da.asarray(w).astype(np.float64).rechunk((X.chunks[0],))
    low, high, finite, positive = _dask().compute(w.min(), w.max(), da.isfinite(w).all(),
                                                  (w > 0).sum())
    if not finite or low < 0:
        raise ValueError("sample_weight must be finite and non-negative.")
    if not high > 0:
        raise ValueError("sample_weight sums to zero: at least one row needs a "
                         "positive weight.")
    if not scale:
        return w, 0, int(positive)
    exponent = -math.frexp(float(high))[1]  # the largest weight to [0.5, 1)
    return times_power_of_two(w, exponent), exponent, int(positive)


def weighted_totals(log_prob: Any, sample_weight: Any, scaled: bool = False
                    ) -> tuple[float, float]:
    """``(sum w log p, sum w)`` of a lazy per-row log-likelihood, computed
    (with ``scaled``, the weights times a power of two, as the fit scales them)."""
    if sample_weight is None:
        return float(log_prob.sum().compute()), float(log_prob.shape[0])
    w, _, _ = _aligned_weights(sample_weight, log_prob[:, None], scale=scaled)
    total, weight = _dask().compute((w * log_prob).sum(), w.sum())
    return float(total), float(weight)
