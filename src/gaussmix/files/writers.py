"""Writing tables of numbers: CSV/TSV, ``.npy`` and Parquet, whole or chunk by chunk.

:func:`write_table` writes named columns in one go; :func:`open_table_writer`
writes them chunk by chunk in bounded memory, for outputs larger than memory
(``gaussmix sample -n 1e9``): CSV/TSV rows are appended, a ``.npy`` header is
written for the announced number of rows and the chunks' bytes follow it, and
each Parquet chunk becomes a row group. Both write to a hidden temporary file
in the same directory and rename it into place when everything was written,
so a failure (or Ctrl-C) never leaves a partial file behind; an ``OSError``
while writing names the file asked for, not the temporary one.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .atomic import atomic_output
from .formats import SUFFIXES, DataError, PathLike, file_format, quote

__all__ = [
    "TableWriter",
    "check_free_space",
    "check_output_path",
    "estimated_size",
    "open_table_writer",
    "write_table",
]


def check_output_path(
    path: PathLike, formats: Sequence[str] = ("csv", "tsv", "npy", "parquet")
) -> Path:
    """Check, before any work is done, that ``path`` can be written.

    The suffix must name one of ``formats``, the directory must exist and
    ``path`` must not be a directory.

    Raises
    ------
    DataError
    """
    target = Path(os.fspath(path))
    suffix = target.suffix.lower()
    fmt = SUFFIXES.get(suffix, suffix.lstrip("."))
    if fmt not in formats:
        allowed = ", ".join(f".{f}" for f in formats)
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise DataError(f"output {quote(path)} has {what}; use one of {allowed}")
    parent = target.parent
    if not parent.is_dir():
        raise DataError(
            f"cannot write {quote(path)}: directory {quote(parent)} does not "
            "exist; create it first"
        )
    if target.is_dir():
        raise DataError(f"cannot write {quote(path)}: it is a directory")
    return target


# ---------------------------------------------------------------- sizes


def estimated_size(path: PathLike, n_rows: int, n_float: int, n_int: int = 0) -> int:
    """About how many bytes a table of random floats (and small integers) takes.

    Exact for ``.npy`` (float64); 8 bytes per float for Parquet (random
    doubles do not compress) and 17 characters per float in CSV/TSV (the
    shortest repr of a random double has 16 or 17 digits). Integer columns
    count 2 bytes a value in text and nothing in Parquet (long runs compress).

    Examples
    --------
    >>> estimated_size("s.npy", 1000, 3, 1)
    32128
    """
    fmt = file_format(path)
    if fmt == "npy":
        return 128 + 8 * n_rows * (n_float + n_int)
    if fmt == "parquet":
        return 8 * n_rows * n_float
    return n_rows * (17 * n_float + 2 * n_int)


def human_size(n_bytes: float) -> str:
    """``"10.9 TB"``: decimal units, three significant digits.

    >>> human_size(1.09e13), human_size(512)
    ('10.9 TB', '512 bytes')
    """
    value, unit = float(n_bytes), "bytes"
    for larger in ("kB", "MB", "GB", "TB", "PB", "EB"):
        if float(f"{value:.3g}") < 1000:  # 999.9 kB is shown as 1 MB
            break
        value, unit = value / 1000, larger
    return f"{int(value)} bytes" if unit == "bytes" else f"{value:.3g} {unit}"


def check_free_space(path: PathLike, n_bytes: int, fix: str) -> None:
    """Raise :class:`DataError` when ``n_bytes`` exceed the free space where ``path`` goes.

    ``fix`` ends the message (what the user can do).
    """
    parent = Path(os.fspath(path)).parent
    free = shutil.disk_usage(parent).free
    if n_bytes > free:
        raise DataError(
            f"{quote(path)} would take about {human_size(n_bytes)} but only "
            f"{human_size(free)} are free in {quote(parent)}; {fix}"
        )


# ---------------------------------------------------------------- writers


class TableWriter:
    """Writes named columns to an open file chunk by chunk (see :func:`open_table_writer`).

    Attributes
    ----------
    names : list of str
        The columns, in order; every chunk has exactly these.
    rows_written : int
    """

    def __init__(self, tmp: Path, names: Sequence[str], n_rows: int | None) -> None:
        self.tmp = tmp
        self.names = list(names)
        self.n_rows = n_rows
        self.rows_written = 0

    def write(self, columns: Mapping[str, Any]) -> None:
        """Append one chunk: a mapping of each name to a 1-D array, all of one length."""
        arrays = checked_columns(columns)
        if list(arrays) != self.names:
            raise ValueError(f"chunk columns {list(arrays)} are not {self.names}")
        n = len(next(iter(arrays.values())))
        if self.n_rows is not None and self.rows_written + n > self.n_rows:
            raise ValueError(f"more than the announced {self.n_rows} rows written")
        self._write(arrays)
        self.rows_written += n

    def close(self) -> None:
        """Finish the file; checks that the announced number of rows came."""
        if self.n_rows is not None and self.rows_written != self.n_rows:
            raise ValueError(
                f"{self.rows_written} rows written, {self.n_rows} announced"
            )
        self._finish()

    def abort(self) -> None:
        """Release the file after a failure (the file is then removed)."""

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


class _CsvWriter(TableWriter):
    def __init__(self, tmp: Path, names: Sequence[str], n_rows: int | None,
                 delimiter: str = ",") -> None:
        super().__init__(tmp, names, n_rows)
        self._fh = open(tmp, "x", encoding="utf-8", newline="")
        self._csv = csv.writer(self._fh, delimiter=delimiter, lineterminator="\n")
        self._csv.writerow(self.names)

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        self._csv.writerows(zip(*(a.tolist() for a in arrays.values()), strict=True))

    def _finish(self) -> None:
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()


class _TsvWriter(_CsvWriter):
    def __init__(self, tmp: Path, names: Sequence[str], n_rows: int | None) -> None:
        super().__init__(tmp, names, n_rows, delimiter="\t")


class _NpyWriter(TableWriter):
    """One column: a 1-D array; several: a 2-D array of their common dtype.

    The header, written with the first chunk, holds the announced number of
    rows; each chunk's bytes follow, so the file equals ``numpy.save`` of the
    whole array.
    """

    def __init__(self, tmp: Path, names: Sequence[str], n_rows: int | None) -> None:
        if n_rows is None:
            raise ValueError("a .npy file needs the number of rows before writing")
        super().__init__(tmp, names, n_rows)
        self._fh = open(tmp, "xb")
        self._dtype: np.dtype | None = None

    def _header(self, dtype: np.dtype) -> None:
        self._dtype = dtype
        n = int(self.n_rows or 0)
        shape = (n,) if len(self.names) == 1 else (n, len(self.names))
        header = {"descr": np.lib.format.dtype_to_descr(dtype),
                  "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._fh, header)

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        values = list(arrays.values())
        if self._dtype is None:
            self._header(np.result_type(*values))
        block = values[0] if len(values) == 1 else np.column_stack(values)
        self._fh.write(np.ascontiguousarray(block, dtype=self._dtype).data)

    def _finish(self) -> None:
        if self._dtype is None:
            self._header(np.dtype(np.float64))
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()


class _ParquetWriter(TableWriter):
    """Each chunk becomes one row group; the first chunk fixes the column types."""

    def __init__(self, tmp: Path, names: Sequence[str], n_rows: int | None) -> None:
        super().__init__(tmp, names, n_rows)
        self._pa = require("pyarrow", "io", "writing Parquet files")
        self._pq = require("pyarrow.parquet", "io", "writing Parquet files")
        self._writer: Any = None

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        table = self._pa.table(arrays)
        if self._writer is None:
            self._writer = self._pq.ParquetWriter(os.fspath(self.tmp), table.schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def _finish(self) -> None:
        if self._writer is None:
            empty = {n: np.zeros(0) for n in self.names}
            self._pq.write_table(self._pa.table(empty), os.fspath(self.tmp))
            return
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()


_WRITERS: dict[str, type[TableWriter]] = {
    "csv": _CsvWriter, "tsv": _TsvWriter, "npy": _NpyWriter, "parquet": _ParquetWriter,
}


@contextlib.contextmanager
def open_table_writer(
    path: PathLike, names: Sequence[str], n_rows: int | None = None
) -> Iterator[TableWriter]:
    """Write a table chunk by chunk; the file appears, complete, on leaving the block.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv``, ``.npy`` or ``.parquet`` file.
    names : sequence of str
        The columns, in order.
    n_rows : int, optional
        The total number of rows; required for ``.npy`` (its header comes
        first), checked for every format when given.

    Yields
    ------
    TableWriter
        Call its ``write(columns)`` once per chunk.

    Raises
    ------
    DataError
        The path cannot be written (see :func:`check_output_path`).
    OSError
        Writing failed (a full disk); it names ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.npy"
    >>> with open_table_writer(path, ["x", "k"], n_rows=4) as out:
    ...     for start in (0, 2):
    ...         out.write({"x": np.arange(start, start + 2) / 2, "k": np.zeros(2)})
    >>> np.load(path).tolist()
    [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.5, 0.0]]
    """
    target = check_output_path(path)
    kind = _WRITERS[file_format(target)]
    if kind is _ParquetWriter:  # fail before creating anything
        require("pyarrow.parquet", "io", "writing Parquet files")
    hidden: list[str] = []
    try:
        with atomic_output(target) as tmp:
            hidden.append(os.fspath(tmp))
            writer = kind(tmp, names, n_rows)
            try:
                yield writer
                writer.close()
            except BaseException:
                writer.abort()
                raise
    except OSError as exc:  # name the file asked for, not the hidden one
        if exc.errno is None or exc.filename not in (None, *hidden):
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(target)) from exc


def write_table(path: PathLike, columns: Mapping[str, Any]) -> Path:
    """Write named columns to a ``.csv``, ``.tsv``, ``.npy`` or ``.parquet`` file.

    The file is written to a temporary name and renamed into place, so a
    failure never leaves a partial file.

    Parameters
    ----------
    path : str or os.PathLike
    columns : mapping of str to array-like of shape (n_rows,)
        Columns in order. A ``.npy`` file gets a 1-D array for one column and a
        2-D array (columns in order, a common dtype) for several; names are
        not stored in it.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> _ = write_table(path, {"label": np.array([0, 1]), "p": np.array([0.5, 1.0])})
    >>> print(path.read_text().strip())
    label,p
    0,0.5
    1,1.0
    """
    target = check_output_path(path)
    arrays = checked_columns(columns)
    n_rows = len(next(iter(arrays.values())))
    with open_table_writer(target, list(arrays), n_rows) as writer:
        writer.write(arrays)
    return target


def checked_columns(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Columns as 1-D arrays of one length, keyed by ``str`` names."""
    arrays = {str(name): np.asarray(values) for name, values in columns.items()}
    if not arrays:
        raise ValueError("write_table needs at least one column")
    lengths = {name: a.shape for name, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(
        {a.shape for a in arrays.values()}
    ) != 1:
        raise ValueError(f"columns must be 1-D and of equal length, got {lengths}")
    return arrays
