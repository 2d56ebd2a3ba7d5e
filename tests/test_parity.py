"""Same results as scikit-learn's GaussianMixture from the same start."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture


def _synthetic():
    X, _ = draw_mixture(2000, [[0, 0, 0], [5, 5, 0], [0, 6, 6], [7, 0, 3]],
                        [[1, 2, 1], [1, 1, 1], [2, 1, 0.5], [1, 1, 1]],
                        [0.25, 0.25, 0.25, 0.25], seed=3)
    return X


DATASETS = {
    "synthetic": (_synthetic, 4, 1e-6),
    "iris": (lambda: load_iris().data, 3, 1e-6),
    "wine": (lambda: load_wine().data, 3, 1e-6),
    # digits has constant pixels: a larger reg_covar keeps the problem well posed
    "digits": (lambda: load_digits().data, 5, 1e-2),
}
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def _fit_both(X, K, ct, reg_covar, max_iter=10):
    start = SkGaussianMixture(K, covariance_type=ct, max_iter=1, tol=0,
                              reg_covar=reg_covar, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
        init = dict(weights_init=start.weights_, means_init=start.means_,
                    precisions_init=start.precisions_)
        kw = dict(covariance_type=ct, max_iter=max_iter, tol=0, reg_covar=reg_covar,
                  **init)
        return SkGaussianMixture(K, **kw).fit(X), GaussianMixture(K, **kw).fit(X)


def _assert_relative(actual, expected, rtol):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.max(np.abs(expected))
    assert np.max(np.abs(actual - expected)) <= rtol * scale


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", DATASETS)
def test_same_parameters_as_sklearn_from_same_start(name, ct):
    load, K, reg = DATASETS[name]
    sk, gm = _fit_both(load(), K, ct, reg)
    for attr in ATTRIBUTES:
        _assert_relative(getattr(gm, attr), getattr(sk, attr), 1e-8)
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-8)
    assert gm.n_iter_ == sk.n_iter_


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_default_initialisation_reaches_sklearn_likelihood(ct):
    X = _synthetic()
    sk = SkGaussianMixture(4, covariance_type=ct, random_state=0).fit(X)
    gm = GaussianMixture(4, covariance_type=ct, random_state=0).fit(X)
    assert abs(gm.score(X) - sk.score(X)) < 1e-3


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_initialisations_start_where_sklearn_starts(init_params):
    # Two iterations: for single-row starts scikit-learn's first lower bound uses
    # weights that do not sum to one (nk / n_samples); gaussmix normalises them.
    X = load_iris().data
    kw = dict(covariance_type="full", init_params=init_params, max_iter=2, tol=0,
              random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(3, **kw).fit(X)
        gm = GaussianMixture(3, **kw).fit(X)
    _assert_relative(gm.means_, sk.means_, 1e-8)
    _assert_relative(gm.covariances_, sk.covariances_, 1e-8)
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-8)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_scores_and_predictions_match_sklearn(ct):
    X = load_wine().data
    sk, gm = _fit_both(X, 3, ct, 1e-6, max_iter=5)
    np.testing.assert_allclose(gm.score_samples(X), sk.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(gm.predict_proba(X), sk.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(gm.predict(X), sk.predict(X))
    assert gm.bic(X) == pytest.approx(sk.bic(X), rel=1e-10)
    assert gm.aic(X) == pytest.approx(sk.aic(X), rel=1e-10)
    assert gm._n_parameters() == sk._n_parameters()


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_input_close_to_float64(ct):
    X = _synthetic()
    kw = dict(covariance_type=ct, random_state=0, max_iter=20, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g64 = GaussianMixture(4, **kw).fit(X)
        g32 = GaussianMixture(4, **kw).fit(X.astype(np.float32))
    assert g32.means_.dtype == np.float64  # fitted arrays are always float64
    _assert_relative(g32.means_, g64.means_, 1e-4)
    _assert_relative(g32.covariances_, g64.covariances_, 1e-3)
    assert g32.lower_bound_ == pytest.approx(g64.lower_bound_, rel=1e-5)
