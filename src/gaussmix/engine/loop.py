"""The one EM loop: restarts, convergence on the mean log-likelihood, progress.

Each iteration is one pass over the data that folds chunk statistics (the
E-step) followed by one M-step. ``lower_bound`` is, as in scikit-learn, the
weighted mean log-likelihood of the data under the parameters *before* the
iteration's M-step; convergence is declared when it changes by less than
``tol``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .covariance import CovarianceType
from .estep import EStepKernel
from .mstep import m_step
from .params import MixtureParams
from .sources import ArraySource, fold
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
    n_threads: int = 1
    verbose: int = 0
    verbose_interval: int = 10
    callback: Callback | None = None


def data_statistics(
    source: ArraySource, piece: CovarianceType, params: MixtureParams,
    n_threads: int = 1,
) -> SuffStats:
    """One E-step pass: the statistics of all chunks at ``params``."""
    kernel = EStepKernel.build(piece, params, source.X.dtype)
    return fold(kernel.statistics, source, n_threads)


def run_em(
    source: ArraySource, piece: CovarianceType, params: MixtureParams,
    settings: EMSettings, *, init_index: int = 0,
    lower_bound: float = -np.inf,
) -> EMRun:
    """Iterate EM from ``params`` until convergence or ``max_iter``."""
    run = EMRun(params=params, lower_bound=lower_bound)
    if settings.max_iter == 0:  # report the starting point's likelihood, not -inf
        stats = data_statistics(source, piece, params, settings.n_threads)
        run.lower_bound = stats.loglik / stats.weight
        return run
    t_start = t_last = time.perf_counter()
    for n_iter in range(1, settings.max_iter + 1):
        stats = data_statistics(source, piece, run.params, settings.n_threads)
        run.params = m_step(stats, piece, settings.reg_covar)
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
    starts: Callable[[int], MixtureParams], n_init: int, source: ArraySource,
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
