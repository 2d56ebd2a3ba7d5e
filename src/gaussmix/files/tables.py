"""Reading and writing tables of numbers: CSV, NumPy ``.npy`` and Parquet.

The command line (and anything else that takes a file name) reads data with
:func:`read_data` and writes results with :func:`write_table`.

Formats, chosen by the file name's suffix:

- ``.csv`` (comma, or ``;``/tab when the first line has no comma) and ``.tsv``
  (tab): UTF-8 text. A first row is taken as a header when every field in it is
  text, or when some column holds text in the first row and a number in the
  second; otherwise columns are named ``x0, x1, ...``. Empty fields and ``NA``,
  ``N/A``, ``null``, ``None``, ``nan`` are missing values (NaN).
- ``.npy``: a 1-D or 2-D numeric array (columns ``x0, x1, ...``) or a
  structured array (columns named by its fields). Read without pickle.
- ``.parquet`` / ``.pq``: through pyarrow (``pip install 'gaussmix[io]'``);
  integer, float, decimal and boolean columns are numeric, nulls are NaN.

A column is chosen by its name or by its 0-based position (``"2"``). Every
problem with a file or a column raises :class:`DataError`, a ``ValueError``
whose message says what is wrong and how to fix it. Outputs are written to a
temporary file in the same directory and renamed into place, so a failure
never leaves a partial file behind.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .atomic import atomic_output

__all__ = [
    "DataError",
    "DataFileNotFoundError",
    "Dataset",
    "Table",
    "atomic_output",
    "check_output_path",
    "file_format",
    "read_data",
    "read_dataset",
    "read_table",
    "select_columns",
    "write_table",
]

PathLike = str | os.PathLike[str]

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
_FORMAT_LIST = ".csv, .tsv, .npy or .parquet"


class DataError(ValueError):
    """A data file or column cannot be used; the message says how to fix it."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """The data file does not exist (both a DataError and a FileNotFoundError)."""


def _quote(path: PathLike) -> str:
    return repr(os.fspath(path))


def file_format(path: PathLike) -> str:
    """``"csv"``, ``"tsv"``, ``"npy"`` or ``"parquet"``, from the file name's suffix.

    Raises
    ------
    DataError
        For any other suffix.
    """
    suffix = Path(os.fspath(path)).suffix.lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise DataError(
            f"{_quote(path)} has {what}; gaussmix reads and writes {_FORMAT_LIST} "
            "files: rename or convert the file"
        ) from None


# ---------------------------------------------------------------- tables


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
    """

    path: str
    names: list[str]
    columns: list[np.ndarray]
    numeric: list[bool]
    named: bool
    problems: dict[int, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def index(self, column: str | int, role: str = "column") -> int:
        """Position of a column given by name or by 0-based position."""
        key = str(column).strip()
        if key in self.names:
            return self.names.index(key)
        if key.lstrip("-").isdigit():
            position = int(key)
            if 0 <= position < len(self.names):
                return position
        raise DataError(
            f"{role} {key!r} not found in {_quote(self.path)}; its columns are "
            f"{_name_list(self.names)} (give a name or a 0-based position)"
        )

    def numeric_column(self, position: int, role: str = "column") -> np.ndarray:
        if not self.numeric[position]:
            raise DataError(
                f"{role} {self.names[position]!r} of {_quote(self.path)} is not "
                f"numeric ({self.problems.get(position, 'it holds text')}); choose "
                "numeric columns with --columns"
            )
        return self.columns[position]


def _name_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


@dataclass(frozen=True)
class Dataset:
    """The numeric matrix read from a file, ready for an estimator."""

    X: np.ndarray
    names: list[str]
    weights: np.ndarray | None
    named: bool
    skipped: list[str]
    path: str


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


def read_dataset(
    path: PathLike,
    columns: Sequence[str | int] | str | None = None,
    weights: str | int | None = None,
) -> Dataset:
    """Like :func:`read_data`, returning a :class:`Dataset` that also tells
    whether the names come from the file and which columns were skipped."""
    return select_columns(read_table(path), columns, weights)


def select_columns(
    table: Table,
    columns: Sequence[str | int] | str | None = None,
    weights: str | int | None = None,
) -> Dataset:
    """The numeric matrix of the chosen columns of a :class:`Table`
    (arguments as in :func:`read_data`)."""
    path = table.path
    if isinstance(columns, str):
        columns = [c for c in columns.split(",") if c.strip()]
    w_pos = None if weights is None else table.index(weights, "weights column")
    w = None if w_pos is None else table.numeric_column(w_pos, "weights column")
    if columns is None:
        chosen = [i for i, ok in enumerate(table.numeric) if ok and i != w_pos]
        if not chosen:
            besides = " besides the weights" if w_pos is not None else ""
            raise DataError(
                f"{_quote(path)} has no numeric column{besides} (its columns are "
                f"{_name_list(table.names)}); convert the data to numbers"
            )
    else:
        if not columns:
            raise DataError("no columns given; name at least one column")
        chosen = [table.index(c) for c in columns]
        _check_choice(table, chosen, w_pos)
    X = np.column_stack([table.numeric_column(i) for i in chosen]).astype(np.float64)
    skipped = [n for i, n in enumerate(table.names) if i not in chosen and i != w_pos]
    return Dataset(
        X=np.ascontiguousarray(X), names=[table.names[i] for i in chosen],
        weights=None if w is None else np.asarray(w, dtype=np.float64),
        named=table.named, skipped=skipped, path=table.path,
    )


def _check_choice(table: Table, chosen: list[int], w_pos: int | None) -> None:
    seen: set[int] = set()
    for i in chosen:
        if i in seen:
            raise DataError(f"column {table.names[i]!r} is listed twice")
        if i == w_pos:
            raise DataError(
                f"column {table.names[i]!r} is the weights column; it cannot also "
                "be a feature"
            )
        seen.add(i)


def read_data(
    path: PathLike,
    columns: Sequence[str | int] | str | None = None,
    weights: str | int | None = None,
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Read a numeric data matrix (and optional sample weights) from a file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv``, ``.npy`` or ``.parquet`` file.
    columns : sequence of str or int, or str, optional
        Feature columns, by name or 0-based position (a string is split on
        commas). None takes every numeric column except the weights.
    weights : str or int, optional
        A numeric column holding per-row sample weights; it is not a feature.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        Missing values are NaN.
    names : list of str
        Name of each column of X (``x0, x1, ...`` when the file has none).
    sample_weight : ndarray of shape (n_samples,) or None

    Raises
    ------
    DataError
        The file is missing, unreadable or empty; a column is missing or not
        numeric; no numeric column is left.
    ImportError
        For Parquet files when pyarrow is not installed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("a,b,name,w\\n1,2,x,1\\n3,4,y,2\\n")
    >>> X, names, w = read_data(path, weights="w")
    >>> X.tolist(), names, w.tolist()
    ([[1.0, 2.0], [3.0, 4.0]], ['a', 'b'], [1.0, 2.0])
    """
    data = read_dataset(path, columns, weights)
    return data.X, data.names, data.weights


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
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        numbered = [(reader.line_num, r) for r in reader if any(f.strip() for f in r)]
    except csv.Error as exc:
        raise DataError(f"{_quote(path)} is not valid CSV: {exc}") from None
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
    named = _has_header(rows)
    names = _header_names(path, rows[0]) if named else [f"x{i}" for i in range(width)]
    body, body_lines = (rows[1:], lines[1:]) if named else (rows, lines)
    table = Table(path=os.fspath(path), names=names, columns=[], numeric=[],
                  named=named)
    by_column = list(zip(*body, strict=True)) if body else [()] * width
    for i, values in enumerate(by_column):
        array, problem = _parse_column(list(values), body_lines)
        table.columns.append(array)
        table.numeric.append(problem is None)
        if problem is not None:
            table.problems[i] = problem
    return table


def _fields(n: int) -> str:
    return f"{n} field" + ("" if n == 1 else "s")


def _delimiter(text: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    first = text.split("\n", 1)[0]
    if "," in first:
        return ","
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
    return not _is_missing(value) and not _is_number(value)


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
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"{_quote(path)} has duplicate column name(s) {', '.join(duplicates)} "
            "in its header; rename them"
        )
    return names


def _parse_column(
    values: list[str], lines: list[int]
) -> tuple[np.ndarray, str | None]:
    """Float64 array (NaN for missing) or the raw strings and where the text is."""
    cleaned = ["nan" if _is_missing(v) else v.strip() for v in values]
    try:
        return np.array(cleaned, dtype=np.float64), None
    except ValueError:
        row = next(i for i, v in enumerate(cleaned) if not _is_number(v))
        problem = f"line {lines[row]} holds {values[row].strip()!r}"
        return np.array(values, dtype=object), problem


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
            f"{_quote(path)} is not a readable .npy file ({_one_line(exc)}); "
            "re-save it with numpy.save"
        ) from None
    except EOFError as exc:
        raise DataError(
            f"{_quote(path)} is truncated ({_one_line(exc)}); re-save it with "
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


def _read_parquet(path: PathLike) -> Table:
    pq = require("pyarrow.parquet", "io", "reading Parquet files")
    pa = require("pyarrow", "io", "reading Parquet files")
    try:
        arrow = pq.read_table(os.fspath(path))
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise
        raise DataError(
            f"{_quote(path)} is not a readable Parquet file ({_one_line(exc)}); "
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
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            table.columns.append(np.asarray(values, dtype=np.float64))
        else:
            table.columns.append(np.asarray(column.to_pylist(), dtype=object))
            table.problems[i] = f"its type is {kind}"
        table.numeric.append(numeric)
    return table


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------- writing


def check_output_path(
    path: PathLike, formats: Sequence[str] = ("csv", "tsv", "npy", "parquet")
) -> Path:
    """Check, before any work is done, that ``path`` can be written.

    The suffix must name one of ``formats`` and the directory must exist.

    Raises
    ------
    DataError
    """
    target = Path(os.fspath(path))
    suffix = target.suffix.lower()
    fmt = _SUFFIXES.get(suffix, suffix.lstrip("."))
    if fmt not in formats:
        allowed = ", ".join(f".{f}" for f in formats)
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise DataError(
            f"output {_quote(path)} has {what}; use one of {allowed}"
        )
    parent = target.parent
    if not parent.is_dir():
        raise DataError(
            f"cannot write {_quote(path)}: directory {_quote(parent)} does not "
            "exist; create it first"
        )
    if target.is_dir():
        raise DataError(f"cannot write {_quote(path)}: it is a directory")
    return target


def write_table(path: PathLike, columns: Mapping[str, np.ndarray]) -> Path:
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
    arrays = _checked_columns(columns)
    fmt = file_format(target)
    writers: dict[str, Callable[[Path, dict[str, np.ndarray]], None]] = {
        "csv": _write_csv,
        "tsv": lambda tmp, a: _write_csv(tmp, a, delimiter="\t"),
        "npy": _write_npy,
        "parquet": _write_parquet,
    }
    if fmt == "parquet":  # fail before creating anything
        require("pyarrow.parquet", "io", "writing Parquet files")
    with atomic_output(target) as tmp:
        writers[fmt](tmp, arrays)
    return target


def _checked_columns(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {str(name): np.asarray(values) for name, values in columns.items()}
    if not arrays:
        raise ValueError("write_table needs at least one column")
    lengths = {name: a.shape for name, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(
        {a.shape for a in arrays.values()}
    ) != 1:
        raise ValueError(f"columns must be 1-D and of equal length, got {lengths}")
    return arrays


def _write_csv(tmp: Path, arrays: dict[str, np.ndarray], delimiter: str = ",") -> None:
    with open(tmp, "x", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(list(arrays))
        writer.writerows(zip(*(a.tolist() for a in arrays.values()), strict=True))


def _write_npy(tmp: Path, arrays: dict[str, np.ndarray]) -> None:
    values = list(arrays.values())
    matrix = values[0] if len(values) == 1 else np.column_stack(values)
    with open(tmp, "xb") as fh:
        np.save(fh, matrix, allow_pickle=False)


def _write_parquet(tmp: Path, arrays: dict[str, np.ndarray]) -> None:
    pa = require("pyarrow", "io", "writing Parquet files")
    pq = require("pyarrow.parquet", "io", "writing Parquet files")
    pq.write_table(pa.table(arrays), os.fspath(tmp))
