"""Full covariance: each component has its own (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

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

    The E-step whitens ``x - mu_k`` for all K components with one product and
    reuses the whitened chunk for the second moments, so a chunk costs two
    large products and a few passes over a (K, d, n) array.
    """

    name = "full"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def numbers_per_row(self, n_components: int, n_features: int) -> int:
        return n_components * (n_features + 1)  # the (K, d, n) whitened chunk

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
                # All K factors stacked, beside them the offsets: one
                # (K*d, d+1) product whitens a chunk (given a row of ones).
                "stacked": np.hstack([
                    prec_chol.transpose(0, 2, 1).reshape(K * d, d),
                    -offsets.reshape(K * d, 1),
                ]).astype(dtype),
                "unwhiten": unwhiten,
                "center64": center,
            },
        )

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        # y_k = (x - mu_k) U_k, computed as (x - c) U_k - (mu_k - c) U_k; the
        # common centre c keeps the subtraction free of cancellation.
        n, d = X.shape
        centred = np.empty((n, d + 1), dtype=X.dtype)
        np.subtract(X, state.center, out=centred[:, :d])
        centred[:, d] = 1.0
        # Component-major (K, d, n): reductions over d and the weighting by
        # responsibilities then run along contiguous rows.
        white = (state.arrays["stacked"] @ centred.T).reshape(len(state.const), d, n)
        maha = np.einsum("kdn,kdn->kn", white, white)
        return (state.const[:, None] - 0.5 * maha).T, (centred, white)

    def moments(self, X, resp, state, work=None):
        if work is None:  # initialisation: no precisions yet
            return self._direct_moments(X, resp, state)
        centred, white = work  # centred has a trailing column of ones
        moments = (resp.T @ centred).astype(np.float64)
        nk, s1 = moments[:, -1], moments[:, :-1]
        s1 -= nk[:, None] * (state.shift - state.arrays["center64"])
        # Second moments about each mean in whitened coordinates (well scaled
        # whatever the data's units), by one in-place scaling and one batched
        # symmetric product, then mapped back: x - mu_k = y_k U_k^-1.
        white *= np.sqrt(resp.T)[:, None, :]
        second = np.matmul(white, white.transpose(0, 2, 1))
        back = state.arrays["unwhiten"]
        s2 = np.matmul(back.transpose(0, 2, 1), np.matmul(second.astype(np.float64), back))
        return s1, s2

    def _direct_moments(self, X, resp, state):
        centred = X[None, :, :] - state.center[:, None, :]
        weighted = centred * resp.T[:, :, None]
        s1 = weighted.sum(axis=1, dtype=np.float64)
        s2 = np.stack([w.T @ c for w, c in zip(weighted, centred, strict=True)])
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
            for m, c, n in zip(means, covariances, counts, strict=True)
        ])

