"""Differential tests against scikit-learn's GaussianMixture: a seeded sample
of random small configurations, fitted by both from one starting point, and
the cases such a sweep found.

Every case runs scikit-learn on the same input as the reference. Intended
differences (README, "Differences from scikit-learn") are pinned with the
reason, so that they stay deliberate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture

FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
X_THREE = np.r_[np.random.default_rng(0).normal(size=(40, 2)),
                np.random.default_rng(1).normal(size=(40, 2)) * 0.6 + [5, 0],
                np.random.default_rng(2).normal(size=(40, 2)) + [0, 5]]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _assert_same_fit(gm, sk, rtol):
    for name in FITTED:
        actual, expected = getattr(gm, name), getattr(sk, name)
        scale = np.max(np.abs(expected))
        assert np.max(np.abs(actual - expected)) <= rtol * scale, name
    assert gm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=rtol, abs=rtol)
    assert gm.n_iter_ == sk.n_iter_
    assert gm.converged_ == sk.converged_


def _precisions(ct, K, d, scale=1.0):
    return {"full": np.stack([np.eye(d) * scale] * K), "tied": np.eye(d) * scale,
            "diag": np.full((K, d), scale), "spherical": np.full(K, scale)}[ct]


# ---------------------------------------------- found: given precisions_init
@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_given_precisions_replace_a_singular_start_with_zero_reg_covar(ct, init_params):
    # Found by the sweep: with precisions_init given, the start's covariances
    # from the drawn responsibilities are never used, yet gaussmix factored
    # them and raised when they were singular (one seed row per component,
    # reg_covar=0: always). scikit-learn fits.
    kw = dict(covariance_type=ct, init_params=init_params, reg_covar=0.0,
              random_state=0, max_iter=3, tol=0,
              precisions_init=_precisions(ct, 3, 2, 0.5))
    sk = _quiet(SkGaussianMixture(3, **kw).fit, X_THREE)
    gm = _quiet(GaussianMixture(3, **kw).fit, X_THREE)
    _assert_same_fit(gm, sk, 1e-10)
