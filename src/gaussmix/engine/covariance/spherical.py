"""Spherical covariance: each component has a single variance."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..xp import array_namespace, nonnegative, squared_norms, to_host
from .base import log_density
from .variance import VarianceType


class Spherical(VarianceType):
    """One variance per component; moments about each component's group centre.

    The second-moment statistic is ``sum w g_k |x - c_k|^2``, shape (K,).
    """

    name = "spherical"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def distances(self, prec_chol, members, offsets):
        return prec_chol[members] ** 2 * (offsets**2).sum(axis=1)

    def kernel_arrays(self, precisions, offsets):
        return {
            "prec": precisions,
            "cross_t": (2.0 * offsets * precisions[:, None]).T,
            "offset_sq": (offsets**2).sum(axis=1) * precisions,
        }

    def group_log_prob(self, X, group, const):
        a = group.arrays
        centred = X - group.centre
        sq = squared_norms(centred, axis=1)
        maha = a["prec"][:, None] * sq[None, :]  # (K_g, n)
        maha -= a["cross_t"].T @ centred.T
        maha += a["offset_sq"][:, None]
        return log_density(nonnegative(maha), const), None, centred

    rebuilds_group_work = True

    def group_work(self, X, group):
        return X - group.centre

    def group_moments(self, X, resp, group, work):
        xp = array_namespace(X)
        centred = xp.astype(work, xp.float64, copy=False)
        resp = xp.astype(resp, xp.float64, copy=False)
        return (to_host(resp @ centred),
                to_host(resp @ squared_norms(centred, axis=1)))

    def residual_s2(self, residuals: Any, weights: Any) -> np.ndarray:
        xp = array_namespace(residuals)
        r = xp.astype(residuals, xp.float64, copy=False)
        return to_host(xp.astype(weights, xp.float64, copy=False) @ squared_norms(r, axis=1))

    def reduce_full_s2(self, s2):
        return np.trace(s2, axis1=1, axis2=2)

    def recentre_s2(self, s2, s1, nk, delta):
        return s2 - 2.0 * (delta * s1).sum(axis=1) + nk * (delta**2).sum(axis=1)

    def covariances(self, nk, delta, s2, reg_covar):
        n_features = delta.shape[1]
        spread = s2 / nk - (delta**2).sum(axis=1)
        return np.maximum(spread, 0.0) / n_features + reg_covar

    def jump_losses(self, delta, covariances, prec_chol):
        # The variance (s2/N - |delta|^2) / d loses about |delta|^2 / (d var)
        # of its accuracy (s2/N sums d var and |delta|^2); with the rounding of
        # s1 and of the sums (an outlier 1e6 away at d=2 lost 10x that) the
        # Mahalanobis length |delta|^2 / var, diag's bound, is the safe one.
        # The general |delta|^2 trace(precision) = |delta|^2 d / var is d times
        # larger: with d = 40,000 it took a second pass at every iteration
        # (3x scikit-learn's fit time).
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sum(delta ** 2, axis=1) * np.square(prec_chol)

    def log_det_cholesky(self, prec_chol, n_features):
        return n_features * np.log(prec_chol)

    def precision_traces(self, prec_chol, n_features):
        return n_features * np.square(prec_chol)
