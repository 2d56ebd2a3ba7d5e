"""What the table readers and writers share: file formats by suffix and the error type.

:mod:`gaussmix.files.readers` and :mod:`gaussmix.files.writers` both import this
module and nothing of each other; :mod:`gaussmix.files.tables` gathers them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["SUFFIXES", "DataError", "DataFileNotFoundError", "file_format"]

PathLike = str | os.PathLike[str]

#: File name suffix -> format.
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FORMAT_LIST = ".csv, .tsv, .npy or .parquet"


class DataError(ValueError):
    """A data file or column cannot be used; the message says how to fix it."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """The data file does not exist (both a DataError and a FileNotFoundError)."""


def quote(path: PathLike) -> str:
    """A path as it appears in messages: ``'data.csv'``."""
    return repr(os.fspath(path))


def one_line(exc: BaseException) -> str:
    """An exception's message with its whitespace runs (newlines too) made single spaces."""
    return " ".join(str(exc).split())


def file_format(path: PathLike) -> str:
    """``"csv"``, ``"tsv"``, ``"npy"`` or ``"parquet"``, from the file name's suffix.

    Raises
    ------
    DataError
        For any other suffix.

    Examples
    --------
    >>> file_format("data.PQ")
    'parquet'
    """
    suffix = Path(os.fspath(path)).suffix.lower()
    try:
        return SUFFIXES[suffix]
    except KeyError:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise DataError(
            f"{quote(path)} has {what}; gaussmix reads and writes {FORMAT_LIST} "
            "files: rename or convert the file"
        ) from None


def first_non_finite(X: np.ndarray) -> tuple[int, int, str] | None:
    """(row, column, what) of the first NaN/inf of a 2-D array, or None.

    ``what`` reads "missing (NaN)" or "infinite (inf)" for messages.
    """
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(X)
    if finite.all():
        return None
    row, col = (int(i) for i in np.argwhere(~finite)[0])
    value = float(X[row, col])
    return row, col, "missing (NaN)" if np.isnan(value) else f"infinite ({value!r})"


def refuse_empty_rows(missing: np.ndarray, where: Callable[[int], str]) -> None:
    """Raise :class:`DataError` for rows of ``missing`` (a 2-D mask, True
    where a value is missing) with every feature missing, naming the first by
    ``where(row)`` (its file position): such rows cannot be fitted."""
    empty = np.flatnonzero(missing.all(axis=1))
    if empty.size:
        others = f" (and {empty.size - 1} other row(s))" if empty.size > 1 else ""
        raise DataError(
            f"{where(int(empty[0]))}{others} has every feature missing; such rows "
            "tell nothing about the mixture: delete them to fit (predict and score "
            "accept them)"
        )
