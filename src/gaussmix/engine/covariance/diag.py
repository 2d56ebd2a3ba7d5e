"""Diagonal covariance: each component has its own vector of variances."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..xp import array_namespace, nonnegative, squares_and_centred, to_host
from .base import log_density
from .variance import VarianceType


class Diag(VarianceType):
    """Per-component variances; moments about each component's group centre.

    The E-step is one product of the centred chunk and its square,
    ``[(x-c)^2, x-c]``, with the (K, 2d) stacked precisions, so no (n, K, d)
    array is ever formed; the moments reuse the same buffer.
    """

    name = "diag"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def distances(self, prec_chol, members, offsets):
        return ((offsets * prec_chol[members]) ** 2).sum(axis=1)

    def kernel_arrays(self, precisions, offsets):
        return {
            # sum_j p_kj (x_j - m_kj)^2 = [(x-c)^2, x-c] . [p_k, -2 p_k m_k] + ...
            "coef": np.hstack([precisions, -2.0 * offsets * precisions]),
            "offset_sq": (offsets**2 * precisions).sum(axis=1),
        }

    def group_log_prob(self, X, group, const):
        features = squares_and_centred(X, group.centre)
        maha = group.arrays["coef"] @ features.T  # (K_g, n)
        maha += group.arrays["offset_sq"][:, None]
        return log_density(nonnegative(maha), const), None, features

    rebuilds_group_work = True

    def group_work(self, X, group):
        return squares_and_centred(X, group.centre)

    def group_moments(self, X, resp, group, work):
        xp = array_namespace(X)
        d = X.shape[1]
        if work.dtype != xp.float64:
            # float64 squares: float32 ones would carry their rounding into the
            # variance's s2/N - delta^2 difference.
            work = squares_and_centred(xp.astype(work[:, d:], xp.float64), 0.0)
        sums = to_host(xp.astype(resp, xp.float64, copy=False) @ work)
        return sums[:, d:], sums[:, :d]

    def residual_s2(self, residuals: Any, weights: Any) -> np.ndarray:
        xp = array_namespace(residuals)
        r = xp.astype(residuals, xp.float64, copy=False)
        return to_host(xp.astype(weights, xp.float64, copy=False) @ (r * r))

    def reduce_full_s2(self, s2):
        return np.diagonal(s2, axis1=1, axis2=2).copy()

    def recentre_s2(self, s2, s1, nk, delta):
        return s2 - 2.0 * delta * s1 + nk[:, None] * delta**2

    def covariances(self, nk, delta, s2, reg_covar):
        return np.maximum(s2 / nk[:, None] - delta**2, 0.0) + reg_covar

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(prec_chol).sum(axis=1)

    def precision_traces(self, prec_chol, n_features):
        return np.square(prec_chol).sum(axis=1)

    def jump_losses(self, delta, covariances, prec_chol):
        # Each feature's variance s2_j/N - delta_j^2 loses delta_j^2 / var_j of
        # its own accuracy: their sum (the Mahalanobis length) bounds the
        # loss. The general bound |delta|^2 trace(precision) mixes the
        # features' scales: it took a second pass at every iteration for
        # features of scales 1e3 and 1.
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sum(np.square(delta * prec_chol), axis=1)
