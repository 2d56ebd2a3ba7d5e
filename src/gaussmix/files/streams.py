"""Data files read chunk by chunk, for files larger than memory.

:func:`open_rows` opens a ``.npy`` (a 2-D numeric array) or Parquet file as a
data source (:class:`FileRows`) with the feature and weights columns chosen as
:func:`gaussmix.files.tables.select_columns` chooses them, without reading the
data. Each pass reads the file again one chunk at a time and checks the
chunk's values with the same messages as :func:`~gaussmix.files.tables.check_numbers`
(file position and column), so memory holds one chunk whatever the file size.

:func:`should_stream` says when the command line streams a file: ``.npy`` and
Parquet files larger than :data:`STREAM_BYTES`, or any of them when a chunk
size is given. Smaller files, CSV/TSV files and structured or 1-D ``.npy``
arrays are read whole as before.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.covariance import ComputeSpec
from ..engine.sources import DEFAULT_CHUNK_ROWS, Chunk
from ..engine.xp import array_namespace
from .formats import (
    DataError,
    DataFileNotFoundError,
    PathLike,
    file_format,
    first_non_finite,
    refuse_empty_rows,
)
from .formats import quote as _quote
from .readers import Table, check_unique_names, name_list, pandas_row_labels, position
from .spill import SpillsMissing, row_spill

__all__ = ["STREAM_BYTES", "FileRows", "StreamedData", "file_header", "open_rows",
           "should_stream"]

#: Files larger than this many bytes are streamed by the command line.
STREAM_BYTES = 64 * 2**20

_FIX = "fill in or remove those rows in the file, or leave the column out with --columns"


def should_stream(path: PathLike, chunk_size: int | None = None) -> bool:
    """Whether the command line reads ``path`` chunk by chunk (see module doc)."""
    try:
        fmt = file_format(path)
    except DataError:
        return False
    if fmt not in ("npy", "parquet") or not os.path.isfile(path):
        return False
    if chunk_size is None and os.path.getsize(path) <= STREAM_BYTES:
        return False
    if fmt == "npy":
        try:
            rows = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return False  # the whole-file reader explains what is wrong
        return rows.ndim == 2 and rows.dtype.names is None and rows.dtype.kind in "biuf"
    return True


def file_header(path: PathLike) -> Table:
    """A :class:`Table` of the file's column names and kinds, without its data."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileNotFoundError(f"data file {_quote(path)} does not exist; check "
                                    "the path")
    if file_format(path) == "npy":
        d = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[1])
        return Table(path=path, names=[f"x{i}" for i in range(d)], columns=[],
                     numeric=[True] * d, named=False)
    from .._optional import require

    pa = require("pyarrow", "io", "reading Parquet files")
    pq = require("pyarrow.parquet", "io", "reading Parquet files")
    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise
        raise DataError(f"{_quote(path)} is not a readable Parquet file; check that it "
                        "was written completely") from None
    check_unique_names(path, schema.names)
    index = set(pandas_row_labels(schema))
    fields = [f for f in schema if f.name not in index]
    numeric = [any(test(f.type) for test in (
        pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal,
        pa.types.is_boolean)) for f in fields]
    problems = {i: f"its type is {f.type}" for i, f in enumerate(fields)
                if not numeric[i]}
    return Table(path=path, names=[f.name for f in fields], columns=[],
                 numeric=numeric, named=True, problems=problems)


@dataclass(frozen=True)
class StreamedData:
    """A data file read chunk by chunk: the command line's counterpart of
    :class:`~gaussmix.files.tables.Dataset` (``X`` is a :class:`FileRows`
    source, which yields the weights too)."""

    X: FileRows
    names: list[str]
    named: bool
    skipped: list[str]
    path: str
    weights_name: str | None = None

    @property
    def n_rows(self) -> int:
        return self.X.n_rows

    @property
    def weighted(self) -> bool:
        return self.weights_name is not None


def open_rows(path: PathLike, columns: Sequence[str | int] | str | None = None,
              weights: str | int | None = None, chunk_size: int | None = None,
              spill: bool = False) -> StreamedData:
    """The chosen columns of a ``.npy`` or Parquet file as a chunked source;
    ``spill``: a Parquet file's rows are kept in a scratch file after the
    first pass (see :mod:`gaussmix.files.spill`)."""
    header = file_header(path)
    chosen, w_pos = _choose(header, columns, weights)
    skipped = [n for i, n in enumerate(header.names) if i not in chosen and i != w_pos]
    rows = FileRows(header, chosen, w_pos, chunk_size, spill)
    if rows.n_rows == 0:
        raise DataError(f"{_quote(header.path)} has no data rows")
    return StreamedData(X=rows, names=[header.names[i] for i in chosen],
                        named=header.named, skipped=skipped, path=header.path,
                        weights_name=None if w_pos is None else header.names[w_pos])


def _choose(header: Table, columns: Sequence[str | int] | str | None,
            weights: str | int | None) -> tuple[list[int], int | None]:
    if isinstance(columns, str):
        columns = [c for c in columns.split(",") if c.strip()]
    w_pos = None if weights is None else header.index(weights, "weights column")
    for i in [*([w_pos] if w_pos is not None else [])]:
        _numeric(header, i, "weights column")
    if columns is None:
        chosen = [i for i, ok in enumerate(header.numeric) if ok and i != w_pos]
        if not chosen:
            raise DataError(f"{_quote(header.path)} has no numeric column (its columns "
                            f"are {name_list(header.names)}); convert the data to "
                            "numbers")
        return chosen, w_pos
    if not columns:
        raise DataError("no columns given; name at least one column")
    chosen = [header.index(c) for c in columns]
    for i in chosen:
        if chosen.count(i) > 1:
            raise DataError(f"column {header.names[i]!r} is listed twice")
        if i == w_pos:
            raise DataError(f"column {header.names[i]!r} is the weights column; it "
                            "cannot also be a feature")
        _numeric(header, i, "column")
    return chosen, w_pos


def _numeric(header: Table, i: int, role: str) -> None:
    if not header.numeric[i]:
        raise DataError(f"{role} {header.names[i]!r} of {_quote(header.path)} is not "
                        f"numeric ({header.problems.get(i, 'it holds text')}); choose "
                        "numeric columns with --columns")


class FileRows(SpillsMissing):
    """Chosen columns of a ``.npy`` or Parquet file, read and checked chunk by chunk.

    A data source (see :mod:`gaussmix.engine.sources`): float64 rows, weights
    from the weights column. A NaN, infinite or negative value raises
    :class:`DataError` naming its data row and column (NaN in a feature column
    are missing values in the copy an estimator with
    ``missing='marginalize'`` reads, which refuses rows with nothing observed
    when fitting); weights that sum to zero raise at the end of the first
    pass. With ``spill``, a Parquet file's checked rows go to a scratch file
    in the first pass, which later passes map (:mod:`gaussmix.files.spill`).
    """

    reiterable = True
    in_memory = False

    def __init__(self, header: Table, chosen: list[int], w_pos: int | None,
                 chunk_size: int | None = None, spill: bool = False) -> None:
        self.path, self.header = header.path, header
        self.chosen, self.w_pos = chosen, w_pos
        self.names = [header.names[i] for i in chosen]
        self.n_features = len(chosen)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.dtype = np.dtype(np.float64)
        self.spec = ComputeSpec(array_namespace(np.empty(0, self.dtype)), self.dtype)
        if file_format(self.path) == "npy":
            self._npy: Any = np.load(self.path, mmap_mode="r", allow_pickle=False)
            self.n_rows = int(self._npy.shape[0])
            self._parquet: Any = None
        else:
            from .sources import ParquetSource

            self._npy = None
            self._parquet = ParquetSource(
                self.path, columns=self.names,
                weights=None if w_pos is None else header.names[w_pos])
            self.n_rows = self._parquet.n_rows
        self._spill = row_spill(spill and self._parquet is not None, self.n_features,
                                self.dtype, self.n_rows)

    @property
    def n_chunks(self) -> int | None:
        return None

    def _raw(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        if self._parquet is not None:
            # by row groups, the chunks of chunk_reads(): the same for any threads
            self._parquet.chunk_size = size
            for index, _ in self._parquet.row_groups():
                yield from self._parquet.group_batches(index)
            return
        for start in range(0, self.n_rows, size):
            block = self._npy[start:start + size]
            X = np.asarray(block[:, self.chosen] if self.n_features < block.shape[1]
                           else block, dtype=np.float64)
            w = (None if self.w_pos is None
                 else np.asarray(block[:, self.w_pos], dtype=np.float64))
            yield X, w

    def chunks(self) -> Iterator[Chunk]:
        if self._spill is None:
            return self._read()
        return self._spill.chunks(self._read, self.chunk_size)

    def chunk_reads(self) -> list[Callable[[], Iterator[Chunk]]] | None:
        """A Parquet file's row groups, read and checked in any thread (see
        :mod:`gaussmix.engine.reducers`); None for ``.npy`` files (mapped, no
        decoding), spilled rows, or a weights column (whose all-zero check
        needs the whole pass in one place)."""
        if self._parquet is None or self._spill is not None or self.w_pos is not None:
            return None
        self._parquet.chunk_size = self.chunk_size or DEFAULT_CHUNK_ROWS
        return [functools.partial(self._read_group, index, start)
                for index, start in self._parquet.row_groups()]

    def _read_group(self, index: int, start: int) -> Iterator[Chunk]:
        labels = [f"column {name!r}" for name in self.names]
        for X, _ in self._parquet.group_batches(index):
            self._check(X, start, labels, self.missing)
            yield Chunk(X, None)
            start += len(X)

    def _read(self) -> Iterator[Chunk]:
        start, total = 0, 0.0
        for X, w in self._raw(self.chunk_size or DEFAULT_CHUNK_ROWS):
            self._check(X, start, [f"column {name!r}" for name in self.names],
                        self.missing)
            if w is not None:
                self._check_weights(w, start)
                total += float(w.sum())
            yield Chunk(X, w)
            start += len(X)
        if self.w_pos is not None and not total > 0:
            raise DataError(f"weights column {self.header.names[self.w_pos]!r} of "
                            f"{_quote(self.path)} is all zeros; at least one row needs "
                            "a positive weight")

    def _check(self, X: np.ndarray, start: int, labels: list[str],
               missing: str | None = None) -> None:
        """Raise for a value that is not finite, except NaN with ``missing``
        (see :class:`~gaussmix.engine.sources.ReadsMissing`)."""
        nan = np.isnan(X) if missing else None
        bad = first_non_finite(X if nan is None else np.where(nan, 0.0, X))
        if bad is not None:
            row, col, what = bad
            hint = (" (or treat them as missing at random with --missing marginalize)"
                    if "NaN" in what and labels[col].startswith("column") else "")
            raise DataError(f"{position(self.path, None, start + row)}, {labels[col]}, "
                            f"is {what}; {_FIX}{hint}")
        if nan is not None and missing == "fit":
            refuse_empty_rows(nan, lambda row: position(self.path, None, start + row))

    def _check_weights(self, w: np.ndarray, start: int) -> None:
        role = f"weights column {self.header.names[self.w_pos or 0]!r}"
        self._check(w[:, None], start, [role])
        negative = np.flatnonzero(w < 0)
        if negative.size:
            row = int(negative[0])
            raise DataError(f"{role} has a negative value {float(w[row])!r} at "
                            f"{position(self.path, None, start + row)}; weights must "
                            "be >= 0")
