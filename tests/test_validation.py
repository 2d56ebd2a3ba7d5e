"""Bad input gets a clear error: type and message are checked."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from gaussmix import GaussianMixture
from gaussmix.validation import InvalidParameterError

X_OK = np.random.default_rng(0).normal(size=(50, 2))


@pytest.fixture(scope="module")
def fitted():
    return GaussianMixture(2, random_state=0).fit(X_OK)


def test_nan_reports_count_and_first_position():
    X = X_OK.copy()
    X[7, 1] = np.nan
    X[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite value\(s\) \(1 NaN, 1 inf\)"
                       r"; the first is at row 7, column 1"):
        GaussianMixture(2).fit(X)


def test_one_dimensional_input_says_how_to_reshape():
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        GaussianMixture(2).fit(np.arange(10.0))


def test_non_numeric_data():
    X = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)
    with pytest.raises(ValueError, match="must contain only numbers"):
        GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_components = 5, n_samples = 3"):
        GaussianMixture(5).fit(X_OK[:3])


def test_wrong_number_of_features_at_predict(fitted):
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture "
                           "is expecting 2 features"):
            getattr(fitted, method)(np.ones((4, 3)))


def test_nan_at_predict_time(fitted):
    X = np.ones((3, 2))
    X[2, 0] = np.nan
    with pytest.raises(ValueError, match="first is at row 2, column 0"):
        fitted.predict(X)


def test_unfitted_model():
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X_OK)


@pytest.mark.parametrize("param,value,match", [
    ("n_components", 0, "'n_components' parameter .* an int >= 1. Got 0"),
    ("n_components", 1.5, "an int >= 1"),
    ("covariance_type", "round", r"one of \['diag', 'full', 'spherical', 'tied'\]"),
    ("tol", -1.0, "'tol' parameter .* >= 0"),
    ("reg_covar", np.nan, "'reg_covar' parameter .* finite"),
    ("max_iter", -1, "'max_iter' parameter .* >= 0"),
    ("n_init", 0, "'n_init' parameter .* >= 1"),
    ("init_params", "kmedoids", "'init_params' parameter of GaussianMixture must be one of"),
    ("verbose_interval", 0, "'verbose_interval'"),
    ("chunk_size", 0, "'chunk_size' parameter of GaussianMixture must be None or an int >= 1"),
    ("n_threads", -2, "'n_threads'"),
    ("callback", "print", "'callback' parameter of GaussianMixture must be None or a callable"),
])
def test_invalid_parameter_values(param, value, match):
    with pytest.raises(InvalidParameterError, match=match):
        GaussianMixture(**{"n_components": 2, param: value}).fit(X_OK)


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights_init=[0.5, 0.6]), "weights_init must sum to 1, but sums to 1.1"),
    (dict(weights_init=[1.5, -0.5]), r"weights_init must lie in \[0, 1\]"),
    (dict(weights_init=[1.0]), r"weights_init should have the shape \(2,\)"),
    (dict(means_init=np.zeros((3, 2))), r"means_init should have the shape \(2, 2\)"),
    (dict(means_init=[[0, np.nan], [1, 1]]), "means_init contains NaN"),
    (dict(precisions_init=np.stack([np.eye(2), -np.eye(2)])),
     r"precisions_init\[1\] \(full precision\) should be symmetric, "
     "positive-definite"),
    (dict(precisions_init=np.stack([np.eye(2), [[1, 2], [0, 1]]])),
     r"precisions_init\[1\] .* should be symmetric"),
    (dict(precisions_init=np.eye(3)), r"precisions_init should have the shape "
     r"\(2, 2, 2\)"),
    (dict(covariance_type="diag", precisions_init=[[1, 1], [1, 0]]),
     "diag precision.* should be positive"),
    (dict(covariance_type="spherical", precisions_init=[1, -1]),
     "spherical precision.* should be positive"),
    (dict(covariance_type="tied", precisions_init=[[1, 0], [0, -1]]),
     "tied precision.* positive-definite"),
])
def test_invalid_initial_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, **kwargs).fit(X_OK)


@pytest.mark.parametrize("weights,match", [
    (-np.ones(50), "must be non-negative, but 50 weight.* the first is -1.0 at row 0"),
    (np.r_[np.ones(49), np.nan], "sample_weight contains NaN.* row 49"),
    (np.r_[np.ones(49), np.inf], "sample_weight contains NaN or infinity"),
    (np.ones(10), r"sample_weight must have shape \(50,\)"),
    (np.zeros(50), "sums to zero"),
])
def test_invalid_sample_weight(weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(X_OK, sample_weight=weights)


def test_sample_needs_a_positive_count(fitted):
    with pytest.raises(ValueError, match="at least one sample"):
        fitted.sample(0)
