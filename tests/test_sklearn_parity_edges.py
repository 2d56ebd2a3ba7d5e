"""Edge cases where scikit-learn's GaussianMixture works: gaussmix must too.

Each test runs scikit-learn on the same input and call sequence as the
reference. Differences that are intended (README, "Differences from
scikit-learn") are pinned here with the reason, so that they stay deliberate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

X_TWO = np.r_[np.random.default_rng(0).normal(size=(30, 3)),
              np.random.default_rng(1).normal(size=(30, 3)) + 4]


def _same_start(X, K, ct="full"):
    """weights/means/precisions_init of scikit-learn after one EM step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGaussianMixture(K, covariance_type=ct, max_iter=1, tol=0,
                               random_state=0).fit(X)
    return dict(weights_init=sk.weights_, means_init=sk.means_,
                precisions_init=sk.precisions_)


@pytest.fixture(scope="module")
def both_fitted():
    kw = dict(max_iter=3, tol=0, random_state=4, **_same_start(X_TWO, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SkGaussianMixture(2, **kw).fit(X_TWO), GaussianMixture(2, **kw).fit(X_TWO)


@pytest.mark.parametrize("n_samples", [3.0, np.float64(3.0), np.float32(3.0),
                                       np.array(3), 1e1])
def test_sample_takes_a_whole_float_count_as_scikit_learn_does(both_fitted, n_samples):
    # gm.sample(1e4) is common; scikit-learn draws int(n_samples) rows.
    sk, gm = both_fitted
    sk_X, sk_y = sk.sample(n_samples)
    gm_X, gm_y = gm.sample(n_samples)
    assert gm_X.shape == (int(n_samples), 3)
    np.testing.assert_array_equal(gm_y, sk_y)
    np.testing.assert_allclose(gm_X, sk_X, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("n_samples", [2.5, 0.0, np.nan, np.inf, "3", None])
def test_sample_rejects_a_count_that_is_not_whole_and_positive(both_fitted, n_samples):
    # scikit-learn truncates 2.5 to 2 rows; gaussmix says what is wrong.
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        both_fitted[1].sample(n_samples)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
def test_tied_start_from_single_rows_is_their_exact_m_step(init_params):
    # Intended difference: from one seed row per component, scikit-learn's
    # tied covariance counts all rows (its tied M-step assumes every row's
    # responsibilities sum to one), so it starts near the raw second moment
    # times n/K; gaussmix takes the M-step of the seeds' responsibilities:
    # zero scatter plus reg_covar. Same seed rows, so the same means.
    X = load_iris().data
    kw = dict(covariance_type="tied", init_params=init_params, random_state=5)
    sk = SkGaussianMixture(3, **kw)
    sk._initialize_parameters(X, np.random.RandomState(5))
    gm = GaussianMixture(3, max_iter=0, **kw).fit(X)
    np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_, 1e-6 * np.eye(4), rtol=1e-12, atol=0)
    assert np.min(np.diag(sk.covariances_)) > 1  # scikit-learn: all rows counted


@pytest.mark.parametrize("kernel", ["reference", "fused"])
@pytest.mark.parametrize("distance", [1e8, 1e12])
def test_warm_start_refit_with_a_far_outlier(distance, kernel, monkeypatch):
    # A model fitted on clean rows is refitted (warm start) with one more row
    # ``distance`` away; it joins a component, whose variance along that axis
    # becomes huge: scikit-learn gets it right, and so must both of gaussmix's
    # full kernels, which sum second moments in the old precision's whitened
    # coordinates except for rows far from the component (there the rounding,
    # mapped back, cost 1e-3 relative at 1e8 and a failed fit from about 1e11).
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    X = np.r_[X_TWO, [[distance, 0.0, 0.0]]]
    kw = dict(max_iter=5, tol=0, warm_start=True, **_same_start(X_TWO, 2))
    models = SkGaussianMixture(2, **kw), GaussianMixture(2, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk, gm = (model.fit(X_TWO).set_params(max_iter=1).fit(X) for model in models)
    np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-6)


def _hand_built(cls, covariance_type):
    """A model set up by hand from known parameters, as users port one from
    elsewhere: weights_, means_ and precisions_cholesky_ only (the attributes
    scikit-learn's predictions read); full's factor from np.linalg.cholesky
    (lower triangular, precision = L L^T)."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2, 3, 3))
    covariances = A @ A.transpose(0, 2, 1) + np.eye(3)
    factors = {
        "full": np.linalg.cholesky(np.linalg.inv(covariances)),
        "tied": np.linalg.cholesky(np.linalg.inv(covariances[0])),
        "diag": 1 / np.sqrt(np.diagonal(covariances, axis1=1, axis2=2)),
        "spherical": np.array([0.5, 2.0]),
    }
    model = cls(2, covariance_type=covariance_type)
    model.weights_ = np.array([0.3, 0.7])
    model.means_ = X_TWO[[0, 40]]
    model.precisions_cholesky_ = factors[covariance_type]
    return model


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_hand_built_model_without_covariances_predicts(ct):
    sk, gm = _hand_built(SkGaussianMixture, ct), _hand_built(GaussianMixture, ct)
    np.testing.assert_allclose(gm.score_samples(X_TWO), sk.score_samples(X_TWO), rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(X_TWO), sk.predict_proba(X_TWO), atol=1e-12)
    np.testing.assert_array_equal(gm.predict(X_TWO), sk.predict(X_TWO))
    assert gm.score(X_TWO) == pytest.approx(sk.score(X_TWO), rel=1e-10)


def test_warm_start_refit_checks_feature_names_against_the_fit():
    # Intended difference: scikit-learn's fit records X's columns anew, so a
    # warm start continues silently on reordered columns (the means now
    # describe other features); gaussmix checks them as partial_fit does.
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(X_TWO, columns=["a", "b", "c"])
    kw = dict(warm_start=True, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        SkGaussianMixture(2, **kw).fit(X).fit(X[["b", "a", "c"]])
        model = GaussianMixture(2, **kw).fit(X)
        with pytest.raises(ValueError, match="same order as they were in fit"):
            model.fit(X[["b", "a", "c"]])
        model.set_params(warm_start=False).fit(X[["b", "a", "c"]])  # a fresh fit
    assert model.feature_names_in_.tolist() == ["b", "a", "c"]


def test_hand_built_model_samples_with_the_default_n_components():
    # Set up by hand on GaussianMixture() (n_components left at 1): scikit-learn
    # samples from the fitted weights_' components; so does gaussmix.
    models = []
    for cls in (SkGaussianMixture, GaussianMixture):
        model = _hand_built(cls, "diag")
        model.set_params(n_components=1, random_state=2)
        model.covariances_ = 1 / model.precisions_cholesky_**2
        models.append(model)
    (sk_X, sk_y), (gm_X, gm_y) = (model.sample(20) for model in models)
    np.testing.assert_array_equal(gm_y, sk_y)
    assert set(gm_y) == {0, 1}
    np.testing.assert_allclose(gm_X, sk_X, rtol=1e-12)


def test_hand_built_model_without_covariances_cannot_sample():
    # As scikit-learn's (AttributeError); NotFittedError is one.
    model = _hand_built(GaussianMixture, "full")
    with pytest.raises(AttributeError, match="covariances_"):
        model.sample(3)


def test_lower_bounds_are_numpy_floats_as_scikit_learns():
    X = np.random.default_rng(0).normal(size=(100, 2))
    sk, gm = (cls(2, random_state=0).fit(X) for cls in (SkGaussianMixture, GaussianMixture))
    assert type(gm.lower_bound_) is type(sk.lower_bound_) is np.float64
    assert {type(b) for b in gm.lower_bounds_} == {type(b) for b in sk.lower_bounds_}


@pytest.mark.parametrize("change", [{"covariance_type": "diag"}, {"n_components": 3}])
def test_warm_start_after_changing_the_model_says_what_to_do(change):
    # scikit-learn fails here with a broadcasting error; gaussmix says why
    X = np.random.default_rng(0).normal(size=(200, 3))
    gm = GaussianMixture(2, warm_start=True, random_state=0).fit(X)
    with pytest.raises(ValueError, match="warm_start=False"):
        gm.set_params(**change).fit(X)
    gm.set_params(warm_start=False).fit(X)  # starts afresh
    assert len(gm.weights_) == gm.n_components
