"""Candidates fitted in lockstep: one pass over the rows serves all of them.

Fitting the candidates one by one reads the rows once per candidate and EM
iteration (plus a criteria pass each). :func:`fit_in_lockstep` hands every
start of every candidate to the engine's one EM loop as a single batch
(:func:`gaussmix.engine.loop.run_batch`): each pass reads a chunk once and
computes, for every run still going, its own kernel's statistics; each run
then takes its own M-step and convergence test and drops out of later passes
when it stops. The criteria of all candidates then come from one more pass.
A selection of C candidates of at most I iterations thus costs I + 1 passes
instead of about C * (I + 1); that is what counts where a pass has a fixed
cost (a Dask graph on the scheduler) or reads a file again.

Each run's arithmetic is that of its own fit, so every candidate equals the
one :func:`~.candidates.fit_task` fits from the same start (the same
iterations, convergence, lower bounds and criteria, to the rounding of the
chunk sums where in-memory chunks differ in size).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..engine.loop import beats
from ..mixture import GaussianMixture
from .candidates import failed_row, scored_row
from .passes import RUN_ERRORS, EMRun, Starts, em_source, fit_runs, shared_criteria_totals
from .result import Candidate

Task = tuple[int, str, Starts]  # (n_components, covariance type, starts)
Fitted = tuple[Candidate, GaussianMixture | None, float]


def fit_in_lockstep(
    X: Any, weights: np.ndarray | None, tasks: Sequence[Task],
    settings: dict[str, Any], threads: int | None,
    on_pass: Callable[[int, int], Any] | None = None,
) -> list[Fitted]:
    """Fit every candidate from each of its starts in shared passes, keep each
    candidate's best start and score it: the rows :func:`~.candidates.fit_task`
    gives one by one (``(row, model, total weight)``, a NaN row for a failure),
    in the order of ``tasks``."""
    t0 = time.perf_counter()
    models = [[] if isinstance(starts, Exception) else
              [GaussianMixture(k, covariance_type=cov, n_init=1, n_threads=threads,
                               **start, **settings) for start in starts]
              for k, cov, starts in tasks]
    try:
        source = em_source(X, weights, tasks, settings.get("missing", "raise"))
    except RUN_ERRORS as err:
        return [_failed(k, cov, X, err, time.perf_counter() - t0)
                for k, cov, _ in tasks]
    runs = fit_runs(source, [m for group in models for m in group], settings, threads,
                    on_pass)
    fitted: list[GaussianMixture | None] = []
    rows: list[EMRun | Exception] = []
    for (_, _, starts), group in zip(tasks, models, strict=True):
        mine, runs = runs[:len(group)], runs[len(group):]
        model, outcome = ((None, starts) if isinstance(starts, Exception)  # no start
                          else _best(group, mine, source.n_features))
        fitted.append(model)
        rows.append(outcome)
    return _scored(tasks, fitted, rows, X, weights, threads, t0)


def _best(models: list[GaussianMixture], runs: list[EMRun | Exception],
          n_features: int) -> tuple[GaussianMixture | None, EMRun | Exception]:
    """The candidate's model fitted from its best start, as ``fit_task`` keeps
    it (the first start that failed fails the candidate; else the first of
    the highest lower bounds wins, ties to rounding included: ``beats``),
    and its last run to stop (or the error)."""
    done: list[EMRun] = []
    for run in runs:
        error = run if isinstance(run, Exception) else run.error
        if error is not None:
            return None, error
        assert isinstance(run, EMRun)
        done.append(run)
    best = 0
    for j in range(1, len(done)):
        if beats(done[j].lower_bound, done[best].lower_bound):
            best = j
    model = models[best]
    model._set_fitted(done[best], model._piece)
    model.n_features_in_ = n_features
    return model, max(done, key=lambda r: r.elapsed)


def _scored(tasks: Sequence[Task], models: list[GaussianMixture | None],
            outcomes: list[EMRun | Exception], X: Any, weights: np.ndarray | None,
            threads: int | None, t0: float) -> list[Fitted]:
    """The table rows, the criteria of every fitted candidate from one pass.

    A candidate's time is the wall time from the start of the shared fit
    until its last run stopped, plus the shared criteria pass."""
    ok = [m for m in models if m is not None]
    t_pass = time.perf_counter()
    totals: Iterator[tuple[float, float, float]] = iter([])
    try:
        totals = iter(shared_criteria_totals(ok, X, weights, threads) if ok else [])
    except RUN_ERRORS as err:
        outcomes = [err] * len(outcomes)
    pass_time = time.perf_counter() - t_pass
    out: list[Fitted] = []
    for (k, cov, _), model, outcome in zip(tasks, models, outcomes, strict=True):
        if isinstance(outcome, Exception) or model is None:
            error = outcome if isinstance(outcome, Exception) else None
            out.append(_failed(k, cov, X, error, time.perf_counter() - t0))
            continue
        loglik, entropy, n = next(totals)
        row = scored_row(k, cov, model, loglik, entropy, n, outcome.elapsed + pass_time)
        out.append((row, model, n))
    return out


def _failed(k: int, cov: str, X: Any, err: Exception | None, seconds: float
            ) -> Fitted:
    return failed_row(k, cov, X, err, seconds), None, float("nan")
