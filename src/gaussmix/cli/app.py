"""The ``gaussmix`` command line: fit, predict, score, sample, plot, example.

Every subcommand reads ``.csv``/``.tsv``, ``.npy`` or ``.parquet`` files (see
:mod:`gaussmix.files.tables`) and writes outputs atomically, so a failed command
never leaves a partial file. Expected errors (a missing or unreadable file, a
bad column, a model file that is not a gaussmix model, inconsistent sizes, a
missing optional dependency) are reported by :class:`GaussmixGroup` as one
line on standard error, ``gaussmix <command>: error: <what and how to fix>``,
with exit status 2; ``--debug`` (anywhere on the command line, or
``GAUSSMIX_DEBUG=1``) shows the traceback instead. Commands added to
:data:`main` later get the same handling.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from .. import criteria
from .._version import __version__
from ..files.model import ModelFileError, model_file_path
from ..files.tables import (
    DataError,
    Dataset,
    check_output_path,
    read_table,
    select_columns,
    write_table,
)
from ..mixture import GaussianMixture
from ..plotting import FIGURE_FORMATS
from .options import COVARIANCE_TYPES, INIT_METHODS, em_options
from .progress import EMProgress, choose_mode

__all__ = ["EXPECTED_ERRORS", "GaussmixGroup", "main"]

#: Errors reported as one line (exit status 2) rather than a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    DataError, ModelFileError, NotFittedError, ValueError, OSError, ImportError,
)
DEBUG_KEY = "gaussmix.debug"
TABLE_FORMATS = ("csv", "tsv", "npy", "parquet")
_NAMES_WARNING = "X does not have valid feature names"


def error_message(exc: BaseException) -> str:
    """One line describing an expected error."""
    if (isinstance(exc, OSError) and not isinstance(exc, DataError)
            and exc.strerror and exc.filename):
        text = f"{os.fspath(exc.filename)!r}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _debug_from_environment() -> bool:
    value = os.environ.get("GAUSSMIX_DEBUG", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


class GaussmixGroup(click.Group):
    """A click group that turns expected errors into one line and status 2.

    ``--debug`` is accepted anywhere before ``--`` (also after the subcommand)
    and re-raises the error for its traceback.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:cut]:
            ctx.meta[DEBUG_KEY] = True
            args = [a for i, a in enumerate(args) if i >= cut or a != "--debug"]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            if ctx.meta.get(DEBUG_KEY) or _debug_from_environment():
                raise
            command = ctx.invoked_subcommand or ctx.info_name or "gaussmix"
            click.echo(f"gaussmix {command}: error: {error_message(exc)}", err=True)
            ctx.exit(2)


@click.group(
    cls=GaussmixGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  gaussmix example                          fit built-in data, draw a figure
  gaussmix fit data.csv -k 3 -o model.npz   fit and save a model
  gaussmix predict model.npz data.csv -o labels.csv
  gaussmix plot model.npz data.csv -o mixture.png
  gaussmix fit --help                       options of one command

\b
Data files: .csv/.tsv (header detected), .npy, .parquet (pip install
'gaussmix[io]'). Figures need matplotlib (pip install 'gaussmix[plot]').""",
)
@click.option("--debug", is_flag=True,
              help="Show the full traceback of errors (also GAUSSMIX_DEBUG=1).")
@click.version_option(__version__, "-V", "--version", prog_name="gaussmix")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Gaussian mixture models fitted by EM, from the shell.

    Fit a mixture to a table of numbers, then label, score, sample and plot
    with the saved model. Errors print one line and exit with status 2.
    """
    if debug:
        ctx.meta[DEBUG_KEY] = True


# ---------------------------------------------------------------- options

def _columns_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--columns", metavar="A,B,C", default=None,
        help="Comma-separated feature columns, by name or 0-based position. "
             "Default: all numeric columns (for a model: the columns it was "
             "fitted on, when the file has them).",
    )(f)


def _progress_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--progress", "force_progress", is_flag=True,
                     help="Show progress even when stderr is not a terminal "
                          "(one line per iteration).")(f)
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress display.")(f)


def _model_output(path: str) -> Path:
    """Where save_model will write, checked before any work is done."""
    target = model_file_path(path)
    if not target.parent.is_dir():
        raise DataError(
            f"cannot write model {os.fspath(target)!r}: directory "
            f"{os.fspath(target.parent)!r} does not exist; create it first"
        )
    return target


# ---------------------------------------------------------------- helpers

def load_model(path: str) -> GaussianMixture:
    """Load a model file; ``model`` also finds ``model.npz``."""
    from ..files.model import load_model as _load

    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise DataError(
            f"model file {path!r} does not exist; create one with "
            f"'gaussmix fit DATA -k K -o {path}'"
        )
    return _load(path)


def model_data(model: Any, path: str, columns: str | None = None,
               weights: str | None = None) -> Dataset:
    """The columns of a data file that a fitted model expects.

    Without ``columns``, a model fitted on named columns takes those columns
    by name when the file has them all (a model fitted on unnamed columns
    takes ``x0, x1, ...``, the names ``gaussmix sample`` writes); otherwise
    the file's numeric columns are used in order. The number of columns must
    match the model.
    """
    table = read_table(path)
    fitted_names = getattr(model, "feature_names_in_", None)
    expected = int(model.n_features_in_)
    # the names the model was fitted on, or those 'gaussmix sample' writes
    wanted = ([str(n) for n in fitted_names] if fitted_names is not None
              else [f"x{i}" for i in range(expected)])
    if columns is None and table.named and set(wanted) <= set(table.names):
        columns = ",".join(wanted)
    data = select_columns(table, columns, weights)
    if data.X.shape[1] != expected:
        fitted = (f" ({', '.join(map(str, fitted_names))})"
                  if fitted_names is not None else "")
        raise DataError(
            f"{path!r} gives {data.X.shape[1]} feature columns "
            f"({', '.join(data.names)}) but the model was fitted on "
            f"{expected}{fitted}; choose {expected} columns with --columns"
        )
    return data


@contextmanager
def _quiet_feature_names() -> Iterator[None]:
    """Arrays from files carry no names; scikit-learn would warn about that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NAMES_WARNING)
        yield


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _warn(command: str, message: str) -> None:
    click.echo(f"gaussmix {command}: warning: {message}", err=True)


def fit_model(
    data: Dataset, estimator: GaussianMixture, *, quiet: bool, force_progress: bool,
    command: str = "fit",
) -> float:
    """Fit with a progress display; return the seconds taken.

    Checks that there are at least as many rows as components, and reports a
    ConvergenceWarning as one warning line.
    """
    n_rows, k = len(data.X), estimator.n_components
    if k > n_rows:
        raise DataError(
            f"-k {k} is larger than the number of rows ({n_rows}) in "
            f"{data.path!r}; each component needs at least one row: lower -k or "
            "add rows"
        )
    console = _stderr()
    mode = choose_mode(console, quiet=quiet, force=force_progress)
    progress = EMProgress(estimator.n_init, estimator.max_iter, mode=mode,
                          console=console)
    estimator.set_params(callback=progress if mode != "off" else None)
    start = time.perf_counter()
    with progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(data.X, sample_weight=data.weights)
    seconds = time.perf_counter() - start
    estimator.set_params(callback=None)
    if data.named:
        estimator.feature_names_in_ = np.asarray(data.names, dtype=object)
    for caught_warning in caught:
        if issubclass(caught_warning.category, ConvergenceWarning):
            _warn(command, f"EM did not converge in {estimator.max_iter} "
                  "iterations; raise --max-iter or --tol, or try --n-init > 1")
        else:
            _warn(command, " ".join(str(caught_warning.message).split()))
    return seconds


def information_criteria(model: GaussianMixture, data: Dataset) -> dict[str, float]:
    """Mean and total log-likelihood, BIC and AIC of the model on the data.

    With sample weights, the total weight plays the role of the number of rows
    (so integer weights give the same values as repeated rows).
    """
    with _quiet_feature_names():
        total, n = model._log_likelihood(data.X, data.weights)
    p = model._n_parameters()
    return {"mean": total / n, "total": total, "n": n, "parameters": float(p),
            "bic": criteria.bic(total, n, p), "aic": criteria.aic(total, p)}


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6 or 0 < magnitude < 1e-4:
        return f"{value:.3e}"
    return f"{value:.4f}"


def summary_tables(
    model: GaussianMixture, data: Dataset, seconds: float | None = None
) -> list[Any]:
    """Renderables describing a fitted model: parameters and fit statistics."""
    names = [str(n) for n in getattr(model, "feature_names_in_", data.names)]
    k = model.n_components
    params = Table(title="Fitted components", title_justify="left")
    if k <= 6:
        params.add_column("")
        for j in range(k):
            params.add_column(f"component {j}", justify="right")
        params.add_row("weight", *(_fmt(w) for w in model.weights_))
        shown = min(len(names), 30)
        for i in range(shown):
            params.add_row(f"mean {names[i]}", *(_fmt(m) for m in model.means_[:, i]))
        if shown < len(names):
            params.add_row(f"... {len(names) - shown} more features", *[""] * k)
    else:
        shown = min(len(names), 5)
        params.add_column("component", justify="right")
        params.add_column("weight", justify="right")
        for i in range(shown):
            params.add_column(f"mean {names[i]}", justify="right")
        if shown < len(names):
            params.add_column("...")
        extra = [""] if shown < len(names) else []
        for j in range(k):
            params.add_row(str(j), _fmt(model.weights_[j]),
                           *(_fmt(m) for m in model.means_[j, :shown]), *extra)
    crit = information_criteria(model, data)
    stats = Table(title="Fit", title_justify="left", show_header=False)
    stats.add_column(style="bold")
    stats.add_column()
    converged = "converged" if model.converged_ else "not converged"
    stats.add_row("data", f"{data.path} ({len(data.X)} rows x {data.X.shape[1]} "
                          "features)")
    stats.add_row("model", f"{k} components, {model.covariance_type} covariance, "
                           f"{int(crit['parameters'])} free parameters")
    restarts = ("1 initialisation" if model.n_init == 1
                else f"best of {model.n_init} initialisations")
    stats.add_row("iterations", f"{model.n_iter_} ({converged}), {restarts}")
    stats.add_row("log-likelihood", f"{crit['mean']:.6g} per row, "
                                    f"{crit['total']:.6g} in total")
    stats.add_row("BIC", f"{crit['bic']:.6g}  (lower is better)")
    stats.add_row("AIC", f"{crit['aic']:.6g}  (lower is better)")
    if seconds is not None:
        stats.add_row("time", f"{seconds:.3g} s")
    return [params, stats]


def _write_or_print(out: str | None, columns: dict[str, np.ndarray]) -> None:
    if out is not None:
        write_table(out, columns)
        return
    names = list(columns)
    click.echo(",".join(names))
    rows = zip(*(np.asarray(c).tolist() for c in columns.values()), strict=True)
    click.echo("\n".join(",".join(map(repr, row)) for row in rows))


# ---------------------------------------------------------------- commands

@main.command(epilog="""\b
Examples:
  gaussmix fit data.csv -k 3 -o model.npz
  gaussmix fit data.parquet -k 5 --covariance diag --n-init 4 --seed 0 -o m.npz
  gaussmix fit data.csv -k 2 --columns height,weight --weights count -o m.npz
  gaussmix fit X.npy -k 4 --max-iter 500 --tol 1e-5 --quiet -o m.npz""")
@click.argument("data", metavar="DATA")
@click.option("-k", "--n-components", "k", type=click.IntRange(min=1), required=True,
              help="Number of mixture components.")
@click.option("-o", "--output", "output", required=True, metavar="MODEL",
              help="Model file to write ('.npz' is appended if missing).")
@click.option("--covariance", type=click.Choice(COVARIANCE_TYPES), default="full",
              show_default=True, help="Covariance type of the components.")
@click.option("--n-init", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of initialisations (restarts); the best is kept.")
@em_options
@click.option("--init", "init_params", type=click.Choice(INIT_METHODS),
              default="kmeans", show_default=True, help="Initialisation method.")
@click.option("--seed", type=int, default=None,
              help="Random seed, for reproducible fits (stored in the model).")
@_columns_option
@click.option("--weights", metavar="COLUMN", default=None,
              help="Column of non-negative per-row sample weights (not a feature).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for EM (default: all cores).")
@_progress_options
def fit(data: str, k: int, output: str, covariance: str, n_init: int, max_iter: int,
        tol: float, reg_covar: float, init_params: str, seed: int | None,
        columns: str | None, weights: str | None, threads: int | None,
        quiet: bool, force_progress: bool) -> None:
    """Fit a Gaussian mixture with K components to DATA and save it to MODEL.

    Prints the fitted weights and means and the iterations, convergence,
    log-likelihood, BIC, AIC and time of the fit. A live progress display of
    EM iterations runs on a terminal.
    """
    target = _model_output(output)
    dataset = read_dataset_for_fit(data, columns, weights)
    estimator = GaussianMixture(
        n_components=k, covariance_type=covariance, tol=tol, reg_covar=reg_covar,
        max_iter=max_iter, n_init=n_init, init_params=init_params,
        random_state=seed, n_threads=threads,
    )
    seconds = fit_model(dataset, estimator, quiet=quiet,
                        force_progress=force_progress)
    written = estimator.save(target)
    console = _stdout()
    for table in summary_tables(estimator, dataset, seconds):
        console.print(table)
    console.print(f"model saved to {os.fspath(written)}", soft_wrap=True)


def read_dataset_for_fit(path: str, columns: str | None,
                         weights: str | None) -> Dataset:
    """Read DATA for fitting, telling the user about skipped text columns."""
    dataset = select_columns(read_table(path), columns, weights)
    if dataset.skipped and columns is None:
        _warn("fit", f"ignoring non-numeric column(s) {', '.join(dataset.skipped)}")
    return dataset


@main.command(epilog="""\b
Examples:
  gaussmix predict model.npz data.csv                 labels as CSV on stdout
  gaussmix predict model.npz data.csv -o labels.parquet
  gaussmix predict model.npz data.npy --proba -o resp.csv""")
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="Write to OUT (.csv, .tsv, .npy or .parquet); default: CSV on "
                   "stdout.")
@click.option("--proba", is_flag=True,
              help="Write responsibilities (one column per component) instead of "
                   "labels.")
@_columns_option
def predict(model_path: str, data: str, output: str | None, proba: bool,
            columns: str | None) -> None:
    """Label each row of DATA with its most probable component of MODEL.

    Writes a column 'label' (0 to K-1), or with --proba columns 'prob_0' ...
    'prob_{K-1}' holding each row's posterior probabilities.
    """
    if output is not None:
        check_output_path(output, TABLE_FORMATS)
    model = load_model(model_path)
    dataset = model_data(model, data, columns)
    with _quiet_feature_names():
        if proba:
            resp = model.predict_proba(dataset.X)
            out = {f"prob_{j}": resp[:, j] for j in range(resp.shape[1])}
        else:
            out = {"label": model.predict(dataset.X).astype(np.int64)}
    _write_or_print(output, out)
    if output is not None:
        what = "responsibilities" if proba else "labels"
        click.echo(f"wrote {what} of {len(dataset.X)} rows to {output}")


@main.command(epilog="""\b
Examples:
  gaussmix score model.npz test.csv
  gaussmix score model.npz test.parquet -o log_density.csv""")
@click.argument("model_path", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="Also write each row's log density (column 'log_density').")
@_columns_option
@click.option("--weights", metavar="COLUMN", default=None,
              help="Column of per-row sample weights for the mean.")
def score(model_path: str, data: str, output: str | None, columns: str | None,
          weights: str | None) -> None:
    """Mean log-likelihood of DATA under MODEL (and per-row log densities).

    Prints the (weighted) mean log-likelihood per row, its total, and the
    model's BIC and AIC on DATA.
    """
    if output is not None:
        check_output_path(output, TABLE_FORMATS)
    model = load_model(model_path)
    dataset = model_data(model, data, columns, weights)
    with _quiet_feature_names():
        log_density = model.score_samples(dataset.X)
    crit = information_criteria(model, dataset)
    if output is not None:
        write_table(output, {"log_density": log_density})
    click.echo(f"mean log-likelihood: {crit['mean']:.10g} per row "
               f"({len(dataset.X)} rows)")
    click.echo(f"total log-likelihood: {crit['total']:.10g}")
    click.echo(f"BIC: {crit['bic']:.10g}")
    click.echo(f"AIC: {crit['aic']:.10g}")
    if output is not None:
        click.echo(f"wrote log densities of {len(dataset.X)} rows to {output}")


@main.command(epilog="""\b
Examples:
  gaussmix sample model.npz -n 1000 -o synthetic.csv
  gaussmix sample model.npz -n 1e6 --seed 1 -o synthetic.parquet""")
@click.argument("model_path", metavar="MODEL")
@click.option("-n", "--n-samples", "n_samples", required=True, metavar="N",
              help="Number of rows to draw.")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="File to write (.csv, .tsv, .npy or .parquet).")
@click.option("--seed", type=int, default=None,
              help="Random seed (default: the model's stored seed, so repeated "
                   "calls give the same rows).")
def sample(model_path: str, n_samples: str, output: str, seed: int | None) -> None:
    """Draw N rows from the mixture in MODEL.

    Writes the model's feature columns and a last column 'component' with the
    component each row was drawn from (also in .npy files, as the last column).
    """
    n = _count(n_samples, "-n")
    check_output_path(output, TABLE_FORMATS)
    model = load_model(model_path)
    if seed is not None:
        model.set_params(random_state=seed)
    X, y = model.sample(n)
    names = [str(n) for n in getattr(model, "feature_names_in_",
                                     [f"x{i}" for i in range(X.shape[1])])]
    label = "component" if "component" not in names else "_component"
    columns = {name: X[:, i] for i, name in enumerate(names)}
    columns[label] = y.astype(np.int64)
    write_table(output, columns)
    click.echo(f"wrote {n} samples to {output}")


def _count(text: str, option: str) -> int:
    """A positive count; accepts '1000', '1e6', '10_000'."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise click.BadParameter(f"{text!r} is not a positive whole number",
                                 param_hint=option)
    return int(value)


@main.command(epilog="""\b
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
@_columns_option
def plot(model_path: str, data: str, output: str, x_column: str | None,
         y_column: str | None, size: str, dpi: int, title: str | None,
         columns: str | None) -> None:
    """Draw MODEL over DATA: components and log-likelihood per EM iteration.

    Left: the rows of DATA coloured by most probable component, each
    component's mean and 1- and 2-sigma ellipses, and contours of the mixture
    density. Right: the mean log-likelihood after each EM iteration of the fit.
    Needs matplotlib (pip install 'gaussmix[plot]').
    """
    width, height = _size(size)
    check_output_path(output, FIGURE_FORMATS)
    from .. import plotting

    plotting._matplotlib()  # say which extra is missing before reading anything
    model = load_model(model_path)
    dataset = model_data(model, data, columns)
    names = [str(n) for n in getattr(model, "feature_names_in_", dataset.names)]
    fig = plotting.plot_model(model, dataset.X, x=x_column, y=y_column,
                              feature_names=names, figsize=(width / dpi, height / dpi),
                              dpi=dpi, title=title)
    plotting.save_figure(fig, output)
    click.echo(f"wrote figure {output} ({width}x{height} pixels)")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) == 2 and all(p.isdigit() and 50 <= int(p) <= 20000 for p in parts):
        return int(parts[0]), int(parts[1])
    raise click.BadParameter(
        f"{text!r} is not WIDTHxHEIGHT in pixels between 50 and 20000, e.g. 1200x500",
        param_hint="--size",
    )


@main.command(epilog="""\b
Examples:
  gaussmix example
  gaussmix example -o wine.svg
  python -m gaussmix          (the same)""")
@click.option("-o", "--output", default="gaussmix-example.png", show_default=True,
              metavar="FIGURE", help="Figure to write (.png, .svg or .pdf).")
@click.option("--no-plot", is_flag=True, help="Fit and print only; no figure.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@_progress_options
def example(output: str, no_plot: bool, seed: int, quiet: bool,
            force_progress: bool) -> None:
    """Fit a 3-component mixture to the wine data that ships with scikit-learn.

    The 178 wines (13 chemical measurements each, standardised) come from
    three cultivars; the fit is compared with them, the summary printed, and a
    figure written (the first two principal components, ellipses, density
    contours and the log-likelihood per EM iteration). Needs no download.
    """
    from sklearn.datasets import load_wine
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    if not no_plot:
        check_output_path(output, FIGURE_FORMATS)
    wine = load_wine()
    X = StandardScaler().fit_transform(wine.data)
    dataset = Dataset(X=X, names=list(wine.feature_names), weights=None, named=True,
                      skipped=[], path="scikit-learn wine, standardised")
    estimator = GaussianMixture(n_components=3, covariance_type="full", tol=1e-4,
                                random_state=seed)
    seconds = fit_model(dataset, estimator, quiet=quiet, force_progress=force_progress,
                        command="example")
    console = _stdout()
    console.print("[bold]gaussmix example[/bold]: 178 Italian wines from three "
                  "cultivars, 13 standardised chemical measurements; a Gaussian "
                  "mixture with K=3 full-covariance components, fitted by EM.",
                  soft_wrap=True)
    for table in summary_tables(estimator, dataset, seconds):
        console.print(table)
    agreement = adjusted_rand_score(wine.target, estimator.labels_)
    console.print(f"agreement of the components with the three cultivars "
                  f"(adjusted Rand index, 1 = perfect): {agreement:.3f}",
                  soft_wrap=True)
    if no_plot:
        return
    _example_figure(estimator, dataset, output, console)


def _example_figure(model: GaussianMixture, dataset: Dataset, output: str,
                    console: Console) -> None:
    from .. import plotting

    try:
        plotting._matplotlib()
    except ImportError as exc:
        _warn("example", f"no figure written: {exc}")
        return
    fig = plotting.plot_model(
        model, dataset.X, feature_names=dataset.names, figsize=(12.0, 5.0),
        title="gaussmix example: wine (scikit-learn), 3 components, full covariance",
    )
    plotting.save_figure(fig, output)
    console.print(f"wrote figure {output}", soft_wrap=True)


# ---------------------------------------------------------------- extensions

def _register_commands() -> None:
    """Add the commands that live in their own modules."""
    from .select import select_command

    main.add_command(select_command, name="select")


_register_commands()


def run(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    main.main(args=list(argv) if argv is not None else None, prog_name="gaussmix")
