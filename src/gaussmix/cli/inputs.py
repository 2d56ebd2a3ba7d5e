"""What the commands read and check before any work: models, data files, output paths.

Every check here raises :class:`~gaussmix.files.tables.DataError` with a
message in command-line terms (file lines, option names), which the group in
:mod:`gaussmix.cli.app` prints as one line with exit status 2.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console

from ..files.formats import refuse_empty_rows
from ..files.model import model_file_path
from ..files.readers import name_list, separated_numbers
from ..files.streams import StreamedData, file_header, open_rows, should_stream
from ..files.tables import (
    DataError,
    Dataset,
    Table,
    check_numbers,
    read_table,
    select_columns,
)
from ..mixture import GaussianMixture

__all__ = [
    "Data", "check_not_input", "load_model", "model_data", "model_output", "n_rows",
    "quiet_feature_names", "read_dataset_for_fit", "stderr", "stdout", "warn",
]

#: What the commands read: a whole table in memory, or a file read chunk by chunk.
Data = Dataset | StreamedData


def n_rows(data: Data) -> int:
    """Rows of the data, read or not."""
    return data.n_rows if isinstance(data, StreamedData) else len(data.X)


_NAMES_WARNING = "X does not have valid feature names"


def warn(command: str, message: str) -> None:
    """``gaussmix <command>: warning: <message>`` on standard error."""
    click.echo(f"gaussmix {command}: warning: {message}", err=True)


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def quiet_feature_names() -> Iterator[None]:
    """Arrays from files carry no names; scikit-learn would warn about that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NAMES_WARNING)
        yield


def model_output(path: str) -> Path:
    """Where a model will be written ('.npz' appended), checked before any work."""
    target = model_file_path(path)
    if not target.parent.is_dir():
        raise DataError(
            f"cannot write model {os.fspath(target)!r}: directory "
            f"{os.fspath(target.parent)!r} does not exist; create it first"
        )
    if target.is_dir():
        raise DataError(
            f"cannot write model {os.fspath(target)!r}: it is a directory; choose "
            "a file name with -o"
        )
    return target


def check_not_input(output: str | None, data: str) -> None:
    """Refuse an output that is the data file itself: writing it would replace
    the user's data with labels or log densities."""
    if output is None or not (os.path.exists(output) and os.path.exists(data)):
        return
    if os.path.samefile(output, data):
        raise DataError(
            f"output {output!r} is the data file {data!r}; writing it would replace "
            "the data: choose another file with -o"
        )


def load_model(path: str) -> GaussianMixture:
    """Load a model file; ``model`` also finds ``model.npz``.

    The commands compute with NumPy in float64 (they have no ``--device``), so
    a model saved with ``device="cuda"`` is used without it: on a machine
    without a GPU it would fail, and on one it would compute in float32.
    """
    from ..files.model import load_model as _load

    if not os.path.exists(path) and model_file_path(path).exists():
        path = os.fspath(model_file_path(path))
    if not os.path.exists(path):
        raise DataError(
            f"model file {path!r} does not exist; create one with "
            f"'gaussmix fit DATA -k K -o {path}'"
        )
    model = _load(path)
    model.set_params(device=None)
    return model


def read_dataset_for_fit(path: str, columns: str | None, weights: str | None,
                         command: str = "fit", chunk_size: int | None = None,
                         stream: bool = True, missing: str = "raise",
                         spill: bool = True) -> Data:
    """Read DATA for fitting, telling the user about skipped text columns.

    Large ``.npy`` and Parquet files (or any, with ``chunk_size``) are opened
    to be read chunk by chunk (see :func:`gaussmix.files.streams.should_stream`);
    ``spill`` keeps a streamed Parquet file's rows in a scratch file after the
    first pass.
    """
    data: Data
    table: Table | None = None
    if stream and should_stream(path, chunk_size):
        data = open_rows(path, columns, weights, chunk_size, spill)
    else:
        table = read_table(path)
        chosen: str | list[str] | None = columns
        if columns is None:
            _refuse_separated_numbers(table)
            chosen = _without_row_index(command, table, weights)
        data = select_columns(table, chosen, weights)
    text = [n for n in data.skipped if table is None or not _row_index(table)
            or n != table.names[0]]
    if text and columns is None:
        warn(command, f"ignoring non-numeric column(s) {_skipped(text, table)}")
    if isinstance(data, Dataset):
        check_numbers(data, allow_missing=missing == "marginalize")
        _refuse_empty_rows(data)
    return data


def _row_index(table: Table) -> bool:
    """Whether the first column is a row index as pandas' ``to_csv`` writes it:
    no name in the header, distinct whole numbers."""
    if not (table.named and len(table.names) > 1 and table.names[0] == "unnamed_0"
            and table.numeric[0]):
        return False
    first = table.columns[0]
    return bool(np.all(np.isfinite(first)) and np.all(first == np.round(first))
                and len(np.unique(first)) == len(first))


def _without_row_index(command: str, table: Table, weights: str | None
                       ) -> list[str] | None:
    """The numeric columns but a row index (see :func:`_row_index`) and the
    weights, or None (all numeric columns) when the file has no row index."""
    if not _row_index(table):
        return None
    w_pos = None if weights is None else table.index(weights, "weights column")
    warn(command, f"ignoring the first column of {table.path!r}: it has no name "
                  "and holds distinct whole numbers, a row index (as pandas' to_csv "
                  "writes); choose it with --columns to fit it")
    return [n for i, n in enumerate(table.names)
            if i > 0 and table.numeric[i] and i != w_pos]


def _refuse_empty_rows(data: Dataset) -> None:
    """Rows with every feature missing, by file line: the estimator refuses
    them too, but names 0-based rows of an array."""
    refuse_empty_rows(np.isnan(data.X), data.where)


def _refuse_separated_numbers(table: Table) -> None:
    """Refuse to fit without a column of numbers that only separators hide:
    skipping it would fit the other columns as if it were text."""
    bad = [i for i, numeric in enumerate(table.numeric)
           if not numeric and separated_numbers(table.columns[i])]
    if bad:
        raise DataError(
            f"column(s) {name_list([table.names[i] for i in bad])} of "
            f"{table.path!r} are not numeric ({table.problems[bad[0]]}); gaussmix reads "
            "numbers like 1234.5: save the file with '.' as decimal separator and "
            "no thousands separators, or leave the column(s) out with --columns"
        )


def _skipped(names: list[str], table: Table | None) -> str:
    """The skipped columns, each with its first non-number when known, so that
    a typo that drops a numeric column can be found: ``b (line 9 holds '1,5')``."""
    problems = {} if table is None else {
        table.names[i]: problem for i, problem in table.problems.items()}
    return ", ".join(f"{n} ({problems[n]})" if n in problems else n for n in names)


def model_data(model: Any, path: str, columns: str | None = None,
               weights: str | None = None, chunk_size: int | None = None,
               stream: bool = False) -> Data:
    """The columns of a data file that a fitted model expects.

    Without ``columns``, a model fitted on named columns takes those columns
    by name, and a file with column names that lacks some of them is an error
    (as a DataFrame with other column names is for the Python API); a file
    without names (a ``.npy`` array, a CSV without header) gives its numeric
    columns in order. A model fitted on unnamed columns takes ``x0, x1, ...``
    (the names ``gaussmix sample`` writes) when the file has them, else the
    numeric columns in order. ``--columns`` chooses columns whatever their
    names. The number of columns must match the model. With ``stream``, large
    ``.npy`` and Parquet files are opened to be read chunk by chunk.
    """
    marginalize = getattr(model, "missing", "raise") == "marginalize"
    streamed = stream and should_stream(path, chunk_size)
    table = file_header(path) if streamed else read_table(path)
    fitted_names = getattr(model, "feature_names_in_", None)
    expected = int(model.n_features_in_)
    chosen = (_columns_by_name(table, fitted_names, expected) if columns is None
              else columns)
    data: Data = (open_rows(path, chosen, weights, chunk_size) if streamed
                  else select_columns(table, chosen, weights))
    if len(data.names) != expected:
        fitted = (f" ({', '.join(map(str, fitted_names))})"
                  if fitted_names is not None else "")
        raise DataError(
            f"{path!r} gives {len(data.names)} feature columns "
            f"({', '.join(data.names)}) but the model was fitted on "
            f"{expected}{fitted}; choose {expected} columns with --columns"
        )
    if columns is not None and fitted_names is not None and table.named:
        _check_order(path, data.names, [str(n) for n in fitted_names])
    if isinstance(data, Dataset):
        check_numbers(data, allow_missing=marginalize)
    return data


def _check_order(path: str, chosen: list[str], fitted: list[str]) -> None:
    """Refuse ``--columns`` that put a column of the model's name at another
    of its features: the model would apply one feature's parameters to another."""
    for i, (name, expected) in enumerate(zip(chosen, fitted, strict=True)):
        if name != expected and name in fitted:
            raise DataError(
                f"--columns puts column {name!r} of {path!r} where the model expects "
                f"{expected!r} (feature {i + 1}); the model was fitted on "
                f"{name_list(fitted)}: give them in that order, or leave out "
                "--columns to find them by name"
            )


def _columns_by_name(table: Table, fitted_names: Any, expected: int) -> list[str] | None:
    """The model's columns in the file, by name; None for 'numeric columns in order'."""
    wanted = ([str(n) for n in fitted_names] if fitted_names is not None
              else [f"x{i}" for i in range(expected)])
    if not table.named:
        return None
    missing = [n for n in wanted if n not in table.names]
    if not missing:
        return wanted  # a list: names may hold commas
    if fitted_names is None:
        return None
    raise DataError(
        f"{table.path!r} has no column(s) {name_list(missing)} of the model: the "
        f"model was fitted on columns {name_list(wanted)}, the file has "
        f"{name_list(table.names)}; rename the file's columns, or choose "
        f"{expected} columns with --columns"
    )
