"""Tied covariance: all components share one (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    CovarianceType,
    KernelState,
    check_symmetric_positive_definite,
    global_shift,
    inverse_from_upper,
    upper_cholesky_of_inverse,
    upper_cholesky_of_matrix,
)


class Tied(CovarianceType):
    """One shared covariance; moments about the mixture's overall mean.

    The E-step whitens the chunk once (one d x d product) and expands
    ``|y - m_k|^2 = |y|^2 - 2 y.m_k + |m_k|^2``; the chunk is centred first so
    that the expansion keeps its digits.
    """

    name = "tied"

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def shift(self, means, weights):
        return global_shift(means, weights)

    def prepare(self, means, weights, prec_chol, dtype) -> KernelState:
        shift = global_shift(means, weights)
        white_means = (means - shift) @ prec_chol
        const = self.log_const(prec_chol, means.shape[1])
        return KernelState(
            shift=shift,
            center=shift[0].astype(dtype),
            const=np.broadcast_to(const, len(means)).astype(dtype),
            arrays={
                "chol": prec_chol.astype(dtype),
                "white_means_t2": (2.0 * white_means.T).astype(dtype),
                "white_means_sq": np.sum(white_means**2, axis=1).astype(dtype),
            },
        )

    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        centred = X - state.center
        white = centred @ state.arrays["chol"]
        sq = np.einsum("nd,nd->n", white, white)
        # |y - m|^2 = |y|^2 - 2 y.m + |m|^2, clipped at 0 against rounding
        maha = sq - state.arrays["white_means_t2"].T @ white.T  # (K, n), see base
        maha += state.arrays["white_means_sq"][:, None]
        np.maximum(maha, 0.0, out=maha)
        return (state.const[:, None] - 0.5 * maha).T, centred

    def moments(self, X, resp, state, work=None):
        centred = (work if work is not None else X - state.center[0]).astype(
            np.float64, copy=False
        )
        resp = resp.astype(np.float64, copy=False)
        s1 = resp.T @ centred
        s2 = (centred * resp.sum(axis=1)[:, None]).T @ centred
        return s1, s2

    def covariances(self, nk, delta, s2, reg_covar):
        between = (delta * nk[:, None]).T @ delta
        cov = (s2 - between) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        idx = np.arange(cov.shape[0])
        cov[idx, idx] = np.maximum(cov[idx, idx], 0.0) + reg_covar
        return cov

    def reseed(self, covariances, nk, empty):
        return covariances

    def precisions_cholesky(self, covariances):
        return upper_cholesky_of_inverse(covariances, "the tied covariance")

    def precisions_cholesky_from_precisions(self, precisions):
        return upper_cholesky_of_matrix(precisions)

    def precisions(self, prec_chol):
        return prec_chol @ prec_chol.T

    def covariances_from_cholesky(self, prec_chol):
        return inverse_from_upper(prec_chol)

    def to_full(self, covariances, n_components, n_features):
        return np.repeat(np.asarray(covariances, dtype=np.float64)[None], n_components,
                         axis=0)

    def log_det_cholesky(self, prec_chol, n_features):
        return np.atleast_1d(np.sum(np.log(np.diag(prec_chol))))

    def check_precisions(self, precisions):
        check_symmetric_positive_definite(precisions, "precisions_init (tied precision)")

    def sample(self, rng, means, covariances, counts):
        return np.vstack([
            rng.multivariate_normal(m, covariances, int(n))
            for m, n in zip(means, counts, strict=True)
        ])
