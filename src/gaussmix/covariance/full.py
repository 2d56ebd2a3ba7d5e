"""Full covariance: each component has its own (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    CovarianceType,
    KernelState,
    check_symmetric_positive_definite,
    inverse_from_upper,
    upper_cholesky_of_inverse,
    upper_cholesky_of_matrix,
)


class Full(CovarianceType):
    """Full covariance matrices, moments about each component's own mean.

    The E-step whitens ``x - mu_k`` with one batched product over all
    components and reuses the centred chunk for the second moments.
    """

    name = "full"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def shift(self, means: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return means.copy()

    def prepare(self, means, weights, prec_chol, dtype) -> KernelState:
        center = means.astype(dtype)
        return KernelState(
            shift=center.astype(np.float64),
            center=center,
            const=self.log_const(prec_chol, means.shape[1]).astype(dtype),
            arrays={"chol": prec_chol.astype(dtype)},
        )

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        centred = X[None, :, :] - state.center[:, None, :]  # (K, n, d)
        white = np.matmul(centred, state.arrays["chol"])
        maha = np.einsum("knd,knd->nk", white, white)
        return state.const - 0.5 * maha, centred

    def moments(self, X, resp, state, work=None):
        centred = work if work is not None else X[None, :, :] - state.center[:, None, :]
        weighted = centred * resp.T[:, :, None]
        s1 = weighted.sum(axis=1, dtype=np.float64)
        s2 = np.matmul(weighted.transpose(0, 2, 1), centred)
        return s1, s2.astype(np.float64, copy=False)

    def covariances(self, nk, delta, s2, reg_covar):
        cov = s2 / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        d = cov.shape[1]
        idx = np.arange(d)
        cov[:, idx, idx] = np.maximum(cov[:, idx, idx], 0.0) + reg_covar
        return cov

    def reseed(self, covariances, nk, empty):
        pooled = np.average(covariances[~empty], axis=0, weights=nk[~empty])
        out = covariances.copy()
        out[empty] = pooled
        return out

    def precisions_cholesky(self, covariances):
        return np.stack(
            [upper_cholesky_of_inverse(c, f"component {k}") for k, c in enumerate(covariances)]
        )

    def precisions_cholesky_from_precisions(self, precisions):
        return np.stack([upper_cholesky_of_matrix(p) for p in precisions])

    def precisions(self, prec_chol):
        return np.matmul(prec_chol, prec_chol.transpose(0, 2, 1))

    def covariances_from_cholesky(self, prec_chol):
        return np.stack([inverse_from_upper(u) for u in prec_chol])

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def check_precisions(self, precisions):
        for k, p in enumerate(precisions):
            check_symmetric_positive_definite(
                p, f"precisions_init[{k}] (full precision)"
            )

    def sample(self, rng, means, covariances, counts):
        return np.vstack([
            rng.multivariate_normal(m, c, int(n))
            for m, c, n in zip(means, covariances, counts)
        ])
