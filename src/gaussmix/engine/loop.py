"""The one EM loop: restarts, convergence on the mean log-likelihood, progress.

Each iteration is one pass over the data that folds chunk statistics (the
E-step) followed by one M-step. ``lower_bound`` is, as in scikit-learn, the
weighted mean log-likelihood of the data under the parameters *before* the
iteration's M-step; convergence is declared when it changes by less than
``tol``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .covariance import CovarianceType
from .estep import LowestRows
from .incomplete import Kernel, kernel_type
from .mstep import m_step
from .params import MixtureParams
from .reducers import Reducer, Sequential, fold
from .sources import DataSource
from .stats import SuffStats

Callback = Callable[[dict[str, Any]], Any]


@dataclass
class EMRun:
    """Outcome of one EM run from one starting point."""

    params: MixtureParams
    lower_bound: float
    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


@dataclass(frozen=True)
class EMSettings:
    tol: float
    max_iter: int
    reg_covar: float
    reducer: Reducer = field(default_factory=Sequential)
    verbose: int = 0
    verbose_interval: int = 10
    callback: Callback | None = None


def data_statistics(
    source: DataSource, piece: CovarianceType, params: MixtureParams,
    reducer: Reducer,
) -> tuple[SuffStats, Kernel]:
    """One E-step pass: the statistics of all chunks at ``params``."""
    kernel = kernel_type(source).build(piece, params, source.spec)
    stats = fold(lambda c: kernel.statistics(*c), source, reducer)
    if not np.isfinite(stats.loglik):
        raise ValueError(
            "The log-likelihood of the data is not finite: some rows lie so far "
            "from every component that their density underflows float64. Scale "
            "the data (standardise each feature) or remove the extreme rows."
        )
    return stats, kernel


def worst_rows(source: DataSource, kernel: Kernel, reducer: Reducer,
               count: int) -> LowestRows:
    """The ``count`` worst-explained rows at the kernel's parameters (one pass)."""
    return fold(lambda c: kernel.lowest_rows(c.X, c.sample_weight, count), source,
                reducer)


def run_em(
    source: DataSource, piece: CovarianceType, params: MixtureParams,
    settings: EMSettings, *, init_index: int = 0,
    lower_bound: float = -np.inf,
) -> EMRun:
    """Iterate EM from ``params`` until convergence or ``max_iter``."""
    run = EMRun(params=params, lower_bound=lower_bound)
    reducer = settings.reducer
    if settings.max_iter == 0:  # report the starting point's likelihood, not -inf
        stats, _ = data_statistics(source, piece, params, reducer)
        run.lower_bound = stats.loglik / stats.weight
        return run
    t_start = t_last = time.perf_counter()
    for n_iter in range(1, settings.max_iter + 1):
        stats, kernel = data_statistics(source, piece, run.params, reducer)
        run.params = m_step(stats, piece, settings.reg_covar,
                            functools.partial(worst_rows, source, kernel, reducer))
        previous, run.lower_bound = run.lower_bound, stats.loglik / stats.weight
        run.lower_bounds.append(run.lower_bound)
        run.n_iter = n_iter
        change = run.lower_bound - previous
        now = time.perf_counter()
        _report_iteration(settings, init_index, n_iter, run.lower_bound, change,
                          now - t_last, now - t_start)
        t_last = now
        if abs(change) < settings.tol:
            run.converged = True
            break
    if settings.verbose:
        status = "converged" if run.converged else "did not converge"
        tail = ""
        if settings.verbose >= 2:
            tail = (f". time lapse {time.perf_counter() - t_start:.5f}s\t "
                    f"lower bound {run.lower_bound:.5f}")
        print(f"Initialization {status}{tail}.")
    return run


def _report_iteration(settings, init_index, n_iter, lower_bound, change, lapse,
                      elapsed):
    if settings.callback is not None:
        settings.callback({
            "init": init_index, "iteration": n_iter, "lower_bound": lower_bound,
            "change": change, "elapsed": elapsed, "max_iter": settings.max_iter,
        })
    if not settings.verbose or n_iter % settings.verbose_interval:
        return
    if settings.verbose == 1:
        print(f"  Iteration {n_iter}")
    else:
        print(f"  Iteration {n_iter}\t time lapse {lapse:.5f}s\t ll change {change:.5f}")


def best_of_restarts(
    starts: Callable[[int], MixtureParams], n_init: int, source: DataSource,
    piece: CovarianceType, settings: EMSettings,
    lower_bound: float = -np.inf,
) -> EMRun:
    """Run EM from ``n_init`` starting points; keep the highest lower bound."""
    best: EMRun | None = None
    for init in range(n_init):
        if settings.verbose:
            print(f"Initialization {init}")
        run = run_em(source, piece, starts(init), settings, init_index=init,
                     lower_bound=lower_bound)
        if best is None or run.lower_bound > best.lower_bound:
            best = run
    assert best is not None
    return best
