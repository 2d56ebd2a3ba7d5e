"""Command-line options shared by several ``gaussmix`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..engine.covariance import COVARIANCE_TYPES as _REGISTRY
from ..validation import INIT_METHODS

COVARIANCE_TYPES = tuple(_REGISTRY)
#: Seeds numpy's RandomState takes (a negative or larger one failed after the
#: data was read, with a message that named no option).
SEED = click.IntRange(0, 2**32 - 1)
#: Output formats of tables (labels, responsibilities, log densities, samples).
TABLE_FORMATS = ("csv", "tsv", "npy", "parquet")

__all__ = [
    "COVARIANCE_TYPES", "INIT_METHODS", "SEED", "TABLE_FORMATS", "chunk_size_option",
    "columns_option", "em_options", "missing_option", "model_and_data", "progress_options",
]


def missing_option(default: str | None) -> Callable[[Callable[..., Any]], Any]:
    """--missing: 'marginalize' reads empty cells (NaN) as missing at random."""
    return click.option(
        "--missing", type=click.Choice(["raise", "marginalize"]), default=default,
        show_default=default is not None,
        help="'marginalize': empty cells (and NaN) are missing values, handled "
             "by exact EM on the observed entries; 'raise': they are an "
             "error." + (
                 "" if default else " Default: the model's setting."),
    )


def em_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--max-iter, --tol and --reg-covar, with GaussianMixture's defaults."""
    f = click.option("--reg-covar", type=click.FloatRange(min=0), default=1e-6,
                     show_default=True, help="Added to covariance diagonals.")(f)
    f = click.option("--tol", type=click.FloatRange(min=0), default=1e-3,
                     show_default=True,
                     help="Stop when the mean log-likelihood changes by less than "
                          "this.")(f)
    return click.option("--max-iter", type=click.IntRange(min=1), default=100,
                        show_default=True,
                        help="Most EM iterations per initialisation.")(f)


def model_and_data(f: Callable[..., Any]) -> Callable[..., Any]:
    """MODEL and DATA arguments and -o OUT (a table; CSV on stdout without it),
    for commands that write one row per data row."""
    f = click.option("-o", "--output", default=None, metavar="OUT",
                     help="Write to OUT (.csv, .tsv, .npy or .parquet); default: CSV "
                          "on stdout.")(f)
    f = click.argument("data", metavar="DATA")(f)
    return click.argument("model_path", metavar="MODEL")(f)


def columns_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--columns, for commands that take a saved model and a data file."""
    return click.option(
        "--columns", metavar="A,B,C", default=None,
        help="Comma-separated feature columns, by name or 0-based position. "
             "Default: all numeric columns (for a model: the columns it was "
             "fitted on, when the file has them).",
    )(f)


def progress_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--progress and -q/--quiet, for commands that run EM."""
    f = click.option("--progress", "force_progress", is_flag=True,
                     help="Show progress even when stderr is not a terminal "
                          "(one line per iteration).")(f)
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress display.")(f)


def spill_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--spill/--no-spill: keep a streamed Parquet file's rows in a scratch file."""
    return click.option(
        "--spill/--no-spill", default=True, show_default=True,
        help="For a streamed Parquet file: write its rows, as they are read in the "
             "first pass, to a scratch file in the temporary folder ($TMPDIR) and "
             "map that file in every later pass instead of decoding the Parquet "
             "file again (each iteration then costs what a .npy file's does; needs "
             "disk space as large as the rows in float64, else it warns and decodes "
             "every pass; the file is removed when the command ends).",
    )(f)


def chunk_size_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--chunk-size: rows per chunk; .npy and Parquet files are then streamed."""
    return click.option(
        "--chunk-size", type=click.IntRange(min=1), default=None, metavar="ROWS",
        help="Rows per chunk of EM and of reading. .npy and Parquet files larger "
             "than 64 MiB are read chunk by chunk (memory bounded by the chunk); "
             "with --chunk-size, any .npy or Parquet file is. Default: chosen "
             "for the problem.",
    )(f)
