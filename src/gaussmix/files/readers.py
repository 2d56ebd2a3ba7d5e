"""Reading every column of a data file into a :class:`Table`: CSV/TSV, ``.npy``, Parquet.

:func:`read_table` picks the reader by the file name's suffix (see
:mod:`gaussmix.files.tables` for what each format may hold). A table keeps,
for text files, the line of the file each data row came from, so that later
messages can point at ``line 5 of 'data.csv'`` rather than a 0-based index.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._optional import require
from .formats import (
    DataError,
    DataFileNotFoundError,
    PathLike,
    file_format,
    one_line,
)
from .formats import quote as _quote

__all__ = ["Table", "check_unique_names", "name_list", "pandas_row_labels", "position",
           "read_table", "separated_numbers"]

# '#N/A' is what spreadsheets write for a missing cell, '<NA>' what pandas prints
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "#na", "<na>"})


@dataclass(frozen=True)
class Table:
    """All columns of a data file.

    Attributes
    ----------
    path : str
        Where the table was read from.
    names : list of str
        Column names (``x0, x1, ...`` when the file has none).
    columns : list of ndarray
        One 1-D array per column: float64 for numeric columns, anything else
        for the others.
    numeric : list of bool
        Whether each column is numeric.
    named : bool
        True when the names come from the file (a header, Parquet, a
        structured ``.npy``), False when they were made up.
    problems : dict of int to str
        For each non-numeric column, where its first non-number is.
    lines : ndarray of int or None
        For text files, the line of the file (1-based, header counted) each
        data row was read from; None for ``.npy`` and Parquet files.
    blank_lines : list of int
        Blank lines between data rows of a text file with two or more
        columns, which were skipped (so data rows and file lines differ). In a
        one-column file a blank line is a row with a missing value instead.
    """

    path: str
    names: list[str]
    columns: list[np.ndarray]
    numeric: list[bool]
    named: bool
    problems: dict[int, str] = field(default_factory=dict)
    lines: np.ndarray | None = None
    blank_lines: list[int] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def where(self, row: int) -> str:
        """Where data row ``row`` (0-based) is in the file: see :func:`position`."""
        return position(self.path, self.lines, row)

    def index(self, column: str | int, role: str = "column") -> int:
        """Position of a column given by name or by 0-based position."""
        if column in self.names:  # exact first: Parquet names may hold spaces
            return self.names.index(str(column))
        key = str(column).strip()
        if key in self.names:
            return self.names.index(key)
        if key.lstrip("-").isdigit():
            position = int(key)
            if 0 <= position < len(self.names):
                return position
        raise DataError(
            f"{role} {key!r} not found in {_quote(self.path)}; its columns are "
            f"{name_list(self.names)} (give a name or a 0-based position)"
        )

    def numeric_column(self, position: int, role: str = "column") -> np.ndarray:
        if not self.numeric[position]:
            raise DataError(
                f"{role} {self.names[position]!r} of {_quote(self.path)} is not "
                f"numeric ({self.problems.get(position, 'it holds text')}); choose "
                "numeric columns with --columns"
            )
        return self.columns[position]


def position(path: str, lines: np.ndarray | None, row: int) -> str:
    """Where data row ``row`` (0-based) of a file is, for messages.

    >>> position("d.csv", np.array([2, 3, 5]), 2)
    "line 5 of 'd.csv'"
    >>> position("d.npy", None, 2)
    "data row 3 (counting from 1) of 'd.npy'"
    """
    if lines is not None:
        return f"line {int(lines[row])} of {_quote(path)}"
    return f"data row {row + 1} (counting from 1) of {_quote(path)}"


def name_list(names: Sequence[str], limit: int = 12) -> str:
    """Names for a message: ``"a, b, c"``, cut after ``limit`` names."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def read_table(path: PathLike) -> Table:
    """Read every column of a ``.csv``, ``.tsv``, ``.npy`` or ``.parquet`` file.

    Raises
    ------
    DataFileNotFoundError
        If the file does not exist.
    DataError
        If it cannot be read, has an unknown suffix, or holds no rows.
    ImportError
        For Parquet files when pyarrow is not installed.
    """
    fmt = file_format(path)
    if not os.path.exists(path):
        raise DataFileNotFoundError(
            f"data file {_quote(path)} does not exist; check the path"
        )
    if os.path.isdir(path):
        raise DataError(f"{_quote(path)} is a directory, not a data file")
    readers: dict[str, Callable[[PathLike], Table]] = {
        "csv": _read_csv, "tsv": _read_csv, "npy": _read_npy, "parquet": _read_parquet,
    }
    try:
        table = readers[fmt](path)
    except PermissionError as exc:
        raise DataError(
            f"cannot read {_quote(path)}: permission denied; check its permissions"
        ) from exc
    if not table.columns:
        raise DataError(f"{_quote(path)} has no columns; it holds no data")
    if table.n_rows == 0:
        raise DataError(
            f"{_quote(path)} has no data rows"
            + (" (only a header)" if table.named and fmt in ("csv", "tsv") else "")
        )
    return table


# ---------------------------------------------------------------- CSV


def _read_csv(path: PathLike) -> Table:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{_quote(path)} is not a UTF-8 text CSV file ({exc.reason} at byte "
            f"{exc.start}); save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise DataError(f"{_quote(path)} is a binary file, not a text CSV file")
    delimiter = _delimiter(text, file_format(path))
    # newline="": lines end at \r\n, \n or a lone \r (old Mac exports)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        everything = [(reader.line_num, r) for r in reader]
    except csv.Error as exc:
        raise DataError(f"{_quote(path)} is not valid CSV: {exc}") from None
    numbered = [(n, r) for n, r in everything if not _is_blank(r)]
    if not numbered:
        raise DataError(f"{_quote(path)} is empty; it holds no header and no rows")
    lines, rows = [n for n, _ in numbered], [r for _, r in numbered]
    width = len(rows[0])
    for line, row in numbered[1:]:
        if len(row) != width:
            raise DataError(
                f"line {line} of {_quote(path)} has {_fields(len(row))} but the "
                f"first row has {width}; every row needs the same number of fields"
            )
    if width > 1 and all(not row[-1].strip() for row in rows):
        # every line ends with a delimiter (as some spreadsheets write): no column
        rows, width = [row[:-1] for row in rows], width - 1
    inner = [n for n, r in everything if _is_blank(r) and lines[0] < n < lines[-1]]
    if width == 1 and inner:
        # one column: a blank line is how an empty cell is written, a missing
        # value; skipping it would shift every later output row against the file
        lines, rows = _with_rows(lines, rows, inner, [""])
        inner = []
    named = _has_header(rows)
    names = _header_names(path, rows[0]) if named else [f"x{i}" for i in range(width)]
    body, body_lines = (rows[1:], lines[1:]) if named else (rows, lines)
    table = Table(path=os.fspath(path), names=names, columns=[], numeric=[],
                  named=named, lines=np.asarray(body_lines, dtype=np.int64),
                  blank_lines=inner)
    by_column = list(zip(*body, strict=True)) if body else [()] * width
    for i, values in enumerate(by_column):
        array, problem = _parse_column(list(values), body_lines)
        table.columns.append(array)
        table.numeric.append(problem is None)
        if problem is not None:
            table.problems[i] = problem
    return table


def _with_rows(lines: list[int], rows: list[list[str]], extra: list[int],
               row: list[str]) -> tuple[list[int], list[list[str]]]:
    """``lines``/``rows`` with ``row`` added at each line of ``extra``, in file order."""
    merged = sorted([*zip(lines, rows, strict=True), *((n, row) for n in extra)],
                    key=lambda pair: pair[0])
    return [n for n, _ in merged], [r for _, r in merged]


def _is_blank(row: list[str]) -> bool:
    """A blank line; a line of delimiters only (",,") is a row of missing values,
    kept so that outputs stay row-aligned with the file."""
    return len(row) <= 1 and not "".join(row).strip()


def _fields(n: int) -> str:
    return f"{n} field" + ("" if n == 1 else "s")


def _delimiter(text: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    first = re.split(r"\r\n?|\n", text, maxsplit=1)[0]
    # ';' or a tab before ',': files separated by them write decimal commas
    # (1,5;2,5), which split on ',' would become integer and fraction columns
    return next((d for d in (";", "\t") if d in first), ",")


def _is_missing(value: str) -> bool:
    return value.strip().lower() in _MISSING


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_text(value: str) -> bool:
    """Text, not a number: also not one written with separators ('1,5') nor
    numbers between spaces ('1 2'), so that a headerless file of them is not
    read as its own header."""
    words = value.split()
    return (not _is_missing(value) and not _is_number(value)
            and not _SEPARATED.fullmatch(value.strip())
            and not all(map(_is_number, words)))


# A number written with a decimal comma or thousands separators: 1,5  1.234,5  1'234
_SEPARATED = re.compile(r"[+-]?(\d+,\d+|\d{1,3}([,.'])\d{3}(\2\d{3})*([.,]\d+)?)")


def separated_numbers(values: Sequence[object] | np.ndarray) -> bool:
    """Whether a text column holds numbers written with a decimal comma or
    thousands separators, which are not read as numbers, and no other text.

    >>> separated_numbers(["1,5", "2", "NA"]), separated_numbers(["1,5", "x"])
    (True, False)
    """
    cells = [str(v).strip() for v in values]
    odd = [c for c in cells if not _is_missing(c) and not _is_number(c)]
    return bool(odd) and all(_SEPARATED.fullmatch(c) for c in odd)


def _has_header(rows: list[list[str]]) -> bool:
    first = rows[0]
    if len(rows) > 1 and any(
        _is_text(a) and _is_number(b) for a, b in zip(first, rows[1], strict=True)
    ):
        return True
    return any(map(_is_text, first)) and all(
        _is_text(a) or not a.strip() for a in first
    )


def _header_names(path: PathLike, header: list[str]) -> list[str]:
    names = [n.strip() or f"unnamed_{i}" for i, n in enumerate(header)]
    check_unique_names(path, names, "in its header")
    return names


def check_unique_names(path: PathLike, names: Sequence[str], where: str = "") -> None:
    """Raise :class:`DataError` when two columns share a name (a column is
    chosen by its name, and a model finds its columns by name)."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"{_quote(path)} has duplicate column name(s) {', '.join(duplicates)}"
            f"{' ' + where if where else ''}; rename them"
        )


def _parse_column(
    values: list[str], lines: list[int]
) -> tuple[np.ndarray, str | None]:
    """Float64 array (NaN for missing) or the raw strings and where the text is."""
    cleaned = ["nan" if _is_missing(v) else v.strip() for v in values]
    try:
        return np.array(cleaned, dtype=np.float64), None
    except ValueError:
        row = next(i for i, v in enumerate(cleaned) if not _is_number(v))
        problem = f"line {lines[row]} holds {values[row].strip()!r}" + _why(values)
        return np.array(values, dtype=object), problem


def _why(values: list[str]) -> str:
    """Why numbers in a text column were not read, when it looks like numbers."""
    if separated_numbers(values):
        return ", a number with a decimal comma or thousands separator"
    words = [v.split() for v in values if not _is_missing(v)]
    if all(len(w) > 1 and all(map(_is_number, w)) for w in words):
        return (", numbers separated by spaces: gaussmix reads fields separated "
                "by ',', ';' or tabs")
    return ""


# ---------------------------------------------------------------- NPY


def _read_npy(path: PathLike) -> Table:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        kind = "an .npz archive" if magic[:2] == b"PK" else "not a NumPy .npy file"
        raise DataError(
            f"{_quote(path)} is {kind} (no .npy header); save the array with "
            "numpy.save(path, X)"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{_quote(path)} holds Python objects, which gaussmix does not load "
                "(unsafe); save a numeric array instead"
            ) from None
        raise DataError(
            f"{_quote(path)} is not a readable .npy file ({one_line(exc)}); "
            "re-save it with numpy.save"
        ) from None
    except EOFError as exc:
        raise DataError(
            f"{_quote(path)} is truncated ({one_line(exc)}); re-save it with "
            "numpy.save"
        ) from None
    if array.dtype.names:
        return _structured_table(path, array)
    if array.ndim not in (1, 2):
        raise DataError(
            f"{_quote(path)} holds a {array.ndim}-D array of shape {array.shape}; "
            "save a 2-D array (rows x columns) instead"
        )
    matrix = array.reshape(len(array), 1) if array.ndim == 1 else array
    names = [f"x{i}" for i in range(matrix.shape[1])]
    return _array_table(path, names, list(matrix.T), named=False)


def _structured_table(path: PathLike, array: np.ndarray) -> Table:
    flat = array.reshape(-1)
    names = list(array.dtype.names or ())
    return _array_table(path, names, [flat[n] for n in names], named=True)


def _array_table(
    path: PathLike, names: list[str], columns: list[np.ndarray], named: bool
) -> Table:
    table = Table(path=os.fspath(path), names=names, columns=[], numeric=[],
                  named=named)
    for i, column in enumerate(columns):
        numeric = column.dtype.kind in "biuf"
        table.columns.append(column.astype(np.float64) if numeric else column)
        table.numeric.append(numeric)
        if not numeric:
            table.problems[i] = f"its dtype is {column.dtype}"
    return table


# ---------------------------------------------------------------- Parquet


def pandas_row_labels(schema: object) -> list[str]:
    """Columns of a Parquet schema that hold a pandas DataFrame's unnamed row
    index (``__index_level_0__``, written for any index but a plain range):
    row labels, not data, so the tables leave them out.

    Named index columns are kept: their name says what they hold.
    """
    meta = getattr(schema, "pandas_metadata", None) or {}
    return [c for c in meta.get("index_columns", [])
            if isinstance(c, str) and c.startswith("__index_level_")]


def _read_parquet(path: PathLike) -> Table:
    pq = require("pyarrow.parquet", "io", "reading Parquet files")
    pa = require("pyarrow", "io", "reading Parquet files")
    try:
        # pyarrow's own message for duplicate names reads like a corrupt file
        schema = pq.ParquetFile(os.fspath(path)).schema_arrow
        check_unique_names(path, schema.names)
        index = set(pandas_row_labels(schema))
        arrow = pq.read_table(os.fspath(path),
                              columns=[n for n in schema.names if n not in index])
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise
        raise DataError(
            f"{_quote(path)} is not a readable Parquet file ({one_line(exc)}); "
            "check that it was written completely"
        ) from None
    table = Table(path=os.fspath(path), names=list(arrow.column_names), columns=[],
                  numeric=[], named=True)
    for i, column in enumerate(arrow.columns):
        kind = column.type
        numeric = any(test(kind) for test in (
            pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal,
            pa.types.is_boolean,
        ))
        if numeric:
            # safe=False: integers beyond 2**53 round, as for .npy files
            values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            table.columns.append(np.asarray(values, dtype=np.float64))
        else:
            table.columns.append(np.asarray(column.to_pylist(), dtype=object))
            table.problems[i] = f"its type is {kind}"
        table.numeric.append(numeric)
    return table
