"""Spherical covariance: each component has a single variance."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import KernelState, VarianceType


class Spherical(VarianceType):
    """One variance per component; moments about the mixture's overall mean.

    The second-moment statistic is ``sum w g_k |x - c|^2``, shape (K,).
    """

    name = "spherical"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def kernel_arrays(self, precisions, offsets):
        return {
            "prec": precisions,
            "cross_t": (2.0 * offsets * precisions[:, None]).T,
            "offset_sq": np.sum(offsets**2, axis=1) * precisions,
        }

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        centred = X - state.center
        a = state.arrays
        sq = np.einsum("nd,nd->n", centred, centred)
        maha = a["prec"][:, None] * sq  # (K, n), see base
        maha -= a["cross_t"].T @ centred.T
        maha += a["offset_sq"][:, None]
        np.maximum(maha, 0.0, out=maha)  # rounding of the expansion
        return (state.const[:, None] - 0.5 * maha).T, centred

    def moments(self, X, resp, state, work=None):
        centred = (work if work is not None else X - state.center[0]).astype(
            np.float64, copy=False
        )
        resp_t = resp.T.astype(np.float64, copy=False)
        return resp_t @ centred, resp_t @ np.einsum("nd,nd->n", centred, centred)

    def covariances(self, nk, delta, s2, reg_covar):
        n_features = delta.shape[1]
        spread = s2 / nk - np.sum(delta**2, axis=1)
        return np.maximum(spread, 0.0) / n_features + reg_covar

    def log_det_cholesky(self, prec_chol, n_features):
        return n_features * np.log(prec_chol)
