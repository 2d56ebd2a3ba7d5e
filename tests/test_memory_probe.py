"""Memory of wide problems against scikit-learn's: what a fit or a scoring
holds at once stays within a few copies of the model's own parameters (see
the helper's report for the sizes probed: full n=1,500, d=800, K=50; tied
K=500, d=300)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import full


def _peak(work: Callable[[], object]) -> int:
    """tracemalloc's peak (bytes) while ``work`` runs."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _wide_start(X: np.ndarray, K: int, precision: float) -> dict[str, np.ndarray]:
    d = X.shape[1]
    return {"weights_init": np.full(K, 1 / K), "means_init": X[:K] + 0.01,
            "precisions_init": np.stack([np.eye(d) * precision] * K)}


# --------------------- full: wide data, many components, each its own centre group
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=2
def test_wide_full_fit_whitens_its_components_in_batches(monkeypatch):
    # Fewer rows per component than dimensions: every covariance is singular
    # but for reg_covar, every mean lies 1e3 sigma from the others and gets
    # its own centre group. Each group kept its centred chunk and its
    # whitened one (K (2d + 1) n numbers) and the M-step made (K, d, d)
    # temporaries; n=1,500, d=800, K=50 traced 3.8 GB against scikit-learn's
    # 0.8 GB. The whitened rows now never exceed the covariances' size
    # (K d^2 numbers; WHITE_BUDGET, the floor of that bound, is lowered here
    # to reach it at a small size): past it, components are whitened in
    # batches, and again for the moments.
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    K, d, n = 24, 48, 288
    X = np.random.default_rng(0).normal(size=(n, d))
    start = _wide_start(X, K, 1e5)

    def fit() -> GaussianMixture:
        return GaussianMixture(K, max_iter=2, tol=0, **start).fit(X)

    kept = fit()  # (with its whitened chunks kept: WHITE_BUDGET above K d n)
    monkeypatch.setattr(full, "WHITE_BUDGET", 1)
    model = K * d * d * 8
    batched = fit()
    peak = _peak(fit)
    # (before: 24.8 model sizes; now 11.3, scikit-learn's 4.2)
    assert peak < 14 * model, peak / model
    peak = _peak(lambda: batched.score_samples(X))
    assert peak < 3 * model, peak / model  # (before: 14.9; now 2.0, scikit-learn's 1.0)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(batched, name), getattr(kept, name),
                                   rtol=1e-12, atol=0)
    expected = SkGaussianMixture(K, max_iter=2, tol=0, **start).fit(X)
    np.testing.assert_allclose(batched.means_, expected.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batched.covariances_, expected.covariances_, rtol=1e-7,
                               atol=1e-12)
    np.testing.assert_allclose(batched.score_samples(X), expected.score_samples(X),
                               rtol=1e-9)


# ------------------------------ tied: one (d, d) sum, not one per centre group
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=2
def test_tied_sums_its_groups_second_moments_as_they_come(monkeypatch):
    # A start whose precision puts every mean far from the others gives each
    # component its own centre group; the E-step kept one (d, d) sum per
    # group and stacked them to add them (and the initial moments one per
    # component): K=500, d=300 reached 1.6 GB of RSS against scikit-learn's
    # 0.36 GB. The sums are now added as they come, in the same order.
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    K, d, n = 200, 60, 400
    X = np.random.default_rng(0).normal(size=(n, d))
    start = {"weights_init": np.full(K, 1 / K), "means_init": X[:K] + 0.01,
             "precisions_init": np.eye(d) * 1e5}

    def fit() -> GaussianMixture:
        return GaussianMixture(K, covariance_type="tied", max_iter=2, tol=0,
                               **start).fit(X)

    fitted = fit()
    peak = _peak(fit)
    # (before: 2.25 times K d^2 numbers; now 0.48, scikit-learn's 0.72)
    assert peak < K * d * d * 8, peak / (K * d * d * 8)
    expected = SkGaussianMixture(K, covariance_type="tied", max_iter=2, tol=0,
                                 **start).fit(X)
    np.testing.assert_allclose(fitted.means_, expected.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.covariances_, expected.covariances_, rtol=1e-9,
                               atol=1e-12)


# ------------------- diagonal precisions with missing values: (K, d), not (K, d, d)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=1
@pytest.mark.parametrize("kernel", ["reference", "fused"])
def test_diagonal_marginals_keep_the_diagonals_only(monkeypatch, kernel):
    # Marginals.of made (K, d, d) factors and precisions (and a copy of their
    # off-diagonal entries) for diag and spherical mixtures: 1 GB at d=3,000;
    # scoring rows with NaN held three times K d^2 numbers (d=1,500, K=8:
    # 443 MB, now 25 MB).
    pytest.importorskip("numba") if kernel == "fused" else None
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    from scipy.special import logsumexp

    from gaussmix.engine.covariance import get_covariance_type
    from gaussmix.engine.incomplete.conditional import Marginals

    K, d, n = 6, 300, 100
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    X[rng.random((n, d)) < 0.05] = np.nan
    gm = GaussianMixture(K, covariance_type="diag", max_iter=1, tol=0, random_state=0,
                         missing="marginalize").fit(X)
    model = K * d * d * 8
    assert _peak(lambda: Marginals.of(get_covariance_type("diag"), gm._params)) < model / 10
    log_p = [gm.score_samples(X)]  # (imports and compiled loops loaded)
    peak = _peak(lambda: gm.score_samples(X))
    # (before: 3.0 times K d^2 numbers; now 0.35, and 1.34 with the compiled
    # loops, whose work buffers take K d^2 / 2)
    assert peak < 2 * model, peak / model
    # the marginal density of the observed entries, feature by feature
    seen = ~np.isnan(X)
    per_entry = -0.5 * (np.log(2 * np.pi * gm.covariances_[:, None, :])
                        + (np.nan_to_num(X)[None] - gm.means_[:, None, :]) ** 2
                        / gm.covariances_[:, None, :])
    expected = logsumexp(np.log(gm.weights_)[:, None]
                         + np.where(seen[None], per_entry, 0.0).sum(axis=2), axis=0)
    np.testing.assert_allclose(log_p[0], expected, rtol=1e-10)
