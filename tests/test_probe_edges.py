"""Edge cases found by probing gaussmix's features beyond the plain estimator
(partial_fit, missing values, selection, data sources) against independent
references: each test pins a crash or a wrong answer that was fixed.

The judge of the statistics is a slow per-row EM iteration written here:
conditional means and covariances of the missing coordinates by
``np.linalg.solve``, moments as deviations from the component's current mean
(no rounding at the data's offset) and centred on the new mean."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import reference_em as ref
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba not installed")


def _per_row_iteration(X, weights, means, covs, reg_covar=1e-6):
    """One EM iteration, full covariances, NaN marginalised; row by row."""
    nk, new_means, scatter = ref.marginal_moments(X, np.ones(len(X)), weights, means, covs)
    return (nk / len(X), new_means,
            scatter / nk[:, None, None] + reg_covar * np.eye(X.shape[1]))


def _as_full(covariances, cov_type):
    """Covariances of any type as (2, d, d) matrices (two components)."""
    c = np.asarray(covariances)
    if cov_type == "full":
        return c
    if cov_type == "tied":
        return np.stack([c] * 2)
    return np.stack([np.diag(v) if np.ndim(v) else np.eye(2) * v for v in c])


def _start(d):
    means = np.array([np.full(d, 0.2), np.full(d, 2.8)])
    covs = np.stack([np.eye(d) + 0.2, 2.0 * np.eye(d) + 0.1])
    return dict(weights_init=np.array([0.45, 0.55]), means_init=means,
                precisions_init=np.linalg.inv(covs)), (means, covs)


def _incomplete_rows(n, d, seed):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (n // 2, d)), rng.normal(3, 1.5, (n - n // 2, d))])
    X[rng.random(X.shape) < 0.3] = np.nan
    X[np.arange(n), rng.integers(0, d, n)] = rng.normal(size=n)  # one observed per row
    return X


def test_partial_fit_batch_with_a_column_missing_in_every_row():
    # A later batch need not observe every column: the running statistics
    # hold them. A stream of single rows with a NaN was refused ("column(s)
    # of X have no observed value").
    X = _incomplete_rows(60, 3, seed=0)
    batch = np.array([[1.0, np.nan, 2.0]])
    start, _ = _start(3)
    gm = GaussianMixture(2, missing="marginalize", learning_offset=0.0, **start)
    gm.partial_fit(X[:40])
    weights, means, covs = gm.weights_, gm.means_, gm.covariances_
    gm.partial_fit(batch)                   # rho = 1: one EM iteration on the batch
    ref = _per_row_iteration(batch, weights, means, covs)
    np.testing.assert_allclose(gm.weights_, ref[0], rtol=1e-12)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-10, atol=1e-12)


def test_partial_fit_first_batch_still_needs_every_column():
    X = _incomplete_rows(20, 3, seed=1)
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1"):
        GaussianMixture(2, missing="marginalize").partial_fit(X)


@needs_numba
def test_compiled_loops_on_float32_rows_none_of_them_complete(monkeypatch):
    # The compiled loops passed an empty set of complete float32 rows to the
    # ordinary full-covariance kernel, which failed to reshape it.
    monkeypatch.setenv("GAUSSMIX_KERNEL", "fused")
    X = _incomplete_rows(40, 3, seed=2)
    X[::2, 0] = np.nan
    X[1::2, 1] = np.nan                     # no row complete
    X[:, 2] = np.random.default_rng(3).normal(size=40)
    start, (means, covs) = _start(3)
    gm = GaussianMixture(2, missing="marginalize", max_iter=1, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X.astype(np.float32))
    ref = _per_row_iteration(X.astype(np.float32).astype(np.float64),
                             start["weights_init"], means, covs)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-5, atol=1e-5)


def test_score_bic_aic_of_a_source_use_the_weights_it_carries(tmp_path):
    # fit(source) uses the source's weights; score, bic and aic ignored them
    # (an unweighted mean: 1% off here, with no warning).
    from gaussmix import IterableSource, NpySource

    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(4, 1, (61, 2))])
    w = rng.uniform(0.1, 4.0, len(X))
    np.save(tmp_path / "x.npy", X)
    parts = [(X[:50], w[:50]), (X[50:], w[50:])]
    gm = GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    log_p = gm.score_samples(X)
    total, n = float(w @ log_p), float(w.sum())
    p = gm._n_parameters()
    for source in (NpySource(tmp_path / "x.npy", chunk_size=7, sample_weight=w),
                   IterableSource(parts, chunk_size=20)):
        assert gm.score(source) == pytest.approx(total / n, rel=1e-12)
        assert gm.bic(source) == pytest.approx(-2 * total + p * np.log(n), rel=1e-12)
        assert gm.aic(source) == pytest.approx(-2 * total + 2 * p, rel=1e-12)
    unweighted = NpySource(tmp_path / "x.npy", chunk_size=7)
    assert gm.score(unweighted) == pytest.approx(log_p.mean(), rel=1e-12)


def test_component_that_jumps_far_in_one_iteration_keeps_its_covariance():
    # Component 1 starts at (5, 5) and takes a tight cluster 1e6 away: its new
    # covariance is small across the direction of the jump. From moments about
    # the old mean, s2/N - delta delta^T cancelled (engine.recentre).
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 2)), 1e6 + 1e-3 * rng.normal(size=(6, 2))])
    weights, means, covs = np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), \
        np.stack([np.eye(2)] * 2)
    gm = GaussianMixture(2, weights_init=weights, means_init=means,
                         precisions_init=covs, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    ref = _per_row_iteration(X, weights, means, covs)
    # The entries agreed to 5e-10, but the smallest eigenvalue (across the
    # jump, about 2e-6) came out 1e-6, below reg_covar; the score moved by 1%.
    # (eigvalsh resolves 2e-6 beside 8e5 to about 1e-4)
    np.testing.assert_allclose(np.linalg.eigvalsh(gm.covariances_[1]),
                               np.linalg.eigvalsh(ref[2][1]), rtol=1e-3)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-12)


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_jump_towards_an_outlier_matches_the_reference(cov_type):
    # One outlier 1e6 away takes component 1 whole; the rows near the origin
    # keep a tiny share of it, which is all of its covariance.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (9, 2)), [[1e6, 1e6]]])
    weights, means = np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]])
    precisions = {"full": np.stack([np.eye(2)] * 2), "tied": np.eye(2),
                  "diag": np.ones((2, 2)), "spherical": np.ones(2)}[cov_type]
    gm = GaussianMixture(2, covariance_type=cov_type, weights_init=weights,
                         means_init=means, precisions_init=precisions, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    ref = _per_row_iteration(X, weights, means, np.stack([np.eye(2)] * 2))
    full = _as_full(gm.covariances_, cov_type)
    pooled = np.average(ref[2], axis=0, weights=ref[0])
    expected = {"full": lambda: ref[2], "tied": lambda: np.stack([pooled] * 2),
                "diag": lambda: ref[2] * np.eye(2),
                "spherical": lambda: np.stack([np.eye(2) * np.trace(c) / 2
                                               for c in ref[2]])}[cov_type]()
    np.testing.assert_allclose(full, expected, rtol=1e-12, atol=1e-12)


def test_partial_fit_step_towards_a_far_cluster_matches_the_reference():
    # The first step (step size 1) is one EM iteration: the same cancellation
    # as in fit, in the streaming M-step; a later batch blends exactly.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 2)), 1e6 + 1e-3 * rng.normal(size=(6, 2))])
    weights, means, covs = np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), \
        np.stack([np.eye(2)] * 2)
    gm = GaussianMixture(2, weights_init=weights, means_init=means, precisions_init=covs)
    gm.partial_fit(X)
    ref = _per_row_iteration(X, weights, means, covs)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(gm.covariances_[1]),
                               np.linalg.eigvalsh(ref[2][1]), rtol=1e-3)


def test_jump_with_missing_values_matches_the_reference():
    # The incomplete kernels took conditional moments about the old means
    # only, so there was no second pass about the new means for rows with
    # NaN: the cancellation made the covariance fail to factorise.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (20, 2)), 1e6 + 1e-3 * rng.normal(size=(6, 2))])
    X[3, 0] = X[5, 1] = np.nan
    weights, means, covs = np.array([0.5, 0.5]), np.array([[0.0, 0.0], [5.0, 5.0]]), \
        np.stack([np.eye(2)] * 2)
    gm = GaussianMixture(2, weights_init=weights, means_init=means, precisions_init=covs,
                         max_iter=1, missing="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    ref = _per_row_iteration(X, weights, means, covs)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-12)
