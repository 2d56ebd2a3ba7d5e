"""The statistics value: merged chunks equal the whole, in any order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.stats import SuffStats


def _kernel(X, ct):
    gm = GaussianMixture(3, covariance_type=ct, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    return EStepKernel.build(gm._piece, gm._params, X.dtype)


def _assert_stats_close(a: SuffStats, b: SuffStats) -> None:
    for name in ("nk", "s1", "s2", "worst_ll", "worst_x"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                   atol=1e-9)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert a.weight == pytest.approx(b.weight)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_statistics_of_parts_add_up_to_the_whole(blobs, ct):
    kernel = _kernel(blobs, ct)
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(blobs))
    whole = kernel.statistics(blobs, w)
    parts = [kernel.statistics(blobs[a:b], w[a:b]) for a, b in
             [(0, 100), (100, 101), (101, 450), (450, 600)]]
    _assert_stats_close(sum(parts), whole)
    _assert_stats_close(parts[3] + parts[1] + parts[0] + parts[2], whole)


def test_zero_is_neutral(blobs):
    kernel = _kernel(blobs, "full")
    stats = kernel.statistics(blobs, None)
    zero = SuffStats.zero(stats.shift, stats.s2.shape)
    _assert_stats_close(stats + zero, stats)
    _assert_stats_close(zero + stats, stats)


def test_statistics_with_different_shifts_refuse_to_add(blobs):
    a = _kernel(blobs, "full").statistics(blobs, None)
    b = SuffStats.zero(a.shift + 1.0, a.s2.shape)
    with pytest.raises(ValueError, match="different centres"):
        a + b


def test_unit_weights_equal_no_weights(blobs):
    kernel = _kernel(blobs, "diag")
    _assert_stats_close(kernel.statistics(blobs, np.ones(len(blobs))),
                        kernel.statistics(blobs, None))
