"""Tied covariance: all components share one (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..xp import array_namespace, squared_norms, to_host
from .base import CovarianceType, group_centres
from .linalg import (
    check_symmetric_positive_definite,
    inverse_from_upper,
    upper_cholesky_of_inverse,
    upper_cholesky_of_matrix,
)


class Tied(CovarianceType):
    """One shared covariance; moments about each component's group centre.

    The E-step whitens the centred chunk once (one d x d product) and expands
    ``|y - m_k|^2 = |y|^2 - 2 y.m_k + |m_k|^2``. ``|y|^2`` is the same for
    every component, so it is kept apart as the row term: responsibilities
    then come from ``2 y.m_k - |m_k|^2`` alone and stay exact for rows far
    from every component.
    """

    name = "tied"
    sums_group_s2 = True

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def distances(self, prec_chol, members, offsets):
        return ((offsets @ prec_chol) ** 2).sum(axis=1)

    def shift_of(self, means, groups):
        return group_centres(means, groups)

    def group_arrays(self, group, means, prec_chol, spec):
        white_means = (means[group.members] - group.centre) @ prec_chol
        return {
            "chol": spec.asarray(prec_chol),
            "white_means_t2": spec.asarray(2.0 * white_means.T),
            "white_means_sq": spec.asarray((white_means**2).sum(axis=1)),
        }

    def group_log_prob(self, X, group, const):
        a = group.arrays
        centred = X - group.centre
        white = centred @ a["chol"]
        # -|y - m|^2 / 2 = -|y|^2 / 2 + (2 y.m - |m|^2) / 2: the first is the row term
        lp = a["white_means_t2"].T @ white.T  # (K_g, n)
        lp -= a["white_means_sq"][:, None]
        lp *= 0.5
        lp += const[:, None]
        return lp, -0.5 * squared_norms(white, axis=1), centred

    rebuilds_group_work = True

    def group_work(self, X, group):
        return X - group.centre

    def group_moments(self, X, resp, group, work):
        xp = array_namespace(X)
        centred = xp.astype(work, xp.float64, copy=False)
        resp = xp.astype(resp, xp.float64, copy=False)
        s1 = resp @ centred
        s2 = (centred * xp.sum(resp, axis=0)[:, None]).T @ centred
        return to_host(s1), to_host(s2)

    def residual_s2(self, residuals: Any, weights: Any) -> np.ndarray:
        xp = array_namespace(residuals)
        r = xp.astype(residuals, xp.float64, copy=False)
        return to_host((r * xp.astype(weights, xp.float64, copy=False)[:, None]).T @ r)

    def stack_s2(self, parts, n_features):
        return np.sum(parts, axis=0) if parts else np.zeros((n_features, n_features))

    def scatter_s2(self, parts, n_components, n_features):
        return np.sum([s2 for _, s2 in parts], axis=0)

    def reduce_full_s2(self, s2):
        return s2.sum(axis=0)

    def recentre_s2(self, s2, s1, nk, delta):
        cross = s1.T @ delta
        return s2 - cross - cross.T + (delta * nk[:, None]).T @ delta

    def covariances(self, nk, delta, s2, reg_covar):
        between = (delta * nk[:, None]).T @ delta
        cov = (s2 - between) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        diagonal = cov.reshape(-1)[:: cov.shape[0] + 1]  # a view: cov is new, C order
        diagonal[...] = np.maximum(diagonal, 0.0) + reg_covar
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

    def whiten(self, points, prec_chol):
        return array_namespace(points).matmul(points, prec_chol)

    def log_det_cholesky(self, prec_chol, n_features):
        # (the method: np.diagonal's dispatch costs five times as much)
        return np.log(np.asarray(prec_chol).diagonal()).sum(keepdims=True)  # (1,)

    def precision_traces(self, prec_chol, n_features):
        return np.square(prec_chol).sum().reshape(1)  # one for all components

    def jump_losses(self, delta, covariances, prec_chol):
        # Both bounds hold: the smaller (fmin: a NaN of 0/0 falls back on the
        # general one). The general bound and scale_free_jump_losses's, with
        # the same roundings, written out to share the squares (a partial_fit
        # call on a small batch asks once).
        squares = np.square(prec_chol)
        variances = np.asarray(covariances).diagonal()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            moved = np.square(delta)
            general = np.sum(moved, axis=1) * squares.sum()
            # (U U^T)_ii is the squared norm of row i of U
            inverse_correlation = np.sum(variances * squares.sum(axis=1), axis=-1)
            scale_free = np.sum(moved / variances, axis=1) * inverse_correlation
        return np.fmin(general, scale_free)

    def jumps_past(self, delta, covariances, prec_chol, limit):
        # The losses are at most the general bound (fmin, the same roundings):
        # where it stays within the limit (the usual case) the scale-free one,
        # twice its work, is not needed.
        with np.errstate(over="ignore", invalid="ignore"):
            general = np.sum(np.square(delta), axis=1) * np.square(prec_chol).sum()
        if (general <= limit).all():
            return False
        return super().jumps_past(delta, covariances, prec_chol, limit)

    def check_precisions(self, precisions):
        check_symmetric_positive_definite(precisions, self.name, "precisions_init")

    def sample(self, rng, means, covariances, counts):
        return np.vstack([
            rng.multivariate_normal(m, covariances, int(n))
            for m, n in zip(means, counts, strict=True)
        ])
