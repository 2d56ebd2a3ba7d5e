"""Found by a probe of missing values (``missing="marginalize"``) across the
entry points, and the missingness patterns tests/test_missing.py does not
draw (it draws 30% missing completely at random): one observed coordinate
per row, every row its own pattern, a feature observed in fewer rows than
there are components, zero weights on incomplete rows.

The judge is a slow per-row EM iteration written here: scipy's
multivariate_normal on each row's observed coordinates for the densities, and
Ghahramani & Jordan's conditional moments (``E[x_m | x_o, k]`` by
np.linalg.solve, the conditional covariance added to the second moments)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture, GaussianMixtureImputer, GaussianMixtureSearch, select

TYPES = ["full", "tied", "diag", "spherical"]
MODES = ["reference", "fused"] if importlib.util.find_spec("numba") else ["reference"]


# ------------------------------------------------------------------ helpers
def _start(cov_type: str, K: int, d: int, seed: int = 0):
    """Starting weights, means, full covariances and the type's parameters."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    full = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
    diag = np.diagonal(full, axis1=1, axis2=2)
    typed = {"full": full, "tied": full.mean(axis=0), "diag": diag,
             "spherical": diag.mean(axis=1)}[cov_type]
    full = {"full": full, "tied": np.repeat(full.mean(axis=0)[None], K, axis=0),
            "diag": diag[:, :, None] * np.eye(d),
            "spherical": diag.mean(axis=1)[:, None, None] * np.eye(d)}[cov_type]
    precisions = np.linalg.inv(typed) if cov_type in ("full", "tied") else 1 / typed
    return (rng.dirichlet(np.full(K, 5.0)), rng.normal(scale=2.0, size=(K, d)), full,
            precisions)


def _one_iteration(X, weights, means, full, cov_type, sample_weight=None,
                   reg_covar=1e-6):
    """One EM iteration from (weights, means, full covariances), row by row."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    K = len(weights)
    w = np.ones(n) if sample_weight is None else sample_weight
    nk, sx, sxx, loglik = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d)), 0.0
    for x, wi in zip(X, w, strict=True):
        o, m = ~np.isnan(x), np.isnan(x)
        log_p = np.log(weights) + np.array([
            multivariate_normal(mu[o], S[np.ix_(o, o)]).logpdf(x[o]) for mu, S in
            zip(means, full, strict=True)])
        loglik += wi * logsumexp(log_p)
        resp = np.exp(log_p - logsumexp(log_p))
        for k, (mu, S) in enumerate(zip(means, full, strict=True)):
            gain = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)]).T
            xhat, C = x.copy(), np.zeros((d, d))
            xhat[m] = mu[m] + gain @ (x[o] - mu[o])
            C[np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            nk[k] += wi * resp[k]
            sx[k] += wi * resp[k] * xhat
            sxx[k] += wi * resp[k] * (np.outer(xhat, xhat) + C)
    mu = sx / nk[:, None]
    cov = sxx / nk[:, None, None] - mu[:, :, None] * mu[:, None, :]
    typed = {"full": lambda: cov + reg_covar * np.eye(d),
             "tied": lambda: (cov * nk[:, None, None]).sum(0) / nk.sum()
             + reg_covar * np.eye(d),
             "diag": lambda: np.diagonal(cov, axis1=1, axis2=2) + reg_covar,
             "spherical": lambda: np.diagonal(cov, axis1=1, axis2=2).mean(1) + reg_covar}
    return nk / nk.sum(), mu, typed[cov_type](), loglik / w.sum()


def _fit_one_iteration(X, cov_type, K, sample_weight=None, seed=0):
    weights, means, full, precisions = _start(cov_type, K, X.shape[1], seed)
    gm = GaussianMixture(K, covariance_type=cov_type, weights_init=weights,
                         means_init=means, precisions_init=precisions, max_iter=1,
                         missing="marginalize", chunk_size=23)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=sample_weight)
    return gm, _one_iteration(X, weights, means, full, cov_type, sample_weight)


def _clusters(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * 1.5 + rng.integers(0, 3, n)[:, None] * 2.0


def _one_observed(n=60, d=4, seed=0):
    """Every row observes exactly one coordinate."""
    X = _clusters(n, d, seed)
    out = np.full_like(X, np.nan)
    keep = np.random.default_rng(seed).integers(0, d, n)
    out[np.arange(n), keep] = X[np.arange(n), keep]
    return out


def _own_patterns(n=60, d=9, seed=1):
    """Nearly every row its own pattern, 1 to d - 1 coordinates missing."""
    X = _clusters(n, d, seed)
    rng = np.random.default_rng(seed)
    for i in range(n):
        X[i, rng.choice(d, 1 + i % (d - 1), replace=False)] = np.nan
    return X


def _rarely_observed(n=60, d=3, seed=2):
    """The last feature observed in 2 rows: fewer than the 3 components."""
    X = _clusters(n, d, seed)
    X[2:, -1] = np.nan
    X[5::4, 0] = np.nan
    return X


PATTERNS = {"one_observed": _one_observed, "own_patterns": _own_patterns,
            "rarely_observed": _rarely_observed}


# --------------------------------------------------- iterations vs reference
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_one_iteration_on_sparse_patterns_equals_the_per_row_reference(
        monkeypatch, mode, cov_type, pattern):
    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    X = PATTERNS[pattern]()
    gm, ref = _fit_one_iteration(X, cov_type, K=3)
    np.testing.assert_allclose(gm.weights_, ref[0], rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-9, atol=1e-10)
    assert gm.lower_bound_ == pytest.approx(ref[3], rel=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cov_type", TYPES)
def test_rows_of_weight_zero_count_for_nothing(monkeypatch, mode, cov_type):
    # Zero weights on incomplete rows, among them most of the rows observing
    # the last feature: the iteration is the reference's, and that of the
    # same fit without those rows.
    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    X = _rarely_observed()
    X[2:12, -1] = 1.0 + np.arange(10.0)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    w[[0, 3, 4, 5, 6, 7, 8, 9, 20, 33]] = 0.0
    gm, ref = _fit_one_iteration(X, cov_type, K=3, sample_weight=w)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-9, atol=1e-10)
    kept, _ = _fit_one_iteration(X[w > 0], cov_type, K=3, sample_weight=w[w > 0])
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(kept, name), getattr(gm, name), rtol=1e-12,
                                   atol=1e-14)
    assert kept.lower_bound_ == pytest.approx(gm.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
def test_float32_rows_with_nan_give_the_float64_iteration(cov_type):
    X = _own_patterns().astype(np.float32)
    gm, ref = _fit_one_iteration(X, cov_type, K=3)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-5, atol=1e-5)
    densities = gm.score_samples(X)
    assert densities.dtype == np.float64 and np.isfinite(densities).all()
    assert gm.impute(X).dtype == np.float32 and not np.isnan(gm.impute(X)).any()


# --------------------------------------- a column observed only at weight 0
def _unseen_at_positive_weight():
    X = _clusters(80, 3, seed=4)
    X[10:, 2] = np.nan
    w = np.ones(len(X))
    w[:10] = 0.0  # the only rows that observe column 2
    return X, w


UNSEEN = r"column\(s\) of X have no observed value in the rows of positive " \
         r"sample_weight; the first is column 2"


@pytest.mark.parametrize("cov_type", TYPES)
def test_a_column_observed_only_in_rows_of_weight_zero_is_refused(cov_type):
    # Was: a fit, silently: the column's mean was the unweighted mean of the
    # rows of weight 0 (which should count for nothing) and its variance a
    # few reg_covar (the filled start, which EM cannot leave), so that
    # score_samples gave the rows observing it log-densities of -4e4 to -2e6
    # and impute filled it with one constant. Weight 0 is the row absent, and
    # without those rows the column has nothing observed, which fit refuses.
    X, w = _unseen_at_positive_weight()
    with pytest.raises(ValueError, match=UNSEEN):
        GaussianMixture(2, covariance_type=cov_type, random_state=0,
                        missing="marginalize").fit(X, sample_weight=w)
    with pytest.raises(ValueError, match=r"no observed value \(all NaN\).*column 2"):
        GaussianMixture(2, covariance_type=cov_type, random_state=0,
                        missing="marginalize").fit(X[w > 0])
    X[:, 2] = np.nan  # NaN throughout: said so, weights or not
    with pytest.raises(ValueError, match=r"no observed value \(all NaN\).*column 2"):
        GaussianMixture(2, covariance_type=cov_type, random_state=0,
                        missing="marginalize").fit(X, sample_weight=w)


def test_every_fitting_entry_point_refuses_a_column_seen_only_at_weight_zero():
    X, w = _unseen_at_positive_weight()
    with pytest.raises(ValueError, match=UNSEEN):
        GaussianMixture(2, random_state=0, missing="marginalize").partial_fit(
            X, sample_weight=w)
    with pytest.raises(ValueError, match=UNSEEN):
        select(X, [1, 2], ["full", "diag"], missing="marginalize", random_state=0,
               sample_weight=w)
    with pytest.raises(ValueError, match=UNSEEN):
        GaussianMixtureSearch([1, 2], missing="marginalize", random_state=0).fit(
            X, sample_weight=w)
    with pytest.raises(ValueError, match=UNSEEN):
        GaussianMixtureImputer(2, random_state=0).fit(X, sample_weight=w)
    # one row of positive weight observing it is enough (later batches of a
    # stream need none: the running statistics hold the column)
    w[3] = 0.5
    gm = GaussianMixture(2, random_state=0, missing="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=w)
    assert np.isfinite(gm.score_samples(X)).all()
    batch = X[20:30].copy()
    gm.partial_fit(batch, sample_weight=np.r_[np.zeros(5), np.ones(5)])
    assert np.isfinite(gm.covariances_).all()


# ------------------------------------------------- rows with nothing observed
def test_rows_with_nothing_observed_in_every_entry_point():
    # The documented behaviour: fitting refuses them (GaussianMixtureImputer
    # skips them), every per-row result accepts them.
    X = _clusters(120, 3, seed=5)
    X[np.random.default_rng(5).random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    gm = GaussianMixture(2, random_state=0, missing="marginalize").fit(X)
    holes = X.copy()
    holes[[4, 9]] = np.nan
    refused = r"2 row\(s\) of X have every feature missing.*row 4"
    for fitting in (lambda: GaussianMixture(2, missing="marginalize").fit_predict(holes),
                    lambda: GaussianMixture(2, missing="marginalize").partial_fit(holes),
                    lambda: gm.partial_fit(holes[:12]),
                    lambda: GaussianMixtureSearch([1, 2], missing="marginalize").fit(holes)):
        with pytest.raises(ValueError, match=refused):
            fitting()
    np.testing.assert_allclose(gm.score_samples(holes)[[4, 9]], 0.0, atol=1e-15)
    np.testing.assert_allclose(gm.predict_proba(holes)[[4, 9]],
                               np.repeat(gm.weights_[None], 2, axis=0), rtol=1e-12)
    assert gm.predict(holes)[4] == np.argmax(gm.weights_)
    np.testing.assert_allclose(gm.impute(holes)[[4, 9]],
                               np.repeat((gm.weights_ @ gm.means_)[None], 2, axis=0),
                               rtol=1e-12)
    assert gm.score(holes) == pytest.approx(gm.score_samples(holes).mean(), rel=1e-12)
    draws = gm.impute(holes, n_draws=2, random_state=0)
    assert np.isfinite(draws).all() and not np.array_equal(draws[0, 4], draws[1, 4])


# --------------------------------------------------- no NaN: the ordinary fit
@pytest.mark.parametrize("cov_type", TYPES)
def test_without_nan_every_fitting_entry_point_is_the_ordinary_one(cov_type):
    X = _clusters(200, 3, seed=6)
    w = np.random.default_rng(6).uniform(0.0, 2.0, len(X))
    kw = {"covariance_type": cov_type, "random_state": 0}
    pairs = [
        (GaussianMixture(3, n_init=2, **kw).fit(X, sample_weight=w),
         GaussianMixture(3, n_init=2, missing="marginalize", **kw).fit(
             X, sample_weight=w)),
        (GaussianMixture(2, **kw).partial_fit(X[:100]).partial_fit(X[100:]),
         GaussianMixture(2, missing="marginalize", **kw).partial_fit(X[:100])
         .partial_fit(X[100:])),
        (GaussianMixture(2, **kw).fit(X.astype(np.float32)),
         GaussianMixtureImputer(2, **kw).fit(X.astype(np.float32)).mixture_),
    ]
    for plain, marg in pairs:
        for name in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(marg, name), getattr(plain, name),
                                       rtol=1e-12, atol=1e-12)
    plain = select(X, [1, 2], cov_type, random_state=0, sample_weight=w)
    marg = select(X, [1, 2], cov_type, random_state=0, sample_weight=w,
                  missing="marginalize")
    np.testing.assert_allclose([c.bic for c in marg.table], [c.bic for c in plain.table],
                               rtol=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
def test_warm_start_with_nan_continues_the_same_iterations(cov_type):
    X = _own_patterns(120, 5, seed=7)
    kw = {"covariance_type": cov_type, "random_state": 0, "missing": "marginalize",
          "tol": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = GaussianMixture(3, warm_start=True, max_iter=3, **kw).fit(X).fit(X)
        once = GaussianMixture(3, max_iter=6, **kw).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(warm, name), getattr(once, name), rtol=1e-12,
                                   atol=1e-12)
    assert warm.lower_bound_ == pytest.approx(once.lower_bound_, rel=1e-12)


def test_imputer_says_when_skipped_rows_leave_fewer_rows_than_components():
    # Was: GaussianMixture's "n_components = 4, n_samples = 3" for 5 rows
    # given, without a word about the 2 rows it had skipped.
    X = np.array([[1.0, 2], [np.nan, np.nan], [2, 3], [np.nan, np.nan], [3, 1]])
    with pytest.raises(ValueError, match=r"2 of the 5 rows of X are missing throughout "
                                         r".*leaves 3 row\(s\).*at least 4 are needed"):
        GaussianMixtureImputer(4).fit(X)
    filled = GaussianMixtureImputer(3, random_state=0).fit_transform(X)
    assert not np.isnan(filled).any()
