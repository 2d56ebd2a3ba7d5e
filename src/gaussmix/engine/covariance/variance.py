"""Shared operations of the types whose covariances are variances (diag: one
per feature and component; spherical: one per component)."""

from __future__ import annotations

import functools
from abc import abstractmethod
from typing import Any

import numpy as np

from ..xp import array_namespace
from .base import CovarianceType, group_centres
from .groups import CentreGroup
from .linalg import ILL_DEFINED_COVARIANCE


class VarianceType(CovarianceType):
    """Diag and spherical: ``|x - mu_k|^2`` is expanded about each component's
    group centre ``c`` (see :mod:`.groups`), where the moments are taken too;
    each type supplies the per-component arrays of that expansion."""

    @abstractmethod
    def kernel_arrays(
        self, precisions: np.ndarray, offsets: np.ndarray
    ) -> dict[str, np.ndarray]:
        """E-step arrays from precisions and mean offsets ``mu_k - c``."""

    def group_arrays(self, group: CentreGroup, means: np.ndarray,
                     prec_chol: np.ndarray, spec: Any) -> dict[str, Any]:
        arrays = self.kernel_arrays(prec_chol[group.members] ** 2,
                                    means[group.members] - group.centre)
        return {name: spec.asarray(a) for name, a in arrays.items()}

    def shift_of(self, means, groups):
        return group_centres(means, groups)

    def scatter_s2(self, parts, n_components, n_features):
        out = np.empty((n_components,) + parts[0][1].shape[1:])
        for members, s2 in parts:
            out[members] = s2
        return out

    def stack_s2(self, parts, n_features):
        return np.stack(parts)

    def precisions_cholesky(self, covariances):
        valid = (covariances > 0.0) & np.isfinite(covariances)
        if not valid.all():  # one reduction in the usual case (each M-step)
            per_component = np.reshape(valid, (len(covariances), -1))
            bad = np.flatnonzero(~per_component.all(axis=1))
            raise ValueError(ILL_DEFINED_COVARIANCE.format(what=f"component {bad[0]}"))
        return 1.0 / np.sqrt(covariances)

    def precisions_cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def precisions(self, prec_chol):
        return prec_chol**2

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / prec_chol**2

    def check_precisions(self, precisions):
        if not np.all(precisions > 0.0):
            raise ValueError(
                f"'{self.name} precision' should be positive, but precisions_init "
                f"has {np.sum(~(precisions > 0.0))} non-positive entries."
            )

    def to_full(self, covariances, n_components, n_features):
        variances = np.reshape(covariances, (n_components, -1))  # (K, d) or (K, 1)
        return variances[:, :, None] * _identity(n_features)

    def whiten(self, points, prec_chol):
        xp = array_namespace(points)
        return points * xp.reshape(prec_chol, (prec_chol.shape[0], 1, -1))

    def sample(self, rng, means, covariances, counts):
        # sqrt(c) broadcasts: a vector of variances (diag) or one variance.
        return np.vstack([
            m + rng.standard_normal(size=(int(n), len(m))) * np.sqrt(c)
            for m, c, n in zip(means, covariances, counts, strict=True)
        ])


@functools.cache
def _identity(n_features: int) -> np.ndarray:
    """np.eye, built once per width (every kernel build asks for it)."""
    eye = np.eye(n_features)
    eye.flags.writeable = False
    return eye
