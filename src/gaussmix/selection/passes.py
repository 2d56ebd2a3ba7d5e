"""Selection's two passes over the data, made with the engine's internals.

- :func:`initial_parameters`: the starting points of every covariance type for
  one number of components, from initial responsibilities drawn once (k-means
  by default) and one M-step per covariance type.
- :func:`log_likelihood_and_entropy`: the total log-likelihood and the
  classification entropy of a fitted candidate, in one chunked pass.

Every call from :mod:`gaussmix.selection` into the engine's internals
(``initial_responsibilities``, ``params_from_responsibilities``,
``EStepKernel``, ``ArraySource``, ``fold``, ``auto_chunk_size``) is here; the
rest of the package sees only :class:`~gaussmix.GaussianMixture` and these two
functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..engine.covariance import get_covariance_type
from ..engine.incomplete import kernel_type
from ..engine.init import initial_responsibilities, params_from_responsibilities
from ..engine.logspace import log_normalise
from ..engine.params import MixtureParams
from ..engine.reducers import fold, reducer_for
from ..engine.sources import ArraySource, Chunk, auto_chunk_size, spec_of
from ..engine.threads import resolve_threads
from ..engine.xp import to_host
from ..inputs import initial_rows, is_torch
from ..mixture import GaussianMixture

Start = dict[str, Any]  # GaussianMixture's *_init parameters: name -> array


def initial_parameters(
    X: np.ndarray, weights: np.ndarray | None, k: int, rng: np.random.RandomState,
    n_init: int, init_params: str, types: Sequence[str], reg_covar: float,
    n_threads: int | None,
) -> dict[str, list[Start]]:
    """``n_init`` starts of a K-component mixture for each covariance type.

    Each start's responsibilities are drawn once (``init_params``) and shared
    by all ``types``: one M-step per type turns them into that type's initial
    parameters, returned as ``GaussianMixture`` keyword arguments
    (``weights_init``, ``means_init``, ``precisions_init``).
    """
    starts: dict[str, list[Start]] = {t: [] for t in types}
    for _ in range(n_init):
        rows, w = initial_rows(X, weights, rng)  # a tensor: GaussianMixture's host sample
        source = ArraySource(rows, w, auto_chunk_size(k, X.shape[1]))
        reducer = reducer_for(resolve_threads(n_threads), source)
        resp = initial_responsibilities(rows, w, k, init_params, rng)
        for t in types:
            piece = get_covariance_type(t)
            params = params_from_responsibilities(source, resp, piece, reg_covar,
                                                  reducer)
            starts[t].append({
                "weights_init": params.weights, "means_init": params.means,
                "precisions_init": piece.precisions(params.precisions_cholesky),
            })
    return starts


def log_likelihood_and_entropy(
    model: GaussianMixture, X: np.ndarray, sample_weight: np.ndarray | None = None,
    n_threads: int | None = None,
) -> tuple[float, float]:
    """Total log-likelihood and classification entropy of X, in one pass.

    Returns ``(sum_i w_i log p(x_i), -sum_i w_i sum_k r_ik log r_ik)`` for a
    fitted ``model`` (``w_i = 1`` without weights).
    """
    check_is_fitted(model)
    if not is_torch(X):  # tensors are scored on their device
        X = np.asarray(X)
        X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    params = MixtureParams(*map(to_host, (model.weights_, model.means_,
                                          model.covariances_, model.precisions_cholesky_)))
    missing = not is_torch(X) and bool(np.isnan(X).any())  # NaN only under missing=
    source = ArraySource(X, sample_weight, auto_chunk_size(model.n_components, X.shape[1]),
                         missing=missing)
    kernel = kernel_type(source).build(get_covariance_type(model.covariance_type), params,
                                       spec_of(X))

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
            return np.array([log_norm.sum(), ent.sum()])
        return np.array([np.dot(c.sample_weight, log_norm),
                         np.dot(c.sample_weight, ent)])

    totals = fold(chunk, source, reducer_for(resolve_threads(n_threads), source))
    return float(totals[0]), float(totals[1])
