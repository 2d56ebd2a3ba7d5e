"""``gaussmix impute``: fill the missing cells of a data file from a saved model.

Each row's missing values become their conditional expectation given the
row's observed values under the mixture (:meth:`gaussmix.GaussianMixture.impute`),
or with ``--draw`` one draw from their conditional distribution. The model's
columns are found in the file as ``predict`` finds them; large ``.npy`` and
Parquet files are read and written chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click
import numpy as np

from ..engine.incomplete.draws import row_draws
from ..files.streams import StreamedData
from ..files.tables import check_output_path
from .apply import _chunks, _loaded, _warn_blank_lines, _write_chunks, _write_or_print
from .inputs import check_not_input, model_data, n_rows, quiet_feature_names
from .options import SEED, TABLE_FORMATS, chunk_size_option, columns_option, model_and_data

__all__ = ["impute_command"]


@click.command("impute", epilog="""\b
Examples:
  gaussmix impute model.npz data.csv -o filled.csv
  gaussmix impute model.npz data.parquet --draw --seed 1 -o one-draw.parquet""")
@model_and_data
@click.option("--draw", is_flag=True,
              help="Fill each row's missing cells with one draw from their "
                   "conditional distribution (multiple imputation: run again with "
                   "other seeds) instead of their conditional expectation.")
@click.option("--seed", type=SEED, default=None,
              help="Random seed of --draw, for reproducible draws.")
@columns_option
@chunk_size_option
def impute_command(model_path: str, data: str, output: str | None, draw: bool,
                   seed: int | None, columns: str | None,
                   chunk_size: int | None) -> None:
    """Fill the missing cells of DATA from MODEL.

    Writes the model's feature columns of DATA, each empty (or NaN) cell
    replaced by its conditional expectation given the row's observed cells
    under the mixture (the best guess in squared error), or with --draw by a
    draw from its conditional distribution; observed cells are written
    unchanged, and a row with nothing observed gets the mixture's mean (or a
    draw from the mixture). Any saved model can impute, whatever its
    --missing setting at fit. Large .npy and Parquet files (over 64 MiB, or
    any with --chunk-size) are read and written chunk by chunk, in bounded
    memory.
    """
    if output is not None:
        check_output_path(output, TABLE_FORMATS)
    check_not_input(output, data)
    model = _loaded(model_path, chunk_size, "marginalize")  # empty cells: missing
    dataset = model_data(model, data, columns, chunk_size=chunk_size, stream=True)
    _warn_blank_lines("impute", dataset)
    # the draws of row i are the same whether the file is read whole or in chunks
    draws = row_draws(seed, 1, model.n_features_in_ + 1)[0] if draw else None
    # the model's column names for a file without names (a .npy file)
    fitted = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in (fitted if fitted is not None and not dataset.named
                              else dataset.names)]
    done = [0]  # rows imputed so far

    def filled(X: np.ndarray) -> dict[str, np.ndarray]:
        with quiet_feature_names():
            values = (model.impute(X) if draws is None
                      else model._drawn(X, draws, first_row=done[0]))
        done[0] += len(X)
        return dict(zip(names, values.T, strict=True))

    if isinstance(dataset, StreamedData):
        parts: Iterator[dict[str, Any]] = (filled(X) for X, _ in _chunks(model, dataset))
        _write_chunks(output, names, dataset.n_rows, parts)
    else:
        _write_or_print(output, filled(dataset.X))
    if output is not None:
        what = "one draw for" if draw else "conditional expectations of"
        click.echo(f"wrote {n_rows(dataset)} rows to {output} ({what} the missing cells)")
