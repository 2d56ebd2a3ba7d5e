"""Diagonal covariance: each component has its own vector of variances."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import KernelState, VarianceType, global_shift


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

    def shift(self, means, weights):
        return global_shift(means, weights)

    def prepare(self, means, weights, prec_chol, dtype) -> KernelState:
        shift = global_shift(means, weights)
        precisions = prec_chol**2
        offsets = means - shift
        return KernelState(
            shift=shift,
            center=shift[0].astype(dtype),
            const=self.log_const(prec_chol, means.shape[1]).astype(dtype),
            arrays={
                "prec_t": precisions.T.astype(dtype),
                "cross_t": (2.0 * offsets * precisions).T.astype(dtype),
                "offset_sq": np.sum(offsets**2 * precisions, axis=1).astype(dtype),
            },
        )

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        centred = X - state.center
        a = state.arrays
        maha = a["prec_t"].T @ np.square(centred).T  # (K, n), see base
        maha -= a["cross_t"].T @ centred.T
        maha += a["offset_sq"][:, None]
        np.maximum(maha, 0.0, out=maha)  # rounding of the expansion
        return (state.const[:, None] - 0.5 * maha).T, centred

    def moments(self, X, resp, state, work=None):
        centred = (work if work is not None else X - state.center[0]).astype(
            np.float64, copy=False
        )
        resp_t = resp.T.astype(np.float64, copy=False)
        return resp_t @ centred, resp_t @ np.square(centred)

    def covariances(self, nk, delta, s2, reg_covar):
        return np.maximum(s2 / nk[:, None] - delta**2, 0.0) + reg_covar

    def log_det_cholesky(self, prec_chol, n_features):
        return np.sum(np.log(prec_chol), axis=1)
