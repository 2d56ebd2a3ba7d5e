"""Cases found by probing extreme problem shapes (wide d, many components)
against scikit-learn and the reference EM; see the helper's report for the
shapes probed and found fine."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.engine import sources
from gaussmix.engine.covariance import get_covariance_type


# ------------------------------------------- found: wide problems' chunk memory
@pytest.mark.parametrize("kernel", ["reference", "auto"])
@pytest.mark.parametrize("n_rows", [None, 10_000, 1_000_000])
def test_wide_problems_bound_a_chunks_work_array(monkeypatch, kernel, n_rows):
    # The 4096-row floor gave full K=50, d=100 chunks of 4096 rows: a work
    # array of 21M numbers (170 MB per chunk and thread).
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    full = get_covariance_type("full")
    for K, d in [(200, 200), (50, 100), (1000, 1000)]:
        rows = sources.auto_chunk_size(K, d, full, n_rows)
        per_row = full.numbers_per_row(K, d)
        least = max(sources.MIN_CHUNK_ROWS, 4 * d)
        assert n_rows is not None or rows >= least  # (n_rows: evened out)
        assert rows * per_row <= max(sources.MAX_CHUNK_ELEMENTS, least * per_row)
    # ordinary shapes keep their chunks
    assert sources.auto_chunk_size(8, 16, full) >= 4096
    assert sources.auto_chunk_size(8, 64, full) >= 4096


def test_wide_full_scoring_memory_stays_near_the_bound(monkeypatch):
    # 8192 rows, d=70, K=60 were scored in chunks of 2048 rows: a peak of
    # 143 MiB for 4.4 MiB of data (about 2 work arrays of 2048 * 4260
    # numbers); in chunks of at most MAX_CHUNK_ELEMENTS numbers, 53 MiB.
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    rng = np.random.default_rng(0)
    K, d = 60, 70
    X = rng.normal(size=(8192, d))
    gm = GaussianMixture(K, max_iter=0, means_init=X[:K], weights_init=np.full(K, 1 / K),
                         precisions_init=np.stack([np.eye(d)] * K)).fit(X[:200])
    expected = GaussianMixture(K, max_iter=0, means_init=X[:K],
                               weights_init=np.full(K, 1 / K), chunk_size=4096,
                               precisions_init=np.stack([np.eye(d)] * K)).fit(X[:200])
    tracemalloc.start()
    try:
        log_p = gm.score_samples(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 8 * sources.MAX_CHUNK_ELEMENTS + X.nbytes
    np.testing.assert_allclose(log_p, expected.score_samples(X), rtol=1e-12)


# ----------------------------- found: many centre groups held a work array each
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=1
@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_many_centre_groups_build_their_work_arrays_one_at_a_time(monkeypatch, ct):
    # Few rows per component in many dimensions: each component's variance in
    # some direction is near reg_covar, so every mean is far from the others
    # in its sigma and gets its own centre group. The kernel held one (n, 2d)
    # work array per group for the moments (diag, K=200, d=200, n=1200:
    # 750 MiB, against 40 MiB for scikit-learn); it now builds each again
    # in turn, with the same arithmetic (bit-identical fits, checked).
    import reference_em

    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    K, d, n = 80, 80, 480
    X = np.random.default_rng(0).normal(size=(n, d))
    gm = GaussianMixture(K, covariance_type=ct, max_iter=1, tol=0, random_state=0,
                         means_init=X[:K] + 0.1, weights_init=np.full(K, 1 / K))
    gm.fit(X)  # (the first fit: its start has many groups)
    tracemalloc.start()
    try:
        gm.fit(X)
        log_p = gm.score_samples(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    per_group = n * 2 * d * 8
    assert peak < 15 * per_group, peak  # 80 groups held 80 (before: 46, 21)
    expected = reference_em.score_samples(X, gm.weights_, gm.means_,
                                          gm.precisions_cholesky_, ct)
    np.testing.assert_allclose(log_p, expected, rtol=1e-10)
