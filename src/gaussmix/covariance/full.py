"""Full covariance: each component has its own (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from scipy.linalg import solve_triangular
from scipy.linalg.blas import get_blas_funcs

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
        K, d = means.shape
        center = np.average(means, axis=0, weights=weights)
        offsets = np.einsum("kd,kde->ke", means - center, prec_chol)
        unwhiten = np.stack([solve_triangular(u, np.eye(d)) for u in prec_chol])
        return KernelState(
            shift=means.copy(),
            center=center.astype(dtype),
            const=self.log_const(prec_chol, d).astype(dtype),
            arrays={
                # All K factors side by side: one (d, K*d) product whitens a chunk.
                "stacked": prec_chol.transpose(1, 0, 2).reshape(d, K * d).astype(dtype),
                "offsets": offsets.reshape(K * d).astype(dtype),
                "unwhiten": unwhiten,
                "center64": center,
            },
        )

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        # y_k = (x - mu_k) U_k, computed as (x - c) U_k - (mu_k - c) U_k; the
        # common centre c keeps the subtraction free of cancellation.
        centred = X - state.center
        white = centred @ state.arrays["stacked"]
        white -= state.arrays["offsets"]
        white = white.reshape(len(X), len(state.const), -1)
        maha = np.einsum("nkd,nkd->nk", white, white)
        return state.const - 0.5 * maha, (centred, white)

    def moments(self, X, resp, state, work=None):
        if work is None:  # initialisation: no precisions yet
            return self._direct_moments(X, resp, state)
        centred, white = work
        nk = resp.sum(axis=0, dtype=np.float64)
        s1 = (resp.T @ centred).astype(np.float64)
        s1 -= nk[:, None] * (state.shift - state.arrays["center64"])
        # Second moments in whitened coordinates (well scaled, one symmetric
        # rank-n update per component), then mapped back: D = Y U^-1.
        syrk = get_blas_funcs("syrk", (white,))
        root = np.sqrt(resp)
        d = X.shape[1]
        upper = np.empty((len(nk), d, d), dtype=white.dtype)
        for k in range(len(nk)):
            scaled = white[:, k, :] * root[:, k, None]
            upper[k] = syrk(1.0, scaled.T)  # upper triangle of scaled.T @ scaled
        lower = np.tril_indices(d, -1)
        upper[:, lower[0], lower[1]] = upper[:, lower[1], lower[0]]
        back = state.arrays["unwhiten"]
        s2 = np.matmul(back.transpose(0, 2, 1), np.matmul(upper.astype(np.float64), back))
        return s1, s2

    def _direct_moments(self, X, resp, state):
        centred = X[None, :, :] - state.center[:, None, :]
        weighted = centred * resp.T[:, :, None]
        s1 = weighted.sum(axis=1, dtype=np.float64)
        s2 = np.stack([w.T @ c for w, c in zip(weighted, centred)])
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

    def to_full(self, covariances, n_components, n_features):
        return np.array(covariances, dtype=np.float64)

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

