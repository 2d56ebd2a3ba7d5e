"""The EM loop and initialisation: the reducer is a parameter, the first M-step
is exact, and a non-finite likelihood stops with advice."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.init import initial_responsibilities, params_from_responsibilities
from gaussmix.engine.loop import EMSettings, run_em
from gaussmix.engine.reducers import Sequential
from gaussmix.engine.sources import ArraySource


class CountingReducer:
    """Sequential, counting the chunks it maps: a reducer from outside."""

    def __init__(self) -> None:
        self.chunks = 0

    def map(self, func, source):
        for chunk in source.chunks():
            self.chunks += 1
            yield func(chunk)


def test_the_loop_takes_any_reducer(blobs):
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    source = ArraySource(blobs, None, 100)
    counting = CountingReducer()
    run = run_em(source, get_covariance_type("full"), gm._params,
                 EMSettings(tol=0.0, max_iter=4, reg_covar=1e-6, reducer=counting))
    plain = run_em(source, get_covariance_type("full"), gm._params,
                   EMSettings(tol=0.0, max_iter=4, reg_covar=1e-6, reducer=Sequential()))
    assert counting.chunks == 4 * source.n_chunks
    np.testing.assert_array_equal(run.params.means, plain.params.means)


def _reference_first_m_step(X, labels, K, ct, reg_covar=1e-6):
    """Means and covariances of hard-assigned rows, from residuals (float64)."""
    nk = np.array([np.sum(labels == k) for k in range(K)], float)
    means = np.array([X[labels == k].mean(axis=0) for k in range(K)])
    full = np.array([(X[labels == k] - means[k]).T @ (X[labels == k] - means[k]) / nk[k]
                     for k in range(K)])
    d = X.shape[1]
    cov = {"full": full + reg_covar * np.eye(d),
           "tied": np.einsum("k,kij->ij", nk, full) / nk.sum() + reg_covar * np.eye(d),
           "diag": np.diagonal(full, axis1=1, axis2=2) + reg_covar,
           "spherical": np.trace(full, axis1=1, axis2=2) / d + reg_covar}[ct]
    return nk / nk.sum(), means, cov


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("outlier", [1e3, 1e7, 1e12])
def test_first_m_step_is_exact_beside_an_outlier(ct, outlier):
    X = np.random.default_rng(0).normal(size=(300, 3))
    X[0] = outlier
    labels = np.r_[0, np.arange(299) % 2 + 1]
    resp = np.eye(3)[labels]
    source = ArraySource(X, None, 128)
    params = params_from_responsibilities(source, lambda a, b: resp[a:b],
                                          get_covariance_type(ct), 1e-6, Sequential())
    weights, means, cov = _reference_first_m_step(X, labels, 3, ct)
    np.testing.assert_allclose(params.weights, weights, rtol=1e-12)
    np.testing.assert_allclose(params.means, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(params.covariances, cov, rtol=1e-9, atol=1e-20)


def test_responsibilities_match_scikit_learn_draws(blobs):
    rng = np.random.RandomState(0)
    resp = initial_responsibilities(blobs, None, 3, "random", rng)(0, len(blobs))
    expected = np.random.RandomState(0).uniform(size=(len(blobs), 3))
    np.testing.assert_allclose(resp, expected / expected.sum(axis=1)[:, None])


def test_a_likelihood_that_overflows_stops_with_advice(blobs):
    X = np.vstack([blobs, [[1e160, 0.0]]])
    start = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    gm = GaussianMixture(3, weights_init=start.weights_, means_init=start.means_,
                         precisions_init=start.precisions_)
    with pytest.raises(ValueError, match="Scale the data"):
        gm.fit(X)
