"""GaussianMixtureImputer and GaussianMixture.impute against scikit-learn's
imputer conventions and a slow closed-form conditional expectation written
here (per row, per component, by np.linalg.solve)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture, GaussianMixtureImputer


def _full_covariances(gm: GaussianMixture) -> np.ndarray:
    K, d = gm.means_.shape
    c = gm.covariances_
    return {"full": lambda: c, "tied": lambda: np.repeat(c[None], K, axis=0),
            "diag": lambda: c[:, :, None] * np.eye(d),
            "spherical": lambda: c[:, None, None] * np.eye(d)}[gm.covariance_type]()


def _reference_impute(gm: GaussianMixture, X: np.ndarray) -> np.ndarray:
    """E[x_m | x_o] = sum_k p(k | x_o) (mu_km + S_kmo S_koo^-1 (x_o - mu_ko))."""
    covs, means, out = _full_covariances(gm), gm.means_, X.copy()
    for i, x in enumerate(X):
        o, m = ~np.isnan(x), np.isnan(x)
        if not m.any():
            continue
        log_p = np.log(gm.weights_) + np.array([
            multivariate_normal(mu[o], S[np.ix_(o, o)]).logpdf(x[o]) if o.any() else 0.0
            for mu, S in zip(means, covs, strict=True)])
        resp = np.exp(log_p - logsumexp(log_p))
        out[i, m] = sum(r * (mu[m] + (S[np.ix_(m, o)] @ np.linalg.solve(
            S[np.ix_(o, o)], x[o] - mu[o]) if o.any() else 0.0))
            for r, mu, S in zip(resp, means, covs, strict=True))
    return out


def _incomplete(n: int = 300, d: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d)) / np.sqrt(d)
    X = rng.normal(size=(n, d)) @ A.T + np.where(rng.random(n) < 0.5, 0.0, 3.0)[:, None]
    X[rng.random(X.shape) < 0.3] = np.nan
    return X[~np.isnan(X).all(axis=1)]


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("K", [1, 2])
def test_impute_equals_the_closed_form_conditional_expectation(K, cov_type):
    X = _incomplete()
    gm = GaussianMixture(K, covariance_type=cov_type, random_state=0,
                         missing="marginalize").fit(X)
    rows = np.r_[X[:40], [[np.nan] * X.shape[1]]]
    np.testing.assert_allclose(gm.impute(rows), _reference_impute(gm, rows),
                               rtol=1e-10, atol=1e-10)
    imputer = GaussianMixtureImputer(K, covariance_type=cov_type, random_state=0).fit(X)
    np.testing.assert_allclose(imputer.transform(rows),
                               _reference_impute(imputer.mixture_, rows),
                               rtol=1e-10, atol=1e-10)


def test_fit_skips_rows_with_nothing_observed():
    # scikit-learn's imputers fit on such rows (e.g. a fold of a
    # cross-validation, or a single column with gaps); they carry no
    # information, so the fit equals the fit without them.
    X = _incomplete(seed=1)
    empty = np.full((3, X.shape[1]), np.nan)
    with_empty = np.r_[X[:10], empty, X[10:]]
    weights = np.linspace(0.5, 2.0, len(with_empty))
    kept = ~np.isnan(with_empty).all(axis=1)
    got = GaussianMixtureImputer(2, random_state=0).fit(with_empty, sample_weight=weights)
    want = GaussianMixture(2, random_state=0, missing="marginalize").fit(
        with_empty[kept], sample_weight=weights[kept])
    np.testing.assert_array_equal(got.mixture_.means_, want.means_)
    filled = got.transform(with_empty)
    np.testing.assert_allclose(filled[10:13], np.repeat(
        (want.weights_ @ want.means_)[None], 3, axis=0), rtol=1e-12)
    column = np.r_[np.arange(8.0), [np.nan, np.nan]][:, None]
    filled = GaussianMixtureImputer(random_state=0).fit_transform(column)
    np.testing.assert_allclose(filled[8:, 0], 3.5, rtol=1e-12)
    with pytest.raises(ValueError, match="4 of the 4 rows of X are missing.*0 row"):
        GaussianMixtureImputer().fit(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="2 of the 3 rows.*1 row.*at least 2"):
        GaussianMixtureImputer().fit([[1.0, 2.0], [np.nan, np.nan], [np.nan, np.nan]])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(13,\)"):
        GaussianMixtureImputer().fit(with_empty[:13], sample_weight=np.ones(3))


@pytest.mark.parametrize("mode", ["reference", "fused"])
def test_rows_with_zero_density_under_every_component_are_an_error(monkeypatch, mode):
    # A finite row far enough out that its log-density is -inf under every
    # component has undefined responsibilities: impute used to return NaN in
    # its place (and a junk draw), silently.
    if mode == "fused":
        pytest.importorskip("numba")
    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    X = _incomplete(seed=2)
    imputer = GaussianMixtureImputer(2, random_state=0).fit(X)
    far = np.r_[X[:50], [[1e200, np.nan, 1.0, 0.0]]]
    with pytest.raises(ValueError, match=r"1 row\(s\) of X lie too far.*1\.e\+200"):
        imputer.transform(far)
    with pytest.raises(ValueError, match="lie too far"):
        imputer.mixture_.impute(far, n_draws=2, random_state=0)
    assert not np.isnan(imputer.transform(far[:50])).any()
