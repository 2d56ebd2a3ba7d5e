"""Model selection: choose the number of components and the covariance type.

:func:`select` fits one mixture per candidate ``(n_components, covariance_type)``
and scores each by BIC, AIC and ICL, as R's ``mclust`` does with ``Mclust()``.

Sign convention
---------------
All three criteria are *penalised deviances*: **lower is better**, exactly as
scikit-learn's :meth:`~sklearn.mixture.GaussianMixture.bic` and ``aic``::

    BIC = -2 log L + p log n
    AIC = -2 log L + 2 p
    ICL = BIC + 2 EN,   EN = -sum_i sum_k r_ik log r_ik

where ``log L`` is the total log-likelihood of the data at the fitted
parameters, ``p`` the number of free parameters, ``n`` the number of samples
and ``r_ik`` the responsibilities (posterior probabilities) of the fitted
model. ICL (Biernacki, Celeux and Govaert, 2000) adds the entropy of the soft
classification, so it prefers well-separated clusters; ``ICL >= BIC``.

``mclust`` reports ``BIC = 2 log L - p log n``, that is ``-BIC`` here (higher
is better there): a table from ``mclustBIC`` equals ``-result.table['bic']``.
mclust's ``icl`` uses the MAP classification instead of the entropy
(``BIC + 2 sum_i log max_k r_ik`` in its sign), so it can differ slightly.

With ``sample_weight``, ``log L`` and the entropy are weighted sums over rows
and ``n`` is the sum of the weights, so integer weights give the same criteria
as repeating rows.

Shared work
-----------
The initial responsibilities (k-means by default, as scikit-learn) depend only
on ``n_components`` and the random state, not on the covariance type, so they
are computed once per ``n_components`` and turned into each covariance type's
initial parameters with one M-step. With an integer ``random_state`` every
candidate starts exactly where ``GaussianMixture(n_components=K,
covariance_type=t, random_state=random_state, n_init=n_init)`` would, so
refitting the winner reproduces it. Candidates run in parallel with joblib
(``n_jobs``, threads by default); each candidate then uses one thread and
BLAS/OpenMP one thread each, so that the levels of parallelism do not
oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import criteria
from .engine.covariance import COVARIANCE_TYPES, get_covariance_type
from .engine.estep import EStepKernel
from .engine.init import initial_responsibilities, params_from_responsibilities
from .engine.params import MixtureParams
from .engine.sources import ArraySource, auto_chunk_size, fold
from .mixture import GaussianMixture
from .validation import INIT_METHODS, check_data, check_sample_weight

CRITERIA = ("bic", "aic", "icl")
ALL_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_CRITERION_LABEL = {"bic": "BIC", "aic": "AIC", "icl": "ICL"}

# Relative cost of one EM iteration by covariance type, to start the most
# expensive candidates first (better load balance across workers).
_COST_RANK = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}


@dataclass(frozen=True)
class Candidate:
    """One row of the selection table: a fitted ``(n_components, covariance_type)``.

    Attributes
    ----------
    n_components, covariance_type
        The candidate model.
    log_likelihood : float
        Total (weighted) log-likelihood of the data at the fitted parameters.
    n_parameters : int
        Number of free parameters ``p``.
    bic, aic, icl : float
        The criteria (lower is better); NaN when the fit failed.
    converged : bool
        Whether EM converged (for the best of the ``n_init`` starts).
    n_iter : int
        EM iterations of the best start.
    time : float
        Seconds spent fitting and scoring this candidate (all its starts),
        excluding the initial seeding shared by all covariance types.
    error : str or None
        Why the fit failed, or None.
    """

    n_components: int
    covariance_type: str
    log_likelihood: float
    n_parameters: int
    bic: float
    aic: float
    icl: float
    converged: bool
    n_iter: int
    time: float
    error: str | None = None

    def criterion(self, name: str) -> float:
        """The value of criterion ``name`` ('bic', 'aic' or 'icl')."""
        return float(getattr(self, _check_criterion(name)))


@dataclass
class SelectionResult:
    """What :func:`select` returns: every candidate's scores and the winner.

    Attributes
    ----------
    table : list of Candidate
        One record per ``(n_components, covariance_type)`` tried, ordered by
        covariance type (as requested) then ``n_components``.
    criterion : str
        The criterion used to choose ('bic', 'aic' or 'icl'; lower is better).
    best_ : Candidate
        The row of the chosen model.
    best_estimator_ : GaussianMixture
        The chosen model, fitted on the data.
    best_n_components_ : int
    best_covariance_type_ : str
    estimators_ : dict
        ``{(n_components, covariance_type): GaussianMixture}`` for every
        candidate that fitted.
    n_samples : float
        ``n`` in the BIC penalty (the sum of the weights, if any).
    seeding_time : dict
        ``{n_components: seconds}`` spent on the shared initialisation.
    total_time : float
        Wall-clock seconds of the whole selection.
    """

    table: list[Candidate]
    criterion: str
    best_estimator_: GaussianMixture
    estimators_: dict[tuple[int, str], GaussianMixture]
    n_samples: float
    seeding_time: dict[int, float] = field(default_factory=dict)
    total_time: float = 0.0

    @property
    def best_(self) -> Candidate:
        key = (self.best_n_components_, self.best_covariance_type_)
        return next(c for c in self.table
                    if (c.n_components, c.covariance_type) == key)

    @property
    def best_n_components_(self) -> int:
        return int(self.best_estimator_.n_components)

    @property
    def best_covariance_type_(self) -> str:
        return str(self.best_estimator_.covariance_type)

    @property
    def n_components(self) -> list[int]:
        """The distinct numbers of components tried, ascending."""
        return sorted({c.n_components for c in self.table})

    @property
    def covariance_types(self) -> list[str]:
        """The covariance types tried, in the order requested."""
        return list(dict.fromkeys(c.covariance_type for c in self.table))

    def records(self) -> list[dict[str, Any]]:
        """The table as a list of plain dicts (one per candidate)."""
        return [asdict(c) for c in self.table]

    def values(self, criterion: str | None = None) -> dict[str, np.ndarray]:
        """``{covariance_type: criterion values}`` over :attr:`n_components`.

        NaN where a candidate failed or was not tried.
        """
        name = _check_criterion(criterion or self.criterion)
        ks = self.n_components
        out = {t: np.full(len(ks), np.nan) for t in self.covariance_types}
        for c in self.table:
            out[c.covariance_type][ks.index(c.n_components)] = c.criterion(name)
        return out

    def to_pandas(self) -> Any:
        """The table as a :class:`pandas.DataFrame`, one row per candidate.

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                "SelectionResult.to_pandas() needs pandas: pip install pandas"
            ) from err
        columns = [f.name for f in fields(Candidate)]
        return pd.DataFrame(self.records(), columns=columns)

    def plot(self, ax: Any = None, *, criterion: str | None = None) -> Any:
        """Criterion against the number of components, one line per covariance type.

        Like mclust's BIC plot, but in this package's sign (lower is better);
        the chosen model is circled.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure is made when None.
        criterion : {'bic', 'aic', 'icl'}, default=None
            Which criterion to draw; the one used for the selection if None.

        Returns
        -------
        ax : matplotlib Axes
        """
        plt = _require_matplotlib()
        name = _check_criterion(criterion or self.criterion)
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.4))
        ks = np.asarray(self.n_components)
        markers = {"full": "o", "tied": "s", "diag": "^", "spherical": "D"}
        for cov, vals in self.values(name).items():
            ax.plot(ks, vals, marker=markers.get(cov, "o"), markersize=5, label=cov)
        best = self.best_
        ax.plot([best.n_components], [best.criterion(name)], linestyle="none",
                marker="o", markersize=14, markerfacecolor="none",
                markeredgecolor="black", markeredgewidth=1.5,
                label=f"chosen by {_CRITERION_LABEL[self.criterion]}: "
                      f"K={best.n_components}, {best.covariance_type}")
        ax.set_xticks(ks)
        ax.set_xlabel("number of components K")
        ax.set_ylabel(f"{_CRITERION_LABEL[name]} (lower is better)")
        ax.set_title(f"{_CRITERION_LABEL[name]} by number of components and "
                     "covariance type")
        ax.grid(True, alpha=0.3)
        ax.legend(title="covariance type", fontsize="small")
        return ax

    def __repr__(self) -> str:
        best = self.best_
        return (
            f"SelectionResult({len(self.table)} candidates, criterion="
            f"{self.criterion!r}, best: n_components={best.n_components}, "
            f"covariance_type={best.covariance_type!r}, "
            f"{self.criterion}={best.criterion(self.criterion):.6g})"
        )


# --------------------------------------------------------------------- select
def select(
    X: Any,
    n_components: int | Iterable[int] = range(1, 10),
    covariance_types: str | Sequence[str] = ALL_COVARIANCE_TYPES,
    criterion: str = "bic",
    *,
    n_init: int = 1,
    init_params: str = "kmeans",
    random_state: Any = None,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    max_iter: int = 100,
    sample_weight: Any = None,
    n_jobs: int | None = None,
    verbose: int = 0,
    progress: bool = False,
    callback: Callable[[Candidate], Any] | None = None,
) -> SelectionResult:
    """Fit a mixture for every ``(n_components, covariance_type)`` and pick the best.

    The one-call equivalent of looping over scikit-learn's
    ``GaussianMixture(...).fit(X).bic(X)``, as R's ``mclust`` does: every
    candidate is fitted, scored by BIC, AIC and ICL (lower is better for all
    three; see the module docstring for the sign convention and the mapping to
    mclust), and the one with the lowest ``criterion`` is returned fitted.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or sequence of str, default=('full', 'tied', 'diag', \
'spherical')
        Covariance types to try.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Criterion that chooses the model (lowest wins; ties go to the model
        with fewer parameters).
    n_init : int, default=1
        Initialisations per candidate; the best (highest likelihood) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        How initial responsibilities are drawn; drawn once per
        ``n_components`` (and per init) and shared by all covariance types.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisations. With an int, every candidate starts where
        ``GaussianMixture(..., random_state=random_state)`` starts.
    tol, reg_covar, max_iter : float, float, int
        As in :class:`~gaussmix.GaussianMixture`.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative row weights (see the module docstring for the criteria).
    n_jobs : int or None, default=None
        Candidates fitted at once, in joblib worker threads (NumPy releases
        the GIL in the heavy work; choose processes with
        ``joblib.parallel_config(backend="loky")``). None: all cores,
        except for small data (fewer than 50,000 numbers in X), whose
        candidates are fitted in turn in this process; -1: all cores; 1: in
        turn, each fit using all cores through its own threads. When
        candidates run in parallel each fit uses one thread, so that the two
        levels of parallelism do not oversubscribe the cores.
    verbose : int, default=0
        1 prints a line per finished candidate.
    progress : bool, default=False
        Show a live progress bar on standard error (rich).
    callback : callable, default=None
        Called with each :class:`Candidate` as soon as it is fitted (in the
        order they finish), e.g. to log progress.

    Returns
    -------
    result : SelectionResult

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix.selection import select   # also gaussmix.select
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> result = select(X, n_components=range(1, 5), random_state=0)
    >>> result.best_n_components_, result.best_covariance_type_
    (2, 'spherical')
    >>> len(result.table)
    16
    """
    t_start = time.perf_counter()
    criterion = _check_criterion(criterion)
    ks = _check_components(n_components)
    types = _check_covariance_types(covariance_types)
    _check_options(n_init, init_params)
    holder = GaussianMixture()
    X = check_data(holder, X, reset=True, min_samples=2)
    if ks[-1] > len(X):
        raise ValueError(
            f"n_components goes up to {ks[-1]} but X has only {len(X)} samples: "
            "a mixture needs at least one sample per component. Lower the "
            "largest n_components or add data."
        )
    weights = check_sample_weight(sample_weight, len(X))
    settings = {"tol": tol, "reg_covar": reg_covar, "max_iter": max_iter}
    seeds = _seeds(random_state, ks)

    n_workers, threads = _plan_workers(n_jobs, X)
    report = _Reporter(len(ks), len(ks) * len(types), verbose, progress, callback)
    run = _runner(n_workers)
    # Convergence is reported in the table (and once for the chosen model).
    with report, _single_threaded(threads == 1), _quiet_convergence():
        starts, seeding_time = {}, {}
        for k, per_type, seconds in run(
            (_seed_task, (X, weights, k, seeds[k], n_init, init_params, types,
                          reg_covar, threads))
            for k in sorted(ks, reverse=True)  # costly first: better balance
        ):
            starts[k], seeding_time[k] = per_type, seconds
            report.seeded(k)
        rows, models = {}, {}
        for row, model in run(
            (_fit_task, (X, weights, k, cov, starts[k][cov], settings, threads))
            for k in sorted(ks, reverse=True)
            for cov in sorted(types, key=lambda t: _COST_RANK[t])
        ):
            rows[(row.n_components, row.covariance_type)] = row
            if model is not None:
                models[(row.n_components, row.covariance_type)] = model
            report.fitted(row)

    table = [rows[(k, t)] for t in types for k in ks]
    best = _choose(table, criterion)
    best_model = models[(best.n_components, best.covariance_type)]
    _finish_best(best_model, X, n_init, init_params, random_state)
    if hasattr(holder, "feature_names_in_"):  # X was a DataFrame
        for model in models.values():
            model.feature_names_in_ = holder.feature_names_in_
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"The chosen model (n_components={best.n_components}, covariance_type="
            f"{best.covariance_type!r}) did not converge. Increase max_iter or tol, "
            "or check the data.", ConvergenceWarning, stacklevel=2,
        )
    return SelectionResult(
        table=table, criterion=criterion, best_estimator_=best_model,
        estimators_=models, n_samples=_total_weight(X, weights),
        seeding_time=seeding_time, total_time=time.perf_counter() - t_start,
    )


# ------------------------------------------------------------------- workers
Task = tuple[Callable[..., Any], tuple[Any, ...]]


def _runner(n_workers: int) -> Callable[[Iterable[Task]], Iterator[Any]]:
    """Run ``(func, args)`` tasks in turn, or with joblib (results as they end)."""
    if n_workers == 1:
        return lambda tasks: (func(*args) for func, args in tasks)
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_workers, prefer="threads",
                        return_as="generator_unordered")
    return lambda tasks: parallel(delayed(func)(*args) for func, args in tasks)


def _seed_task(
    X: np.ndarray, weights: np.ndarray | None, k: int, seed: Any, n_init: int,
    init_params: str, types: Sequence[str], reg_covar: float,
    threads: int | None,
) -> tuple[int, dict[str, list[MixtureParams]], float]:
    """Initial parameters of every covariance type from shared responsibilities."""
    t0 = time.perf_counter()
    rng = check_random_state(seed)
    n_threads = _threads(threads)
    source = ArraySource(X, weights, auto_chunk_size(k, X.shape[1]))
    per_type: dict[str, list[MixtureParams]] = {t: [] for t in types}
    for _ in range(n_init):
        resp = initial_responsibilities(X, weights, k, init_params, rng)
        for t in types:
            piece = get_covariance_type(t)
            per_type[t].append(
                params_from_responsibilities(source, resp, piece, reg_covar, n_threads)
            )
    return k, per_type, time.perf_counter() - t0


def _fit_task(
    X: np.ndarray, weights: np.ndarray | None, k: int, cov: str,
    starts: list[MixtureParams], settings: dict[str, Any], threads: int | None,
) -> tuple[Candidate, GaussianMixture | None]:
    """Fit one candidate from each of its starts, keep the best, score it."""
    t0 = time.perf_counter()
    piece = get_covariance_type(cov)
    best: GaussianMixture | None = None
    try:
        for params in starts:
            model = GaussianMixture(
                k, covariance_type=cov, n_init=1, n_threads=threads,
                weights_init=params.weights, means_init=params.means,
                precisions_init=piece.precisions(params.precisions_cholesky),
                **settings,
            )
            with _quiet_convergence():
                model._fit_parameters(X, sample_weight=weights)  # no labels_
            if best is None or model.lower_bound_ > best.lower_bound_:
                best = model
        assert best is not None
        loglik, entropy = log_likelihood_and_entropy(best, X, weights, threads)
    except (ValueError, np.linalg.LinAlgError) as err:
        nan = float("nan")
        row = Candidate(k, cov, nan, _n_parameters(cov, k, X.shape[1]), nan, nan,
                        nan, False, 0, time.perf_counter() - t0, str(err))
        return row, None
    p = best._n_parameters()
    bic = criteria.bic(loglik, _total_weight(X, weights), p)
    row = Candidate(
        n_components=k, covariance_type=cov, log_likelihood=loglik,
        n_parameters=p, bic=bic, aic=criteria.aic(loglik, p),
        icl=bic + 2.0 * entropy, converged=best.converged_, n_iter=best.n_iter_,
        time=time.perf_counter() - t0,
    )
    return row, best


def log_likelihood_and_entropy(
    model: GaussianMixture, X: np.ndarray, sample_weight: np.ndarray | None = None,
    n_threads: int | None = None,
) -> tuple[float, float]:
    """Total log-likelihood and classification entropy of X, in one pass.

    Returns ``(sum_i w_i log p(x_i), -sum_i w_i sum_k r_ik log r_ik)`` for a
    fitted ``model`` (``w_i = 1`` without weights).
    """
    check_is_fitted(model)
    X = np.asarray(X)
    X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    params = MixtureParams(model.weights_, model.means_, model.covariances_,
                           model.precisions_cholesky_)
    kernel = EStepKernel.build(get_covariance_type(model.covariance_type), params,
                               X.dtype)

    def chunk(Xc: np.ndarray, wc: np.ndarray | None) -> np.ndarray:
        a, _ = kernel.weighted_log_prob(Xc)  # log(pi_k) + log N(x | k), (n, K)
        a = a.astype(np.float64, copy=False)
        np.maximum(a, np.finfo(np.float64).min, out=a)  # an empty component: -inf
        top = a.max(axis=1)
        e = np.exp(a - top[:, None])
        total = e.sum(axis=1)
        log_norm = np.log(total) + top
        # Entropy of r = e / total: log_norm - sum_k r_k a_k (>= 0; clip rounding).
        ent = np.maximum(log_norm - np.einsum("ik,ik->i", e, a) / total, 0.0)
        if wc is None:
            return np.array([log_norm.sum(), ent.sum()])
        return np.array([np.dot(wc, log_norm), np.dot(wc, ent)])

    size = auto_chunk_size(model.n_components, X.shape[1])
    totals = fold(chunk, ArraySource(X, sample_weight, size), _threads(n_threads))
    return float(totals[0]), float(totals[1])


# ------------------------------------------------------------------- helpers
# Below this many numbers in X, candidates are so quick that starting worker
# processes costs more than it saves: n_jobs=None then fits them in turn.
SMALL_DATA = 50_000


@contextlib.contextmanager
def _quiet_convergence() -> Iterator[None]:
    """Ignore ConvergenceWarning, in the main thread only.

    ``warnings.catch_warnings`` swaps process-wide state and is not
    thread-safe; worker threads rely on the filter that :func:`select` sets
    in the main thread around the whole run (worker processes set their own).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _single_threaded(active: bool) -> Any:
    """Limit BLAS/OpenMP to one thread while each fit runs on one thread.

    Candidates in parallel threads must not each start a BLAS/OpenMP pool
    (oversubscription); on small data fitted in turn those pools only add
    start-up and spin-wait overhead (k-means in particular).
    """
    if not active:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _plan_workers(n_jobs: int | None, X: np.ndarray) -> tuple[int, int | None]:
    """(candidates at once, threads per fit) for ``n_jobs``.

    Parallel candidates get one thread each; candidates fitted in turn use all
    cores (None) unless the data is small, where threads only add overhead.
    """
    from joblib import effective_n_jobs

    if n_jobs is None:
        if X.size < SMALL_DATA:
            return 1, 1
        return effective_n_jobs(-1), 1
    n_workers = effective_n_jobs(n_jobs)
    return n_workers, (None if n_workers == 1 else 1)


def _threads(threads: int | None) -> int:
    from .engine.threads import resolve_threads

    return resolve_threads(threads)


def _total_weight(X: np.ndarray, weights: np.ndarray | None) -> float:
    return float(len(X)) if weights is None else float(weights.sum())


def _n_parameters(cov: str, k: int, d: int) -> int:
    return criteria.n_parameters(get_covariance_type(cov), k, d)


def _choose(table: list[Candidate], criterion: str) -> Candidate:
    ok = [c for c in table if c.error is None and np.isfinite(c.criterion(criterion))]
    if not ok:
        reasons = "; ".join(f"K={c.n_components} {c.covariance_type}: {c.error}"
                            for c in table[:3])
        raise ValueError(
            f"Every candidate failed to fit ({reasons}). Increase reg_covar or "
            "scale the data."
        )
    return min(ok, key=lambda c: (c.criterion(criterion), c.n_parameters))


def _finish_best(
    model: GaussianMixture, X: np.ndarray, n_init: int, init_params: str,
    random_state: Any,
) -> None:
    """Make the winner look like a plain ``GaussianMixture`` fitted on X.

    Its constructor parameters become those that reproduce the fit (with an
    int random_state), and ``labels_`` is restored.
    """
    model.set_params(weights_init=None, means_init=None, precisions_init=None,
                     n_init=n_init, init_params=init_params, n_threads=None,
                     random_state=random_state)
    model.labels_ = model.predict(X)


def _seeds(random_state: Any, ks: list[int]) -> dict[int, Any]:
    """Per-K seed: the int itself (as a plain loop over scikit-learn would use),
    else a fresh int drawn from the random state."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state,
                                                                        bool):
        return {k: int(random_state) for k in ks}
    rng = check_random_state(random_state)
    return {k: int(rng.randint(np.iinfo(np.int32).max)) for k in ks}


def _check_criterion(name: Any) -> str:
    if not isinstance(name, str) or name.lower() not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {name!r}.")
    return name.lower()


def _check_components(n_components: Any) -> list[int]:
    values: list[Any] = (
        [n_components] if np.isscalar(n_components) else list(n_components)
    )
    if not values or not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1
        for k in values
    ):
        raise ValueError(
            "n_components must be an int >= 1 or a non-empty iterable of them "
            f"(e.g. range(1, 10)), got {n_components!r}."
        )
    return sorted({int(k) for k in values})


def _check_covariance_types(types: Any) -> list[str]:
    values = [types] if isinstance(types, str) else list(types)
    bad = [t for t in values if t not in COVARIANCE_TYPES]
    if not values or bad:
        raise ValueError(
            f"covariance_types must be a non-empty subset of {list(ALL_COVARIANCE_TYPES)}"
            f", got {types!r}."
        )
    return list(dict.fromkeys(values))


def _check_options(n_init: Any, init_params: Any) -> None:
    if not (isinstance(n_init, (int, np.integer)) and not isinstance(n_init, bool)
            and n_init >= 1):
        raise ValueError(f"n_init must be an int >= 1, got {n_init!r}.")
    if init_params not in INIT_METHODS:
        raise ValueError(
            f"init_params must be one of {list(INIT_METHODS)}, got {init_params!r}."
        )


def _require_matplotlib() -> Any:
    from ._optional import require

    return require("matplotlib.pyplot", "plot", "plotting")


class _Reporter:
    """Progress of a selection: a rich bar and/or one line per candidate."""

    def __init__(self, n_seed: int, n_fit: int, verbose: int, progress: bool,
                 callback: Callable[[Candidate], Any] | None = None) -> None:
        self.verbose, self.progress, self.callback = verbose, progress, callback
        self.n_seed, self.n_fit, self.done = n_seed, n_fit, 0
        self._bar: Any = None

    def __enter__(self) -> None:
        if self.progress:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._bar.start()
            self._seed = self._bar.add_task("initialising", total=self.n_seed)
            self._fit = self._bar.add_task("fitting", total=self.n_fit)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def seeded(self, k: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._seed)

    def fitted(self, row: Candidate) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._fit, advance=1, description=(
                f"fitting (last: K={row.n_components} {row.covariance_type})"))
        if self.callback is not None:
            self.callback(row)
        if self.verbose:
            status = row.error or (
                f"bic {row.bic:.6g}  aic {row.aic:.6g}  icl {row.icl:.6g}  "
                f"iter {row.n_iter}{'' if row.converged else ' (not converged)'}")
            print(f"[{self.done}/{self.n_fit}] K={row.n_components} "
                  f"{row.covariance_type}: {status}  ({row.time:.2f}s)", flush=True)


# ---------------------------------------------------------- search estimator
class GaussianMixtureSearch(ClusterMixin, DensityMixin, BaseEstimator):
    """A scikit-learn estimator that selects and fits the best Gaussian mixture.

    ``fit`` runs :func:`select`; prediction and scoring delegate to
    ``best_estimator_``. Use it where an estimator is expected (pipelines,
    ``clone``); use :func:`select` for the full table and plot.

    Parameters
    ----------
    n_components : int, iterable of int or None, default=None
        Numbers of components to try; None means ``range(1, 10)``.
    covariance_types : str, sequence of str or None, default=None
        Covariance types to try; None means all four.
    criterion, n_init, init_params, random_state, tol, reg_covar, max_iter, \
n_jobs, verbose
        As in :func:`select`.

    Attributes
    ----------
    result_ : SelectionResult
    best_estimator_ : GaussianMixture
    best_params_ : dict
        ``{'n_components': K, 'covariance_type': t}`` of the chosen model.
    labels_ : ndarray of shape (n_samples,)
    n_iter_ : int
        EM iterations of the chosen model.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix.selection import GaussianMixtureSearch
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> search = GaussianMixtureSearch(n_components=range(1, 4), random_state=0)
    >>> search.fit(X).best_params_["n_components"]
    2
    """

    def __init__(
        self,
        n_components: Any = None,
        *,
        covariance_types: Any = None,
        criterion: str = "bic",
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_jobs: int | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None
            ) -> GaussianMixtureSearch:
        """Select and fit the best mixture on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixtureSearch
        """
        self.result_ = select(
            X,
            range(1, 10) if self.n_components is None else self.n_components,
            ALL_COVARIANCE_TYPES if self.covariance_types is None
            else self.covariance_types,
            self.criterion,
            n_init=self.n_init, init_params=self.init_params,
            random_state=self.random_state, tol=self.tol, reg_covar=self.reg_covar,
            max_iter=self.max_iter, sample_weight=sample_weight, n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        self.best_estimator_ = self.result_.best_estimator_
        self.best_params_ = {"n_components": self.best_estimator_.n_components,
                             "covariance_type": self.best_estimator_.covariance_type}
        self.n_features_in_ = self.best_estimator_.n_features_in_
        self.n_iter_ = self.best_estimator_.n_iter_
        if hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.labels_ = self.best_estimator_.labels_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row (of the chosen model)."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-row log-likelihood under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.score(X, sample_weight=sample_weight)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.sample(n_samples)

    def bic(self, X: Any) -> float:
        """BIC of the chosen model on X (lower is better)."""
        check_is_fitted(self)
        return self.best_estimator_.bic(X)

    def aic(self, X: Any) -> float:
        """AIC of the chosen model on X (lower is better)."""
        check_is_fitted(self)
        return self.best_estimator_.aic(X)


__all__ = [
    "CRITERIA",
    "Candidate",
    "GaussianMixtureSearch",
    "SelectionResult",
    "log_likelihood_and_entropy",
    "select",
]
