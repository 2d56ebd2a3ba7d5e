"""The second pass about the new means (gaussmix.engine.recentre) for rows
with missing values: a component whose mean jumps far in one iteration gets
its moments again about the new mean, with the responsibilities and the
conditional expectations and covariances of the ordinary E-step.

The judge is a slow per-row EM iteration written here: conditional means and
covariances by ``np.linalg.solve``, each row's deviation from the old mean,
then centred on the new mean (no moments expanded about a far centre)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import reference_em as ref
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
from gaussmix.engine.incomplete import MarginalKernel
from gaussmix.engine.params import MixtureParams

TYPES = ["full", "tied", "diag", "spherical"]
REG = 1e-6
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba not installed")


def _typed_covariances(cov_type, nk, scatter):
    """The M-step's covariances of a type from per-component scatters."""
    d = scatter.shape[1]
    full = scatter / nk[:, None, None]
    return {"full": lambda: full + REG * np.eye(d),
            "tied": lambda: scatter.sum(axis=0) / nk.sum() + REG * np.eye(d),
            "diag": lambda: np.diagonal(full, axis1=1, axis2=2) + REG,
            "spherical": lambda: np.trace(full, axis1=1, axis2=2) / d + REG,
            }[cov_type]()


def _as_full(cov_type, c, K=2, d=3):
    c = np.asarray(c)
    if cov_type == "full":
        return c
    if cov_type == "tied":
        return np.stack([c] * K)
    if cov_type == "diag":
        return c[:, :, None] * np.eye(d)
    return c[:, None, None] * np.eye(d)


def _start(cov_type):
    """Initial parameters of a type (component 1 at (8, 8, 8)), and the same
    covariances as full matrices."""
    d = 3
    typed = {"full": np.stack([np.eye(d) + 0.3, 2.0 * np.eye(d) + 0.3
                               - 0.4 * np.eye(d, k=1) - 0.4 * np.eye(d, k=-1)]),
             "tied": np.eye(d) + 0.3,
             "diag": np.array([[1.0, 2.0, 0.5], [1.5, 0.7, 1.0]]),
             "spherical": np.array([1.0, 1.5])}[cov_type]
    precisions = np.linalg.inv(typed) if cov_type in ("full", "tied") else 1.0 / typed
    weights, means = np.array([0.5, 0.5]), np.array([np.zeros(d), np.full(d, 8.0)])
    kw = dict(covariance_type=cov_type, weights_init=weights, means_init=means,
              precisions_init=precisions, missing="marginalize")
    return kw, (weights, means, _as_full(cov_type, typed))


def _jumping_rows(seed=0, far_nan=True):
    """Rows near the origin and a tight cluster 1e6 away (where component 1
    jumps in one iteration), with NaN near the origin and, with ``far_nan``,
    in the cluster's column 1 (whose conditional expectation at the old
    parameters is far from the cluster: then only the other columns keep a
    small variance)."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (20, 3)), 1e6 + 1e-3 * rng.normal(size=(6, 3))])
    X[3, 0] = X[5, 1] = X[8, [0, 2]] = np.nan
    if far_nan:
        X[22, 1] = np.nan
    return X


def _fitted_once(gm, X, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, sample_weight=sample_weight)


class _Counted:
    """Wraps ``MarginalKernel.moments_about`` and counts its calls."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = MarginalKernel.moments_about

        def counted(kernel, *args, **kwargs):
            self.calls += 1
            return original(kernel, *args, **kwargs)

        monkeypatch.setattr(MarginalKernel, "moments_about", counted)


@pytest.mark.parametrize("cov_type", TYPES)
def test_fit_iteration_with_a_jump_and_nan_matches_the_reference(cov_type):
    X = _jumping_rows(far_nan=cov_type != "spherical")
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    kw, start = _start(cov_type)
    gm = _fitted_once(GaussianMixture(2, max_iter=1, chunk_size=11, **kw), X, w)
    nk, means, scatter = ref.marginal_moments(X, w, *start)
    np.testing.assert_allclose(gm.weights_, nk / nk.sum(), rtol=1e-12)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, _typed_covariances(cov_type, nk, scatter),
                               rtol=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
def test_partial_fit_step_with_a_jump_and_nan_matches_the_reference(cov_type):
    # The first step (step size 1) is one EM iteration on the batch
    X = _jumping_rows(seed=2, far_nan=cov_type != "spherical")
    kw, start = _start(cov_type)
    gm = GaussianMixture(2, **kw).partial_fit(X)
    nk, means, scatter = ref.marginal_moments(X, np.ones(len(X)), *start)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, _typed_covariances(cov_type, nk, scatter),
                               rtol=1e-12)


def test_later_partial_fit_step_with_a_jump_blends_the_reference(monkeypatch):
    # Step size 1/2 at the second step: the running statistics (batch a) and
    # the batch's statistics about its own new means (batch b, where
    # component 1 jumps) blended by Chan's pairwise update, written here.
    # (The blend's spread between the two batches' means dominates here, so
    # this pins the path, not the cancellation; the first steps above do.)
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.normal(0, 1, (15, 3)), rng.normal(5, 1, (15, 3))])
    a[[2, 17], 1] = np.nan
    b = _jumping_rows(seed=4)
    kw, start = _start("full")
    gm = GaussianMixture(2, learning_offset=1.0, learning_decay=1.0, **kw).partial_fit(a)
    theta = (gm.weights_, gm.means_, gm.covariances_)
    counter = _Counted(monkeypatch)
    gm.partial_fit(b)
    assert counter.calls == 1
    nk_a, mean_a, scatter_a = ref.marginal_moments(a, np.ones(len(a)), *start)
    nk_b, mean_b, scatter_b = ref.marginal_moments(b, np.ones(len(b)), *theta)
    rho = 0.5
    wa, wb = (1 - rho) * nk_a / len(a), rho * nk_b / len(b)
    nk = wa + wb
    gap = mean_b - mean_a
    means = mean_a + (wb / nk)[:, None] * gap
    scatter = ((1 - rho) / len(a) * scatter_a + rho / len(b) * scatter_b
               + (wa * wb / nk)[:, None, None] * gap[:, :, None] * gap[:, None, :])
    np.testing.assert_allclose(gm.weights_, nk, rtol=1e-12)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(gm.covariances_, _typed_covariances("full", nk, scatter),
                               rtol=1e-10)


@pytest.mark.parametrize("cov_type", TYPES)
def test_ordinary_fits_with_nan_take_no_second_pass(monkeypatch, cov_type):
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0, 1, (150, 3)), rng.normal(4, 1.5, (150, 3))])
    X[rng.random(X.shape) < 0.25] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    counter = _Counted(monkeypatch)
    gm = GaussianMixture(2, covariance_type=cov_type, missing="marginalize",
                         random_state=0, n_init=2, tol=1e-6).fit(X)
    for part in np.array_split(X, 5):
        gm.partial_fit(part)
    assert gm.n_iter_ > 3
    assert counter.calls == 0
    # (the counter does count: a jump takes the second pass once per chunk)
    kw, _ = _start(cov_type)
    _fitted_once(GaussianMixture(2, max_iter=1, chunk_size=11, **kw),
                 _jumping_rows(far_nan=False))
    assert counter.calls == 3


def _kernel(cov_type, d=4, seed=6):
    rng = np.random.default_rng(seed)
    piece = get_covariance_type(cov_type)
    means = rng.normal(scale=3.0, size=(3, d))
    A = rng.normal(size=(3, d, d)) / np.sqrt(d)
    covs = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
    diag = np.diagonal(covs, axis1=1, axis2=2)
    typed = {"full": covs, "tied": covs.mean(axis=0), "diag": diag,
             "spherical": diag.mean(axis=1)}[cov_type]
    params = MixtureParams(np.array([0.3, 0.5, 0.2]), means, typed,
                           piece.precisions_cholesky(typed))
    return MarginalKernel.build(piece, params, ComputeSpec(np, np.float64)), params


def _rows(n=400, d=4, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=3.0, size=(n, d))
    X[rng.random(X.shape) < 0.35] = np.nan
    return X


@needs_numba
@pytest.mark.parametrize("cov_type", TYPES)
def test_moments_about_equal_the_statistics_moved_there(monkeypatch, cov_type):
    # Centres near the means, where moving the ordinary statistics loses no
    # digits: the second pass gives the first pass's moments there, with the
    # NumPy reference and with the compiled loops (the first pass's complete
    # and incomplete rows compiled, the second's incomplete rows NumPy).
    X = _rows()
    w = np.random.default_rng(8).uniform(0.2, 3.0, len(X))
    results = {}
    for mode in ("reference", "fused"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
        kernel, params = _kernel(cov_type)
        centres = params.means + np.random.default_rng(9).normal(scale=0.5,
                                                                 size=params.means.shape)
        moved = kernel.statistics(X, w).recentred(centres)
        about = kernel.moments_about(X, w, centres)
        np.testing.assert_array_equal(about.shift, centres)
        for name in ("nk", "s1", "s2"):
            np.testing.assert_allclose(getattr(about, name), getattr(moved, name),
                                       rtol=1e-12, atol=1e-12 * np.abs(moved.s2).max())
        results[mode] = about
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(results["fused"], name),
                                   getattr(results["reference"], name), rtol=1e-12,
                                   atol=1e-12 * np.abs(results["reference"].s2).max())


def test_moments_about_are_additive_over_rows():
    X = _rows(seed=10)
    X[:40] = np.nan_to_num(X[:40])               # some complete rows
    kernel, params = _kernel("full")
    centres = params.means + 100.0
    whole = kernel.moments_about(X, None, centres)
    parts = kernel.moments_about(X[:150], None, centres) + kernel.moments_about(
        X[150:], None, centres)
    complete = kernel.moments_about(X[:40], None, centres)   # no NaN at all
    assert complete.nk.sum() == pytest.approx(40.0, rel=1e-12)
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12)
    np.testing.assert_allclose(whole.nk.sum(), len(X), rtol=1e-12)
