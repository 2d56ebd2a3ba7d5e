"""Initialisation: scikit-learn's draws, and a first M-step that is exact beside
outliers (means from plain sums, second moments from each row's residual)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES

from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.init import initial_responsibilities, params_from_responsibilities
from gaussmix.engine.reducers import Sequential
from gaussmix.engine.sources import ArraySource


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
