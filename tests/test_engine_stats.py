"""The statistics value: merged chunks equal the whole, in any order and about
any centres; it round-trips through its plain form."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.logspace import log_normalise
from gaussmix.engine.sources import spec_of
from gaussmix.engine.stats import SuffStats


def _kernel(X, ct):
    gm = GaussianMixture(3, covariance_type=ct, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    return EStepKernel.build(gm._piece, gm._params, spec_of(X))


def _assert_stats_close(a: SuffStats, b: SuffStats, rtol: float = 1e-12) -> None:
    assert a.covariance_type == b.covariance_type
    for name in ("nk", "s1", "s2", "shift"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol,
                                   atol=1e-9)
    assert a.loglik == pytest.approx(b.loglik, rel=rtol)
    assert a.weight == pytest.approx(b.weight)
    assert a.min_weight == b.min_weight


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_statistics_of_parts_add_up_to_the_whole(blobs, ct):
    kernel = _kernel(blobs, ct)
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(blobs))
    whole = kernel.statistics(blobs, w)
    parts = [kernel.statistics(blobs[a:b], w[a:b]) for a, b in
             [(0, 100), (100, 101), (101, 450), (450, 600)]]
    _assert_stats_close(sum(parts), whole)
    _assert_stats_close(parts[3] + parts[1] + parts[0] + parts[2], whole)
    _assert_stats_close((parts[0] + parts[1]) + (parts[2] + parts[3]), whole)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_zero_is_neutral(blobs, ct):
    stats = _kernel(blobs, ct).statistics(blobs, None)
    zero = SuffStats.zero(ct, stats.shift)
    _assert_stats_close(stats + zero, stats)
    _assert_stats_close(zero + stats, stats)


def _responsibilities(kernel, X):
    scores, _, _, _ = kernel.scores(X)
    return np.exp(log_normalise(scores, axis=0)[0])


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_recentred_statistics_equal_statistics_about_the_new_centre(blobs, ct):
    kernel = _kernel(blobs, ct)
    stats = kernel.statistics(blobs, None)
    new_centre = stats.shift + np.random.default_rng(2).normal(size=stats.shift.shape)
    resp = _responsibilities(kernel, blobs)
    s1, s2 = kernel.piece.direct_moments(blobs, resp, new_centre)
    moved = stats.recentred(new_centre)
    np.testing.assert_allclose(moved.s1, s1, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(moved.s2, s2, rtol=1e-10, atol=1e-8)
    np.testing.assert_array_equal(moved.shift, new_centre)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_statistics_about_different_centres_add_exactly(blobs, ct):
    kernel = _kernel(blobs, ct)
    whole = kernel.statistics(blobs, None)
    a = kernel.statistics(blobs[:250], None)
    b = kernel.statistics(blobs[250:], None).recentred(whole.shift + 3.0)
    merged = a + b
    _assert_stats_close(merged.recentred(whole.shift), whole, rtol=1e-10)


def test_merging_far_apart_centres_keeps_the_digits():
    """Moments about centres 1e8 apart merge into the exact pooled variance."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(1000, 1)) + offset for offset in (0.0, 1e8)]
    stats = []
    for X in parts:
        centre = X.mean(axis=0, keepdims=True)
        r = X - centre
        stats.append(SuffStats("diag", np.array([len(X) * 1.0]), r.sum(0, keepdims=True),
                               (r**2).sum(0, keepdims=True), centre, 0.0, len(X), 1.0))
    merged = stats[0] + stats[1]
    X = np.vstack(parts)
    mean = merged.shift + merged.s1 / merged.nk[:, None]
    variance = merged.s2 / merged.nk[:, None] - (merged.s1 / merged.nk[:, None]) ** 2
    np.testing.assert_allclose(mean, X.mean(0, keepdims=True), rtol=1e-15)
    np.testing.assert_allclose(variance, X.var(0, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_plain_form_round_trips(blobs, ct):
    stats = _kernel(blobs, ct).statistics(blobs, np.full(len(blobs), 0.5))
    plain = stats.to_dict()
    assert all(isinstance(v, (np.ndarray, float, str)) for v in plain.values())
    assert SuffStats.from_dict(plain) == stats


def test_statistics_of_different_types_refuse_to_add(blobs):
    a = _kernel(blobs, "full").statistics(blobs, None)
    b = _kernel(blobs, "diag").statistics(blobs, None)
    with pytest.raises(ValueError, match="Cannot add statistics"):
        a + b


def test_unit_weights_equal_no_weights(blobs):
    kernel = _kernel(blobs, "diag")
    _assert_stats_close(kernel.statistics(blobs, np.ones(len(blobs))),
                        kernel.statistics(blobs, None))
