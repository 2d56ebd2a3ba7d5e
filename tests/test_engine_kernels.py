"""The chunk kernels: correct densities, the same numbers on a second array
namespace (array-api-strict, which rejects anything outside the standard),
the same numbers whatever the centre groups, and no NaN on overflow."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import groups as groups_module
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.sources import spec_of
from gaussmix.engine.xp import to_host

xps = pytest.importorskip("array_api_strict")


@pytest.fixture(scope="module")
def data():
    X, _ = draw_mixture(800, [[0, 0, 0], [6, 0, 1], [0, 7, -2]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]], [0.3, 0.3, 0.4])
    return X


def _model(X, ct):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=5,
                               tol=0.0).fit(X)


def _kernel(model, X):
    return EStepKernel.build(model._piece, model._params, spec_of(X))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_log_densities_equal_scipy(data, ct):
    model = _model(data, ct)
    full = model._piece.to_full(model.covariances_, 3, data.shape[1])
    expected = np.log(sum(
        w * multivariate_normal(m, c).pdf(data)
        for w, m, c in zip(model.weights_, model.means_, full, strict=True)))
    np.testing.assert_allclose(model.score_samples(data), expected, rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_kernels_run_unchanged_on_array_api_strict(data, ct):
    model = _model(data, ct)
    strict = xps.asarray(data)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(data))
    on_numpy, on_strict = _kernel(model, data), _kernel(model, strict)
    for method in ("log_likelihood", "log_resp"):
        np.testing.assert_allclose(to_host(getattr(on_strict, method)(strict)),
                                   getattr(on_numpy, method)(data), rtol=1e-12,
                                   atol=1e-12)
    np.testing.assert_array_equal(to_host(on_strict.labels(strict), np.int64),
                                  on_numpy.labels(data))
    a = on_numpy.statistics(data, w)
    b = on_strict.statistics(strict, xps.asarray(w))
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12,
                                   atol=1e-9)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_centre_groups_change_no_result(data, ct, monkeypatch):
    """Many centres (forced by a tiny spread limit) give the numbers one gives."""
    model = _model(data, ct)
    one = _kernel(model, data)
    assert len(one.state.groups) == 1
    monkeypatch.setattr(groups_module, "MAX_SPREAD", 1e-3)
    many = _kernel(model, data)
    assert len(many.state.groups) == 3
    np.testing.assert_allclose(many.log_likelihood(data), one.log_likelihood(data),
                               rtol=1e-12)
    np.testing.assert_allclose(many.log_resp(data), one.log_resp(data), atol=1e-10)
    a, b = one.statistics(data), many.statistics(data)
    a = a.recentred(b.shift)
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9,
                                   atol=1e-7)
    strict = xps.asarray(data)
    np.testing.assert_allclose(to_host(_kernel(model, strict).log_likelihood(strict)),
                               one.log_likelihood(data), rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_far_components_get_their_own_centres(ct):
    X, _ = draw_mixture(400, [[0, 0], [1e6, 1e6]], [[1, 1], [1, 1]], [0.5, 0.5])
    model = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    assert len(_kernel(model, X).state.groups) == 2
    full = model._piece.to_full(model.covariances_, 2, 2)
    np.testing.assert_allclose(full, np.broadcast_to(np.eye(2), full.shape), atol=0.3)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("scale", [1e160, 7e40, 1e300])
def test_rows_far_from_everything_give_minus_inf_not_nan(data, ct, scale):
    model = _model(data, ct)
    far = np.array([[scale, 0.0, 0.0], [scale, scale, scale], [-scale, 1.0, 2.0]])
    both = np.vstack([far, data[:5]])
    log_density = model.score_samples(both)
    assert not np.any(np.isnan(log_density))
    assert np.all(log_density[:3] < -1e40)
    np.testing.assert_allclose(log_density[3:], model.score_samples(data[:5]))
    proba = model.predict_proba(both)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # all the weight on the component nearest in Mahalanobis terms, exactly
    chol = model._piece.to_full(model.precisions_cholesky_, 3, 3)
    for x, p, label in zip(far, proba[:3], model.predict(far), strict=True):
        nearest = np.argmin([_exact_mahalanobis(x, m, u)
                             for m, u in zip(model.means_, chol, strict=True)])
        assert label == nearest and p[nearest] == pytest.approx(1.0)


def _exact_mahalanobis(x, mean, chol):
    """|(x - mean) U|^2 in exact rational arithmetic."""
    r = [Fraction(float(a)) - Fraction(float(b)) for a, b in zip(x, mean, strict=True)]
    columns = [[Fraction(float(v)) for v in col] for col in np.asarray(chol).T]
    return sum(sum(a * b for a, b in zip(r, col, strict=True)) ** 2 for col in columns)


def test_float32_chunks_stay_float32_in_the_hot_products(data):
    model = _model(data, "full")
    X32 = data.astype(np.float32)
    kernel = _kernel(model, X32)
    scores, _, _, _ = kernel.scores(X32)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(to_host(kernel.log_likelihood(X32)),
                               model.score_samples(data), rtol=1e-4)
