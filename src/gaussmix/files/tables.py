"""Tables of numbers in files: CSV, NumPy ``.npy`` and Parquet.

The command line (and anything else that takes a file name) reads data with
:func:`read_data` (or :func:`read_table` then :func:`select_columns`), checks
the numbers with :func:`check_numbers` and writes results with
:func:`write_table` or, chunk by chunk, :func:`open_table_writer`. This module
turns a file's columns into the matrix an estimator takes; the readers live in
:mod:`gaussmix.files.readers` and the writers in :mod:`gaussmix.files.writers`
(all re-exported here).

Formats, chosen by the file name's suffix:

- ``.csv`` (comma, or ``;``/tab when the first line holds one) and ``.tsv``
  (tab): UTF-8 text. A first row is taken as a header when every field in it is
  text, or when some column holds text in the first row and a number in the
  second; otherwise columns are named ``x0, x1, ...``. Empty fields and ``NA``,
  ``N/A``, ``#N/A``, ``<NA>``, ``null``, ``None``, ``nan`` are missing values
  (NaN); a line of delimiters only (``,,``) is a row of missing values, and so
  is a blank line between the rows of a one-column file (the only way to write
  its empty cell); other blank lines are skipped (``Table.blank_lines`` lists
  those between rows); a delimiter that ends every line (header included)
  adds no column.
- ``.npy``: a 1-D or 2-D numeric array (columns ``x0, x1, ...``) or a
  structured array (columns named by its fields). Read without pickle.
- ``.parquet`` / ``.pq``: through pyarrow (``pip install 'gaussmix[io]'``);
  integer, float, decimal and boolean columns are numeric, nulls are NaN.

A column is chosen by its name or by its 0-based position (``"2"``). Every
problem with a file or a column raises :class:`DataError`, a ``ValueError``
whose message says what is wrong and how to fix it, and where in the file:
``line 5 of 'data.csv'`` (the header counted) for text files, the data row
counting from 1 for the others. Outputs are written to a
temporary file in the same directory and renamed into place, so a failure
never leaves a partial file behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .atomic import atomic_output
from .formats import DataError, DataFileNotFoundError, PathLike, file_format, first_non_finite
from .formats import quote as _quote
from .readers import Table, name_list, position, read_table
from .writers import TableWriter, check_output_path, open_table_writer, write_table

__all__ = [
    "DataError",
    "DataFileNotFoundError",
    "Dataset",
    "Table",
    "TableWriter",
    "atomic_output",
    "check_numbers",
    "check_output_path",
    "file_format",
    "open_table_writer",
    "read_data",
    "read_dataset",
    "read_table",
    "select_columns",
    "write_table",
]

_FIX = "fill in or remove those rows in the file, or leave the column out with --columns"


@dataclass(frozen=True)
class Dataset:
    """The numeric matrix read from a file, ready for an estimator.

    ``lines`` holds, for text files, the file line of each row, and
    ``blank_lines`` the skipped blank lines between rows (see :class:`Table`);
    ``weights_name`` the weights column's name.
    """

    X: np.ndarray
    names: list[str]
    weights: np.ndarray | None
    named: bool
    skipped: list[str]
    path: str
    lines: np.ndarray | None = None
    weights_name: str | None = None
    blank_lines: list[int] = field(default_factory=list)

    def where(self, row: int) -> str:
        """``"line 5 of 'data.csv'"`` or ``"data row 4 (counting from 1) of ..."``."""
        return position(self.path, self.lines, row)


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
            first = next(iter(table.problems.values()), None)
            raise DataError(
                f"{_quote(path)} has no numeric column{besides} (its columns are "
                f"{name_list(table.names)}{'; ' + first if first else ''}); convert "
                "the data to numbers"
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
        named=table.named, skipped=skipped, path=table.path, lines=table.lines,
        weights_name=None if w_pos is None else table.names[w_pos],
        blank_lines=table.blank_lines,
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


# ---------------------------------------------------------------- checks


def check_numbers(data: Dataset, *, allow_missing: bool = False) -> None:
    """Check that every value is finite and the weights usable, naming file positions.

    The estimators check the same and more, but speak of 0-based rows of an
    array; these messages name the file line (text files) or the data row
    counting from 1, and the column.

    Raises
    ------
    DataError
        A NaN (unless ``allow_missing``) or infinite value in ``X``, or either
        in the weights; a negative weight;
        weights that are all zero.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("a,b\\n1,2\\n3,\\n")
    >>> check_numbers(read_dataset(path))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gaussmix.files.formats.DataError: line 3 of '...d.csv', column 'b', is missing (NaN)...
    """
    X = np.where(np.isnan(data.X), 0.0, data.X) if allow_missing else data.X
    _check_finite(data, X, [f"column {name!r}" for name in data.names])
    if data.weights is None:
        return
    role = f"weights column {data.weights_name or ''!r}"
    _check_finite(data, data.weights[:, None], [role])
    negative = np.flatnonzero(data.weights < 0)
    if negative.size:
        row = int(negative[0])
        raise DataError(
            f"{role} has {negative.size} negative value(s); the first is "
            f"{float(data.weights[row])!r} at {data.where(row)}; weights must be >= 0"
        )
    if not data.weights.sum() > 0:
        raise DataError(
            f"{role} of {_quote(data.path)} is all zeros; at least one row needs a "
            "positive weight"
        )


def _check_finite(data: Dataset, X: np.ndarray, labels: list[str]) -> None:
    """Raise for the first NaN/inf of ``X`` (2-D), ``labels`` naming its columns."""
    bad = first_non_finite(X)
    if bad is None:
        return
    row, col, what = bad
    n_bad = int(X.size - np.count_nonzero(np.isfinite(X)))
    others = f"; {n_bad} such values in all" if n_bad > 1 else ""
    fix = _FIX + (" (or treat them as missing at random with --missing marginalize)"
                  if "NaN" in what and labels[0].startswith("column") else "")
    raise DataError(f"{data.where(row)}, {labels[col]}, is {what}{others}; {fix}")
