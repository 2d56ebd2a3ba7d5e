"""``gaussmix predict``, ``score`` and ``plot``: apply a saved model to a data file.

The model's columns are found in the file by :func:`gaussmix.cli.inputs.model_data`
(by name, or in order for files without names, or by ``--columns``), and their
values checked with file positions before the model sees them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import click
import numpy as np

from ..engine.sources import Chunk
from ..files.streams import StreamedData
from ..files.tables import check_output_path, open_table_writer, write_table
from ..plotting import FIGURE_FORMATS
from .fit import criteria_of, information_criteria
from .inputs import (
    Data,
    check_not_input,
    load_model,
    model_data,
    n_rows,
    quiet_feature_names,
    warn,
)
from .options import (
    TABLE_FORMATS,
    chunk_size_option,
    columns_option,
    missing_option,
    model_and_data,
)

__all__ = ["plot_command", "predict_command", "score_command"]


@click.command("predict", epilog="""\b
Examples:
  gaussmix predict model.npz data.csv                 labels as CSV on stdout
  gaussmix predict model.npz data.csv -o labels.parquet
  gaussmix predict model.npz data.npy --proba -o resp.csv""")
@model_and_data
@click.option("--proba", is_flag=True,
              help="Write responsibilities (one column per component) instead of "
                   "labels.")
@columns_option
@chunk_size_option
@missing_option(None)
def predict_command(model_path: str, data: str, output: str | None, proba: bool,
                    columns: str | None, chunk_size: int | None,
                    missing: str | None) -> None:
    """Label each row of DATA with its most probable component of MODEL.

    Writes a column 'label' (0 to K-1), or with --proba columns 'prob_0' ...
    'prob_{K-1}' holding each row's posterior probabilities. Large .npy and
    Parquet files (over 64 MiB, or any with --chunk-size) are read and
    written chunk by chunk, in bounded memory.
    """
    if output is not None:
        check_output_path(output, TABLE_FORMATS)
    check_not_input(output, data)
    model = _loaded(model_path, chunk_size, missing)
    dataset = model_data(model, data, columns, chunk_size=chunk_size, stream=True)
    _warn_blank_lines("predict", dataset)

    def per_row(X: np.ndarray) -> dict[str, np.ndarray]:
        with quiet_feature_names():
            if proba:
                resp = model.predict_proba(X)
                return {f"prob_{j}": resp[:, j] for j in range(resp.shape[1])}
            return {"label": model.predict(X).astype(np.int64)}

    if isinstance(dataset, StreamedData):
        names = ([f"prob_{j}" for j in range(model.n_components)] if proba
                 else ["label"])
        _write_chunks(output, names, dataset.n_rows,
                      (per_row(X) for X, _ in _chunks(model, dataset)))
    else:
        _write_or_print(output, per_row(dataset.X))
    if output is not None:
        what = "responsibilities" if proba else "labels"
        click.echo(f"wrote {what} of {n_rows(dataset)} rows to {output}")


@click.command("score", epilog="""\b
Examples:
  gaussmix score model.npz test.csv
  gaussmix score model.npz test.parquet -o log_density.csv""")
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="Also write each row's log density (column 'log_density').")
@columns_option
@click.option("--weights", metavar="COLUMN", default=None,
              help="Column of per-row sample weights for the mean.")
@chunk_size_option
@missing_option(None)
def score_command(model_path: str, data: str, output: str | None,
                  columns: str | None, weights: str | None,
                  chunk_size: int | None, missing: str | None) -> None:
    """Mean log-likelihood of DATA under MODEL (and per-row log densities).

    Prints the (weighted) mean log-likelihood per row, its total, and the
    model's BIC and AIC on DATA. Large .npy and Parquet files (over 64 MiB,
    or any with --chunk-size) are read, and log densities written, chunk by
    chunk, in bounded memory.
    """
    if output is not None:
        check_output_path(output, TABLE_FORMATS)
    check_not_input(output, data)
    model = _loaded(model_path, chunk_size, missing)
    dataset = model_data(model, data, columns, weights, chunk_size=chunk_size,
                         stream=True)
    if output is not None:
        _warn_blank_lines("score", dataset)
    if isinstance(dataset, StreamedData):
        crit = _streamed_score(model, dataset, output)
    else:
        with quiet_feature_names():
            log_density = model.score_samples(dataset.X)
        crit = information_criteria(model, dataset)
        if output is not None:
            write_table(output, {"log_density": log_density})
    click.echo(f"mean log-likelihood: {crit['mean']:.10g} per row "
               f"({n_rows(dataset)} rows)")
    click.echo(f"total log-likelihood: {crit['total']:.10g}")
    click.echo(f"BIC: {crit['bic']:.10g}")
    click.echo(f"AIC: {crit['aic']:.10g}")
    if output is not None:
        click.echo(f"wrote log densities of {n_rows(dataset)} rows to {output}")


@click.command("plot", epilog="""\b
Examples:
  gaussmix plot model.npz data.csv -o mixture.png
  gaussmix plot model.npz data.csv --x alcohol --y proline -o pair.svg
  gaussmix plot model.npz data.npy --size 1600x700 --dpi 150 -o big.png""")
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", required=True, metavar="FIGURE",
              help="Image to write: .png, .svg or .pdf.")
@click.option("--x", "x_column", default=None, metavar="COLUMN",
              help="Feature on the horizontal axis (name or 0-based position).")
@click.option("--y", "y_column", default=None, metavar="COLUMN",
              help="Feature on the vertical axis. Without --x/--y, more than two "
                   "features are shown on their first two principal components.")
@click.option("--size", default="1200x500", show_default=True, metavar="WxH",
              help="Image size in pixels (at --dpi).")
@click.option("--dpi", type=click.IntRange(min=10, max=1200), default=100,
              show_default=True, help="Pixels per inch.")
@click.option("--title", default=None, help="Figure title.")
@columns_option
@missing_option(None)
def plot_command(model_path: str, data: str, output: str, x_column: str | None,
                 y_column: str | None, size: str, dpi: int, title: str | None,
                 columns: str | None, missing: str | None) -> None:
    """Draw MODEL over DATA: components and log-likelihood per EM iteration.

    Left: the rows of DATA coloured by most probable component, each
    component's mean and 1- and 2-sigma ellipses, and contours of the mixture
    density. Right: the mean log-likelihood after each EM iteration of the fit.
    Needs matplotlib (pip install 'gaussmix[plot]'). Rows with missing
    values (--missing marginalize) are labelled but not drawn where a plotted
    feature is missing; the figure says how many.
    """
    width, height = _size(size)
    check_output_path(output, FIGURE_FORMATS)
    from .. import plotting

    plotting._matplotlib()  # say which extra is missing before reading anything
    model = _loaded(model_path, None, missing)
    dataset = model_data(model, data, columns)
    names = [str(n) for n in getattr(model, "feature_names_in_", dataset.names)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plotting.plot_model(model, dataset.X, x=x_column, y=y_column,
                                  feature_names=names,
                                  figsize=(width / dpi, height / dpi), dpi=dpi,
                                  title=title)
        plotting.save_figure(fig, output)
    for message in dict.fromkeys(str(w.message) for w in caught):
        warn("plot", _LAYOUT_ADVICE if _LAYOUT_WARNING in message else message)
    click.echo(f"wrote figure {output} ({width}x{height} pixels)")


# matplotlib's warning when the labels do not fit in the figure, said for --size.
_LAYOUT_WARNING = "constrained_layout not applied"
_LAYOUT_ADVICE = ("the figure is too small for its labels, which may overlap or "
                  "be cut off; give a larger --size (or a smaller --dpi)")


def _loaded(model_path: str, chunk_size: int | None, missing: str | None) -> Any:
    """The saved model, with --chunk-size and --missing applied when given."""
    model = load_model(model_path)
    if chunk_size is not None:
        model.set_params(chunk_size=chunk_size)
    if missing is not None:
        model.set_params(missing=missing)
    return model


def _warn_blank_lines(command: str, data: Data) -> None:
    """Say when skipped blank lines make output rows differ from file lines,
    so that pasting the output beside the file does not silently shift it."""
    blank = getattr(data, "blank_lines", [])
    if blank:
        shown = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        warn(command, f"{len(blank)} blank line(s) between the data rows of "
                      f"{data.path!r} (line {shown}) were skipped: the output has "
                      "one row per data row, not per file line; delete the blank "
                      "lines to line it up with the file")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 2 and all(p.isdigit() and 50 <= int(p) <= 20000 for p in parts):
        return int(parts[0]), int(parts[1])
    raise click.BadParameter(
        f"{text!r} is not WIDTHxHEIGHT in pixels between 50 and 20000, e.g. 1200x500",
        param_hint="--size",
    )


def _write_or_print(out: str | None, columns: dict[str, np.ndarray]) -> None:
    if out is not None:
        write_table(out, columns)
        return
    click.echo(",".join(columns))
    _echo_rows(columns)




def _chunks(model: Any, data: StreamedData) -> Iterator[Chunk]:
    """The chunks of a streamed file, NaN read as missing values where the
    model was fitted with ``missing='marginalize'``."""
    return model._marked(data.X, fitting=False).chunks()  # type: ignore[no-any-return]


def _streamed_score(model: Any, data: StreamedData, output: str | None
                    ) -> dict[str, float]:
    """Criteria of a streamed file, its log densities written chunk by chunk."""
    totals = [0.0, 0.0]

    def densities() -> Iterator[dict[str, np.ndarray]]:
        for X, w in _chunks(model, data):
            with quiet_feature_names():
                log_prob = model.score_samples(X)
            totals[0] += float(log_prob.sum() if w is None else w @ log_prob)
            totals[1] += float(len(log_prob) if w is None else w.sum())
            yield {"log_density": log_prob}

    chunks = densities()
    if output is None:
        for _ in chunks:
            pass
    else:
        _write_chunks(output, ["log_density"], data.n_rows, chunks)
    return criteria_of(model, *totals)


def _write_chunks(out: str | None, names: list[str], rows: int,
                  chunks: Iterator[dict[str, np.ndarray]]) -> None:
    """Columns written chunk by chunk to ``out``, or as CSV on standard output."""
    if out is not None:
        with open_table_writer(out, names, n_rows=rows) as writer:
            for columns in chunks:
                writer.write(columns)
        return
    click.echo(",".join(names))
    for columns in chunks:
        _echo_rows(columns)


def _echo_rows(columns: dict[str, np.ndarray]) -> None:
    rows = zip(*(np.asarray(c).tolist() for c in columns.values()), strict=True)
    click.echo("\n".join(",".join(map(repr, row)) for row in rows))
