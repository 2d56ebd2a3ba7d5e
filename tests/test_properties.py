"""Property tests for trustworthy numbers: over random shapes, covariance
types, dtypes, data scales, offsets and sample weights, a fit gives finite
parameters and its outputs are never NaN; where it cannot fit, it says so with
a ValueError that gives advice.

Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
LOG_2PI = math.log(2 * math.pi)


@st.composite
def problems(draw, degenerate=None):
    """A data set, its weights (or None) and the estimator's parameters."""
    n = draw(st.integers(5, 200))
    d = draw(st.integers(1, 5))
    K = draw(st.integers(1, min(4, n)))
    ct = draw(st.sampled_from(COVARIANCE_TYPES))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    scale = 10.0 ** draw(st.integers(-6, 6))
    offset = draw(st.sampled_from([0.0, 1.0, -1e3, 1e6, -1e6]))
    seed = draw(st.integers(0, 2**32 - 1))
    weighted = draw(st.booleans())
    decades = draw(st.integers(0, 12))  # orders of magnitude the weights span
    weight_scale = 10.0 ** draw(st.integers(-100, 100))
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, d)) * 5
    labels = rng.integers(0, K, size=n)
    X = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.3, 2.0, size=d)
    if degenerate == "equal rows":
        X[:] = X[0]
    elif degenerate == "constant feature":
        X[:, draw(st.integers(0, d - 1))] = X[0, 0]
    X = (X * scale + offset).astype(dtype)
    w = None
    if weighted:
        w = 10.0 ** rng.uniform(-decades / 2, decades / 2, size=n) * weight_scale
    params = dict(n_components=K, covariance_type=ct, random_state=0)
    return X, w, params


def is_degenerate(X):
    """All rows equal, or a feature constant (after the cast to X's dtype)."""
    return bool(np.any(np.ptp(X, axis=0) == 0))


def sklearn_fits(X, params):
    """Whether scikit-learn fits X (it takes no sample weights: unweighted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            SkGaussianMixture(**params).fit(X)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return False
    return True


def fit_or_refuse(X, w, params):
    """The fitted model, or None after checking the refusal is acceptable:
    a ValueError that gives advice, on degenerate data or where scikit-learn
    cannot fit either."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            return GaussianMixture(**params).fit(X, sample_weight=w)
    except ValueError as err:
        message = str(err)
        assert "reg_covar" in message or "scale" in message, message
        assert is_degenerate(X) or not sklearn_fits(X, params), (
            f"gaussmix refused data that scikit-learn fits: {message}")
        return None


def log_density_bound(model):
    """``max_k log N(mu_k | mu_k, Sigma_k)``: no mixture density exceeds it."""
    d = model.means_.shape[1]
    U = np.asarray(model.precisions_cholesky_, dtype=float)
    ct = model.covariance_type
    if ct == "full":
        log_det = np.log(np.diagonal(U, axis1=1, axis2=2)).sum(axis=1)
    elif ct == "tied":
        log_det = np.array([np.log(np.diag(U)).sum()])
    elif ct == "diag":
        log_det = np.log(U).sum(axis=1)
    else:
        log_det = d * np.log(U)
    return float(np.max(log_det) - 0.5 * d * LOG_2PI)


def check_model(model, X):
    for name in FITTED:
        value = np.asarray(getattr(model, name))
        assert np.all(np.isfinite(value)), f"{name} is not finite"
    assert math.isfinite(model.lower_bound_)
    assert np.all(model.weights_ >= 0)
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    float32 = X.dtype == np.float32
    # The rows, and rows far outside them (not beyond the dtype's range).
    far = (X[:3].astype(np.float64) * 1e3).astype(X.dtype)
    probes = np.vstack([X, far])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        log_density = model.score_samples(probes)
        proba = model.predict_proba(probes)
    assert not np.any(np.isnan(log_density)), "score_samples gave NaN"
    bound = log_density_bound(model)
    slack = (1e-5 if float32 else 1e-10) * (1.0 + abs(bound))
    assert np.all(log_density <= bound + slack), (np.max(log_density), bound)
    assert np.all(np.isfinite(proba)), "predict_proba is not finite"
    assert np.all((proba >= 0) & (proba <= 1 + 1e-6))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0,
                               atol=1e-6 if float32 else 1e-12)


@SETTINGS
@given(problems())
def test_fit_is_finite_and_outputs_are_never_nan(problem):
    X, w, params = problem
    model = fit_or_refuse(X, w, params)
    if model is not None:
        check_model(model, X)


@SETTINGS
@given(problems(degenerate="equal rows") | problems(degenerate="constant feature"))
def test_degenerate_data_fit_or_refuse_with_advice(problem):
    X, w, params = problem
    model = fit_or_refuse(X, w, params)
    if model is not None:
        check_model(model, X)
