"""Full covariance: each component has its own (d, d) covariance matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..xp import array_namespace, centred_with_ones, squared_norms, to_host, weighted_grams
from .base import CovarianceType, log_density, scale_free_jump_losses
from .linalg import (
    check_symmetric_positive_definite,
    inverse_from_upper,
    symmetric_outer_update,
    triangular_inverses,
    upper_cholesky_of_inverses,
    upper_cholesky_of_matrix,
)

#: Squared whitened distance (and responsibility times it) beyond which a
#: row's second moments are taken from its residual, not in whitened
#: coordinates. A row at squared distance D from a component, with
#: responsibility r, adds about r D to every entry of the component's whitened
#: sums, whose rounding, mapped back, costs about ``eps * r D / N_k`` of its
#: covariance's relative accuracy (a row at 1e8 standard deviations: 1e-3 in
#: float64). Beyond 100 standard deviations the row is summed on its own:
#: below, the loss stays under about 2e-12 in float64 (float32: 6e-4 for a
#: component of one row's weight, less in proportion for heavier ones; a
#: lower float32 limit sent whole clusters that start 10 deviations from
#: every mean down the slow path, measured 27% slower).
FAR_DISTANCE = 1e4


class Full(CovarianceType):
    """Full covariance matrices, moments about each component's own mean.

    The E-step whitens ``x - mu_k`` for all of a centre group's components
    with one product and reuses the whitened chunk for the second moments, so
    a chunk costs two large products and a few passes over a (K, d, n) array.
    """

    name = "full"
    expands_about_centre = False

    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def numbers_per_row(self, n_components: int, n_features: int) -> int:
        return n_components * (n_features + 1)  # the (K, d, n) whitened chunk

    def distances(self, prec_chol, members, offsets):
        return (np.einsum("kd,kde->ke", offsets, prec_chol[members]) ** 2).sum(axis=1)

    def shift_of(self, means, groups):
        return means.copy()

    def group_arrays(self, group, means, prec_chol, spec):
        chol = prec_chol[group.members]
        K, d = len(group.members), means.shape[1]
        offsets = means[group.members] - group.centre
        white_offsets = np.einsum("kd,kde->ke", offsets, chol)
        return {
            # All factors stacked, beside them the offsets: one (K*d, d+1)
            # product whitens a chunk (given a column of ones).
            "stacked": spec.asarray(np.hstack([
                chol.transpose(0, 2, 1).reshape(K * d, d),
                -white_offsets.reshape(K * d, 1),
            ])),
            "unwhiten": triangular_inverses(chol, lower=False),
            "offsets": offsets,
        }

    def group_log_prob(self, X, group, const):
        # y_k = (x - mu_k) U_k, computed as (x - c) U_k - (mu_k - c) U_k; the
        # group's centre c keeps the subtraction free of cancellation.
        xp = array_namespace(X)
        n, d = X.shape
        centred = centred_with_ones(X, group.centre)
        # Component-major (K, d, n): reductions over d and the weighting by
        # responsibilities then run along contiguous rows.
        white = xp.reshape(group.arrays["stacked"] @ centred.T, (-1, d, n))
        norms = squared_norms(white, axis=1)
        beyond = norms > FAR_DISTANCE
        # kept before log_density overwrites the norms; None when no row is far
        far = xp.where(beyond, norms, xp.zeros_like(norms)) if xp.any(beyond) else None
        return log_density(norms, const), None, (centred, white, far)

    def group_moments(self, X, resp, group, work):
        centred, white, far = work  # centred has a trailing column of ones
        moments = to_host(resp @ centred)
        nk, s1 = moments[:, -1], moments[:, :-1]
        s1 -= nk[:, None] * group.arrays["offsets"]
        # Second moments about each mean in whitened coordinates (well scaled
        # whatever the data's units), then mapped back: x - mu_k = y_k U_k^-1.
        # Rows far from a component (see FAR_DISTANCE) are taken out of its
        # whitened sums and added from their own residuals.
        near, extra = resp, None
        if far is not None:  # weighs r |y|^2 in the whitened sums: rounding there
            xp = array_namespace(X)
            far = resp * far > FAR_DISTANCE
            if xp.any(far):
                near = xp.where(far, xp.zeros_like(resp), resp)
                extra = self._far_moments(centred, resp, far, group.arrays["offsets"])
        second = to_host(weighted_grams(white, near))
        back = group.arrays["unwhiten"]
        s2 = np.matmul(back.transpose(0, 2, 1), np.matmul(second, back))
        return s1, s2 if extra is None else s2 + extra

    def _far_moments(self, centred: Any, resp: Any, far: Any, offsets: np.ndarray
                     ) -> np.ndarray:
        """``sum r (x - mu_k)(x - mu_k)^T`` over each component's far rows, from
        their residuals in float64 on the host (few rows: outliers). As
        :meth:`direct_moments`, but over the marked rows only and from the
        chunk's centred rows and the offsets (the means are not at hand here)."""
        xp = array_namespace(centred)
        K, d = offsets.shape
        out = np.zeros((K, d, d))
        for k in np.flatnonzero(to_host(xp.any(far, axis=1), bool)):
            rows = xp.nonzero(far[k, :])[0]
            residuals = to_host(xp.take(centred, rows, axis=0))[:, :d] - offsets[k]
            out[k] = self.residual_s2(residuals, to_host(xp.take(resp[k, :], rows)))
        return out

    def residual_s2(self, residuals: Any, weights: Any) -> np.ndarray:
        xp = array_namespace(residuals)
        r = xp.astype(residuals, xp.float64, copy=False)
        return to_host((r * xp.astype(weights, xp.float64, copy=False)[:, None]).T @ r)

    def stack_s2(self, parts, n_features):
        return np.stack(parts)

    def scatter_s2(self, parts, n_components, n_features):
        out = np.empty((n_components, n_features, n_features))
        for members, s2 in parts:
            out[members] = s2
        return out

    def reduce_full_s2(self, s2):
        return s2

    def recentre_s2(self, s2, s1, nk, delta):
        return symmetric_outer_update(s2, s1, nk, delta)

    def covariances(self, nk, delta, s2, reg_covar):
        cov = s2 / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        d = cov.shape[1]
        idx = np.arange(d)
        cov[:, idx, idx] = np.maximum(cov[:, idx, idx], 0.0) + reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        names = [f"component {k}" for k in range(len(covariances))]
        return upper_cholesky_of_inverses(np.asarray(covariances), names)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.stack([upper_cholesky_of_matrix(p) for p in precisions])

    def precisions(self, prec_chol):
        return np.matmul(prec_chol, prec_chol.transpose(0, 2, 1))

    def covariances_from_cholesky(self, prec_chol):
        return inverse_from_upper(prec_chol)

    def to_full(self, covariances, n_components, n_features):
        return np.array(covariances, dtype=np.float64)

    def whiten(self, points, prec_chol):
        return array_namespace(points).matmul(points, prec_chol)

    def log_det_cholesky(self, prec_chol, n_features):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def precision_traces(self, prec_chol, n_features):
        return np.square(prec_chol).sum(axis=(1, 2))

    def jump_losses(self, delta, covariances, prec_chol):
        # both bounds hold: the smaller (fmin: a NaN of 0/0 falls back on the
        # general one); (U U^T)_ii is the squared norm of row i of U
        return np.fmin(super().jump_losses(delta, covariances, prec_chol),
                       scale_free_jump_losses(
                           delta, np.diagonal(covariances, axis1=1, axis2=2),
                           np.square(prec_chol).sum(axis=2)))

    def check_precisions(self, precisions):
        for k, p in enumerate(precisions):
            check_symmetric_positive_definite(p, self.name, f"precisions_init[{k}]")

    def sample(self, rng, means, covariances, counts):
        return np.vstack([
            rng.multivariate_normal(m, c, int(n))
            for m, c, n in zip(means, covariances, counts, strict=True)
        ])
