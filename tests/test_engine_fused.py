"""The fused (numba) E-step kernel against the array-API reference kernel.

The reference is :class:`EStepKernel` with ``GAUSSMIX_KERNEL=reference``; the
fused kernel must give the same statistics and per-row results (1e-12 in
float64, float32 rounding in float32) for every covariance type, with and
without weights, whatever the number of threads, and fall back to the
reference wherever its loops do not apply.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture

from gaussmix import GaussianMixture
from gaussmix.engine import fused
from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.fused.kernel import MIN_ROWS, FusedEStepKernel, tile_rows
from gaussmix.engine.params import MixtureParams
from gaussmix.engine.threads import (
    WorkCounter,
    available_cores,
    cgroup_cpu_limit,
    resolve_threads,
)

pytest.importorskip("numba")

N_ROWS = 5037  # several tiles and a partial last one


def mixture_data(n=N_ROWS, seed=0):
    X, _ = draw_mixture(n, [[0, 0, 0], [6, 1, 0], [0, 7, -3]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.4]], [0.3, 0.3, 0.4],
                        seed=seed)
    return X + 100.0  # an offset, so that centring matters


@functools.cache
def fitted_params(cov):
    """Parameters after a few EM iterations on :func:`mixture_data`."""
    gm = GaussianMixture(3, covariance_type=cov, max_iter=4, tol=0, random_state=0)
    with pytest.warns(Warning):  # not converged after 4 iterations
        gm.fit(mixture_data())
    return MixtureParams(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)


def kernels(monkeypatch, cov, params, dtype):
    piece, spec = get_covariance_type(cov), ComputeSpec(np, dtype)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    reference = EStepKernel.build(piece, params, spec)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "fused")
    fast = EStepKernel.build(piece, params, spec)
    assert type(reference) is EStepKernel and type(fast) is FusedEStepKernel
    return reference, fast


def assert_same_stats(a, b, rtol):
    """Moments agree to ``rtol`` of their natural scale: N for nk, N * sigma for
    s1 (which is near zero about the means), the second moments for s2."""
    scale = np.sqrt(np.maximum(a.nk, 1e-300))
    assert np.allclose(b.nk, a.nk, rtol=rtol, atol=0)
    spread = np.sqrt(np.abs(a.s2).max())
    assert np.all(np.abs(b.s1 - a.s1) <= rtol * spread * scale[:, None] * 10)
    assert np.allclose(b.s2, a.s2, rtol=rtol, atol=rtol * np.abs(a.s2).max())
    assert np.array_equal(b.shift, a.shift)
    assert b.loglik == pytest.approx(a.loglik, rel=rtol)
    assert b.weight == pytest.approx(a.weight, rel=1e-13)
    assert b.min_weight == a.min_weight


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("weighted", [False, True])
def test_statistics_match_reference(monkeypatch, cov, dtype, rtol, weighted):
    X = mixture_data()
    reference, fast = kernels(monkeypatch, cov, fitted_params(cov), dtype)
    w = np.random.default_rng(1).uniform(0, 3, len(X)) if weighted else None
    if weighted:
        w[:7] = 0.0
    Xd = X.astype(dtype)
    assert_same_stats(reference.statistics(Xd, w), fast.statistics(Xd, w), rtol)


def correlated_full_params(d, K=3, seed=2):
    """Full-covariance parameters with correlated features (random SPD
    covariances) and their upper Cholesky factors of the precisions."""
    rng = np.random.default_rng(seed)
    covariances = []
    for _ in range(K):
        a = rng.standard_normal((d, d))
        covariances.append(a @ a.T / d + 0.3 * np.eye(d))
    covariances = np.stack(covariances)
    chol = np.stack([np.linalg.inv(np.linalg.cholesky(c)).T for c in covariances])
    chol = np.triu(chol)  # exactly triangular, as the M-step gives it
    means = 100.0 + 3.0 * rng.standard_normal((K, d))
    return MixtureParams(np.array([0.5, 0.3, 0.2][:K]), means, covariances, chol)


# padded to 8, 12 and 24 features: several blocks; 5 to 8 features are
# whitened by compiled rows (6 reads the row of ones beyond d), others by one
# product per block of four features (21: a last block of one feature)
@pytest.mark.parametrize("d", [6, 8, 9, 21])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_full_statistics_match_reference_in_more_dimensions(monkeypatch, d, dtype, rtol):
    params = correlated_full_params(d)
    rng = np.random.default_rng(3)
    labels = rng.choice(3, size=1531, p=params.weights)
    X = np.stack([rng.multivariate_normal(params.means[k], params.covariances[k])
                  for k in labels]).astype(dtype)
    reference, fast = kernels(monkeypatch, "full", params, dtype)
    a, b = reference.statistics(X), fast.statistics(X)
    assert_same_stats(a, b, rtol)
    if dtype == np.float64:
        assert np.allclose(fast.log_likelihood(X), reference.log_likelihood(X),
                           rtol=1e-12, atol=0)


@pytest.mark.parametrize("d", [6, 13])
def test_factors_not_triangular_are_whitened_whole(monkeypatch, d):
    """The compiled rows for 5 to 8 features and the products by blocks of
    four features take the factors' lower triangle only (the M-step's are
    triangular); a factor that is not must be whitened whole and give the
    reference's statistics."""
    params = correlated_full_params(d)
    below = np.tril(np.random.default_rng(4).standard_normal((3, d, d)), -1)
    rotated = MixtureParams(params.weights, params.means, params.covariances,
                            params.precisions_cholesky + 0.1 * below)
    X = np.random.default_rng(5).standard_normal((700, d)) + params.means[0]
    reference, fast = kernels(monkeypatch, "full", rotated, np.float64)
    assert_same_stats(reference.statistics(X), fast.statistics(X), 1e-12)
    assert np.allclose(fast.log_likelihood(X), reference.log_likelihood(X), rtol=1e-12, atol=0)


def test_blocks_take_the_features_their_factors_reach():
    """Block i of four features multiplies only the first 4i + 4 features
    where the factors below them are zero, all d where one is not; each
    block's rows hold the offset first, then the factors."""
    from gaussmix.engine.fused.full_loops import _block_stack
    K, d = 2, 10
    rng = np.random.default_rng(6)
    stacked = np.zeros((K * d, d + 1))
    for k in range(K):
        stacked[k * d:(k + 1) * d, :d] = np.tril(rng.standard_normal((d, d)))
        stacked[k * d:(k + 1) * d, d] = rng.standard_normal(d)
    stacked[d + 5, 8] = 1.0  # component 1, feature 5 (block 1) reaches feature 8
    flat, starts, widths = _block_stack(stacked, K, d)
    assert list(widths) == [4, d, d]
    for i, width in enumerate(widths):
        block = flat[starts[i]:starts[i + 1]].reshape(K * 4, width + 1)
        for k in range(K):
            for r in range(4):
                f = 4 * i + r
                expected = (np.zeros(width + 1) if f >= d else
                            np.r_[stacked[k * d + f, d], stacked[k * d + f, :width]])
                assert np.array_equal(block[4 * k + r], expected)


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_per_row_results_match_reference(monkeypatch, cov):
    X = mixture_data()
    reference, fast = kernels(monkeypatch, cov, fitted_params(cov), np.float64)
    for what in ("log_likelihood", "log_resp"):
        a, b = getattr(reference, what)(X), getattr(fast, what)(X)
        assert a.shape == b.shape
        assert np.allclose(b, a, rtol=1e-12, atol=1e-12)
    assert np.array_equal(reference.labels(X), fast.labels(X))


def test_read_only_rows_share_the_compiled_loops(monkeypatch):
    """numba compiles a loop per writeable flag of its arrays: rows from a
    memory-mapped file (read-only) and the same rows in memory must not cost
    a second compilation (tens of seconds)."""
    from gaussmix.engine.fused import full_loops

    X = mixture_data()
    _, fast = kernels(monkeypatch, "full", fitted_params("full"), np.float64)
    expected = fast.statistics(X)
    compiled = set(full_loops.full_chunk.signatures)
    locked = X.copy()
    locked.flags.writeable = False
    weights = np.ones(len(X))
    weights.flags.writeable = False
    assert fast.statistics(locked) == expected
    fast.statistics(locked, weights)
    fast.statistics(X, weights.copy())
    assert set(full_loops.full_chunk.signatures) == compiled


def test_small_chunks_use_the_reference(monkeypatch):
    X = mixture_data()
    reference, fast = kernels(monkeypatch, "full", fitted_params("full"), np.float64)
    small = X[: MIN_ROWS - 1]
    assert fast.statistics(small) == reference.statistics(small)  # bit for bit


def test_overflowing_rows_are_rescued_as_by_the_reference(monkeypatch):
    # A row at 1e160 has no finite score; the chunk is recomputed by the
    # reference, which rescues it.
    X = mixture_data()
    X[5] = 1e160
    params = fitted_params("full")
    reference, fast = kernels(monkeypatch, "full", params, np.float64)
    a, b = reference.statistics(X), fast.statistics(X)
    assert a == b
    assert np.array_equal(reference.log_likelihood(X), fast.log_likelihood(X))


def test_far_apart_components_fall_back_to_the_reference(monkeypatch):
    # Components 1e7 sigma apart need several centre groups: not fused.
    params = MixtureParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [1e7, 0.0]]),
                           np.ones((2, 2)), np.ones((2, 2)))
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    kernel = EStepKernel.build(get_covariance_type("diag"), params,
                               ComputeSpec(np, np.float64))
    assert type(kernel) is EStepKernel


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_fit_is_the_same_whatever_the_threads_and_kernel(monkeypatch, cov):
    X = mixture_data(6000)
    fits = {}
    for kernel, threads in [("reference", 1), ("fused", 1), ("fused", 2), ("fused", 3)]:
        monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
        gm = GaussianMixture(3, covariance_type=cov, max_iter=5, tol=0, random_state=0,
                             n_threads=threads, chunk_size=1500)
        with pytest.warns(Warning):
            gm.fit(X)
        fits[kernel, threads] = gm
    base = fits["reference", 1]
    for gm in fits.values():
        assert gm.lower_bound_ == pytest.approx(base.lower_bound_, rel=1e-12)
        assert np.allclose(gm.means_, base.means_, rtol=1e-12, atol=0)
        assert np.allclose(gm.covariances_, base.covariances_, rtol=1e-10, atol=0)
        assert np.array_equal(gm.predict(X), base.predict(X))
    one = fits["fused", 1]
    for threads in (2, 3):  # same chunks, added in the same order: identical
        assert np.array_equal(fits["fused", threads].means_, one.means_)


def test_kernel_choice_from_the_environment(monkeypatch):
    params = fitted_params("tied")
    piece, spec = get_covariance_type("tied"), ComputeSpec(np, np.float64)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    assert type(EStepKernel.build(piece, params, spec)) is FusedEStepKernel
    monkeypatch.setenv("GAUSSMIX_KERNEL", "nonsense")
    with pytest.raises(ValueError, match="GAUSSMIX_KERNEL='nonsense'"):
        EStepKernel.build(piece, params, spec)
    # Without numba: the reference, or an error when the fused one was demanded.
    monkeypatch.setattr(fused, "available", lambda: False)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    assert type(EStepKernel.build(piece, params, spec)) is EStepKernel
    monkeypatch.setenv("GAUSSMIX_KERNEL", "fused")
    with pytest.raises(ImportError, match="numba"):
        EStepKernel.build(piece, params, spec)


def test_tiles_fit_in_cache_and_are_multiples_of_16():
    for cov in COVARIANCE_TYPES:
        for K, d in [(1, 1), (8, 16), (16, 8), (8, 64), (50, 300)]:
            rows = tile_rows(cov, K, d)
            assert rows % 16 == 0 and 32 <= rows <= 1024
    # more numbers per row, fewer rows (down to the short-tile minimum)
    assert tile_rows("full", 8, 64) <= tile_rows("full", 8, 16) < tile_rows("diag", 8, 16)
    assert tile_rows("full", 16, 128) < tile_rows("full", 8, 64)


def test_cgroup_limits(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(str(tmp_path)) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(str(tmp_path)) == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(str(v1)) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_cpu_limit(str(v1)) == 3.0
    assert cgroup_cpu_limit(str(tmp_path / "missing")) is None


def test_default_threads_are_the_available_cores():
    import os

    assert 1 <= available_cores() <= (os.cpu_count() or 1)
    assert resolve_threads(None) == available_cores()
    assert resolve_threads(3) == 3 and resolve_threads(0) == 1


def test_cache_sizes_are_read_as_bytes():
    from gaussmix.engine.fused.kernel import DEFAULT_L2_BYTES, _bytes, l2_cache_bytes

    assert _bytes("2048K") == _bytes("2M") == 2 << 20 and _bytes("512") == 512
    assert l2_cache_bytes() >= 64 << 10 or l2_cache_bytes() == DEFAULT_L2_BYTES


def test_chunks_are_longer_for_the_fused_kernel(monkeypatch):
    from gaussmix.engine.sources import auto_chunk_size

    full = get_covariance_type("full")
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    reference = [auto_chunk_size(K, d, full) for K, d in [(8, 16), (16, 8), (8, 64)]]
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    fast = [auto_chunk_size(K, d, full) for K, d in [(8, 16), (16, 8), (8, 64)]]
    assert all(4096 <= r <= 65536 for r in reference + fast)
    assert fast[0] > reference[0] and fast[1] > reference[1]  # small d: longer chunks
    assert fast[2] < fast[0]  # more work per row: fewer rows


def test_auto_mode_loads_the_loops_once_worth_it(monkeypatch):
    from gaussmix.engine.fused import kernel as fused_kernel

    X = mixture_data()
    params = fitted_params("diag")
    piece, spec = get_covariance_type("diag"), ComputeSpec(np, np.float64)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    reference = EStepKernel.build(piece, params, spec)
    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    monkeypatch.setattr(fused_kernel, "loops_loaded", lambda: False)
    monkeypatch.setattr(fused_kernel, "_work", WorkCounter())
    lazy = EStepKernel.build(piece, params, spec)
    assert not lazy.compiled
    assert lazy.statistics(X) == reference.statistics(X)  # the reference, bit for bit
    assert 0 < fused_kernel._work.total < fused_kernel.LOAD_AFTER_FLOPS
    fused_kernel._work.total = fused_kernel.LOAD_AFTER_FLOPS
    assert EStepKernel.build(piece, params, spec).compiled


@pytest.mark.parametrize("d", [3, 5, 8, 12])  # the eight-row loops for 5 to 8 features
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_second_moments_of_a_tile(d, dtype, rtol):
    """``moments.second_moments`` (also called by the missing-value loops):
    the lower triangle of ``sum_b r_b y_b y_b^T``, each 4x4 diagonal block
    whole, responsibilities at most ``floor`` left out."""
    from gaussmix.engine.fused.moments import padded, second_moments

    rng = np.random.default_rng(6)
    dp, tile = padded(d), 203
    white = np.zeros((dp, tile), dtype)
    white[:d] = rng.standard_normal((d, tile))
    resp = rng.uniform(0, 1, tile)
    resp[:9] = 1e-40  # below the floor
    out = np.zeros((dp, dp))
    second_moments(white, resp, 1e-30, d, np.empty((4, tile), dtype), out)
    kept = np.where(resp > 1e-30, resp, 0.0)
    expected = (white.astype(np.float64) * kept) @ white.T.astype(np.float64)
    blocks = np.kron(np.eye(dp // 4), np.ones((4, 4))) > 0
    filled = np.tril(np.ones((dp, dp))) > 0
    filled |= blocks
    assert np.allclose(out[filled], expected[filled], rtol=rtol, atol=rtol * np.abs(expected).max())
    assert np.all(out[~filled] == 0)


def test_vectorised_log_agrees_with_libm():
    from gaussmix.engine.fused.tile_steps import _log_at_least_one

    x = np.concatenate([1.0 + 15.0 * np.random.default_rng(7).uniform(size=5000),
                        [1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 1e300, 1e-300]])
    out = np.empty_like(x)
    _log_at_least_one(x, out, np.empty(len(x), np.int64))
    assert out[-6] == 0.0  # log(1)
    assert np.all(np.abs(out - np.log(x)) <= 2 * np.spacing(np.abs(np.log(x))))


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_responsibilities_near_the_underflow_match_reference(monkeypatch, cov):
    """Rows far from a component (responsibilities from 1e-250 down to the
    underflow, whose exponentials and logs the loops compute by their own
    polynomials) leave the statistics as the reference gives them, to 1e-12."""
    params = fitted_params(cov)
    rng = np.random.default_rng(8)
    X = mixture_data()[:1500].copy()
    X[:400] += rng.uniform(10.0, 40.0, size=(400, 1)) * np.array([1.0, -1.0, 0.5])
    reference, fast = kernels(monkeypatch, cov, params, np.float64)
    log_resp = reference.log_resp(X)
    assert np.any(np.exp(log_resp) < 1e-250) and np.any(np.exp(log_resp) > 1e-300)
    assert_same_stats(reference.statistics(X), fast.statistics(X), 1e-12)


def test_statistics_that_overflow_are_reported():
    from gaussmix.engine.fused.tile_steps import _overflowed

    acc, nk, s1, s2 = np.zeros(3), np.ones(2), np.ones((2, 3)), np.ones((2, 3, 3))
    assert _overflowed(acc, nk, s1, s2) == 0
    s2[1, 2, 0] = np.inf
    assert _overflowed(acc, nk, s1, s2) == 1
    s2[1, 2, 0], acc[0] = 1.0, np.nan
    assert _overflowed(acc, nk, s1, s2) == 1


def test_both_kernels_take_rows_far_at_the_same_distance():
    from gaussmix.engine.covariance import full
    from gaussmix.engine.fused import full_loops

    assert full_loops.FAR_DISTANCE == full.FAR_DISTANCE


@pytest.mark.parametrize("distance", [1e3, 1e8, 1e12])
def test_far_rows_second_moments_are_exact_in_both_kernels(monkeypatch, distance):
    """A row far from a component (beyond 100 whitened units) adds about its
    squared distance to every whitened sum, whose rounding, mapped back, used
    to swamp the component's other moments (1e-3 relative at 1e8, a wrong
    covariance at 1e10). Both kernels now sum such rows from their residuals:
    the moments about each mean equal a direct float64 sum with the same
    responsibilities (the far row's own entry and every other one)."""
    X = np.vstack([mixture_data(600), [[100.0 + distance, 100.0, 100.0]]])
    params = fitted_params("full")
    for kernel in kernels(monkeypatch, "full", params, np.float64):
        stats = kernel.statistics(X)
        resp = np.exp(kernel.log_resp(X))  # (K, n)
        residuals = X[None, :, :] - params.means[:, None, :]
        expected = np.einsum("kn,kni,knj->kij", resp, residuals, residuals)
        moved = stats.recentred(params.means)  # statistics about the means
        # every entry to 1e-10 of its row's and column's diagonal scale
        diagonal = np.sqrt(np.einsum("kii->ki", expected))
        scale = diagonal[:, :, None] * diagonal[:, None, :]
        assert np.all(np.abs(moved.s2 - expected) <= 1e-10 * scale), type(kernel).__name__


def test_auto_mode_counts_the_passes_run_in_other_processes(monkeypatch):
    """In ``auto`` mode the kernels of a source whose chunks run elsewhere (a
    Dask array on a cluster's workers: ``rows_elsewhere``) count each pass's
    work where they are built, so that after enough passes they use the
    compiled loops, as a local source's do; before, they never did."""
    from gaussmix.engine.fused import kernel as fused_kernel
    from gaussmix.engine.threads import WorkCounter

    monkeypatch.setenv("GAUSSMIX_KERNEL", "auto")
    monkeypatch.setattr(fused_kernel, "loops_loaded", lambda: False)
    piece, params = get_covariance_type("full"), fitted_params("full")
    K, d = params.means.shape
    one_pass = 4.0 * piece.numbers_per_row(K, d) * (d + 1) * 1000
    monkeypatch.setattr(fused_kernel, "LOAD_AFTER_FLOPS", 2.5 * one_pass)
    for spec, expected in [(ComputeSpec(np, np.float64, rows_elsewhere=1000),
                            [False, False, False, True, True]),
                           (ComputeSpec(np, np.float64), [False] * 5)]:
        monkeypatch.setattr(fused_kernel, "_work", WorkCounter())
        built = [EStepKernel.build(piece, params, spec) for _ in expected]
        assert [k.compiled for k in built] == expected
