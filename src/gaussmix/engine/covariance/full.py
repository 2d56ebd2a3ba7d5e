"""Full covariance: each component has its own (d, d) covariance matrix."""

from __future__ import annotations

import functools
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

#: Most numbers a chunk's whitened rows may hold at once, at least (see
#: :meth:`Full.batches`): past it, and past the size of the covariances
#: themselves, the components are whitened in batches of this size and
#: whitened again for the moments instead of all kept. Chunks hold at least
#: ``4 d`` rows, so wide data with many components made (K, d, n) arrays many
#: times the model (n=1,500, d=800, K=50: 480 MB, and as much again in each
#: centre group's centred copy, against scikit-learn's 0.8 GB peak in all).
#: The chunk sizes of ordinary problems keep every chunk below it (see
#: :func:`~gaussmix.engine.sources.auto_chunk_size`).
WHITE_BUDGET = 1 << 22


def _stacked(chol: np.ndarray, white_offsets: np.ndarray) -> np.ndarray:
    """``[U_k^T, -(mu_k - c) U_k]`` of all components stacked, (K d, d + 1),
    written in place (no (K, d, d) transposed copy beside it)."""
    K, d = white_offsets.shape
    out = np.empty((K, d, d + 1))
    out[:, :, :d] = chol.transpose(0, 2, 1)
    out[:, :, d] = -white_offsets
    return out.reshape(K * d, d + 1)


@functools.cache
def _component_names(n_components: int) -> tuple[str, ...]:
    """Names of the components in error messages: built once per K, not at
    every M-step (each ``partial_fit`` call)."""
    return tuple(f"component {k}" for k in range(n_components))


class _GroupArrays(dict):
    """A group's arrays, with ``"unwhiten"`` (the factors' inverses, K d^2
    numbers) made on first use: scoring never needs them (n=1,500, d=800,
    K=50: 256 MB of score_samples' 530 MB). Threads that ask at once each
    make the same array; one is kept."""

    def __init__(self, prec_chol: np.ndarray, members: np.ndarray,
                 arrays: dict[str, Any]) -> None:
        super().__init__(arrays)
        self._prec_chol, self._members = prec_chol, members  # (the params' own)

    def __missing__(self, key: str) -> Any:
        if key != "unwhiten":
            raise KeyError(key)
        chol = self._prec_chol[self._members]
        return self.setdefault(key, triangular_inverses(chol, lower=False, overwrite=True))


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
        offsets = means[group.members] - group.centre
        white_offsets = np.einsum("kd,kde->ke", offsets, chol)
        return _GroupArrays(prec_chol, group.members, {
            # All factors stacked, beside them the offsets: one (K*d, d+1)
            # product whitens a chunk (given a column of ones).
            "stacked": spec.asarray(_stacked(chol, white_offsets)),
            "offsets": offsets,
            "n_components": len(means),
        })

    def group_log_prob(self, X, group, const):
        # y_k = (x - mu_k) U_k, computed as (x - c) U_k - (mu_k - c) U_k; the
        # group's centre c keeps the subtraction free of cancellation.
        xp = array_namespace(X)
        n, d = X.shape
        centred = centred_with_ones(X, group.centre)
        batches = self.batches(group, n, d)
        if batches is None:
            white = self._whitened(centred, group, slice(0, len(group.members)), d)
            norms = squared_norms(white, axis=1)
        else:  # the whitened rows of one batch at a time, built again for the moments
            white = None
            norms = xp.concat([squared_norms(self._whitened(centred, group, b, d), axis=1)
                               for b in batches], axis=0)
        beyond = norms > FAR_DISTANCE
        # kept before log_density overwrites the norms; None when no row is far
        far = xp.where(beyond, norms, xp.zeros_like(norms)) if xp.any(beyond) else None
        return log_density(norms, const), None, (None if white is None else centred,
                                                 white, far)

    def batches(self, group: Any, n: int, d: int) -> list[slice] | None:
        """None where the whitened rows of all the model's components (``K d
        n`` numbers, in all its groups, and as many again for the groups'
        centred rows where there are several) fit in :data:`WHITE_BUDGET` numbers,
        or in as many as the model's covariances hold (``K d^2``) where that
        is more: they are kept for the moments. Else the group's components
        in batches whose whitened rows fit, whitened again for the moments."""
        K_g, K = len(group.members), group.arrays["n_components"]
        budget = max(WHITE_BUDGET, K * d * d)
        copies = 1 if K_g == K else 2  # with several groups, each its centred rows
        if copies * K * d * n <= budget:
            return None
        size = max(1, budget // (d * n))
        return [slice(i, min(i + size, K_g)) for i in range(0, K_g, size)]

    def _whitened(self, centred: Any, group: Any, batch: slice, d: int) -> Any:
        """``y_k`` of the components ``batch``, component-major (K_b, d, n):
        reductions over d and the weighting by responsibilities then run
        along contiguous rows."""
        xp = array_namespace(centred)
        stacked = group.arrays["stacked"]
        if batch.stop - batch.start < len(group.members):
            stacked = stacked[batch.start * d:batch.stop * d, :]
        return xp.reshape(stacked @ centred.T, (-1, d, centred.shape[0]))

    def group_moments(self, X, resp, group, work):
        centred, white, far = work  # centred has a trailing column of ones
        if centred is None:
            centred = centred_with_ones(X, group.centre)
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
        if white is not None:
            s2 = self._unwhitened_grams(white, near, group.arrays["unwhiten"])
        else:
            d = X.shape[1]
            s2 = np.empty((len(group.members), d, d))
            for b in self.batches(group, X.shape[0], d) or [slice(0, len(s2))]:
                s2[b] = self._unwhitened_grams(self._whitened(centred, group, b, d),
                                               near[b, :], group.arrays["unwhiten"][b])
        return s1, s2 if extra is None else s2 + extra

    @staticmethod
    def _unwhitened_grams(white: Any, weights: Any, back: np.ndarray) -> np.ndarray:
        """``sum_i w_ki (x_i - mu_k)(x_i - mu_k)^T`` from whitened rows
        (overwritten): ``x - mu_k = y_k U_k^-1``."""
        second = to_host(weighted_grams(white, weights))
        return np.matmul(back.transpose(0, 2, 1), np.matmul(second, back))

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
        # in place: (K, d, d) temporaries are the model's size at wide d
        cov = s2 / nk[:, None, None]
        cov -= delta[:, :, None] * delta[:, None, :]
        np.add(cov, cov.transpose(0, 2, 1), out=cov)  # (NumPy copies the overlap)
        cov *= 0.5
        d = cov.shape[1]
        idx = np.arange(d)
        cov[:, idx, idx] = np.maximum(cov[:, idx, idx], 0.0) + reg_covar
        return cov

    def precisions_cholesky(self, covariances):
        return upper_cholesky_of_inverses(np.asarray(covariances),
                                          _component_names(len(covariances)))

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

    def jumps_past(self, delta, covariances, prec_chol, limit):
        # The losses are at most the general bound (fmin): where it stays
        # within the limit (the usual case) the scale-free one is not needed.
        if (super().jump_losses(delta, covariances, prec_chol) <= limit).all():
            return False
        return super().jumps_past(delta, covariances, prec_chol, limit)

    def check_precisions(self, precisions):
        for k, p in enumerate(precisions):
            check_symmetric_positive_definite(p, self.name, f"precisions_init[{k}]")

    def sample(self, rng, means, covariances, counts):
        return np.vstack([
            rng.multivariate_normal(m, c, int(n))
            for m, c, n in zip(means, covariances, counts, strict=True)
        ])
