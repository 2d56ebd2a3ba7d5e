"""The one EM loop: restarts, convergence on the mean log-likelihood, progress.

Each iteration is one pass over the data that folds chunk statistics (the
E-step) followed by one M-step. ``lower_bound`` is, as in scikit-learn, the
weighted mean log-likelihood of the data under the parameters *before* the
iteration's M-step; convergence is declared when it changes by less than
``tol``.

The loop runs a *batch* of EM runs in lockstep (:func:`run_batch`): each pass
reads every chunk once and computes the statistics of every run still going
(each with its own kernel), then each run takes its own M-step and
convergence test and stops on its own. A single fit is a batch of one
(:func:`run_em`); model selection fits its candidates as one batch, so that
a source whose passes are costly (a Dask graph, a file) is read once per
iteration rather than once per candidate and iteration.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .covariance import CovarianceType
from .estep import LowestRows
from .incomplete import Kernel, kernel_type
from .mstep import m_step
from .params import MixtureParams
from .recentre import m_step_about_new_means, moments_about
from .reducers import Reducer, Sequential, fold
from .sources import DataSource
from .stats import SuffStats

Callback = Callable[[dict[str, Any]], Any]

# Errors that end one run of a batch (a factorisation that fails, a
# likelihood that is not finite) without stopping the others.
RUN_ERRORS = (ValueError, np.linalg.LinAlgError)


@dataclass
class EMRun:
    """Outcome of one EM run from one starting point.

    ``error`` is why a run of a batch failed (None if it did not); ``elapsed``
    the seconds from the start of its batch until it stopped.
    """

    params: MixtureParams
    lower_bound: float
    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    error: Exception | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class EMStart:
    """Where one run of a batch starts: its covariance type and parameters,
    the index reported to callbacks, and the lower bound it continues from."""

    piece: CovarianceType
    params: MixtureParams
    init_index: int = 0
    lower_bound: float = -np.inf


@dataclass(frozen=True)
class EMSettings:
    tol: float
    max_iter: int
    reg_covar: float
    reducer: Reducer = field(default_factory=Sequential)
    verbose: int = 0
    verbose_interval: int = 10
    callback: Callback | None = None


class StatsBatch(tuple[SuffStats, ...]):
    """The statistics of several kernels on the same rows, added kernel by
    kernel: the additive value of a pass that serves several runs.

    Examples
    --------
    >>> import numpy as np
    >>> a = SuffStats.zero("spherical", np.zeros((1, 2)))
    >>> total = StatsBatch([a, a]) + StatsBatch([a, a])
    >>> type(total).__name__, len(total)
    ('StatsBatch', 2)
    """

    __slots__ = ()

    def __add__(self, other: Any) -> StatsBatch:  # type: ignore[override]
        return StatsBatch(a + b for a, b in zip(self, other, strict=True))


def shared_statistics(source: DataSource, kernels: Sequence[Kernel],
                      reducer: Reducer) -> tuple[SuffStats, ...]:
    """One pass: the statistics of every kernel over all chunks, each chunk
    read once for all of them."""
    return tuple(fold(lambda c: StatsBatch(k.statistics(*c) for k in kernels),
                      source, reducer))


def data_statistics(
    source: DataSource, piece: CovarianceType, params: MixtureParams,
    reducer: Reducer,
) -> tuple[SuffStats, Kernel]:
    """One E-step pass: the statistics of all chunks at ``params``."""
    kernel = kernel_type(source).build(piece, params, source.spec)
    stats = fold(lambda c: kernel.statistics(*c), source, reducer)
    _check_finite(stats)
    return stats, kernel


def _check_finite(stats: SuffStats) -> None:
    if not np.isfinite(stats.loglik):
        raise ValueError(
            "The log-likelihood of the data is not finite: some rows lie so far "
            "from every component that their density underflows float64. Scale "
            "the data (standardise each feature) or remove the extreme rows."
        )


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
    start = EMStart(piece, params, init_index, lower_bound)
    return run_batch(source, [start], settings, isolate=False)[0]


def run_batch(source: DataSource, starts: Sequence[EMStart], settings: EMSettings,
              *, isolate: bool = True,
              on_pass: Callable[[int, int], Any] | None = None) -> list[EMRun]:
    """EM from every start in lockstep, one pass per iteration for all runs.

    ``on_pass(n_iter, n_going)`` is called after each pass with the number of
    runs still iterating (progress of a long batch).

    Each run stops on its own (converged, or ``max_iter``) and drops out of
    later passes; its iterations, lower bounds and parameters are those of
    :func:`run_em` from the same start. With ``isolate``, an error of one run
    (see :data:`RUN_ERRORS`) is kept in its ``error`` and the others go on.
    """
    runs = [EMRun(params=s.params, lower_bound=s.lower_bound) for s in starts]
    t_start = time.perf_counter()
    printed = [t_start] * len(runs)  # each run's last progress line (verbose=2)
    going = list(range(len(runs)))
    for n_iter in range(1, max(settings.max_iter, 1) + 1):
        passed = _shared_pass(source, starts, runs, going, settings.reducer, isolate)
        for i, (stats, kernel) in passed.items():
            with _failing([runs[i]], isolate):
                _check_finite(stats)
                if settings.max_iter == 0:  # the start's likelihood, not -inf
                    runs[i].lower_bound = stats.loglik / stats.weight
                    continue
                change = _step(runs[i], starts[i].piece, stats, settings.reg_covar,
                               functools.partial(worst_rows, source, kernel,
                                                 settings.reducer),
                               functools.partial(moments_about, source, kernel,
                                                 starts[i].piece,
                                                 reducer=settings.reducer))
                runs[i].converged = abs(change) < settings.tol
                now = time.perf_counter()
                if _report_iteration(settings, starts[i].init_index, n_iter,
                                     runs[i].lower_bound, change, now - printed[i],
                                     now - t_start):
                    printed[i] = now
        if passed:  # this pass's kernels go before the next pass builds its own
            del passed, stats, kernel  # (full, wide: (K, d, d) arrays each)
        t_end = time.perf_counter()
        for i in going:
            if runs[i].converged or runs[i].error or n_iter >= settings.max_iter:
                runs[i].elapsed = t_end - t_start
                _report_end(settings, runs[i], t_start)
        going = [i for i in going if not (runs[i].converged or runs[i].error)]
        if on_pass is not None:
            on_pass(n_iter, len(going))
        if not going:
            break
    return runs


def _shared_pass(source: DataSource, starts: Sequence[EMStart], runs: list[EMRun],
                 going: list[int], reducer: Reducer, isolate: bool
                 ) -> dict[int, tuple[SuffStats, Kernel]]:
    """The statistics and kernel of every run still going, from one pass."""
    kernels: dict[int, Kernel] = {}
    for i in going:
        with _failing([runs[i]], isolate):
            kernels[i] = kernel_type(source).build(starts[i].piece, runs[i].params,
                                                   source.spec)
    if not kernels:
        return {}
    with _failing([runs[i] for i in kernels], isolate):
        stats = shared_statistics(source, list(kernels.values()), reducer)
        return {i: (s, kernels[i]) for i, s in zip(kernels, stats, strict=True)}
    return {}


@contextlib.contextmanager
def _failing(runs: list[EMRun], isolate: bool) -> Iterator[None]:
    """Record a run error on ``runs`` (with ``isolate``) instead of raising it."""
    try:
        yield
    except RUN_ERRORS as err:
        if not isolate:
            raise
        for run in runs:
            run.error = err


def _step(run: EMRun, piece: CovarianceType, stats: SuffStats, reg_covar: float,
          worst: Callable[[int], LowestRows],
          recentre: Callable[[SuffStats], SuffStats]) -> float:
    """One run's M-step and convergence test after its E-step pass; returns
    the change of its lower bound."""
    run.params = _m_step(stats, piece, reg_covar, worst, recentre)
    previous, run.lower_bound = run.lower_bound, stats.loglik / stats.weight
    run.lower_bounds.append(run.lower_bound)
    run.n_iter += 1
    return run.lower_bound - previous


def _m_step(stats: SuffStats, piece: CovarianceType, reg_covar: float,
            worst: Callable[[int], LowestRows],
            recentre: Callable[[SuffStats], SuffStats]) -> MixtureParams:
    """The M-step, again from moments about the new means (``recentre``, one
    more pass) where a mean jumped far (see :mod:`gaussmix.engine.recentre`)."""
    params, _ = m_step_about_new_means(
        stats, lambda s: m_step(s, piece, reg_covar, worst),
        functools.partial(recentre, stats), piece)
    return params


def _report_end(settings: EMSettings, run: EMRun, t_start: float) -> None:
    if not settings.verbose or run.error is not None or settings.max_iter == 0:
        return
    status = "converged" if run.converged else "did not converge"
    tail = ""
    if settings.verbose >= 2:
        tail = (f". time lapse {time.perf_counter() - t_start:.5f}s\t "
                f"lower bound {run.lower_bound:.5f}")
    print(f"Initialization {status}{tail}.")


def _report_iteration(settings, init_index, n_iter, lower_bound, change, lapse,
                      elapsed) -> bool:
    """Call the callback, and print the progress line every ``verbose_interval``
    iterations (returns whether it printed). ``lapse``: seconds since the
    run's last line (or its start), as scikit-learn's verbose=2 reports."""
    if settings.callback is not None:
        settings.callback({
            "init": init_index, "iteration": n_iter, "lower_bound": lower_bound,
            "change": change, "elapsed": elapsed, "max_iter": settings.max_iter,
        })
    if not settings.verbose or n_iter % settings.verbose_interval:
        return False
    if settings.verbose == 1:
        print(f"  Iteration {n_iter}")
    else:
        print(f"  Iteration {n_iter}\t time lapse {lapse:.5f}s\t ll change {change:.5f}")
    return True


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
        if best is None or beats(run.lower_bound, best.lower_bound):
            best = run
    assert best is not None
    return best


#: Relative margin by which a later start's lower bound must beat the best so
#: far to replace it. Starts that reach one optimum (k-means starts that differ
#: only in the order of their clusters, common with n_init > 1) tie up to the
#: rounding of the mean log-likelihood (a few ulps); the first is kept, as
#: scikit-learn keeps it when its rounding ties exactly, so that the component
#: order is scikit-learn's. Distinct optima or iterates differ by far more.
TIE_MARGIN = 1e-12


def beats(lower_bound: float, best: float) -> bool:
    """Whether a later start's ``lower_bound`` replaces the ``best`` so far:
    higher by more than rounding (:data:`TIE_MARGIN`).

    >>> beats(-1.2584389473923687, -1.2584389473923692), beats(-1.25, -1.26)
    (False, True)
    """
    if not np.isfinite(best):
        return bool(lower_bound > best)
    return bool(lower_bound - best > TIE_MARGIN * max(1.0, abs(best)))
