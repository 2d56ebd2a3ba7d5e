"""The units of work of a selection, run in turn or by joblib workers.

- :func:`seed_task`: the shared seeding of one number of components (the
  starts of every covariance type, drawn once; see :mod:`.passes`).
- :func:`fit_task`: one candidate fitted from each of its starts, the best
  kept and scored as a :class:`~gaussmix.selection.Candidate` row.

:func:`seeds` gives each number of components its seed, and
:func:`quiet_convergence` silences ConvergenceWarning where that is safe.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .. import criteria
from ..engine.covariance import get_covariance_type
from ..engine.loop import beats
from ..mixture import GaussianMixture
from .passes import Starts, criteria_totals, initial_parameters
from .result import Candidate


def seeds(random_state: Any, ks: list[int]) -> dict[int, int]:
    """Per-K seed: the int itself (as a plain loop over scikit-learn would use),
    else a fresh int drawn from the random state.

    Examples
    --------
    >>> seeds(7, [1, 2])
    {1: 7, 2: 7}
    >>> len(set(seeds(None, [1, 2, 3]).values())) >= 2
    True
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state,
                                                                        bool):
        return {k: int(random_state) for k in ks}
    rng = check_random_state(random_state)
    return {k: int(rng.randint(np.iinfo(np.int32).max)) for k in ks}


def seed_task(
    X: Any, weights: np.ndarray | None, k: int, seed: int, n_init: int,
    init_params: str, types: Sequence[str], reg_covar: float,
    threads: int | None,
) -> tuple[int, dict[str, Starts], float]:
    """``(k, starts per covariance type, seconds)``: the shared seeding of K."""
    t0 = time.perf_counter()
    starts = initial_parameters(X, weights, k, check_random_state(seed), n_init,
                                init_params, types, reg_covar, threads)
    return k, starts, time.perf_counter() - t0


def fit_task(
    X: Any, weights: np.ndarray | None, k: int, cov: str,
    starts: Starts, settings: dict[str, Any], threads: int | None,
) -> tuple[Candidate, GaussianMixture | None, float]:
    """Fit one candidate from each of its starts, keep the best, score it.

    X is an array (with ``weights``) or a data source. Returns the row, the
    model and the total weight of the rows (``n`` of the BIC penalty).
    A fit that fails (ValueError, LinAlgError) gives a row with NaN criteria,
    the reason in ``error``, no model and a NaN weight.
    """
    t0 = time.perf_counter()
    best: GaussianMixture | None = None
    try:
        if isinstance(starts, Exception):  # the seeding's M-step failed
            raise starts
        for start in starts:
            model = GaussianMixture(k, covariance_type=cov, n_init=1, n_threads=threads,
                                    **start, **settings)
            with quiet_convergence():
                model._fit_parameters(X, sample_weight=weights)  # no labels_
            if best is None or beats(model.lower_bound_, best.lower_bound_):
                best = model
        assert best is not None
        loglik, entropy, n = criteria_totals(best, X, weights, threads)
    except (ValueError, np.linalg.LinAlgError) as err:
        return failed_row(k, cov, X, err, time.perf_counter() - t0), None, float("nan")
    row = scored_row(k, cov, best, loglik, entropy, n, time.perf_counter() - t0)
    return row, best, n


def scored_row(k: int, cov: str, model: GaussianMixture, loglik: float,
               entropy: float, n: float, seconds: float) -> Candidate:
    """A fitted candidate's row: its criteria from the total log-likelihood,
    classification entropy and total weight ``n`` of the rows."""
    p = model._n_parameters()
    bic = criteria.bic(loglik, n, p)
    return Candidate(
        n_components=k, covariance_type=cov, log_likelihood=loglik,
        n_parameters=p, bic=bic, aic=criteria.aic(loglik, p),
        icl=bic + 2.0 * entropy, converged=model.converged_, n_iter=model.n_iter_,
        time=seconds,
    )


def failed_row(k: int, cov: str, X: Any, err: Exception | None, seconds: float
               ) -> Candidate:
    """The row of a candidate whose fit failed: NaN criteria, the reason."""
    nan = float("nan")
    p = criteria.n_parameters(get_covariance_type(cov), k, n_features(X))
    return Candidate(k, cov, nan, p, nan, nan, nan, False, 0, seconds, str(err))


def n_features(X: Any) -> int:
    """Columns of an array or a data source."""
    return int(X.n_features) if hasattr(X, "n_features") else int(X.shape[1])


@contextlib.contextmanager
def quiet_convergence() -> Iterator[None]:
    """Ignore ConvergenceWarning, in the main thread only.

    ``warnings.catch_warnings`` swaps process-wide state and is not
    thread-safe; worker threads rely on the filter that :func:`~gaussmix.select`
    sets in the main thread around the whole run (worker processes set their
    own).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
