"""Differential tests against scikit-learn's GaussianMixture: a seeded sample
of random small configurations, fitted by both from one starting point, and
the cases such a sweep found.

Every case runs scikit-learn on the same input as the reference. Intended
differences (README, "Differences from scikit-learn") are pinned with the
reason, so that they stay deliberate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import reference_em
from conftest import COVARIANCE_TYPES
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
X_THREE = np.r_[np.random.default_rng(0).normal(size=(40, 2)),
                np.random.default_rng(1).normal(size=(40, 2)) * 0.6 + [5, 0],
                np.random.default_rng(2).normal(size=(40, 2)) + [0, 5]]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _assert_same_fit(gm, sk, rtol):
    for name in FITTED:
        actual, expected = getattr(gm, name), getattr(sk, name)
        scale = np.max(np.abs(expected))
        assert np.max(np.abs(actual - expected)) <= rtol * scale, name
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=rtol, abs=rtol)
    assert gm.n_iter_ == sk.n_iter_
    assert gm.converged_ == sk.converged_


def _precisions(ct, K, d, scale=1.0):
    return {"full": np.stack([np.eye(d) * scale] * K), "tied": np.eye(d) * scale,
            "diag": np.full((K, d), scale), "spherical": np.full(K, scale)}[ct]


# ---------------------------------------------- found: given precisions_init
@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_given_precisions_replace_a_singular_start_with_zero_reg_covar(ct, init_params):
    # Found by the sweep: with precisions_init given, the start's covariances
    # from the drawn responsibilities are never used, yet gaussmix factored
    # them and raised when they were singular (one seed row per component,
    # reg_covar=0: always). scikit-learn fits.
    kw = dict(covariance_type=ct, init_params=init_params, reg_covar=0.0,
              random_state=0, max_iter=3, tol=0,
              precisions_init=_precisions(ct, 3, 2, 0.5))
    sk = _quiet(SkGaussianMixture(3, **kw).fit, X_THREE)
    gm = _quiet(GaussianMixture(3, **kw).fit, X_THREE)
    _assert_same_fit(gm, sk, 1e-10)


# ------------------------------------------------ a seeded differential sweep
def _configuration(seed):
    """A small random problem and estimator settings, well posed: reg_covar > 0
    relative to the data's variance, and an offset (1e3) only for a spread of
    one or more (scikit-learn's raw moments cannot fit a spread of 1e-8 at
    1e3; test_trustworthy_numbers covers offsets against the reference)."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(8, 200)), int(rng.integers(1, 7))
    K = int(rng.integers(1, min(n // 4, 5) + 1))
    centres = rng.normal(scale=rng.choice([1.0, 5.0]), size=(K + 1, d))
    labels = rng.integers(0, K + 1, n)
    X = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.3, 2.0, size=(K + 1, d))[labels]
    scale = 10.0 ** rng.choice([-8, 0, 0, 3, 8])
    X = X * scale + (rng.choice([0.0, 0.0, 1e3]) if scale >= 1 else 0.0)
    kw = dict(covariance_type=str(rng.choice(COVARIANCE_TYPES)),
              init_params=str(rng.choice(["kmeans", "k-means++", "random",
                                          "random_from_data"])),
              reg_covar=float(rng.choice([1e-6, 1e-2])) * float(np.var(X)),
              tol=float(rng.choice([0.0, 1e-3])), max_iter=int(rng.choice([1, 2, 10])),
              random_state=int(rng.integers(1000)))
    kind = str(rng.choice(["ndarray", "ndarray", "list", "frame"]))
    return X, K, kw, kind


def _as(X, kind):
    if kind == "list":
        return X.tolist()
    if kind == "frame":
        pd = pytest.importorskip("pandas")
        return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    return X


SWEEP = range(60)  # 800 pass; 60 keep the suite fast


def _same_start(X, K, kw):
    """scikit-learn's parameters after one EM step: a start both share."""
    start = _quiet(SkGaussianMixture(K, **dict(kw, max_iter=1, tol=0)).fit, X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_, covariances=start.covariances_)


def _relative(actual, expected):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


@pytest.mark.parametrize("seed", SWEEP)
def test_sweep_same_start_same_fit(seed):
    # Both fit from one start; the centred float64 reference EM is the judge
    # (scikit-learn's raw moments lose up to ~1e-5 relative at an offset of
    # 1e3 after a few iterations, so it is compared more loosely). Counts,
    # convergence and the outputs of every method must agree.
    X, K, kw, kind = _configuration(seed)
    data = _as(X, kind)
    init = _same_start(data, K, kw)
    covariances = init.pop("covariances")
    sk = _quiet(SkGaussianMixture(K, **kw, **init).fit, data)
    gm = _quiet(GaussianMixture(K, **kw, **init).fit, data)
    ct = kw["covariance_type"]
    start = reference_em.RefParams(init["weights_init"], init["means_init"],
                                   covariances)
    ref = reference_em.em(X, start, ct, gm.n_iter_, reg_covar=kw["reg_covar"])
    assert _relative(gm.means_, ref.means) < 1e-9
    assert _relative(gm.covariances_, ref.covariances) < 1e-9
    assert _relative(gm.weights_, ref.weights) < 1e-9
    assert gm.lower_bound_ == pytest.approx(ref.lower_bound, rel=1e-10, abs=1e-10)
    for name in FITTED:
        assert _relative(getattr(gm, name), getattr(sk, name)) < 1e-4, name
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-7, abs=1e-7)
    assert (gm.n_iter_, gm.converged_) == (sk.n_iter_, sk.converged_)
    assert type(gm.lower_bound_) is type(sk.lower_bound_)
    np.testing.assert_allclose(gm.lower_bounds_, sk.lower_bounds_, rtol=1e-7, atol=1e-7)

    log_p = gm.score_samples(data)
    expected = reference_em.score_samples(X, gm.weights_, gm.means_,
                                          gm.precisions_cholesky_, ct)
    np.testing.assert_allclose(log_p, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(log_p, sk.score_samples(data), rtol=1e-5, atol=1e-5)
    proba = gm.predict_proba(data)
    np.testing.assert_allclose(proba, sk.predict_proba(data), atol=1e-4)
    clear = np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2] > 1e-3 \
        if K > 1 else np.ones(len(X), bool)
    np.testing.assert_array_equal(gm.predict(data)[clear], sk.predict(data)[clear])
    table = X if kind == "list" else data  # scikit-learn's bic/aic read X.shape
    for method in ("score", "bic", "aic"):
        assert getattr(gm, method)(table) == pytest.approx(getattr(sk, method)(table),
                                                            rel=1e-5)


@pytest.mark.parametrize("seed", SWEEP)
def test_sweep_weights_chunks_and_fit_predict(seed):
    # Integer weights give exactly the fit on rows repeated, which matches
    # scikit-learn's (it has no sample_weight); chunking does not change the
    # fit; fit_predict equals fit().predict (a final E-step), and sample()
    # has scikit-learn's shapes.
    X, K, kw, _ = _configuration(seed)
    counts = np.random.default_rng(seed).integers(0, 4, len(X))
    counts[:K] += 1  # at least K rows kept
    repeated = np.repeat(X, counts, axis=0)
    init = _same_start(repeated, K, kw)
    del init["covariances"]
    gm = _quiet(GaussianMixture(K, **kw, **init).fit, X, sample_weight=counts)
    again = _quiet(GaussianMixture(K, **kw, **init).fit, repeated)
    for name in FITTED:
        assert _relative(getattr(gm, name), getattr(again, name)) < 1e-9, name
    assert gm.lower_bound_ == pytest.approx(again.lower_bound_, rel=1e-10, abs=1e-10)
    assert (gm.n_iter_, gm.converged_) == (again.n_iter_, again.converged_)
    # Loosely, and not the precisions: a component of one (repeated) row has
    # variance reg_covar, plus ~10 eps x^2 in scikit-learn (its N_k + 10 eps).
    sk = _quiet(SkGaussianMixture(K, **kw, **init).fit, repeated)
    for name in ("weights_", "means_", "covariances_"):
        assert _relative(getattr(gm, name), getattr(sk, name)) < 1e-4, name
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-4)
    assert gm.n_iter_ == sk.n_iter_

    chunked = GaussianMixture(K, **kw, **init, chunk_size=7)
    labels = _quiet(chunked.fit_predict, X, sample_weight=counts)
    np.testing.assert_array_equal(labels, chunked.predict(X))
    for name in FITTED:
        assert _relative(getattr(chunked, name), getattr(gm, name)) < 1e-9, name
    with warnings.catch_warnings():  # NumPy's PSD check is not scale-free
        warnings.filterwarnings("ignore", "covariance is not symmetric", RuntimeWarning)
        rows, components = chunked.sample(5)
    assert rows.shape == (5, X.shape[1]) and components.shape == (5,)


# ------------------------------------------- found: integer and boolean rows
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.int64, np.int8, bool])
def test_integer_and_boolean_rows_predict_as_floats(ct, dtype):
    # scikit-learn 1.9's full and tied kernels write log-densities into an
    # array of X's dtype, so on integer or boolean X its predictions are
    # truncated; gaussmix's equal those on the same rows as floats, which
    # equal scikit-learn's on floats.
    rows = np.round(X_THREE * 2).astype(dtype)
    as_float = rows.astype(np.float64)
    sk = SkGaussianMixture(3, covariance_type=ct, random_state=0).fit(as_float)
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=0,
                         weights_init=sk.weights_, means_init=sk.means_,
                         precisions_init=sk.precisions_).fit(rows)
    np.testing.assert_allclose(gm.score_samples(rows), sk.score_samples(as_float),
                               rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(rows), sk.predict_proba(as_float),
                               atol=1e-10)
    np.testing.assert_array_equal(gm.predict(rows), gm.predict(as_float))
    # (rel 1e-10: the compiled kernel, once loaded, sums in another order)
    assert gm.score(rows) == pytest.approx(sk.score(as_float), rel=1e-10)


# ------------------------------------------------------ intended differences
@pytest.mark.parametrize("ct", ["tied", "diag", "spherical"])
def test_zero_reg_covar_single_row_start_raises_with_advice(ct):
    # k-means++ starts each component at one row: covariance reg_covar * I,
    # singular for reg_covar=0. scikit-learn's start is positive there by
    # construction (N_k + 10 eps gives a seed a variance of ~10 eps x^2;
    # tied counts every row) and it fits; gaussmix says what to change
    # (scikit-learn raises too for 'full').
    kw = dict(covariance_type=ct, init_params="k-means++", reg_covar=0.0,
              random_state=0, max_iter=3)
    _quiet(SkGaussianMixture(3, **kw).fit, X_THREE)
    with pytest.raises(ValueError, match="increase reg_covar"):
        GaussianMixture(3, **kw).fit(X_THREE)


def test_max_iter_zero_keeps_the_best_start():
    # scikit-learn's lower bounds are all -inf without an iteration, so it
    # keeps the last start; gaussmix knows each start's log-likelihood.
    kw = dict(init_params="random", max_iter=0, random_state=3)
    best = GaussianMixture(3, n_init=4, **kw).fit(X_THREE)
    rng = np.random.RandomState(3)  # the four starts drawn in turn, as fit does
    bounds = [GaussianMixture(3, **dict(kw, random_state=rng)).fit(X_THREE).lower_bound_
              for _ in range(4)]
    assert len(set(bounds)) == 4
    assert best.lower_bound_ == max(bounds)
    sk = SkGaussianMixture(3, n_init=4, **kw).fit(X_THREE)
    assert sk.lower_bound_ == -np.inf


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_rows_give_float64_results(ct):
    # scikit-learn returns float32 attributes, responsibilities and
    # log-densities for float32 X; gaussmix computes the E-step in float32
    # and returns float64 (its statistics and M-step are float64).
    rows = X_THREE.astype(np.float32)
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(rows)
    sk = SkGaussianMixture(3, covariance_type=ct, random_state=0).fit(rows)
    assert sk.predict_proba(rows).dtype == np.float32  # the difference pinned
    for out in (gm.means_, gm.covariances_, gm.predict_proba(rows),
                gm.score_samples(rows)):
        assert out.dtype == np.float64
    np.testing.assert_allclose(gm.score_samples(rows), sk.score_samples(rows),
                               rtol=1e-4)


# ------------------------------------------------- found: subnormal weights
@pytest.mark.parametrize("exponent", [-1030, -1070])
def test_subnormal_sample_weights_fit_as_their_scaled_values(exponent):
    # Weights are scaled by a power of two before the fit; a largest weight
    # below 2**-1022 (subnormal) made that power overflow (OverflowError).
    # Integer counts times 2**exponent are exact, so the fit is the same.
    counts = np.random.default_rng(3).integers(1, 4, len(X_THREE)).astype(float)
    kw = dict(random_state=0, max_iter=5, tol=0)
    plain = _quiet(GaussianMixture(3, **kw).fit, X_THREE, sample_weight=counts)
    tiny = _quiet(GaussianMixture(3, **kw).fit, X_THREE,
                  sample_weight=np.ldexp(counts, exponent))
    for name in FITTED:
        np.testing.assert_allclose(getattr(tiny, name), getattr(plain, name),
                                   rtol=1e-12, atol=0)
    assert tiny.lower_bound_ == plain.lower_bound_


def test_subnormal_sample_weights_on_dask_fit_as_their_scaled_values():
    # A Dask fit scales its weights on the cluster and keeps the power of two
    # (to undo totals); for a subnormal largest weight, 2.0 ** 1074 overflowed,
    # so such weights were refused although the in-memory fit takes them.
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    counts = np.random.default_rng(3).integers(1, 4, len(X_THREE)).astype(float)
    kw = dict(random_state=0, max_iter=5, tol=0)
    plain = _quiet(GaussianMixture(3, **kw).fit, X_THREE, sample_weight=counts)
    with dask.config.set(scheduler="sync"):
        tiny = _quiet(GaussianMixture(3, **kw).fit, da.from_array(X_THREE, chunks=40),
                      sample_weight=da.from_array(np.ldexp(counts, -1070), chunks=40))
    for name in FITTED:
        np.testing.assert_allclose(getattr(tiny, name), getattr(plain, name),
                                   rtol=1e-12, atol=0)
