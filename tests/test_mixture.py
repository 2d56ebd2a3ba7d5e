"""Behaviour of GaussianMixture beyond parity: weights, recovery, degenerate
data, invariances, progress, sampling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def _start(X, K, ct, seed=0):
    """Explicit initial parameters, so two fits share one starting point."""
    gm = GaussianMixture(K, covariance_type=ct, max_iter=0, random_state=seed)
    gm.fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_,
                precisions_init=gm.precisions_)


def _quiet_fit(gm, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, **kw)


def _assert_all_finite(gm):
    for name in FITTED + ("lower_bound_",):
        assert np.all(np.isfinite(getattr(gm, name))), name


# -- sample weights ------------------------------------------------------------
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(blobs, ct):
    counts = np.random.default_rng(0).integers(0, 4, size=len(blobs))
    init = _start(blobs, 3, ct)
    kw = dict(covariance_type=ct, max_iter=15, tol=0, **init)
    weighted = _quiet_fit(GaussianMixture(3, **kw), blobs, sample_weight=counts)
    repeated = _quiet_fit(GaussianMixture(3, **kw), np.repeat(blobs, counts, axis=0))
    for name in FITTED:
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name),
                                   rtol=1e-9, atol=1e-12)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_weighted_score_is_weighted_mean(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    w = np.random.default_rng(2).uniform(0, 3, len(blobs))
    expected = np.sum(w * gm.score_samples(blobs)) / w.sum()
    assert gm.score(blobs, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_weights_change_the_fit(blobs):
    w = np.where(blobs[:, 0] > 4, 10.0, 1.0)
    plain = GaussianMixture(3, random_state=0).fit(blobs)
    weighted = GaussianMixture(3, random_state=0).fit(blobs, sample_weight=w)
    right = np.argmax(weighted.means_[:, 0])
    assert weighted.weights_[right] > plain.weights_[np.argmax(plain.means_[:, 0])] + 0.3


# -- recovery of known parameters ----------------------------------------------
def test_recovers_generating_parameters():
    """5 components in 10-D, 50k rows: estimates within ~5 standard errors."""
    rng = np.random.default_rng(42)
    K, d, n = 5, 10, 50_000
    means = rng.normal(scale=6.0, size=(K, d))
    scales = rng.uniform(0.5, 1.5, size=(K, d))
    weights = np.array([0.1, 0.15, 0.2, 0.25, 0.3])
    X, _ = draw_mixture(n, means, scales, weights, seed=7)
    gm = GaussianMixture(K, random_state=0, n_init=2).fit(X)
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in means]
    assert sorted(order) == list(range(K))
    n_k = weights * n
    # standard error of a mean is sigma/sqrt(n_k), of a variance sigma^2*sqrt(2/n_k),
    # of a weight sqrt(w(1-w)/n)
    se_mean = scales / np.sqrt(n_k)[:, None]
    assert np.all(np.abs(gm.means_[order] - means) < 5 * se_mean)
    variances = np.diagonal(gm.covariances_[order], axis1=1, axis2=2)
    se_var = scales**2 * np.sqrt(2 / n_k)[:, None]
    assert np.all(np.abs(variances - scales**2) < 5 * se_var)
    se_weight = np.sqrt(weights * (1 - weights) / n)
    assert np.all(np.abs(gm.weights_[order] - weights) < 5 * se_weight)
    off_diag = gm.covariances_[order] - np.stack([np.diag(v) for v in variances])
    se_cov = np.outer(scales.max(axis=0), scales.max(axis=0)) / np.sqrt(n_k.min())
    assert np.all(np.abs(off_diag) < 5 * se_cov)


# -- EM properties -------------------------------------------------------------
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_likelihood_never_decreases(blobs, ct):
    gm = _quiet_fit(GaussianMixture(3, covariance_type=ct, reg_covar=0, max_iter=30,
                                    tol=0, init_params="random", random_state=1),
                    blobs)
    steps = np.diff(gm.lower_bounds_)
    assert np.all(steps >= -1e-10 * np.abs(gm.lower_bounds_[1:]))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_chunk_size_and_threads_do_not_change_results(blobs, ct):
    kw = dict(covariance_type=ct, random_state=0, max_iter=10, tol=0)
    a = _quiet_fit(GaussianMixture(3, chunk_size=len(blobs), n_threads=1, **kw), blobs)
    b = _quiet_fit(GaussianMixture(3, chunk_size=37, n_threads=2, **kw), blobs)
    for name in FITTED:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10,
                                   atol=1e-12)


def test_fit_predict_equals_fit_then_predict(blobs):
    kw = dict(random_state=3, max_iter=3)
    labels = _quiet_fit(GaussianMixture(3, **kw), blobs).labels_
    again = GaussianMixture(3, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(again.fit_predict(blobs), labels)
    np.testing.assert_array_equal(again.predict(blobs), labels)


def test_predict_proba_rows_sum_to_one(blobs):
    proba = GaussianMixture(3, random_state=0).fit(blobs).predict_proba(blobs)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_warm_start_continues_from_last_fit(blobs):
    gm = _quiet_fit(GaussianMixture(3, warm_start=True, max_iter=2, tol=0,
                                    random_state=0), blobs)
    first = gm.lower_bounds_[-1]
    _quiet_fit(gm, blobs)
    assert gm.lower_bounds_[0] >= first - 1e-12
    cold = _quiet_fit(GaussianMixture(3, max_iter=4, tol=0, random_state=0), blobs)
    np.testing.assert_allclose(gm.means_, cold.means_, rtol=1e-10)


def test_n_init_keeps_the_best_start(blobs):
    single = [GaussianMixture(3, init_params="random", random_state=s).fit(blobs)
              for s in range(1)]
    best = GaussianMixture(3, init_params="random", n_init=4, random_state=0).fit(blobs)
    assert best.lower_bound_ >= single[0].lower_bound_ - 1e-12


def test_max_iter_zero_reports_starting_likelihood(blobs):
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    assert gm.n_iter_ == 0
    assert gm.lower_bound_ == pytest.approx(gm.score(blobs), rel=1e-12)


def test_non_convergence_warns(blobs):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(blobs)


def test_sample_draws_from_the_mixture(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    X, y = gm.sample(30_000)
    assert X.shape == (30_000, 2) and y.shape == (30_000,)
    for k in range(3):
        np.testing.assert_allclose(X[y == k].mean(axis=0), gm.means_[k], atol=0.1)
    np.testing.assert_allclose(np.bincount(y) / len(y), gm.weights_, atol=0.02)


# -- float32 -------------------------------------------------------------------
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("offset,scale", [(1e3, 0.05), (1e3, 0.01), (3e3, 0.02)])
def test_float32_variances_stay_positive_far_from_origin(ct, offset, scale):
    # Small spread far from the origin: scikit-learn's raw float32 moments cancel
    # to zero or below here and it raises or floors the variance (#30382).
    rng = np.random.default_rng(0)
    X = (offset + rng.normal(scale=scale, size=(2000, 3))).astype(np.float32)
    X[1000:] += 5.0
    gm = _quiet_fit(GaussianMixture(2, covariance_type=ct, random_state=0), X)
    _assert_all_finite(gm)
    cov = gm.covariances_
    variances = (np.linalg.eigvalsh(cov) if ct in ("full", "tied") else cov).ravel()
    np.testing.assert_allclose(variances, scale**2, rtol=0.15)


# -- degenerate data: never NaN or inf -----------------------------------------
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_duplicated_points(ct):
    X = np.repeat([[0.0, 1.0], [3.0, 3.0], [5.0, -1.0]], 50, axis=0)
    gm = _quiet_fit(GaussianMixture(3, covariance_type=ct, random_state=0), X)
    _assert_all_finite(gm)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_constant_feature(blobs, ct):
    X = np.column_stack([blobs, np.full(len(blobs), 7.0)])
    gm = _quiet_fit(GaussianMixture(3, covariance_type=ct, random_state=0), X)
    _assert_all_finite(gm)
    np.testing.assert_allclose(gm.means_[:, 2], 7.0)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_more_components_than_distinct_points(ct):
    X = np.repeat([[0.0, 0.0], [4.0, 4.0]], 20, axis=0)
    gm = _quiet_fit(GaussianMixture(5, covariance_type=ct, random_state=0), X)
    _assert_all_finite(gm)
    assert np.all(np.isfinite(gm.predict_proba(X)))
    assert gm.weights_.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_component_receiving_no_points_is_reseeded(blobs, ct):
    init = _start(blobs, 3, ct)
    init["means_init"] = init["means_init"].copy()
    init["means_init"][0] = [1e6, 1e6]  # nothing is anywhere near
    gm = _quiet_fit(GaussianMixture(3, covariance_type=ct, max_iter=50, **init),
                    blobs)
    _assert_all_finite(gm)
    assert np.all(np.abs(gm.means_) < 100)  # the far component came back
    assert np.all(gm.weights_ > 0.01)


def test_zero_reg_covar_on_collapsed_component_raises_with_advice():
    X = np.repeat([[0.0, 1.0], [3.0, 3.0]], 10, axis=0)
    with pytest.raises(ValueError, match="increase reg_covar"):
        _quiet_fit(GaussianMixture(2, reg_covar=0.0, random_state=0), X)


# -- progress ------------------------------------------------------------------
def test_callback_sees_every_iteration(blobs):
    seen = []
    gm = _quiet_fit(GaussianMixture(3, max_iter=5, tol=0, random_state=0,
                                    callback=seen.append), blobs)
    assert [s["iteration"] for s in seen] == [1, 2, 3, 4, 5]
    assert seen[-1]["lower_bound"] == pytest.approx(gm.lower_bound_)
    assert all(np.isfinite(s["change"]) for s in seen[1:])


def test_verbose_prints_progress(blobs, capsys):
    _quiet_fit(GaussianMixture(3, verbose=2, verbose_interval=1, max_iter=3,
                               random_state=0), blobs)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 3" in out
    assert "ll change" in out


def test_weighted_bic_and_aic_equal_repeated_rows(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    counts = np.random.default_rng(5).integers(1, 4, size=len(blobs))
    repeated = np.repeat(blobs, counts, axis=0)
    assert gm.bic(blobs, sample_weight=counts) == pytest.approx(gm.bic(repeated),
                                                                rel=1e-12)
    assert gm.aic(blobs, sample_weight=counts) == pytest.approx(gm.aic(repeated),
                                                                rel=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_to_full_expands_covariances(blobs, ct):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(blobs)
    full = gm._piece.to_full(gm.covariances_, 3, 2)
    assert full.shape == (3, 2, 2)
    # the precisions are the inverses of the expanded covariances
    prec = gm._piece.to_full(gm.precisions_, 3, 2)
    np.testing.assert_allclose(full @ prec, np.broadcast_to(np.eye(2), (3, 2, 2)),
                               atol=1e-10)
