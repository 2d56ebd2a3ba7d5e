"""partial_fit's per-call paths written out for speed give what the general
forms give: the tied far-jump bound, merged means and moves with empty
components, the variance types' refusal of a bad component, and BLAS limits
held and restored around a call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.covariance.base import CovarianceType, scale_free_jump_losses
from gaussmix.engine.recentre import _moves
from gaussmix.engine.stats import SuffStats, merged_means


def test_tied_jump_losses_are_the_smaller_of_the_two_bounds_exactly():
    rng = np.random.default_rng(0)
    tied = get_covariance_type("tied")
    a = rng.normal(size=(5, 5)) * np.array([1e-3, 1.0, 1.0, 1e3, 1.0])
    covariance = a @ a.T + 1e-6 * np.eye(5)
    chol = tied.precisions_cholesky(covariance)
    delta = rng.normal(size=(4, 5)) * np.array([[1.0], [1e4], [0.0], [1e-3]])
    general = CovarianceType.jump_losses(tied, delta, covariance, chol)
    scale_free = scale_free_jump_losses(delta, np.diagonal(covariance),
                                        np.square(chol).sum(axis=1))
    np.testing.assert_array_equal(tied.jump_losses(delta, covariance, chol),
                                  np.fmin(general, scale_free))


def _stats(nk, s1, shift):
    return SuffStats("spherical", np.asarray(nk, float), np.asarray(s1, float),
                     np.asarray(nk, float), np.asarray(shift, float), 0.0, 1.0, 1.0)


@pytest.mark.parametrize("nk_b", [[2.0, 1.0], [0.0, 1.0]])
def test_merged_means_and_moves_with_and_without_an_empty_component(nk_b):
    a = _stats([1.0, 0.0], [[0.5], [0.0]], [[0.0], [7.0]])
    b = _stats(nk_b, [[1.0], [2.0]], [[3.0], [5.0]])
    nk = a.nk + b.nk
    # the plain formula: sum of rows over sum of weights; an empty
    # component keeps a's centre
    expected = np.where(nk[:, None] > 0,
                        (a.nk[:, None] * a.shift + a.s1 + b.nk[:, None] * b.shift + b.s1)
                        / np.where(nk > 0, nk, 1.0)[:, None], a.shift)
    np.testing.assert_array_equal(merged_means(a, b), expected)
    moves = _moves(b)
    np.testing.assert_array_equal(
        moves, np.where(b.nk[:, None] > 0, b.s1 / np.maximum(b.nk, 1.0)[:, None], 0.0))
    assert np.isfinite(moves).all()


@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_variance_types_name_the_first_bad_component(ct):
    piece = get_covariance_type(ct)
    good = np.ones((3, 2)) if ct == "diag" else np.ones(3)
    for bad_value in (0.0, -1.0, np.nan, np.inf):
        covariances = good.copy()
        covariances[1] = bad_value
        covariances[2] = bad_value
        with pytest.raises(ValueError, match=r"Not positive definite: component 1\.$"):
            piece.precisions_cholesky(covariances)
    np.testing.assert_array_equal(piece.precisions_cholesky(4.0 * good), 0.5 * good)


def test_partial_fit_holds_blas_to_one_thread_and_gives_its_threads_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
              if lib["user_api"] == "blas"]
    seen = []
    gm = GaussianMixture(2, covariance_type="tied", random_state=0)
    X = np.random.default_rng(0).normal(size=(300, 3))
    gm.partial_fit(X)

    from gaussmix.engine import threads

    real = threads._set_threads

    def spy(lib, n):
        seen.append(n)
        real(lib, n)

    threads._set_threads = spy
    try:
        gm.partial_fit(X)
    finally:
        threads._set_threads = real
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
             if lib["user_api"] == "blas"]
    assert after == before
    if any(n > 1 for n in before):  # a limit to set: one thread, then back
        half = len(seen) // 2
        assert seen[:half] == [1] * half
        assert sorted(seen[half:]) == sorted(before)


def test_a_pass_over_array_views_keeps_its_first_chunk_for_the_caller():
    """The calling thread runs the first chunk of an in-memory pass without
    submitting it (a worker woken for it would find it taken); the others go
    to the pool, and results keep chunk order; a failing pass leaves nothing
    queued."""
    from concurrent.futures import ThreadPoolExecutor

    from gaussmix.engine.reducers import _ordered_map

    class Counting(ThreadPoolExecutor):
        submitted = 0

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            Counting.submitted += 1
            return super().submit(fn, *args, **kwargs)

    caller = threading.get_ident()
    tasks = [lambda i=i: (i, threading.get_ident()) for i in range(2)]
    with Counting(1) as pool:
        results = list(_ordered_map(pool, tasks, 4, keep_first=True))
        assert [i for i, _ in results] == [0, 1]
        assert results[0][1] == caller and Counting.submitted == 1
        Counting.submitted = 0
        assert [i for i, _ in _ordered_map(pool, tasks, 4)] == [0, 1]
        assert Counting.submitted == 2  # a file source's first read may go to a worker

        def failing():  # type: ignore[no-untyped-def]
            yield tasks[0]
            raise OSError("the file went away")

        with pytest.raises(OSError):
            list(_ordered_map(pool, failing(), 4, keep_first=True))


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_scaled_sum_is_the_sum_of_the_scaled_values_bit_for_bit(ct):
    rng = np.random.default_rng(3)
    K, d = 3, 4
    piece = get_covariance_type(ct)

    def stats(shift):  # type: ignore[no-untyped-def]
        s2 = np.abs(rng.normal(size=piece.param_shape(K, d)))
        return SuffStats(ct, rng.uniform(1, 5, K), rng.normal(size=(K, d)), s2, shift,
                         -rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(0.1, 1))

    a = stats(rng.normal(size=(K, d)))
    for b in (stats(rng.normal(size=(K, d))), stats(a.shift), stats(a.shift.copy())):
        for fa, fb in ((0.3, 0.7 / b.weight), (1.0, 0.0), (0.0, 2.0)):
            assert a.scaled_sum(fa, b, fb) == a.scaled(fa) + b.scaled(fb)


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_jumps_past_answers_as_the_losses_do(ct):
    rng = np.random.default_rng(4)
    K, d = 3, 4
    piece = get_covariance_type(ct)
    for scale in (1e-3, 1.0, 1e2, 1e3, 1e5, np.inf, np.nan):
        a = rng.normal(size=(d, 2 * d))
        full = np.stack([a @ a.T / d + np.eye(d) for _ in range(K)])
        covariances = {"full": full, "tied": full[0], "diag": np.diagonal(full, 0, 1, 2).copy(),
                       "spherical": full[:, 0, 0].copy()}[ct]
        chol = piece.precisions_cholesky(covariances)
        delta = rng.normal(size=(K, d)) * scale
        for limit in (1.0, 1e6):
            with np.errstate(all="ignore"):
                expected = bool(np.any(piece.jump_losses(delta, covariances, chol) > limit))
                assert piece.jumps_past(delta, covariances, chol, limit) == expected


def test_one_inverse_factor_is_the_stacks_bit_for_bit():
    from gaussmix.engine.covariance.linalg import (
        upper_cholesky_of_inverse,
        upper_cholesky_of_inverses,
    )

    rng = np.random.default_rng(5)
    for d in (1, 3, 16):
        a = rng.normal(size=(d, 3 * d))
        c = a @ a.T / d + 1e-3 * np.eye(d)
        one = upper_cholesky_of_inverse(c, "x")
        np.testing.assert_array_equal(one, upper_cholesky_of_inverses(c[None], ["x"])[0])
        assert one.flags.c_contiguous
    for bad in (np.full((2, 2), np.nan), -np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]])):
        with pytest.raises(ValueError, match="Not positive definite: the tied covariance"):
            upper_cholesky_of_inverse(bad, "the tied covariance")
