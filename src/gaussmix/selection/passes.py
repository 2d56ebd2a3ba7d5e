"""Selection's two passes over the data, made with the engine's internals.

- :func:`initial_parameters`: the starting points of every covariance type for
  one number of components, from initial responsibilities drawn once (k-means
  by default) and one M-step per covariance type.
- :func:`criteria_totals` (and :func:`log_likelihood_and_entropy`): the total
  log-likelihood, the classification entropy and the total weight of a
  fitted candidate, in one chunked pass (:func:`shared_criteria_totals`: of
  several candidates in one pass).
- :func:`fit_runs` (over the rows of :func:`em_source`): EM from many starts
  in lockstep with the engine's one loop (:mod:`.lockstep` uses it).

Both take the rows as an in-memory array or torch tensor (with its
weights) or as a data source: a Dask array's :class:`~gaussmix.backends.dask.DaskSource`, a file
(:class:`~gaussmix.NpySource`, ``ParquetSource``, ``ZarrSource``) or an
:class:`~gaussmix.IterableSource`. From a source, the shared seeding works on
the bounded sample single fits initialise from (all rows up to 50,000, see
:func:`gaussmix.engine.init.drawn_responsibilities`) and the criteria pass is
the engine's fold with the source's reducer (a tree reduction on the Dask
workers), so rows never all reach memory.

Every call from :mod:`gaussmix.selection` into the engine's internals
(``drawn_responsibilities``, ``params_from_responsibilities``,
``EStepKernel``, ``ArraySource``, ``fold``, ``auto_chunk_size``,
``run_batch``) is here; the
rest of the package sees only :class:`~gaussmix.GaussianMixture` and these
functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..engine.covariance import get_covariance_type
from ..engine.incomplete import kernel_type
from ..engine.init import drawn_responsibilities, params_from_responsibilities
from ..engine.logspace import log_normalise
from ..engine.loop import RUN_ERRORS, EMRun, EMSettings, EMStart, run_batch
from ..engine.params import MixtureParams
from ..engine.reducers import fold, reducer_for
from ..engine.sources import (
    ArraySource,
    Chunk,
    DataSource,
    auto_chunk_size,
    scale_weights,
)
from ..engine.threads import resolve_threads, single_threaded_blas
from ..engine.xp import to_host
from ..inputs import fit_reading, is_dask, is_data_source, is_torch, sized
from ..mixture import GaussianMixture
from ..validation import check_initial_parameters, check_parameters, check_weighted_rows

__all__ = ["RUN_ERRORS", "EMRun", "Start", "Starts", "criteria_totals", "em_source", "fit_runs",
           "initial_parameters", "log_likelihood_and_entropy", "shared_criteria_totals",
           "start_params"]

Start = dict[str, Any]  # GaussianMixture's *_init parameters: name -> array
Starts = list[Start] | Exception  # a candidate's starts, or why none could be made


def as_source(X: Any, weights: np.ndarray | None, n_components: int) -> DataSource:
    """The rows as a data source chunked for ``n_components``: an array (a
    tensor stays on its device, a Dask array on its workers) with its
    weights, or a data source as it is (its weights come with it)."""
    if is_dask(X):
        from ..backends.dask import DaskSource

        X, weights = DaskSource(X, weights), None
    if is_data_source(X):
        if weights is not None:
            raise ValueError("A data source brings its own weights; pass "
                             "sample_weight=None with it.")
        return sized(X, auto_chunk_size(n_components, X.n_features))
    if is_torch(X):
        return ArraySource(X, weights, auto_chunk_size(n_components, X.shape[1]))
    X = np.asarray(X)
    X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    return ArraySource(X, weights, auto_chunk_size(n_components, X.shape[1]),
                       missing=bool(np.isnan(X).any()))  # NaN only under missing=


def initial_parameters(
    X: Any, weights: np.ndarray | None, k: int, rng: np.random.RandomState,
    n_init: int, init_params: str, types: Sequence[str], reg_covar: float,
    n_threads: int | None,
) -> dict[str, Starts]:
    """``n_init`` starts of a K-component mixture for each covariance type.

    Each start's responsibilities are drawn once (``init_params``, on the
    rows a single fit would initialise from, with the same random numbers)
    and shared by all ``types``: one M-step per type turns them into that
    type's initial parameters, returned as ``GaussianMixture`` keyword
    arguments (``weights_init``, ``means_init``, ``precisions_init``). A
    type whose M-step fails (a singular covariance with ``reg_covar=0``),
    and every type of a K whose rows cannot be drawn (a data source with
    fewer rows, or rows of positive weight, than K), gets the error
    instead, which fails that candidate alone, as its own ``fit`` would fail.
    """
    source = _seeding_source(X, weights, k)
    starts: dict[str, Starts] = {t: [] for t in types}
    for _ in range(n_init):
        try:  # a K a data source's rows cannot seed (too few rows, or rows of
            # positive weight) fails alone, as its own fit would
            rows, resp = drawn_responsibilities(source, k, init_params, rng)
        except ValueError as err:
            return {t: err for t in types}
        reducer = reducer_for(resolve_threads(n_threads), rows)
        for t in types:
            done = starts[t]
            if isinstance(done, Exception):
                continue
            piece = get_covariance_type(t)
            try:
                params = params_from_responsibilities(rows, resp, piece, reg_covar,
                                                      reducer)
            except RUN_ERRORS as err:
                starts[t] = err
                continue
            done.append({
                "weights_init": params.weights, "means_init": params.means,
                "precisions_init": piece.precisions(params.precisions_cholesky),
            })
    return starts


def _seeding_source(X: Any, weights: np.ndarray | None, k: int) -> DataSource:
    """The source a single fit of X initialises from: for a tensor, the
    torch backend's (whose host sample ``GaussianMixture().fit(X)`` draws);
    else :func:`as_source`."""
    if is_torch(X):
        from ..backends.torch import TorchSource

        return TorchSource(X, scale_weights(weights))
    return as_source(X, scale_weights(weights), k)  # as fit scales them


def log_likelihood_and_entropy(
    model: GaussianMixture, X: Any, sample_weight: np.ndarray | None = None,
    n_threads: int | None = None,
) -> tuple[float, float]:
    """Total log-likelihood and classification entropy of X, in one pass.

    Returns ``(sum_i w_i log p(x_i), -sum_i w_i sum_k r_ik log r_ik)`` for a
    fitted ``model`` (``w_i = 1`` without weights). X may be a data source
    (its weights come with it).
    """
    loglik, entropy, _ = criteria_totals(model, X, sample_weight, n_threads)
    return loglik, entropy


def criteria_totals(
    model: GaussianMixture, X: Any, sample_weight: np.ndarray | None = None,
    n_threads: int | None = None,
) -> tuple[float, float, float]:
    """``(log L, entropy, n)`` of X under ``model`` in one pass: the totals of
    :func:`log_likelihood_and_entropy` and the total weight (the number of
    rows without weights), in the units of the weights as given."""
    return shared_criteria_totals([model], X, sample_weight, n_threads)[0]


def shared_criteria_totals(
    models: Sequence[GaussianMixture], X: Any, sample_weight: np.ndarray | None = None,
    n_threads: int | None = None,
) -> list[tuple[float, float, float]]:
    """:func:`criteria_totals` of every model, from one pass over X."""
    for model in models:
        check_is_fitted(model)
    source = as_source(X, sample_weight, max(m.n_components for m in models))
    source = models[0]._marked(source, fitting=False)  # NaN of a file or chunk source
    chunk_totals = [_criteria_chunk(model, source) for model in models]
    totals = fold(lambda c: np.stack([f(c) for f in chunk_totals]), source,
                  reducer_for(resolve_threads(n_threads), source))
    # A Dask source scales its weights by a power of two (exact to undo).
    totals = np.ldexp(totals, -getattr(source, "weight_exponent", 0))
    return [(float(t[0]), float(t[1]), float(t[2])) for t in totals]


def _criteria_chunk(model: GaussianMixture, source: DataSource
                    ) -> Callable[[Chunk], np.ndarray]:
    """A chunk's ``[log L, entropy, weight]`` under ``model``."""
    params = MixtureParams(*map(to_host, (model.weights_, model.means_,
                                          model.covariances_, model.precisions_cholesky_)))
    kernel = kernel_type(source).build(get_covariance_type(model.covariance_type),
                                       params, source.spec)

    def chunk(c: Chunk) -> np.ndarray:
        scores, row, _, _ = kernel.scores(c.X)  # log(pi_k) + log N(x | k), (K, n)
        log_resp, log_norm = log_normalise(scores, axis=0)
        log_resp, log_norm = to_host(log_resp), to_host(log_norm)
        if row is not None:
            log_norm = log_norm + to_host(row)
        resp = np.exp(log_resp)
        # Entropy: -sum_k r_k log r_k (0 log 0 = 0; >= 0, clip the rounding).
        terms = resp * np.where(resp > 0, log_resp, 0.0)
        ent = np.maximum(-terms.sum(axis=0), 0.0)
        if c.sample_weight is None:
            return np.array([log_norm.sum(), ent.sum(), float(len(log_norm))])
        w = to_host(c.sample_weight)
        return np.array([np.dot(w, log_norm), np.dot(w, ent), w.sum()])

    return chunk


def start_params(model: GaussianMixture, n_features: int) -> MixtureParams:
    """The parameters a fit of ``model`` starts from when its ``weights_init``,
    ``means_init`` and ``precisions_init`` are all given (validated and
    converted as ``fit`` does)."""
    piece = model._piece
    init = check_initial_parameters(model, piece, n_features)
    weights, means, precisions = init["weights"], init["means"], init["precisions"]
    assert weights is not None and means is not None and precisions is not None
    chol = piece.precisions_cholesky_from_precisions(precisions)
    return MixtureParams(weights, means, piece.covariances_from_cholesky(chol), chol)


def em_source(X: Any, weights: np.ndarray | None, tasks: Sequence[tuple[int, str, Any]],
              missing: str) -> DataSource:
    """The rows the fits read: a data source as it is (sized by
    :func:`~gaussmix.select`), or an in-memory array as ``fit`` makes it
    (weights scaled, marked for missing values), in chunks small enough for
    the costliest candidate."""
    if is_data_source(X):  # (a file or chunk source reads NaN as missing values)
        return GaussianMixture(missing=missing)._marked(fit_reading(X), fitting=True)
    d = X.shape[1]
    chunk = min(auto_chunk_size(k, d, get_covariance_type(cov)) for k, cov, _ in tasks)
    source = ArraySource(X, scale_weights(weights), chunk)
    return GaussianMixture(missing=missing)._marked(source, fitting=True)


def fit_runs(source: DataSource, models: list[GaussianMixture],
             settings: dict[str, Any], threads: int | None,
             on_pass: Callable[[int, int], Any] | None = None
             ) -> list[EMRun | Exception]:
    """The run of every model from its start (or why it could not start),
    all in one batch of the engine's EM loop."""
    starts: list[EMStart] = []
    outcome: list[EMRun | Exception | int] = []
    n_weighted = _weighted_rows(source)
    for model in models:
        try:
            check_parameters(model)
            if n_weighted is not None:  # as fit checks them
                check_weighted_rows(n_weighted, model.n_components)
            start = EMStart(model._piece, start_params(model, source.n_features))
        except RUN_ERRORS as err:
            outcome.append(err)
            continue
        outcome.append(len(starts))
        starts.append(start)
    em = EMSettings(tol=settings["tol"], max_iter=settings["max_iter"],
                    reg_covar=settings["reg_covar"],
                    reducer=reducer_for(resolve_threads(threads), source))
    with single_threaded_blas():
        runs = run_batch(source, starts, em, on_pass=on_pass)
    return [runs[o] if isinstance(o, int) else o for o in outcome]


def _weighted_rows(source: DataSource) -> int | None:
    """Rows of positive weight, where known without a pass over the rows: a
    Dask source counts them as it checks its weights, in-memory weights here."""
    n_weighted = getattr(source, "n_weighted", None)
    if isinstance(source, ArraySource) and source.sample_weight is not None:
        n_weighted = int(np.count_nonzero(to_host(source.sample_weight)))
    return n_weighted
