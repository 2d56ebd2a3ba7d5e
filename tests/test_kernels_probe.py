"""Found by differential fuzzing of the compiled (numba) E-step loops against
the NumPy/array-API reference kernels, on inputs the other kernel tests do not
draw: nearly singular covariances, rows whose observed coordinates nearly
determine the missing ones, and the other corners listed with each test.

The judge is a slow per-row float64 computation written here from the
precision Cholesky factors the kernels are given: for an incomplete row, the
conditional mean offset by a Cholesky solve of ``L_mm`` (backward stable, so
its error enters the filled residual's distance ``|f U|^2`` to second order
only) and ``log det Sigma_oo = log det Sigma + log det L_mm``.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import scipy.linalg as sl
from scipy.special import logsumexp

from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
from gaussmix.engine.incomplete import MarginalKernel
from gaussmix.engine.params import MixtureParams

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba not installed")


# ------------------------------------------------------------------ helpers
def _collinear_params(d: int, noise: float, K: int = 2, seed: int = 0) -> MixtureParams:
    """Full covariances of rank-2 signal plus ``noise``^2 on the diagonal, with
    unscaled columns (1 to 1e3): condition numbers about (1e3 / noise)^2."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, 3, d)
    covariances = []
    for _ in range(K):
        A = rng.standard_normal((d, 2)) * scales[:, None]
        covariances.append(A @ A.T + noise**2 * np.eye(d))
    covariances = np.stack(covariances)
    piece = get_covariance_type("full")
    means = 50.0 + rng.standard_normal((K, d)) * scales
    return MixtureParams(np.full(K, 1.0 / K), means, covariances,
                         piece.precisions_cholesky(covariances))


def _rows(params: MixtureParams, counts: list[int], per_count: int, seed: int = 1
          ) -> np.ndarray:
    """Rows drawn from the mixture, ``per_count`` of them missing each number
    of coordinates in ``counts`` (random patterns)."""
    rng = np.random.default_rng(seed)
    K, d = params.means.shape
    n = per_count * len(counts)
    labels = rng.integers(0, K, n)
    lower = np.linalg.cholesky(params.covariances)
    X = params.means[labels] + np.einsum("nij,nj->ni", lower[labels],
                                         rng.standard_normal((n, d)))
    for i, q in enumerate(np.repeat(counts, per_count)):
        X[i, rng.choice(d, q, replace=False)] = np.nan
    return X


def _marginal_scores(params: MixtureParams, X: np.ndarray) -> np.ndarray:
    """``log pi_k + log N(x_o | k)`` (K, n), row by row (see the module notes)."""
    return _judge(params, X)[0]


def _imputed(params: MixtureParams, X: np.ndarray) -> np.ndarray:
    """``E[x_m | x_o]`` filled in, row by row (see the module notes)."""
    scores, filled = _judge(params, X)
    resp = np.exp(scores - logsumexp(scores, axis=0))
    return np.einsum("kn,knd->nd", resp, filled)


def _judge(params: MixtureParams, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marginal scores (K, n) and ``E[x | x_o, k]`` (K, n, d) of each row."""
    K, d = params.means.shape
    U = params.precisions_cholesky
    out, filled = np.empty((K, len(X))), np.empty((K, len(X), d))
    for i, x in enumerate(X):
        m = np.isnan(x)
        for k in range(K):
            L = U[k] @ U[k].T
            r = np.where(m, 0.0, x - params.means[k])
            f = r.copy()
            if m.any():
                factor = sl.cho_factor(L[np.ix_(m, m)], lower=True)
                f[m] = sl.cho_solve(factor, -(L @ r)[m])
                log_det_mm = 2.0 * np.log(np.diag(factor[0])).sum()
            else:
                log_det_mm = 0.0
            white = f @ U[k]
            filled[k, i] = f + params.means[k]
            out[k, i] = (math.log(params.weights[k]) + np.log(np.diag(U[k])).sum()
                         - 0.5 * log_det_mm - 0.5 * (d - m.sum()) * math.log(2 * math.pi)
                         - 0.5 * white @ white)
    return out, filled


def _marginal_kernel(monkeypatch, mode: str, params: MixtureParams) -> MarginalKernel:
    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    return MarginalKernel.build(get_covariance_type("full"), params,
                                ComputeSpec(np, np.float64))


# ------------------------------------------ incomplete rows, nearly singular
@needs_numba
@pytest.mark.parametrize("mode", ["reference", "fused"])
def test_marginal_density_when_observed_coordinates_nearly_fix_the_missing(
        monkeypatch, mode):
    """Condition number about 1e14: the missing coordinates are nearly a
    linear function of the observed ones, so ``r~^T L r~`` (missing entries
    zeroed) is some 1e5-1e10 times the marginal distance. The compiled loops
    took the distance as the difference ``r~^T L r~ - y^T L_mm^-1 y`` (log
    density off by 2e-3 for rows missing 1 or 3 coordinates, 5e-2 for 9) and
    the reference took the conditional mean through the explicit inverse of
    ``L_mm`` (off by 1e6 for 9); both now agree with the per-row Cholesky
    solve to 1e-10, and for 9 missing to the 1e-3 that ``log det L_mm``
    of a 9 x 9 block of condition number 1e14, formed from the rounded
    precision, allows any method. All take the straight-line lanes (up to
    10 missing; the generic loops beyond have the same check)."""
    params = _collinear_params(d=10, noise=1e-4)
    assert np.linalg.cond(params.covariances[0]) > 1e13
    X = _rows(params, [1, 3, 9], per_count=40)
    kernel = _marginal_kernel(monkeypatch, mode, params)
    scores, judge = kernel.scores(X)[0], _marginal_scores(params, X)
    few = np.isnan(X).sum(axis=1) < 9
    np.testing.assert_allclose(scores[:, few], judge[:, few], rtol=1e-13, atol=1e-8)
    np.testing.assert_allclose(scores[:, ~few], judge[:, ~few], rtol=1e-13, atol=5e-3)
    # the conditional means (for 9 missing, delta = L_mm^-1 y itself is only
    # good to cond(L_mm) units in the last place, by any method)
    filled, expected = kernel.impute(X), _imputed(params, X)
    scale = np.abs(params.means).max() + np.sqrt(params.covariances.max())
    np.testing.assert_allclose(filled[few], expected[few], rtol=0, atol=1e-10 * scale)


@needs_numba
@pytest.mark.parametrize("mode", ["reference", "fused"])
def test_a_few_nearly_fixed_rows_among_ordinary_ones(monkeypatch, mode):
    """The compiled loops recompute the distances that lost digits to the
    difference ``r~^T L r~ - y^T L_mm^-1 y`` lane by lane where few of a
    component's lanes in a tile need it (a product for the whole tile
    where many do, as in the test above): here 4 rows of a tile of 44, all
    missing 3 coordinates, whose observed coordinates nearly fix the
    missing ones, among rows shifted some 1e5 noise scales (their
    distances are large, and the difference loses little). Scores and
    conditional means as the per-row judge's."""
    params = _collinear_params(d=10, noise=1e-4)
    X = _rows(params, [3], per_count=44)
    far = np.arange(len(X)) >= 4
    X[far] += 15.0 * np.random.default_rng(2).standard_normal((far.sum(), 10))
    judge = _marginal_scores(params, X)
    # (the premise: only the 4 rows lose digits, a few lanes per component)
    m = np.isnan(X)
    for k in range(2):
        r = np.where(m, 0.0, X - params.means[k])
        U = params.precisions_cholesky[k]
        scale = np.einsum("nd,de,ne->n", r, U @ U.T, r)
        maha = np.array([ro @ np.linalg.solve(params.covariances[k][np.ix_(o, o)], ro)
                         for ro, o in ((r[i, ~m[i]], ~m[i]) for i in range(len(X)))])
        lost = scale > 1024 * (maha + 1)
        assert 0 < lost.sum() <= 4 and not lost[far].any()
    assert np.abs(judge.max(axis=0)).max() < 2.0**40  # (not far out: FAR_SCORE)
    kernel = _marginal_kernel(monkeypatch, mode, params)
    scores = kernel.scores(X)[0]
    # (rtol: the difference's rounding in the other lanes, up to CANCELLATION
    # ulps of the distance; in the 4 rows' it would be 1e-11 to 1e-6)
    np.testing.assert_allclose(scores, judge, rtol=1e-12, atol=1e-8)
    filled, expected = kernel.impute(X), _imputed(params, X)
    np.testing.assert_allclose(filled, expected, rtol=1e-12, atol=1e-9)


@needs_numba
@pytest.mark.parametrize("mode", ["reference", "fused"])
def test_rows_with_nothing_observed_have_density_one(monkeypatch, mode):
    """A row with every coordinate missing has marginal density 1: score
    ``log pi_k``, log-likelihood 0. Both kernels took ``log det Sigma_oo`` as
    ``log det Sigma + log det L_mm`` with ``L_mm`` the whole rounded precision,
    off by about cond(L) units in the last place, differently in the two
    (6e-11 here; 2e-6 in a fuzzed case at condition number 9e10)."""
    params = _collinear_params(d=4, noise=1e-2)
    assert np.linalg.cond(params.covariances[0]) > 1e10
    X = _rows(params, [4, 1], per_count=70)
    kernel = _marginal_kernel(monkeypatch, mode, params)
    empty = np.isnan(X).all(axis=1)
    scores = kernel.scores(X)[0]
    np.testing.assert_allclose(scores[:, empty],
                               np.log(params.weights)[:, None].repeat(empty.sum(), 1),
                               rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(kernel.log_likelihood(X)[empty], 0.0, rtol=0, atol=1e-14)
    stats = kernel.statistics(X[empty])
    assert stats.loglik == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(stats.nk, params.weights * empty.sum(), rtol=1e-13)


@pytest.mark.parametrize("mode", ["reference", "fused"] if importlib.util.find_spec("numba")
                         else ["reference"])
def test_labels_of_incomplete_rows_far_out_are_the_nearest_component(monkeypatch, mode):
    """Tied covariances, rows 1e20 to 1e100 standard deviations out with a
    coordinate missing: the components' scores (about -1e40 to -1e200) differ
    by far less than their rounding, so both kernels labelled such rows at
    random (19 of 20 wrong at 1e100), where complete rows keep the exact gaps
    in their row term. Now they take the far rows' exact gaps: the label of
    the largest ``x_o . mu_o - |mu_o|^2 / 2`` (identity covariance, equal
    weights), as for the same rows complete."""
    rng = np.random.default_rng(0)
    piece = get_covariance_type("tied")
    params = MixtureParams(np.full(3, 1 / 3), 3.0 * rng.standard_normal((3, 3)), np.eye(3),
                           piece.precisions_cholesky(np.eye(3)))
    X = rng.standard_normal((100, 3))
    X[:30, :2] = rng.standard_normal((30, 2)) * np.logspace(20, 100, 30)[:, None]
    X[:, 2] = np.nan
    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    kernel = MarginalKernel.build(piece, params, ComputeSpec(np, np.float64))
    means = params.means[:, :2]
    nearest = np.argmax(X[:, :2] @ means.T - 0.5 * (means**2).sum(axis=1), axis=1)
    np.testing.assert_array_equal(kernel.labels(X), nearest)
    resp = np.exp(kernel.log_resp(X[:30]))
    np.testing.assert_allclose(resp.max(axis=0), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(kernel.log_likelihood(X)))
