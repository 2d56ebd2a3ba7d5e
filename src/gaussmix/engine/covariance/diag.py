"""Diagonal covariance: each component has its own vector of variances."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import KernelState, VarianceType


class Diag(VarianceType):
    """Per-component variances; moments about the mixture's overall mean.

    The E-step is two products of the centred chunk (and its square) with the
    (d, K) precision matrices, so no (n, K, d) array is ever formed.
    """

    name = "diag"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def kernel_arrays(self, precisions, offsets):
        return {
            # sum_j p_kj (x_j - m_kj)^2 = [(x-c)^2, x-c] . [p_k, -2 p_k m_k] + ...
            "coef": np.hstack([precisions, -2.0 * offsets * precisions]),
            "offset_sq": np.sum(offsets**2 * precisions, axis=1),
        }

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        # One buffer [(x - c)^2, x - c] serves one product here and one in moments.
        n, d = X.shape
        features = np.empty((n, 2 * d), dtype=X.dtype)
        centred = np.subtract(X, state.center, out=features[:, d:])
        np.square(centred, out=features[:, :d])
        maha = state.arrays["coef"] @ features.T  # (K, n), see base
        maha += state.arrays["offset_sq"][:, None]
        np.maximum(maha, 0.0, out=maha)  # rounding of the expansion
        return (state.const[:, None] - 0.5 * maha).T, features

    def moments(self, X, resp, state, work=None):
        d = X.shape[1]
        if work is None or work.dtype != np.float64:
            # float64 squares: float32 ones would carry their rounding into the
            # variance's s2/N - delta^2 difference.
            centred = (X - state.center[0] if work is None else work[:, d:]).astype(
                np.float64)
            work = np.hstack([np.square(centred), centred])
        sums = resp.T.astype(np.float64) @ work
        return sums[:, d:], sums[:, :d]

    def covariances(self, nk, delta, s2, reg_covar):
        return np.maximum(s2 / nk[:, None] - delta**2, 0.0) + reg_covar

    def log_det_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(prec_chol), axis=1)
