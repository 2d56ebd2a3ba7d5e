"""Shared fixtures: seeded data drawn from known mixtures."""

from __future__ import annotations

import numpy as np
import pytest


def draw_mixture(n, means, scales, weights, seed=0):
    """Rows from a mixture with given means, per-axis scales and weights."""
    rng = np.random.default_rng(seed)
    means = np.asarray(means, dtype=float)
    labels = rng.choice(len(weights), size=n, p=weights)
    X = means[labels] + rng.standard_normal((n, means.shape[1])) * np.asarray(
        scales
    )[labels]
    return X, labels


@pytest.fixture
def blobs():
    """Three well-separated 2-D clusters, 600 rows."""
    X, _ = draw_mixture(
        600, [[0, 0], [8, 0], [0, 8]], [[1, 1], [1.5, 0.5], [0.7, 1.2]],
        [0.3, 0.3, 0.4],
    )
    return X


COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def assert_same_fit(a, b, rtol=1e-10):
    """Two fitted models agree: weights, means and covariances to ``rtol``
    (absolute 1e-12), the lower bound to ``rtol`` and the same iterations."""
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol,
                                   atol=1e-12)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)
    assert a.n_iter_ == b.n_iter_
