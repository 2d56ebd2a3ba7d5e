"""Data sources that read files larger than memory: Parquet and Zarr.

Both follow the protocol of :mod:`gaussmix.engine.sources` (the engine never
imports pyarrow or zarr): they know their rows and features without reading
the data, and each pass reads the file again, one chunk at a time, so that
memory holds one chunk (for Parquet, at most one row group being decoded)
whatever the size of the file.

- :class:`ParquetSource`: numeric columns of a Parquet file, read in record
  batches (``pip install 'gaussmix[io]'``); sample weights from a column.
- :class:`ZarrSource`: a 2-D Zarr array (a path or an open array), read in
  whole Zarr chunks of rows (``pip install 'gaussmix[zarr]'``); sample
  weights as an array, as for :class:`~gaussmix.engine.sources.NpySource`.

Values are float64 unless every column is float32 (then float32, as for
``.npy`` files); NaN (a Parquet null) or infinity raises ``ValueError``
naming the rows, when the chunk holding it is read.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .._optional import require
from ..engine.chunk_checks import check_chunk, check_chunk_weights
from ..engine.covariance import ComputeSpec
from ..engine.sources import DEFAULT_CHUNK_ROWS, Chunk, check_chunk_size
from ..engine.xp import array_namespace
from .readers import check_unique_names, pandas_row_labels
from .spill import AUTO, SpilledReads, row_spill

__all__ = ["ParquetSource", "ZarrSource"]


def _numpy_spec(dtype: np.dtype) -> ComputeSpec:
    return ComputeSpec(array_namespace(np.empty(0, dtype)), dtype)


class ParquetSource(SpilledReads):
    """Rows of a Parquet file, read a record batch at a time with pyarrow.

    Parameters
    ----------
    path : str or os.PathLike
        A Parquet file.
    columns : sequence of str, optional
        Feature columns, in order. Default: every numeric (integer, float,
        decimal, boolean) column except the weights column.
    weights : str, optional
        A numeric column of non-negative per-row sample weights (not a feature).
    chunk_size : int, optional
        Rows per chunk; None lets the estimator choose for its problem.
    cache : "auto", bool, str or os.PathLike, default="auto"
        Spill the rows of a full pass to a row-major scratch file and map it
        in every later pass, instead of decoding the file again: each EM
        iteration then costs what a ``.npy`` file's does (see
        :mod:`gaussmix.files.spill`). ``"auto"``: every fit spills into the
        system's temporary folder (where it has room for the rows plus 1 GiB;
        else it warns and decodes the file in every pass), and removes the
        scratch file when it ends; predictions read the file. True (the
        temporary folder) or a folder: the source's first full pass spills,
        and the rows stay mapped for the source's life (for several fits).
        False: never. Takes disk space as large as the rows; memory stays
        bounded.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.parquet")
    >>> pq.write_table(pa.table({"a": np.arange(5.0), "b": np.ones(5),
    ...                          "w": np.full(5, 2.0)}), path)
    >>> source = ParquetSource(path, weights="w", chunk_size=2)
    >>> source.columns, source.n_rows, [len(c.X) for c in source.chunks()]
    (['a', 'b'], 5, [2, 2, 1])
    """

    reiterable = True
    in_memory = False

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str] | None = None,
                 weights: str | None = None, chunk_size: int | None = None,
                 cache: bool | str | os.PathLike[str] = AUTO) -> None:
        pa = require("pyarrow", "io", "reading Parquet files")
        pq = require("pyarrow.parquet", "io", "reading Parquet files")
        self.path = os.fspath(path)
        if isinstance(columns, str):
            raise TypeError(f"columns must be a list of column names, e.g. "
                            f"[{columns!r}], not a string.")
        # memory-mapped, not pre-buffered: pre-buffering keeps every column chunk
        # read so far in private memory (a whole file's worth per pass)
        self._file = _parquet_file(pa, pq, self.path)
        schema = self._file.schema_arrow
        names = list(schema.names)
        check_unique_names(self.path, names)  # else pyarrow's KeyError when read
        if columns is not None and len(set(columns)) < len(columns):
            twice = sorted({c for c in columns if list(columns).count(c) > 1})
            raise ValueError(f"columns lists {', '.join(map(repr, twice))} more than "
                             "once; give each feature column once.")

        def numeric(name: str) -> bool:
            kind = schema.field(name).type
            return any(test(kind) for test in (
                pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal,
                pa.types.is_boolean))

        for name in [*(columns or []), *([weights] if weights is not None else [])]:
            if name not in names:
                raise ValueError(f"{self.path!r} has no column {name!r}; its columns "
                                 f"are {', '.join(names)}.")
            if not numeric(name):
                raise ValueError(f"column {name!r} of {self.path!r} is not numeric "
                                 f"(its type is {schema.field(name).type}).")
        if columns is None:  # not a pandas row index: row labels, not data
            labels = set(pandas_row_labels(schema))
            columns = [n for n in names
                       if numeric(n) and n != weights and n not in labels]
        self.columns = list(columns)
        if not self.columns:
            raise ValueError(f"{self.path!r} has no numeric feature column.")
        if weights in self.columns:
            raise ValueError(f"column {weights!r} is the weights column; it cannot "
                             "also be a feature.")
        self.weights = weights
        float32 = all(schema.field(n).type == pa.float32() for n in self.columns)
        self.dtype = np.dtype(np.float32 if float32 else np.float64)
        self.n_rows = int(self._file.metadata.num_rows)
        self.n_features = len(self.columns)
        # None: the estimator's chunk size for its problem (see auto_chunk_size)
        self.chunk_size = check_chunk_size(chunk_size)
        self.spec = _numpy_spec(self.dtype)
        self._pa, self._pq = pa, pq
        self._readers = threading.local()
        self._cache, self._spill = cache, row_spill(cache, self.n_features, self.dtype,
                                                     self.n_rows)

    @property
    def n_chunks(self) -> int | None:
        return None  # batches end at row-group ends too

    def batches(self, row_groups: Sequence[int] | None = None, file: Any = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Rows and weights of each record batch (of the given row groups, or
        all), unchecked (nulls are NaN)."""
        size = self.chunk_size or DEFAULT_CHUNK_ROWS
        wanted = self.columns + ([self.weights] if self.weights is not None else [])
        for batch in (file or self._file).iter_batches(
                batch_size=size, row_groups=row_groups, columns=wanted, use_threads=False):
            n = batch.num_rows
            if n == 0:
                continue
            # columns filled as rows of a (d, n) array (contiguous writes), then
            # transposed once: several times faster than filling strided columns
            columns = np.empty((self.n_features, n), dtype=self.dtype)
            for j in range(self.n_features):
                columns[j] = self._values(batch.column(j), self.dtype)
            w = (None if self.weights is None else
                 self._values(batch.column(self.n_features), np.dtype(np.float64)))
            yield np.ascontiguousarray(columns.T), w

    def row_groups(self) -> list[tuple[int, int]]:
        """(index, first row) of each row group."""
        groups, start = [], 0
        for i in range(self._file.metadata.num_row_groups):
            groups.append((i, start))
            start += self._file.metadata.row_group(i).num_rows
        return groups

    def group_batches(self, index: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """:meth:`batches` of one row group, with this thread's reader (safe to
        call from several threads at once)."""
        return self.batches([index], self._thread_file())

    def _reads(self) -> list[Callable[[], Iterable[Chunk]]]:
        """One read per row group (:class:`~gaussmix.files.spill.SpilledReads`)."""
        return [functools.partial(self._read_group, i, start)
                for i, start in self.row_groups()]

    def _read_group(self, index: int, start: int) -> Iterator[Chunk]:
        for X, w in self.group_batches(index):
            yield self._checked(X, w, start)
            start += len(X)

    def _thread_file(self) -> Any:
        """This thread's reader of the file, opened once: pyarrow's readers are
        not shared across threads, and a reader opened per read would map the
        file anew and fault its pages in again at every pass (a third more
        CPU per pass, measured)."""
        file = getattr(self._readers, "file", None)
        if file is None:
            file = self._readers.file = self._pq.ParquetFile(
                self.path, memory_map=True, pre_buffer=False,
                metadata=self._file.metadata)
        return file

    def _checked(self, X: np.ndarray, w: np.ndarray | None, start: int) -> Chunk:
        n = len(X)
        where = f"rows {start}..{start + n - 1} of {self.path!r}"
        return Chunk(check_chunk(X, self.n_features, where, self.missing),
                     None if w is None else check_chunk_weights(
                         w, n, f"{where} (column {self.weights!r})"))

    def _values(self, column: Any, dtype: np.dtype) -> np.ndarray:
        pa = self._pa
        target = pa.float32() if dtype == np.float32 else pa.float64()
        if column.type != target:
            # safe=False: integers beyond 2**53 round to the nearest float, as
            # numpy's astype does for .npy files (pyarrow's safe cast refuses them)
            column = column.cast(target, safe=False)
        # nulls become NaN: errors, or missing values (see check_chunk)
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _parquet_file(pa: Any, pq: Any, path: str) -> Any:
    """The Parquet file opened for reading; one that is not a Parquet file
    (truncated, corrupt, another format) raises ValueError naming it."""
    try:
        return pq.ParquetFile(path, memory_map=True, pre_buffer=False)
    except pa.ArrowInvalid as error:
        raise ValueError(f"{path!r} is not a readable Parquet file ({error}); check "
                         "that it was written completely.") from error


class ZarrSource(SpilledReads):
    """Rows of a 2-D Zarr array, read in whole Zarr chunks of rows.

    Parameters
    ----------
    path_or_array : str, os.PathLike or zarr.Array
        A Zarr array (a directory store path, opened read-only) or an open
        array (anything with ``shape``, ``dtype``, ``chunks`` and slicing).
    chunk_size : int, optional
        Rows per chunk, rounded down to a multiple of the array's chunk rows
        (at least one Zarr chunk); None lets the estimator choose.
    sample_weight : array-like of shape (n_rows,), optional
        Non-negative per-row weights (one number per row, kept in memory).
    cache : "auto", bool, str or os.PathLike, default="auto"
        As for :class:`ParquetSource`: fits (``"auto"``) or the source's
        first pass (True, a folder) spill the rows to a scratch file that
        later passes map (worth it for compressed arrays, whose chunks are
        decompressed again at every pass).

    Examples
    --------
    >>> import numpy as np, os, tempfile, zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.zarr")
    >>> z = zarr.open_array(path, mode="w", shape=(5, 2), chunks=(2, 2), dtype="f8")
    >>> z[:] = np.arange(10.0).reshape(5, 2)
    >>> source = ZarrSource(path, chunk_size=3)
    >>> [len(c.X) for c in source.chunks()], source.n_features
    ([2, 2, 1], 2)
    """

    reiterable = True
    in_memory = False

    def __init__(self, path_or_array: Any, chunk_size: int | None = None,
                 sample_weight: Any = None,
                 cache: bool | str | os.PathLike[str] = AUTO) -> None:
        if isinstance(path_or_array, (str, os.PathLike)):
            zarr = require("zarr", "zarr", "reading Zarr arrays")
            self.path: str | None = os.fspath(path_or_array)
            self._rows = zarr.open(self.path, mode="r")
        else:
            self.path, self._rows = None, path_or_array
        _check_not_a_group(self._rows, self.path)
        shape, dtype = tuple(self._rows.shape), np.dtype(self._rows.dtype)
        if len(shape) != 2 or dtype.kind not in "fiub":
            raise ValueError(f"the Zarr array holds a {len(shape)}-D {dtype} array; "
                             "it must be a 2-D numeric array (rows x features).")
        float32 = dtype.kind == "f" and dtype.itemsize == 4  # either byte order
        self.dtype = np.dtype(np.float32 if float32 else np.float64)
        self.n_rows, self.n_features = map(int, shape)
        self.block_rows = max(1, int(getattr(self._rows, "chunks", shape)[0]))
        self.chunk_size = check_chunk_size(chunk_size)
        self.sample_weight = (None if sample_weight is None
                              else check_chunk_weights(sample_weight, self.n_rows,
                                                       "the Zarr array's rows"))
        self.spec = _numpy_spec(self.dtype)
        self._cache, self._spill = cache, row_spill(cache, self.n_features, self.dtype,
                                                     self.n_rows)

    @property
    def _rows_per_chunk(self) -> int:
        size = self.chunk_size or DEFAULT_CHUNK_ROWS
        return max(1, size // self.block_rows) * self.block_rows

    @property
    def n_chunks(self) -> int:
        return -(-self.n_rows // self._rows_per_chunk)

    def _reads(self) -> list[Callable[[], Iterable[Chunk]]]:
        """One read per chunk, decompressed in whichever thread runs it
        (:class:`~gaussmix.files.spill.SpilledReads`)."""
        size = self._rows_per_chunk
        return [functools.partial(self._read_rows, start, min(start + size, self.n_rows))
                for start in range(0, self.n_rows, size)]

    def _read_rows(self, start: int, stop: int) -> list[Chunk]:
        w = self.sample_weight
        name = repr(self.path) if self.path is not None else "the Zarr array"
        X = np.asarray(self._rows[start:stop], dtype=self.dtype)
        where = f"rows {start}..{stop - 1} of {name}"
        return [Chunk(check_chunk(X, self.n_features, where, self.missing),
                      None if w is None else w[start:stop])]


def _check_not_a_group(node: Any, path: str | None) -> None:
    """Raise for a Zarr group (which holds arrays) given where an array is
    expected, naming its arrays."""
    if hasattr(node, "shape") or not callable(getattr(node, "array_keys", None)):
        return
    arrays = sorted(node.array_keys())
    name = repr(path) if path is not None else "The Zarr node given"
    raise ValueError(f"{name} is a Zarr group, not an array; pass one of its arrays "
                     f"(it holds {', '.join(map(repr, arrays)) or 'none'}), e.g. "
                     "ZarrSource(zarr.open_group(path)['name']).")
