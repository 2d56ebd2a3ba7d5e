"""float32 rows and data far from the origin, across the entry points.

The judge is the centred float64 reference of :mod:`reference_em` run on the
float32 rows themselves (cast exactly to float64), from the same start: the
fit computes its E-step in float32, so it should agree with that reference to
what float32 rounding allows (about 1e-7 of a standard deviation in the
means, 1e-6 relative in the covariances), whatever the offset of the data.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import reference_em as ref
from conftest import COVARIANCE_TYPES
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture

KERNELS = ["reference", "fused"]
if importlib.util.find_spec("numba") is None:
    KERNELS = ["reference"]


def two_clusters(offset: float, n: int = 400, seed: int = 0) -> np.ndarray:
    """Two clusters of unit-ish spread, 4 apart, moved by ``offset``."""
    rng = np.random.default_rng(seed)
    half = n // 2
    X = np.vstack([rng.normal(size=(half, 3)), rng.normal(size=(half, 3)) * 0.7 + 4])
    return X + offset


def start_of(X: np.ndarray, ct: str) -> tuple[ref.RefParams, np.ndarray]:
    """The exact M-step of the two halves, and its precisions."""
    halves = (np.arange(len(X)) >= len(X) // 2).astype(int)
    start = ref.m_step(X, ref.one_hot(halves, 2), ct, 1e-6)
    return start, ref.covariances_from_precisions(start.covariances, ct)


def standard_deviations(covariances: np.ndarray, ct: str) -> np.ndarray:
    full = ref.as_matrices(covariances, ct, 2, 3)
    return np.sqrt(np.diagonal(full, axis1=1, axis2=2))


# ------------------------------------------- 1. the centre of float32 chunks


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("offset", [1e4, 1e6])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_fit_far_from_the_origin_equals_the_reference(monkeypatch, ct, offset,
                                                               kernel):
    # The chunks were centred on the float32 rounding of the centre, but the
    # means' offsets and the moments' shift used its float64 value: every
    # mean moved by that rounding (0.04 sd at 1e6; tied at 1e8 went 0.7 sd
    # astray), where scikit-learn's float32 fit is exact to 2e-8 sd.
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    gm, expected = fit_and_reference(two_clusters(offset).astype(np.float32), ct, 4)
    np.testing.assert_allclose(gm.weights_, expected.weights, rtol=1e-6)


def fit_and_reference(X: np.ndarray, ct: str, iterations: int
                      ) -> tuple[GaussianMixture, ref.RefParams]:
    """A fit of float32 rows from the halves' exact M-step and the centred
    float64 reference on the same rows; asserts the means (1e-5 sd), the
    covariances (1e-5 relative) and the lower bound (1e-5) agree."""
    X64 = X.astype(np.float64)
    start, precisions = start_of(X64, ct)
    gm = GaussianMixture(2, covariance_type=ct, weights_init=start.weights,
                         means_init=start.means, precisions_init=precisions,
                         max_iter=iterations, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    expected = ref.em(X64, start, ct, iterations)
    sd = standard_deviations(expected.covariances, ct)
    assert np.max(np.abs(gm.means_ - expected.means) / sd) < 1e-5
    np.testing.assert_allclose(gm.covariances_, expected.covariances, rtol=1e-5)
    assert abs(gm.lower_bound_ - expected.lower_bound) < 1e-5
    return gm, expected


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_rows_far_from_the_origin_score_as_the_reference(monkeypatch, ct,
                                                                 kernel):
    # A float64 model scoring float32 rows at 1e6: log-densities were off by
    # 0.16 (the same rounding of the centre); float32 allows a few 1e-6.
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    X = two_clusters(1e6)
    gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    rows = X.astype(np.float32)
    args = (gm.weights_, gm.means_, gm.precisions_cholesky_, ct)
    log_p = ref.log_prob(rows.astype(np.float64), *args)
    expected = ref.logsumexp_rows(log_p)
    np.testing.assert_allclose(gm.score_samples(rows), expected, rtol=0, atol=2e-5)
    np.testing.assert_allclose(gm.predict_proba(rows), np.exp(log_p - expected[:, None]),
                               rtol=0, atol=1e-6)


# ------------------------------- 2. the second pass about the moved means


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_features_of_very_different_scales_equal_the_reference(monkeypatch, ct,
                                                                       kernel):
    # Features of scales 1e3, 1 and 1e-3 at 1e4: the means move by 2e3 (2 sd
    # of the first feature) from the group centre, past the loss bound that
    # takes the moments again about the new means (recentre.py), whose
    # residuals were taken in float32 about the means rounded to float32:
    # tied and diag means off by 0.07 sd, the bound by 1e-3.
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    fit_and_reference((two_clusters(0.0) * [1e3, 1.0, 1e-3] + 1e4).astype(np.float32),
                      ct, 3)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_start_equals_the_start_from_the_same_rows_in_float64(ct):
    # The first M-step (moments about the responsibilities' means) put every
    # initial mean of float32 rows at 1e6 up to 0.03 away (the rounding of
    # the means to float32), and the start's bound 8e-4 lower.
    X = two_clusters(1e6).astype(np.float32)
    params = dict(covariance_type=ct, random_state=0, max_iter=0, init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = GaussianMixture(2, **params).fit(X)
        double = GaussianMixture(2, **params).fit(X.astype(np.float64))
    np.testing.assert_allclose(single.means_, double.means_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-6)
    assert abs(single.lower_bound_ - double.lower_bound_) < 1e-5


@pytest.mark.parametrize("ct", ["full", "tied", "diag"])
def test_features_of_very_different_scales_need_no_second_pass(monkeypatch, ct):
    # The bound |delta|^2 trace(precision) on the digits a covariance loses
    # to moments about a centre delta away mixed the features' scales and
    # took the moments again about the new means at every iteration (tied,
    # diag: scales 1e3 and 1; full: 1e3, 1 and 1e-3). Each diag variance
    # loses delta_j^2 / var_j; full and tied have a bound in scale-free terms.
    import gaussmix.engine.loop as loop

    passes = []
    second_pass = loop.moments_about
    monkeypatch.setattr(loop, "moments_about",
                        lambda *a, **k: passes.append(1) or second_pass(*a, **k))
    X = two_clusters(0.0) * [1e3, 1.0, 1e-3]
    start, precisions = start_of(X, ct)
    start.means = start.means + [500.0, 0.5, 0.0]  # the first step moves 0.5 sd
    gm = GaussianMixture(2, covariance_type=ct, weights_init=start.weights,
                         means_init=start.means, precisions_init=precisions,
                         max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    assert passes == []
    expected = ref.em(X, start, ct, 3)
    np.testing.assert_allclose(gm.means_, expected.means, rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_, expected.covariances, rtol=1e-9,
                               atol=1e-15)


def _as_input(kind: str, X: np.ndarray, tmp_path):
    if kind == "npy":
        from gaussmix import NpySource

        np.save(tmp_path / "rows.npy", X)
        return NpySource(tmp_path / "rows.npy", chunk_size=128)
    if kind == "iterable":
        from gaussmix import IterableSource

        return IterableSource([X[:150], X[150:]])
    if kind == "dask":  # on the local scheduler (the test sets it)
        da = pytest.importorskip("dask.array")
        return da.from_array(X, chunks=(128, X.shape[1]))
    torch = pytest.importorskip("torch")
    return torch.from_numpy(X.copy())


@pytest.mark.parametrize("kind", ["npy", "iterable", "dask", "torch"])
def test_float32_sources_far_from_the_origin_equal_the_reference(tmp_path, kind):
    # The same fit through every data source (tied: it went furthest astray).
    X = two_clusters(1e6).astype(np.float32)
    X64 = X.astype(np.float64)
    start, precisions = start_of(X64, "tied")
    gm = GaussianMixture(2, covariance_type="tied", weights_init=start.weights,
                         means_init=start.means, precisions_init=precisions,
                         max_iter=3, tol=0)
    data = _as_input(kind, X, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "dask":
            import dask

            with dask.config.set(scheduler="synchronous"):
                gm.fit(data)
        else:
            gm.fit(data)
    expected = ref.em(X64, start, "tied", 3)
    means = np.asarray(gm.means_.cpu() if hasattr(gm.means_, "cpu") else gm.means_)
    sd = standard_deviations(expected.covariances, "tied")
    assert np.max(np.abs(means - expected.means) / sd) < 1e-5
    assert abs(float(gm.lower_bound_) - expected.lower_bound) < 1e-5


# ------------------------------- components far apart: float32's expansion


def far_apart_model(ct: str, d: int = 3) -> GaussianMixture:
    """Components at 0, 3 and 900 standard deviations (unit covariances)."""
    gm = GaussianMixture(3, covariance_type=ct)
    gm.weights_ = np.array([0.25, 0.25, 0.5])
    gm.means_ = np.array([[0.0] * d, [3.0] * d, [900.0] * d])
    gm.precisions_cholesky_ = {"full": np.tile(np.eye(d), (3, 1, 1)), "tied": np.eye(d),
                               "diag": np.ones((3, d)), "spherical": np.ones(3)}[ct]
    gm.n_features_in_ = d
    return gm


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_components_far_apart_score_as_float64(monkeypatch, ct, kernel):
    # tied/diag/spherical expand |x - mu|^2 about the mixture's centre (450 sd
    # from every component here), which cost float32 about eps * 450^2 in each
    # log-density: responsibilities between the two near components were off
    # by up to 1.5e-2 and log-densities by 9e-2 (scikit-learn's float32: 5e-7).
    # Such chunks are now scored in float64; full whitens instead (2.5e-5).
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(3, 1, (300, 3)),
                        rng.normal(900, 1, (600, 3))]).astype(np.float32)
    gm = far_apart_model(ct)
    exact = X.astype(np.float64)
    tol = 1e-4 if ct == "full" else 1e-8
    np.testing.assert_allclose(gm.predict_proba(X), gm.predict_proba(exact), atol=tol)
    np.testing.assert_allclose(gm.score_samples(X), gm.score_samples(exact),
                               atol=10 * tol)
    # a fit from the same start: the float32 rows' own float64 fit
    settings = dict(covariance_type=ct, weights_init=gm.weights_, means_init=gm.means_,
                    max_iter=5, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(3, **settings).fit(X)
        b = GaussianMixture(3, **settings).fit(exact)
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-4)
    np.testing.assert_allclose(a.weights_, b.weights_, atol=1e-6)


def test_float32_keeps_float32_for_components_near_their_centre():
    # float32's speed stays where its expansion costs little (here 3 sd).
    from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
    from gaussmix.engine.estep import EStepKernel

    for ct in ("tied", "diag", "spherical"):
        gm = far_apart_model(ct)
        spec = ComputeSpec(np, np.dtype(np.float32))
        far = EStepKernel.build(get_covariance_type(ct), gm._params, spec)
        gm.means_ = gm.means_[[0, 1, 1]]
        near = EStepKernel.build(get_covariance_type(ct), gm._params, spec)
        assert far.state.groups[0].centre.dtype == np.float64
        assert near.state.groups[0].centre.dtype == np.float32
