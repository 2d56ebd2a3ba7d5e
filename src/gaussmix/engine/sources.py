"""Where chunks of rows come from.

A *data source* yields :class:`Chunk` values (rows plus optional weights) and
says what it knows: features, dtype, the number of rows if known, whether it
can be read again, and whether all of its rows are in memory. The EM loop,
initialisation and prediction only ever ask a source for its chunks.

Sources here:

- :class:`ArraySource`: an in-memory array (NumPy, or any array-API array),
  chunks are views;
- :class:`NpySource`: a ``.npy`` file, memory-mapped and read chunk by chunk;
- :class:`IterableSource`: any re-iterable of chunks, or a function returning
  a fresh iterator (a generator factory, a database cursor), re-split into
  chunks of bounded size.

Sources yield sample weights as given. The estimator scales in-memory weights
by a power of two (:func:`scale_weights`) before it fits: exact in floating
point, so the fit is unchanged, and no sum of weights can overflow.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
from array_api_compat import device as array_device

from .chunk_checks import check_chunk, check_chunk_weights
from .covariance import ComputeSpec, CovarianceType
from .deferred import deferred
from .splitting import ROUND_BELOW, even_chunk_rows
from .threads import available_cores
from .xp import array_namespace

# Rows per chunk are chosen so that a chunk's largest work array holds about
# this many numbers (8 MiB in float64): large enough for efficient products and
# few Python calls per row, small enough to bound memory whatever n is.
# Measured on 2 cores (benchmarks/bench_em.py): 2^20 beat 2^18 by 10-30%.
TARGET_CHUNK_ELEMENTS = 1 << 20
# Rows per chunk of a source used on its own, outside an estimator.
DEFAULT_CHUNK_ROWS = 65536


# Where the fused kernel (gaussmix.engine.fused) serves, it works in
# cache-sized tiles whatever the chunk's size, so a chunk only has to be long
# enough for its few Python calls (tens of microseconds, holding the GIL) to be
# a small share of its compiled work: about this many flops (5 ms on one core
# at 25 GFLOP/s; 16384 rows at n=1M, d=16, K=8, the best chunk size measured
# at 16 threads before the fused kernel).
FUSED_CHUNK_FLOPS = 1 << 27

# The 4096-row floor below must not make a work array of wide problems huge
# (full, K=50, d=100: 170 MB a chunk and thread, 40x the data): a chunk's work
# array holds at most this many numbers (32 MiB in float64), but the chunk
# keeps at least 4 d rows (a chunk's fixed costs grow like d^3: full K=200,
# d=200 took twice as long in chunks of 100 rows) and MIN_CHUNK_ROWS (the
# fused kernel's smallest chunk).
MAX_CHUNK_ELEMENTS = 1 << 22
MIN_CHUNK_ROWS = 64


def auto_chunk_size(
    n_components: int, n_features: int, piece: CovarianceType | None = None,
    n_rows: int | None = None,
) -> int:
    """Rows per chunk for the given problem size and covariance type.

    For the reference kernel, the largest work array per chunk holds about
    ``TARGET_CHUNK_ELEMENTS`` numbers. The fused kernel needs no work array
    per chunk; its chunks hold about ``FUSED_CHUNK_FLOPS`` of products (about
    ``4 (d + 1)`` flops per number of the reference's work array per row).
    Both between 4096 and 65536 rows, but fewer (down to ``4 d`` and
    ``MIN_CHUNK_ROWS``) where a work array would hold more than
    ``MAX_CHUNK_ELEMENTS``. Given the
    input's ``n_rows``, chunks are made smaller, down to a quarter of that
    size, until the input has at least ``PIECES_PER_CORE`` of them per core
    this process may use (:func:`~gaussmix.engine.threads.available_cores`; not ``n_threads``,
    so that results do not change with it), and the size is evened out so
    that the threads share the input
    (:func:`~gaussmix.engine.splitting.even_chunk_rows`).

    Examples
    --------
    >>> from gaussmix.engine.covariance import get_covariance_type
    >>> 4096 <= auto_chunk_size(8, 16, get_covariance_type("full")) <= 65536
    True
    """
    per_row = _numbers_per_row(n_components, n_features, piece)
    return _chunk_rows(per_row, n_features, _fused_kernel_serves(), n_rows,
                       None if n_rows is None else available_cores())


#: Most rows per chunk of a block on a cluster's worker (bounds the copy of
#: a chunk that a kernel of another dtype makes).
MAX_WORKER_CHUNK_ROWS = 1 << 17


def worker_chunk_size(n_components: int, n_features: int,
                      piece: CovarianceType | None = None) -> int:
    """Rows per chunk of a block on a cluster's worker (a Dask array's):
    where the fused kernel serves, as many as the memory bound of
    :func:`auto_chunk_size` allows (a chunk's work array, should the
    reference kernel serve it, holds at most ``MAX_CHUNK_ELEMENTS``
    numbers), up to ``MAX_WORKER_CHUNK_ROWS``; else :func:`auto_chunk_size`'s.

    Why larger: a worker takes its blocks' chunks one after another on one
    thread, so no threads share them, and each kernel call costs more there
    than in this process's threads. On a 2-worker LocalCluster (n=1M, d=16,
    K=8 full, blocks of 125,000 rows, 2026-11-29) an E-step pass took 1.25x
    the in-memory pass in chunks of 14,513 rows, 1.13x in chunks of 31,250
    and 1.11x in whole blocks (medians of 10, alternated in one run).

    >>> from gaussmix.engine.covariance import get_covariance_type
    >>> full = get_covariance_type("full")
    >>> worker_chunk_size(8, 16, full) >= auto_chunk_size(8, 16, full)
    True
    """
    rows = auto_chunk_size(n_components, n_features, piece)
    if not _fused_kernel_serves():
        return rows
    per_row = _numbers_per_row(n_components, n_features, piece)
    return max(rows, min(MAX_WORKER_CHUNK_ROWS, MAX_CHUNK_ELEMENTS // max(1, per_row)))


def _numbers_per_row(n_components: int, n_features: int,
                     piece: CovarianceType | None) -> int:
    """Numbers per row of the reference kernel's largest work array (the
    full type's when no type is given)."""
    if piece is None:
        return n_components * (n_features + 1)
    return piece.numbers_per_row(n_components, n_features)


@functools.lru_cache(maxsize=256)  # asked at each partial_fit call
def _chunk_rows(per_row: int, n_features: int, fused: bool, n_rows: int | None,
                cores: int | None) -> int:
    if fused:
        rows = FUSED_CHUNK_FLOPS // (4 * max(1, per_row) * (n_features + 1))
    else:
        rows = TARGET_CHUNK_ELEMENTS // max(1, per_row)
    rows = int(min(max(rows, 4096), 65536))
    rows = min(rows, max(MIN_CHUNK_ROWS, 4 * n_features,
                         MAX_CHUNK_ELEMENTS // max(1, per_row)))
    if n_rows is None or cores is None:
        return rows
    return even_chunk_rows(_enough_pieces(rows, n_rows, cores), n_rows)


#: Chunks per available core that an input is cut into at least (when its
#: chunks keep a quarter of their work, the smallest piece of
#: :func:`~gaussmix.engine.splitting.even_chunk_rows` too): with 16 cores,
#: 500,000 tied rows made 8 chunks of 65,536 and left half the threads idle
#: (4.3x one thread, 7.2x since; measured).
PIECES_PER_CORE = 2


def _enough_pieces(rows: int, n_rows: int, cores: int) -> int:
    """``rows``, or fewer so that ``n_rows`` make ``PIECES_PER_CORE`` chunks
    per core, but not below ``rows // 4``; an input of fewer than
    ``ROUND_BELOW`` such chunks keeps ``rows`` (``even_chunk_rows`` cuts it).

    >>> _enough_pieces(65536, 500_000, 16)   # 31 chunks for 16 cores
    16384
    >>> _enough_pieces(4096, 100_000, 16)    # d=64: 32 chunks instead of 25
    3125
    >>> _enough_pieces(65536, 500_000, 2)    # 8 chunks already serve 2 cores
    65536
    >>> _enough_pieces(14513, 10_000, 16)    # a partial_fit batch: unchanged
    14513
    """
    wanted = -(-n_rows // (PIECES_PER_CORE * cores))
    cut = min(rows, max(wanted, rows // 4))
    return cut if n_rows >= ROUND_BELOW * cut else rows


def _fused_kernel_serves() -> bool:
    fused = deferred("gaussmix.engine.fused")
    return fused.available() and fused.mode() != "reference"  # type: ignore[no-any-return]


class Chunk(NamedTuple):
    """Rows (n, d) and their weights (n,) or None."""

    X: Any
    sample_weight: Any


class ChunkSource(Protocol):
    """What a reducer needs: chunks, and how many if known."""

    @property
    def n_chunks(self) -> int | None:
        """Number of chunks per pass, if known."""

    def chunks(self) -> Iterator[Any]:
        """A fresh pass over the chunks."""


class DataSource(ChunkSource, Protocol):
    """What the engine needs from a source of rows."""

    @property
    def n_features(self) -> int:
        """Columns of every chunk."""

    @property
    def n_rows(self) -> int | None:
        """Rows per pass, if known."""

    @property
    def reiterable(self) -> bool:
        """Whether the rows can be read again (EM needs it)."""

    @property
    def in_memory(self) -> bool:
        """Whether all rows are in memory (``X`` and ``sample_weight`` then exist)."""

    @property
    def spec(self) -> ComputeSpec:
        """Namespace, dtype and device of the chunks."""

    def chunks(self) -> Iterator[Chunk]:
        """A fresh pass over the rows."""


def is_data_source(X: Any) -> bool:
    """Whether ``X`` is a data source rather than an array-like."""
    return hasattr(X, "chunks") and hasattr(X, "n_features") and hasattr(X, "spec")


def scale_weights(sample_weight: Any) -> Any:
    """Weights multiplied by the power of two that puts the largest in [0.5, 1).

    Exact (only the exponent changes), so results are the same as with the
    weights given; sums of weights cannot overflow.
    """
    if sample_weight is None:
        return None
    xp = array_namespace(sample_weight)
    largest = float(xp.max(sample_weight))
    if not (largest > 0 and math.isfinite(largest)):
        return sample_weight
    _, exponent = math.frexp(largest)
    return times_power_of_two(sample_weight, -exponent)


def times_power_of_two(w: Any, exponent: int) -> Any:
    """``w * 2.0 ** exponent``, exact: in two factors where one would overflow
    (``2.0 ** 1074``, which scales a subnormal largest weight)."""
    first = min(exponent, 1000)
    w = w * 2.0 ** first
    return w * 2.0 ** (exponent - first) if exponent > first else w


@dataclass(frozen=True)
class ArraySource:
    """Chunks of an in-memory (or memory-mapped) array, as views."""

    X: Any
    sample_weight: Any
    chunk_size: int
    spec: ComputeSpec = field(init=False)
    reiterable: bool = field(default=True, init=False)
    in_memory: bool = field(default=True, init=False)
    missing: bool = False  # rows may hold NaN, missing at random (engine.incomplete)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", spec_of(self.X))

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_chunks(self) -> int:
        return -(-self.n_rows // self.chunk_size)

    def ranges(self) -> Iterator[tuple[int, int]]:
        """(start, stop) row ranges of the chunks."""
        for start in range(0, self.n_rows, self.chunk_size):
            yield start, min(start + self.chunk_size, self.n_rows)

    def chunks(self) -> Iterator[Chunk]:
        w = self.sample_weight
        for start, stop in self.ranges():
            yield Chunk(self.X[start:stop], None if w is None else w[start:stop])


class ReadsMissing:
    """How a file or chunk source reads NaN: as an error (``missing`` None,
    the default), or, in the copy :meth:`reading_missing` makes for an
    estimator with ``missing='marginalize'``, as values missing at random."""

    #: None: NaN raise; 'allow': NaN are missing values; 'fit': they are, but
    #: a row with every value NaN raises (it carries nothing to fit)
    missing: str | None = None

    def reading_missing(self, *, fitting: bool) -> Any:
        """A copy of the source whose chunks keep their NaN (infinity still
        raises); ``fitting``: a row with nothing observed raises."""
        marked = copy.copy(self)
        marked.missing = "fit" if fitting else "allow"
        return marked


class NpySource(ReadsMissing):
    """Rows of a ``.npy`` file, memory-mapped and read one chunk at a time.

    Only the chunk being processed is in memory (plus the optional weights,
    one number per row). The array must be 2-D and numeric; integer files
    are read as float64. Its values are checked (finite, or NaN as missing
    values) in the first complete pass, not again in later ones: the file
    must not change while the source is in use.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> source = NpySource(path, chunk_size=2)
    >>> [c.X.shape[0] for c in source.chunks()], source.in_memory
    ([2, 2, 1], False)
    """

    reiterable = True
    in_memory = False

    def __init__(self, path: str | os.PathLike[str], chunk_size: int | None = None,
                 sample_weight: Any = None) -> None:
        self.path = os.fspath(path)
        self._rows = _mapped_npy(self.path)
        if self._rows.ndim != 2 or self._rows.dtype.kind not in "fiub":
            raise ValueError(
                f"{self.path!r} holds a {self._rows.ndim}-D {self._rows.dtype} array; "
                "a data file must hold a 2-D numeric array (rows x features)."
            )
        # float32 (either byte order) stays float32 (faster products); anything
        # else is read as float64
        float32 = self._rows.dtype.kind == "f" and self._rows.dtype.itemsize == 4
        self.dtype = np.dtype(np.float32 if float32 else np.float64)
        self.n_rows, self.n_features = map(int, self._rows.shape)
        # None: the estimator's chunk size for its problem (see auto_chunk_size)
        self.chunk_size = check_chunk_size(chunk_size)
        self.sample_weight = (None if sample_weight is None else check_chunk_weights(
            sample_weight, self.n_rows, f"the rows of {self.path!r}"))
        self.spec = ComputeSpec(array_namespace(np.empty(0, self.dtype)), self.dtype)
        # the ways of reading NaN (``missing``) a complete pass has checked
        self._checked_as: frozenset[str | None] = frozenset()

    @property
    def n_chunks(self) -> int:
        return -(-self.n_rows // (self.chunk_size or DEFAULT_CHUNK_ROWS))

    def chunks(self) -> Iterator[Chunk]:
        w, size = self.sample_weight, self.chunk_size or DEFAULT_CHUNK_ROWS
        # The values are checked in the first complete pass only (for each
        # way of reading NaN): a later pass reads the same mapped file, and
        # checking 4 GB again costs 6% of an EM iteration (BENCHMARKS.md).
        check = self.missing not in self._checked_as
        for start in range(0, self.n_rows, size):
            stop = min(start + size, self.n_rows)
            X = np.asarray(self._rows[start:stop], dtype=self.dtype)
            if check:
                X = check_chunk(X, self.n_features,
                                f"rows {start}..{stop - 1} of {self.path!r}", self.missing)
            yield Chunk(X, None if w is None else w[start:stop])
        self._checked_as = self._checked_as | {self.missing}


def _mapped_npy(path: str) -> np.ndarray:
    """The ``.npy`` file memory-mapped; a file that is not one (truncated,
    corrupt, pickled objects) raises ValueError naming it."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path!r} is not a readable .npy file of numbers ({error}); "
                         "check that it was written completely by numpy.save.") from error


def check_chunk_size(chunk_size: Any) -> int | None:
    """A source's ``chunk_size``: None (the estimator chooses) or an int >= 1."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"chunk_size must be None or an int >= 1 (rows per chunk), got "
                         f"{chunk_size!r}.")
    return int(chunk_size)


class IterableSource(ReadsMissing):
    """Rows from a re-iterable of chunks, or a function returning an iterator.

    Each item is an array of rows (n_i, d), or a pair ``(rows, weights)``.
    Items are re-split into chunks of at most ``chunk_size`` rows, so memory
    stays bounded whatever the item size; items without rows are skipped.
    Weights are used as given (they are not seen all at once). Chunks are
    computed in the first chunk's dtype: float32 if it is float32, else
    float64 (later NumPy chunks are cast to it).

    Every pass must give the same rows (EM reads them once per iteration):
    a pass that gives another number of rows than the first complete one
    raises ValueError, as does a function that returns an exhausted iterator.
    The iterator opened to learn the number of features is the first pass's.

    Examples
    --------
    >>> import numpy as np
    >>> parts = [np.ones((3, 2)), np.zeros((4, 2))]
    >>> source = IterableSource(lambda: iter(parts), chunk_size=5)
    >>> [c.X.shape[0] for c in source.chunks()], source.n_features
    ([3, 4], 2)
    """

    in_memory = False
    n_rows = None
    n_chunks = None

    def __init__(self, chunks: Iterable[Any] | Callable[[], Iterable[Any]],
                 chunk_size: int | None = None) -> None:
        if callable(chunks) and not hasattr(chunks, "__iter__"):
            self._open = lambda: iter(chunks())  # type: ignore[operator]
        elif hasattr(chunks, "__iter__"):
            if iter(chunks) is chunks:  # type: ignore[arg-type]
                raise TypeError(
                    "IterableSource needs chunks it can read more than once (EM "
                    "passes over the data every iteration): pass a list, a "
                    "re-iterable object, or a function that returns a fresh "
                    "iterator (e.g. lambda: read_chunks(path))."
                )
            self._open = lambda: iter(chunks)  # type: ignore[arg-type]
        else:
            raise TypeError(f"Expected an iterable of chunks or a function, got "
                            f"{type(chunks).__name__}.")
        items = self._items()
        first = next(items, None)
        if first is None:
            raise ValueError("The chunk source yielded no rows.")
        self.n_features = int(first.X.shape[1])
        # (NaN pass here: each pass checks every chunk, the first one again, as
        # the estimator's missing setting wants)
        self.spec = spec_of(check_chunk(first.X, self.n_features, "the first chunk",
                                        "allow"))
        # None: the estimator's chunk size for its problem (see auto_chunk_size)
        self.chunk_size = check_chunk_size(chunk_size)
        self.reiterable = True
        # shared with copies (the estimator copies a source to set its chunk
        # size): the opened first pass, and the rows of a complete pass
        self._passes = _Passes(pending=(first, items))

    def _items(self) -> Iterator[Chunk]:
        for item in self._open():
            if isinstance(item, tuple) and len(item) != 2:
                raise ValueError(f"A chunk given as a tuple must be a pair (rows, "
                                 f"weights); got a tuple of {len(item)} items.")
            X, w = item if isinstance(item, tuple) else (item, None)
            if not hasattr(X, "__array_namespace__"):
                X = np.asarray(X)
            if X.ndim >= 1 and X.shape[0] == 0:
                continue  # no rows (an empty query result): nothing to read
            if X.ndim != 2:
                raise ValueError(f"Each chunk must be 2-D (rows x features); got "
                                 f"shape {tuple(X.shape)}.")
            yield Chunk(X, w)

    def _pass(self) -> Iterator[Chunk]:
        """The items of a pass: the first pass continues the iterator opened
        by the constructor (a one-shot iterator then loses no rows)."""
        pending, self._passes.pending = self._passes.pending, None
        if pending is None:
            yield from self._items()
            return
        first, rest = pending
        yield first
        yield from rest

    def chunks(self) -> Iterator[Chunk]:
        rows, size = 0, self.chunk_size or DEFAULT_CHUNK_ROWS
        for X, w in self._pass():
            where = f"rows {rows}..{rows + X.shape[0] - 1} of the chunk source"
            X = check_chunk(X, self.n_features, where, self.missing)
            if isinstance(X, np.ndarray) and X.dtype != self.spec.dtype:
                X = X.astype(self.spec.dtype)
            if w is not None:
                w = check_chunk_weights(w, X.shape[0], where)
            for start in range(0, X.shape[0], size):
                stop = start + size
                yield Chunk(X[start:stop], None if w is None else w[start:stop])
            rows += X.shape[0]
        self._passes.check(rows)


@dataclass
class _Passes:
    """What the passes over an :class:`IterableSource` have shown."""

    pending: tuple[Chunk, Iterator[Chunk]] | None = None
    rows: int | None = None  # rows of the first complete pass

    def check(self, rows: int) -> None:
        """Record the rows of a complete pass; raise if they differ from the first's."""
        if self.rows is None:
            self.rows = rows
        elif rows != self.rows:
            raise ValueError(
                f"A pass over the chunk source gave {rows} rows, an earlier pass "
                f"{self.rows}: every pass must give the same rows (EM reads them once "
                "per iteration). Pass a function that returns a fresh iterator at "
                "every call (e.g. lambda: read_chunks(path)), not one that returns "
                "the same iterator or generator, and keep the data unchanged while "
                "fitting."
            )


def spec_of(X: Any) -> ComputeSpec:
    """The namespace, dtype and device of an array."""
    if type(X) is np.ndarray:  # (a source per partial_fit call)
        return _numpy_spec(X.dtype)
    return ComputeSpec(array_namespace(X), X.dtype, array_device(X))


@functools.lru_cache(maxsize=64)
def _numpy_spec(dtype: np.dtype) -> ComputeSpec:  # type: ignore[type-arg]
    return ComputeSpec(array_namespace(np.empty(0, dtype)), dtype,
                       array_device(np.empty(0, dtype)))
