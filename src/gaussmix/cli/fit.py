"""``gaussmix fit`` and ``gaussmix example``: fit a mixture, print what was fitted.

:func:`fit_model` runs EM with the progress display and reports each warning
for what it says; :func:`summary_tables` describes the fitted model.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.exceptions import ConvergenceWarning

from .. import criteria
from ..files.streams import StreamedData
from ..files.tables import DataError, Dataset, check_output_path
from ..mixture import GaussianMixture
from ..plotting import FIGURE_FORMATS
from .errors import warning_messages
from .inputs import (
    Data,
    model_output,
    n_rows,
    quiet_feature_names,
    read_dataset_for_fit,
    stderr,
    stdout,
    warn,
)
from .options import (
    COVARIANCE_TYPES,
    INIT_METHODS,
    SEED,
    chunk_size_option,
    columns_option,
    em_options,
    missing_option,
    progress_options,
    spill_option,
)
from .progress import EMProgress, choose_mode

__all__ = ["example_command", "fit_command", "fit_model", "summary_tables"]


def fit_model(
    data: Data, estimator: GaussianMixture, *, quiet: bool, force_progress: bool,
    command: str = "fit",
) -> float:
    """Fit with a progress display; return the seconds taken.

    Checks that there are at least as many rows as components, and reports
    each warning of the fit as one line (see
    :func:`gaussmix.cli.errors.warning_messages`).
    """
    rows, k = n_rows(data), estimator.n_components
    if k > rows:
        raise DataError(
            f"-k {k} is larger than the number of rows ({rows}) in "
            f"{data.path!r}; each component needs at least one row: lower -k or "
            "add rows"
        )
    console = stderr()
    mode = choose_mode(console, quiet=quiet, force=force_progress)
    progress = EMProgress(estimator.n_init, estimator.max_iter, mode=mode,
                          console=console)
    estimator.set_params(callback=progress if mode != "off" else None)
    start = time.perf_counter()
    with progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if isinstance(data, StreamedData):  # the weights come with the chunks
            # no labels_ (8 bytes a row, one more pass): the command has no use for them
            estimator._fit_parameters(data.X, None)
        else:
            estimator.fit(data.X, sample_weight=data.weights)
    seconds = time.perf_counter() - start
    estimator.set_params(callback=None)
    if data.named:
        estimator.feature_names_in_ = np.asarray(data.names, dtype=object)
    for line in warning_messages(caught, estimator):
        warn(command, line)
    return seconds


def information_criteria(model: GaussianMixture, data: Data) -> dict[str, float]:
    """Mean and total log-likelihood, BIC and AIC of the model on the data.

    With sample weights, the total weight plays the role of the number of rows
    (so integer weights give the same values as repeated rows). A streamed
    file is read once more, chunk by chunk.
    """
    if isinstance(data, StreamedData):
        total, n = 0.0, 0.0
        for X, w in model._marked(data.X, fitting=False).chunks():  # NaN: missing=
            log_prob = _score_chunk(model, X)
            total += float(log_prob.sum() if w is None else w @ log_prob)
            n += float(len(log_prob) if w is None else w.sum())
        return criteria_of(model, total, n)
    with quiet_feature_names():
        total, n = model._log_likelihood(data.X, data.weights)
    return criteria_of(model, total, n)


def _score_chunk(model: GaussianMixture, X: np.ndarray) -> np.ndarray:
    with quiet_feature_names():
        return model.score_samples(X)


def criteria_of(model: GaussianMixture, total: float, n: float) -> dict[str, float]:
    """Mean and total log-likelihood, BIC and AIC from a total and a row count."""
    p = model._n_parameters()
    return {"mean": total / n, "total": total, "n": n, "parameters": float(p),
            "bic": criteria.bic(total, n, p), "aic": criteria.aic(total, p)}


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6 or 0 < magnitude < 1e-4:
        return f"{value:.3e}"
    return f"{value:.4f}"


def summary_tables(
    model: GaussianMixture, data: Data, seconds: float | None = None
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
    stats.add_row("data", f"{data.path} ({n_rows(data)} rows x {len(data.names)} "
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


@click.command("fit", epilog="""\b
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
@click.option("--seed", type=SEED, default=None,
              help="Random seed, for reproducible fits (stored in the model).")
@columns_option
@click.option("--weights", metavar="COLUMN", default=None,
              help="Column of non-negative per-row sample weights (not a feature).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for EM (default: all cores).")
@chunk_size_option
@spill_option
@missing_option("raise")
@progress_options
def fit_command(
    data: str, k: int, output: str, covariance: str, n_init: int, max_iter: int,
    tol: float, reg_covar: float, init_params: str, seed: int | None,
    columns: str | None, weights: str | None, threads: int | None,
    chunk_size: int | None, spill: bool, missing: str, quiet: bool,
    force_progress: bool,
) -> None:
    """Fit a Gaussian mixture with K components to DATA and save it to MODEL.

    Prints the fitted weights and means and the iterations, convergence,
    log-likelihood, BIC, AIC and time of the fit. A live progress display of
    EM iterations runs on a terminal. Large .npy and Parquet files (over
    64 MiB, or any with --chunk-size) are read chunk by chunk in every EM
    iteration, in bounded memory; initialisation then uses a 50,000-row
    random sample of the file. A streamed Parquet file is decoded once:
    its rows go to a scratch file that later passes map (--no-spill: decode
    it in every pass instead).
    """
    target = model_output(output)
    dataset = read_dataset_for_fit(data, columns, weights, chunk_size=chunk_size,
                                   missing=missing, spill=spill)
    estimator = GaussianMixture(
        n_components=k, covariance_type=covariance, tol=tol, reg_covar=reg_covar,
        max_iter=max_iter, n_init=n_init, init_params=init_params,
        random_state=seed, n_threads=threads, chunk_size=chunk_size, missing=missing,
    )
    seconds = fit_model(dataset, estimator, quiet=quiet,
                        force_progress=force_progress)
    written = estimator.save(target)
    console = stdout()
    for table in summary_tables(estimator, dataset, seconds):
        console.print(table)
    console.print(f"model saved to {os.fspath(written)}", soft_wrap=True)


@click.command("example", epilog="""\b
Examples:
  gaussmix example
  gaussmix example -o wine.svg
  python -m gaussmix          (the same)""")
@click.option("-o", "--output", default="gaussmix-example.png", show_default=True,
              metavar="FIGURE", help="Figure to write (.png, .svg or .pdf).")
@click.option("--no-plot", is_flag=True, help="Fit and print only; no figure.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@progress_options
def example_command(output: str, no_plot: bool, seed: int, quiet: bool,
                    force_progress: bool) -> None:
    """Fit a 3-component mixture to the wine data that ships with scikit-learn.

    The 178 wines (13 chemical measurements each, standardised) come from
    three cultivars; the fit is compared with them, the summary printed, and a
    figure written (the first two principal components, ellipses, density
    contours and the log-likelihood per EM iteration), by default
    gaussmix-example.png in the current folder. Needs no download.
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
    console = stdout()
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
        warn("example", f"no figure written: {exc}")
        return
    fig = plotting.plot_model(
        model, dataset.X, feature_names=dataset.names, figsize=(12.0, 5.0),
        title="gaussmix example: wine (scikit-learn), 3 components, full covariance",
    )
    plotting.save_figure(fig, output)
    console.print(f"wrote figure {output}", soft_wrap=True)


