"""The search loop: :func:`select` seeds every number of components, fits
every candidate (in turn or with joblib), and chooses the best."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..engine.covariance import COVARIANCE_TYPES
from ..engine.sources import ArraySource, scale_weights
from ..engine.threads import single_threaded
from ..inputs import adopted, dask_source, is_dask, is_data_source, selection_data
from ..mixture import GaussianMixture
from ..validation import INIT_METHODS, check_parameters
from .candidates import fit_task, quiet_convergence, seed_task, seeds
from .lockstep import fit_in_lockstep
from .progress import Reporter
from .result import Candidate, SelectionResult, check_criterion

# Every registered covariance type, from the most parameters to the fewest.
ALL_COVARIANCE_TYPES = tuple(COVARIANCE_TYPES)

# Criteria within this relative distance of the lowest tie (rounding, not data).
TIE_TOLERANCE = 1e-9

# Below this many numbers in X, candidates are so quick that starting worker
# processes costs more than it saves: n_jobs=None then fits them in turn.
SMALL_DATA = 50_000


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
    missing: str = "raise",
    shared_passes: bool | None = None,
) -> SelectionResult:
    """Fit a mixture for every ``(n_components, covariance_type)`` and pick the best.

    The one-call equivalent of looping over scikit-learn's
    ``GaussianMixture(...).fit(X).bic(X)``, as R's ``mclust`` does: every
    candidate is fitted, scored by BIC, AIC and ICL (lower is better for all
    three; see the module docstring for the sign convention and the mapping to
    mclust), and the one with the lowest ``criterion`` is returned fitted.

    Parameters
    ----------
    X : array-like or torch tensor of shape (n_samples, n_features), data source \
or Dask array
        Training data: an array-like (a DataFrame keeps its column names); a
        torch tensor, which stays on its device (every candidate is fitted
        there, from starts drawn on the host, see
        :mod:`gaussmix.backends.torch`); a data source
        (:class:`~gaussmix.NpySource`, ``ParquetSource``, ``ZarrSource``,
        :class:`~gaussmix.IterableSource`; weights come with it), read chunk
        by chunk; or a Dask array / DataFrame of numeric
        columns, whose passes run on the Dask scheduler (persist it first,
        see :mod:`gaussmix.backends.dask`). Rows not in memory are seeded
        from the same bounded sample a single fit initialises from (all rows
        up to 50,000, so small data starts where it starts in memory), and
        their candidates are fitted in lockstep over all cores or the cluster
        (see ``shared_passes``; ``n_jobs`` applies to in-memory data only).
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or sequence of str, default=('full', 'tied', 'diag', \
'spherical')
        Covariance types to try.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Criterion that chooses the model (lowest wins; values within 1e-9
        relative of the lowest tie, and ties go to the model with fewer
        parameters, then to the first in the table).
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
        Non-negative row weights (see the module docstring for the criteria);
        a Dask array aligned with a Dask X; None for a data source.
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
        1 prints a line per finished candidate and, for candidates fitted in
        lockstep (see ``shared_passes``; they all finish together), a line
        after each shared EM pass with the number of runs still iterating.
    progress : bool, default=False
        Show a live progress bar on standard error (rich); in lockstep its
        description follows the shared passes.
    callback : callable, default=None
        Called with each :class:`Candidate` as soon as it is fitted (in the
        order they finish), e.g. to log progress.
    missing : {'raise', 'marginalize'}, default='raise'
        As in :class:`~gaussmix.GaussianMixture`; starts are seeded on a
        column-mean-filled copy of X.
    shared_passes : bool or None, default=None
        Fit the candidates in lockstep: each EM pass over the rows computes
        the statistics of every candidate (and start) still running, each
        then takes its own M-step and stops on its own, and one more pass
        scores them all; the results equal fitting them one by one. None:
        for rows not in memory (a Dask array, a file, a stream), where every
        pass costs a scheduled graph or a read, so the rows are read once per
        iteration of the longest fit instead of once per candidate and
        iteration; in memory the candidates are fitted one by one, in
        parallel (``n_jobs``), which measured about as fast. True: also for
        a NumPy array (the candidates then share the chunks' threads); False:
        one by one. A torch tensor is always fitted one by one.

    Returns
    -------
    result : SelectionResult

    Raises
    ------
    ValueError
        When the largest ``n_components`` exceeds the number of rows, or
        every candidate failed to fit (a failed candidate alone is recorded
        in its row's ``error`` and skipped).

    Warns
    -----
    ConvergenceWarning
        When the chosen model did not converge (the other candidates'
        convergence is in the table, without warnings).

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
    criterion = check_criterion(criterion)
    ks = _check_components(n_components)
    types = _check_covariance_types(covariance_types)
    _check_options(n_init, init_params)
    # records X's features; sizes a source's chunks; checks the shared settings
    # once (as fit would: a bad one is the caller's, not a candidate's, failure)
    holder = GaussianMixture(ks[-1], tol=tol, reg_covar=reg_covar, max_iter=max_iter,
                             random_state=random_state, missing=missing)
    check_parameters(holder)
    X, weights = _training_rows(holder, X, sample_weight)
    X_seed = _seeding_rows(holder, X, weights)
    rows = _n_rows(X)
    if rows is not None and ks[-1] > rows:
        raise ValueError(
            f"n_components goes up to {ks[-1]} but X has only {rows} samples: "
            "a mixture needs at least one sample per component. Lower the "
            "largest n_components or add data."
        )
    settings = {"tol": tol, "reg_covar": reg_covar, "max_iter": max_iter, "missing": missing}
    seed_of = seeds(random_state, ks)

    n_workers, threads = _plan_workers(n_jobs, X)
    report = Reporter(len(ks), len(ks) * len(types), verbose, progress, callback)
    run = _runner(n_workers)
    # Convergence is reported in the table (and once for the chosen model).
    with report, _one_thread_each(threads == 1), quiet_convergence():
        starts, seeding_time = {}, {}
        for k, per_type, seconds in run(
            (seed_task, (X_seed, weights, k, seed_of[k], n_init, init_params, types,
                         reg_covar, threads))
            for k in sorted(ks, reverse=True)  # costly first: better balance
        ):
            starts[k], seeding_time[k] = per_type, seconds
            report.seeded(k)
        order = [(k, cov) for k in sorted(ks, reverse=True)
                 for cov in sorted(types, key=_cost_rank)]
        if _in_lockstep(shared_passes, X):
            fitted: Iterable[Any] = fit_in_lockstep(
                X, weights, [(k, cov, starts[k][cov]) for k, cov in order], settings,
                n_workers if n_workers > 1 else threads, report.shared_pass)
        else:
            fitted = run((fit_task, (X, weights, k, cov, starts[k][cov], settings,
                                     threads)) for k, cov in order)
        table_rows, models, n_samples = {}, {}, float("nan")
        for row, model, n in fitted:
            table_rows[(row.n_components, row.covariance_type)] = row
            if model is not None:
                models[(row.n_components, row.covariance_type)] = model
                n_samples = n
            report.fitted(row)

    table = [table_rows[(k, t)] for t in types for k in ks]
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
        estimators_=models, n_samples=n_samples,
        seeding_time=seeding_time, total_time=time.perf_counter() - t_start,
    )


# ------------------------------------------------------------------- workers
Task = tuple[Callable[..., Any], tuple[Any, ...]]


def _in_lockstep(shared_passes: bool | None, X: Any) -> bool:
    """Whether the candidates share passes: by default for rows not in memory
    (a Dask array, a file, a stream), whose passes cost a scheduled graph or a
    read each; on request for a NumPy array too; never for a tensor."""
    if shared_passes is None:
        return is_data_source(X)
    return bool(shared_passes) and (is_data_source(X) or isinstance(X, np.ndarray))


def _runner(n_workers: int) -> Callable[[Iterable[Task]], Iterator[Any]]:
    """Run ``(func, args)`` tasks in turn, or with joblib (results as they end)."""
    if n_workers == 1:
        return lambda tasks: (func(*args) for func, args in tasks)
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_workers, prefer="threads",
                        return_as="generator_unordered")
    return lambda tasks: parallel(delayed(func)(*args) for func, args in tasks)


def _plan_workers(n_jobs: int | None, X: Any) -> tuple[int, int | None]:
    """(candidates at once, threads per fit) for ``n_jobs``.

    Parallel candidates get one thread each; candidates fitted in turn use all
    cores (None) unless the data is small, where threads only add overhead.
    Rows that are not a NumPy array (a file, a stream, a Dask array, a
    tensor) get one worker, over all cores (or the Dask workers, or the
    tensor's device): a source is not read by several fits at once (its
    candidates share passes instead, see ``_in_lockstep``).
    """
    from joblib import effective_n_jobs

    if not isinstance(X, np.ndarray):
        return 1, None
    if n_jobs is None:
        if X.size < SMALL_DATA:
            return 1, 1
        return effective_n_jobs(-1), 1
    n_workers = effective_n_jobs(n_jobs)
    return n_workers, (None if n_workers == 1 else 1)


def _one_thread_each(active: bool) -> Any:
    """Limit BLAS and OpenMP to one thread while each fit runs on one thread.

    Candidates in parallel threads must not each start a BLAS/OpenMP pool
    (oversubscription); on small data fitted in turn those pools only add
    start-up and spin-wait overhead (k-means in particular).
    """
    return single_threaded(user_api=None) if active else contextlib.nullcontext()


def _cost_rank(covariance_type: str) -> int:
    """Position in the registry: the costliest types (most parameters) first,
    for a better balance of the load across workers."""
    return list(COVARIANCE_TYPES).index(covariance_type)


def _choose(table: list[Candidate], criterion: str) -> Candidate:
    ok = [c for c in table if c.error is None and np.isfinite(c.criterion(criterion))]
    if not ok:
        reasons = "; ".join(f"K={c.n_components} {c.covariance_type}: {c.error}"
                            for c in table[:3])
        # the advice fits covariances that could not be factored, not bad data
        advice = (" Increase reg_covar or scale the data." if "covariance" in reasons
                  else "")
        raise ValueError(f"Every candidate failed to fit ({reasons}).{advice}")
    # Values equal to rounding tie (K=1 full and tied are the same model, whose
    # criteria may differ in the last bits): fewer parameters, then the first.
    lowest = min(c.criterion(criterion) for c in ok)
    tied = [c for c in ok
            if c.criterion(criterion) - lowest <= TIE_TOLERANCE * max(abs(lowest), 1.0)]
    return min(tied, key=lambda c: c.n_parameters)


def _finish_best(
    model: GaussianMixture, X: Any, n_init: int, init_params: str,
    random_state: Any,
) -> None:
    """Make the winner look like a plain ``GaussianMixture`` fitted on X.

    Its constructor parameters become those that reproduce the fit (with an
    int random_state), and ``labels_`` is restored as ``fit`` sets it: an
    array for in-memory X, a lazy Dask array for Dask, none for files and
    streams (n numbers in memory; ``predict`` streams them instead).
    """
    model.set_params(weights_init=None, means_init=None, precisions_init=None,
                     n_init=n_init, init_params=init_params, n_threads=None,
                     random_state=random_state)
    if not is_data_source(X) or hasattr(X, "map_rows"):
        model.labels_ = model.predict(X)


# ---------------------------------------------------------------------- data
def _training_rows(holder: GaussianMixture, X: Any, sample_weight: Any
                   ) -> tuple[Any, np.ndarray | None]:
    """``(rows, weights)``: a validated array (or tensor) and its weights,
    or a data source (Dask collections become one) whose weights come with
    it; X's features (and names) recorded on ``holder``."""
    if is_dask(X):
        return dask_source(holder, X, sample_weight, reset=True), None
    if is_data_source(X):
        if sample_weight is not None:
            raise ValueError("Pass sample weights through the data source (as "
                             "(rows, weights) chunks or NpySource(sample_weight=...)"
                             "), not as sample_weight, when X is a data source.")
        return adopted(holder, X, reset=True), None
    return selection_data(holder, X, sample_weight)


def _seeding_rows(holder: GaussianMixture, X: Any, weights: np.ndarray | None) -> Any:
    """The rows the starts are drawn from, as ``fit`` draws them: with
    ``missing='marginalize'``, rows or columns of an array with nothing
    observed refused, as ``fit`` refuses them, and a file or chunk source
    that reads NaN as missing values (their draws fill NaN with column
    means, see :func:`gaussmix.engine.init.mean_filled`)."""
    if holder.missing == "raise":
        return X
    if is_data_source(X):
        return holder._marked(X, fitting=True)
    if isinstance(X, np.ndarray):
        holder._marked(ArraySource(X, scale_weights(weights), max(len(X), 1)),
                       fitting=True)
    return X


def _n_rows(X: Any) -> int | None:
    """Rows of an array, or of a source that knows them."""
    return X.n_rows if is_data_source(X) else len(X)


# -------------------------------------------------------------------- checks
def _check_components(n_components: Any) -> list[int]:
    values: list[Any] = (
        [n_components] if np.isscalar(n_components) else _listed(n_components)
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
    values = [types] if isinstance(types, str) else _listed(types)
    bad = [t for t in values if not isinstance(t, str) or t not in COVARIANCE_TYPES]
    if not values or bad:
        raise ValueError(
            f"covariance_types must be a non-empty subset of {list(ALL_COVARIANCE_TYPES)}"
            f", got {types!r}."
        )
    return list(dict.fromkeys(str(t) for t in values))  # plain str, not np.str_


def _listed(values: Any) -> list[Any]:
    """The items of an iterable; [] (refused by the callers' checks) for
    anything else, such as None."""
    try:
        return list(values)
    except TypeError:
        return []


def _check_options(n_init: Any, init_params: Any) -> None:
    if not (isinstance(n_init, (int, np.integer)) and not isinstance(n_init, bool)
            and n_init >= 1):
        raise ValueError(f"n_init must be an int >= 1, got {n_init!r}.")
    if init_params not in INIT_METHODS:
        raise ValueError(
            f"init_params must be one of {list(INIT_METHODS)}, got {init_params!r}."
        )
