"""``gaussmix select``: choose K and the covariance type by BIC, AIC or ICL.

The command is :data:`select_command`; :mod:`gaussmix.cli` registers it on the
``gaussmix`` group, which turns expected errors (a missing file, a bad column,
an invalid option value) into one line on standard error with exit status 2.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import click

from ..plotting import FIGURE_FORMATS
from .errors import translate
from .options import (
    COVARIANCE_TYPES,
    INIT_METHODS,
    SEED,
    chunk_size_option,
    em_options,
    missing_option,
    spill_option,
)

__all__ = ["parse_components", "select_command"]

CRITERIA = ("bic", "aic", "icl")
_RANGE = re.compile(r"^\s*(\d+)\s*(?:(?:\.\.|-|:)\s*(\d+)\s*)?$")


def parse_components(text: str) -> list[int]:
    """Numbers of components from ``"1..10"``, ``"3"``, ``"2,4,8"`` or ``"1..5,8"``.

    ``a..b`` (also ``a-b`` or ``a:b``) includes both ends.

    >>> parse_components("1..4,8")
    [1, 2, 3, 4, 8]
    """
    values: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise click.BadParameter(
                f"{text!r} is not a list of numbers of components; write e.g. "
                "1..10, 3 or 2,4,8", param_hint="-k")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if low < 1 or high < low:
            raise click.BadParameter(
                f"{part.strip()!r} is not a range of numbers >= 1 (low..high)",
                param_hint="-k")
        values.update(range(low, high + 1))
    return sorted(values)


def _covariances(values: tuple[str, ...]) -> list[str]:
    chosen: list[str] = []
    for value in values:
        for name in (v.strip().lower() for v in value.split(",")):
            if name == "all":
                chosen.extend(COVARIANCE_TYPES)
            elif name in COVARIANCE_TYPES:
                chosen.append(name)
            elif name:
                raise click.BadParameter(
                    f"{name!r} is not a covariance type; choose from "
                    f"{', '.join(COVARIANCE_TYPES)} (or all)", param_hint="--covariance")
    return list(dict.fromkeys(chosen)) or list(COVARIANCE_TYPES)


@click.command(
    "select",
    epilog="""\b
Examples:
  gaussmix select data.csv                           K = 1..9, all covariance types
  gaussmix select data.csv -k 1..10 -o best.npz --plot bic.png
  gaussmix select data.parquet -k 2..6 --covariance full,diag --criterion icl
  gaussmix select data.csv -k 1..8 --n-init 3 --seed 0 --jobs 4
  gaussmix select big.npy -k 1..8 --chunk-size 100000   read chunk by chunk

\b
Lower is better for BIC, AIC and ICL (scikit-learn's sign); R's mclust
reports 2 log L - p log n, that is minus the BIC printed here.""",
)
@click.argument("data", metavar="DATA")
@click.option("-k", "--n-components", "components", default="1..9", show_default=True,
              metavar="RANGE", help="Numbers of components to try: 1..10, 3, 2,4,8.")
@click.option("--covariance", "covariance", multiple=True, metavar="TYPES",
              help="Covariance types to try, comma-separated or repeated "
                   "(full, tied, diag, spherical). Default: all four.")
@click.option("--criterion", type=click.Choice(CRITERIA, case_sensitive=False),
              default="bic", show_default=True,
              help="Criterion that picks the model (lowest wins).")
@click.option("-o", "--output", default=None, metavar="MODEL",
              help="Save the chosen model ('.npz' is appended if missing).")
@click.option("--plot", "figure", default=None, metavar="FIGURE",
              help="Draw the criterion against K, one line per covariance type "
                   "(.png, .svg or .pdf; needs matplotlib).")
@click.option("--n-init", type=click.IntRange(min=1), default=1, show_default=True,
              help="Initialisations per candidate; the best is kept.")
@click.option("--init", "init_params", type=click.Choice(INIT_METHODS),
              default="kmeans", show_default=True,
              help="Initialisation, shared by the covariance types of each K.")
@em_options
@click.option("--seed", type=SEED, default=None,
              help="Random seed, for a reproducible selection.")
@click.option("--columns", metavar="A,B,C", default=None,
              help="Comma-separated feature columns, by name or 0-based position. "
                   "Default: all numeric columns.")
@click.option("--weights", metavar="COLUMN", default=None,
              help="Column of non-negative per-row sample weights (not a feature).")
@click.option("-j", "--jobs", type=int, default=None,
              help="Candidates fitted at once (default: all cores; 1: in turn). "
                   "Streamed files are fitted in lockstep on all cores (-j "
                   "does not apply).")
@chunk_size_option
@spill_option
@missing_option("raise")
@click.option("--progress", "force_progress", is_flag=True,
              help="Show progress even when stderr is not a terminal (one line per "
                   "candidate).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
def select_command(
    data: str, components: str, covariance: tuple[str, ...], criterion: str,
    output: str | None, figure: str | None, n_init: int, init_params: str,
    max_iter: int, tol: float, reg_covar: float, seed: int | None,
    columns: str | None, weights: str | None, jobs: int | None,
    chunk_size: int | None, spill: bool, missing: str, force_progress: bool,
    quiet: bool,
) -> None:
    """Fit a mixture for every K and covariance type; keep the best.

    Prints one row per candidate (log-likelihood, free parameters, BIC, AIC,
    ICL, convergence, iterations, seconds) with the chosen one marked, then
    saves the chosen model (-o) and draws the criterion against K (--plot).
    Large .npy and Parquet files (over 64 MiB, or any with --chunk-size) are
    read chunk by chunk, in bounded memory: each K is seeded from a
    50,000-row random sample of the file, and the candidates are fitted in
    lockstep: each read of the file serves an EM iteration of every candidate
    still running, and one more read scores them all (a Parquet file's rows
    are decoded once and kept in a scratch file; --no-spill decodes them in
    every read). With ``--missing
    marginalize`` empty cells (Parquet nulls, NaN) are missing values (exact
    EM), streamed files included.
    """
    from rich.console import Console

    from ..files.tables import check_output_path
    from ..selection import select
    from .inputs import model_output, n_rows, read_dataset_for_fit

    ks = parse_components(components)
    types = _covariances(covariance)
    criterion = criterion.lower()
    target = model_output(output) if output is not None else None
    if figure is not None:
        check_output_path(figure, FIGURE_FORMATS)
        from .._optional import require

        require("matplotlib", "plot", "plotting")  # fail before the work
    dataset = read_dataset_for_fit(data, columns, weights, command="select",
                                   chunk_size=chunk_size, missing=missing,
                                   spill=spill)
    rows = n_rows(dataset)
    if ks[-1] > rows:
        raise click.BadParameter(
            f"K goes up to {ks[-1]} but {data!r} has only {rows} rows; "
            "each component needs at least one row", param_hint="-k")

    err = Console(stderr=True, highlight=False)
    mode = "off" if quiet else ("live" if err.is_terminal else
                                ("lines" if force_progress else "off"))
    start = time.perf_counter()
    result = select(
        dataset.X, ks, types, criterion, n_init=n_init, init_params=init_params,
        random_state=seed, tol=tol, reg_covar=reg_covar, max_iter=max_iter,
        missing=missing,
        # a streamed file's weights come with its chunks
        sample_weight=getattr(dataset, "weights", None), n_jobs=jobs,
        progress=mode == "live",
        callback=_line_printer(err, len(ks) * len(types)) if mode == "lines" else None,
    )
    seconds = time.perf_counter() - start
    best = result.best_estimator_
    if dataset.named:
        import numpy as np

        best.feature_names_in_ = np.asarray(dataset.names, dtype=object)

    out = Console(highlight=False)
    if not out.is_terminal:  # a pipe or file: never cut the table at 80 columns
        out = Console(highlight=False, width=160)
    out.print(selection_table(result, title=(
        f"{data}: {rows} rows x {len(dataset.names)} features, "
        f"{len(result.table)} candidates in {seconds:.3g} s")))
    row = result.best_
    out.print(f"best by {criterion.upper()}: K={row.n_components}, "
              f"{row.covariance_type} covariance ({criterion.upper()} = "
              f"{row.criterion(criterion):.6g}, lower is better)", soft_wrap=True)
    if not row.converged:
        click.echo("gaussmix select: warning: the chosen model did not converge; "
                   "raise --max-iter or --tol", err=True)
    if figure is not None:
        _save_plot(result, figure)
        out.print(f"wrote figure {figure}", soft_wrap=True)
    if target is not None:
        written = best.save(target)
        out.print(f"model saved to {os.fspath(written)}", soft_wrap=True)


def selection_table(result: Any, title: str | None = None) -> Any:
    """A rich Table of every candidate, the chosen one marked with '*'."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 1))
    for name, justify in [("", "left"), ("K", "right"), ("covariance", "left"),
                          ("log-lik", "right"), ("params", "right"),
                          ("BIC", "right"), ("AIC", "right"), ("ICL", "right"),
                          ("converged", "left"), ("iter", "right"),
                          ("time (s)", "right")]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    best = result.best_
    for c in result.table:
        mark = "*" if c is best else ""
        if c.error is not None:
            table.add_row(mark, str(c.n_components), c.covariance_type,
                          f"failed: {translate(c.error)}", *[""] * 7)
            continue
        table.add_row(
            mark, str(c.n_components), c.covariance_type, f"{c.log_likelihood:.2f}",
            str(c.n_parameters), f"{c.bic:.2f}", f"{c.aic:.2f}", f"{c.icl:.2f}",
            "yes" if c.converged else "no", str(c.n_iter), f"{c.time:.2f}",
            style="bold green" if c is best else None,
        )
    return table


def _line_printer(console: Any, total: int) -> Any:
    done = [0]

    def report(c: Any) -> None:
        done[0] += 1
        what = translate(c.error) if c.error else f"BIC {c.bic:.6g}, {c.n_iter} iterations"
        console.print(f"[{done[0]}/{total}] K={c.n_components} {c.covariance_type}: "
                      f"{what} ({c.time:.2f} s)", soft_wrap=True, markup=False)

    return report


def _save_plot(result: Any, path: str) -> None:
    from matplotlib.figure import Figure

    from ..plotting import save_figure

    fig = Figure(figsize=(7.0, 4.8), dpi=100, layout="constrained")
    result.plot(ax=fig.add_subplot())
    save_figure(fig, path)
