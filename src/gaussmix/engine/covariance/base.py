"""The interface every covariance type implements.

A covariance type is a small stateless object: the EM loop, the estimator and
the M-step call these operations and never branch on the type's name.
Parameters follow scikit-learn's conventions: ``precisions_cholesky`` holds
upper-triangular factors ``U`` with ``precision = U @ U.T``, so that the
Mahalanobis distance of ``x`` is ``|(x - mu) @ U|^2``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)

ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because {what} has an ill-defined "
    "covariance (for instance caused by singleton or collapsed samples). Try to "
    "decrease the number of components, increase reg_covar, or scale the input "
    "data."
)


@dataclass(frozen=True)
class KernelState:
    """Per-iteration constants of the E-step, cast to the compute dtype.

    ``shift`` is where the moments are taken (float64, for the statistics),
    ``center`` the same centres in the compute dtype; ``arrays`` holds the
    covariance type's own precomputed factors.
    """

    shift: np.ndarray
    center: np.ndarray
    const: np.ndarray
    arrays: dict[str, np.ndarray]


class CovarianceType(ABC):
    """Operations of one covariance type (full, tied, diag or spherical)."""

    name: str

    # -- shapes and counting -------------------------------------------------
    @abstractmethod
    def param_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of covariances_, precisions_ and precisions_cholesky_."""

    def s2_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of the second-moment statistic (the parameter shape)."""
        return self.param_shape(n_components, n_features)

    @abstractmethod
    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters in the covariances."""

    def numbers_per_row(self, n_components: int, n_features: int) -> int:
        """Size of the E-step's largest work array per row (chunk sizing)."""
        return n_components + n_features

    # -- E-step --------------------------------------------------------------
    @abstractmethod
    def shift(self, means: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Centres (K, d) about which moments are accumulated."""

    @abstractmethod
    def prepare(
        self, means: np.ndarray, weights: np.ndarray, prec_chol: np.ndarray,
        dtype: np.dtype,
    ) -> KernelState:
        """Precompute what the E-step of a chunk needs."""

    @abstractmethod
    def log_prob(self, X: np.ndarray, state: KernelState) -> tuple[np.ndarray, Any]:
        """Log-densities (n, K) of a chunk under each component, without weights.

        The array is the transpose of a C-ordered (K, n) array: the per-row
        reductions over K that follow (max, sum, argmax) are then vectorised
        across rows instead of looping over short rows (about 20x faster for
        small K). Also returns a work array that :meth:`moments` may reuse.
        """

    @abstractmethod
    def moments(
        self, X: np.ndarray, resp: np.ndarray, state: KernelState, work: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shifted moments (s1, s2) of a chunk, in float64.

        ``resp`` (n, K) are responsibilities already multiplied by sample weights.
        """

    def moment_state(self, shift: np.ndarray, dtype: np.dtype) -> KernelState:
        """A state that only carries centres: moments from given responsibilities."""
        return KernelState(
            shift=shift, center=shift.astype(dtype), const=np.empty(0), arrays={}
        )

    # -- M-step --------------------------------------------------------------
    @abstractmethod
    def covariances(
        self, nk: np.ndarray, delta: np.ndarray, s2: np.ndarray, reg_covar: float
    ) -> np.ndarray:
        """Covariances from statistics; ``delta = s1 / nk`` is the mean's offset."""

    @abstractmethod
    def reseed(self, covariances: np.ndarray, nk: np.ndarray, empty: np.ndarray
               ) -> np.ndarray:
        """Covariances with the ``empty`` components set to the pooled covariance."""

    # -- conversions ---------------------------------------------------------
    @abstractmethod
    def precisions_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Upper Cholesky factors of the precisions; raises ValueError with advice."""

    @abstractmethod
    def precisions_cholesky_from_precisions(self, precisions: np.ndarray) -> np.ndarray:
        """Upper factors ``U`` with ``U @ U.T == precisions``."""

    @abstractmethod
    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """Precisions from their Cholesky factors."""

    @abstractmethod
    def covariances_from_cholesky(self, prec_chol: np.ndarray) -> np.ndarray:
        """Covariances from precision Cholesky factors (triangular solves)."""

    @abstractmethod
    def to_full(
        self, covariances: np.ndarray, n_components: int, n_features: int
    ) -> np.ndarray:
        """Covariances as (K, d, d) matrices (for plotting and conversions)."""

    @abstractmethod
    def log_det_cholesky(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """log det of each precision Cholesky factor, shape (K,)."""

    @abstractmethod
    def check_precisions(self, precisions: np.ndarray) -> None:
        """Raise ValueError unless ``precisions`` are valid (positive definite)."""

    # -- sampling ------------------------------------------------------------
    @abstractmethod
    def sample(
        self, rng: np.random.RandomState, means: np.ndarray,
        covariances: np.ndarray, counts: np.ndarray,
    ) -> np.ndarray:
        """Draw ``counts[k]`` rows from component ``k``, stacked in order."""

    # -- shared helpers ------------------------------------------------------
    def log_const(self, prec_chol: np.ndarray, n_features: int) -> np.ndarray:
        """Per-component constant ``-d/2 log(2 pi) + log det U``."""
        return -0.5 * n_features * LOG_2PI + self.log_det_cholesky(prec_chol, n_features)


def global_shift(means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The mixture's overall mean, repeated for every component."""
    center = np.average(means, axis=0, weights=weights)
    return np.broadcast_to(center, means.shape).copy()


def upper_cholesky_of_inverse(covariance: np.ndarray, what: str) -> np.ndarray:
    """Upper factor U with U U^T = inv(covariance), by one triangular solve."""
    from scipy.linalg import solve_triangular

    try:
        lower = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=what)) from None
    if not np.all(np.isfinite(lower)):
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=what))
    eye = np.eye(covariance.shape[0])
    return solve_triangular(lower, eye, lower=True).T


def upper_cholesky_of_matrix(precision: np.ndarray) -> np.ndarray:
    """Upper factor U with U U^T = precision (Cholesky of the flipped matrix)."""
    flipped = precision[::-1, ::-1]
    return np.linalg.cholesky(flipped)[::-1, ::-1].copy()


def inverse_from_upper(prec_chol: np.ndarray) -> np.ndarray:
    """inv(U U^T) = U^-T U^-1, by one triangular solve."""
    from scipy.linalg import solve_triangular

    u_inv = solve_triangular(prec_chol, np.eye(prec_chol.shape[0]), lower=False)
    return u_inv.T @ u_inv


def check_symmetric_positive_definite(matrix: np.ndarray, what: str) -> None:
    """Raise ValueError unless ``matrix`` is symmetric positive definite."""
    if not np.allclose(matrix, matrix.T):
        raise ValueError(f"{what} should be symmetric, but it is not.")
    if not np.all(np.linalg.eigvalsh(matrix) > 0.0):
        raise ValueError(
            f"{what} should be symmetric, positive-definite, but it has a "
            "non-positive eigenvalue."
        )


def clamp_nonnegative(values: np.ndarray) -> np.ndarray:
    """Variances can come out a hair below zero by rounding; they are zero."""
    return np.maximum(values, 0.0)


class VarianceType(CovarianceType):
    """Shared operations of the types whose covariances are variances
    (diag: one per feature and component; spherical: one per component).

    Both expand ``|x - mu_k|^2`` about the mixture's overall mean ``c``; each
    type supplies the per-component arrays of that expansion.
    """

    @abstractmethod
    def kernel_arrays(
        self, precisions: np.ndarray, offsets: np.ndarray
    ) -> dict[str, np.ndarray]:
        """E-step arrays from precisions and mean offsets ``mu_k - c``."""

    def shift(self, means, weights):
        return global_shift(means, weights)

    def prepare(self, means, weights, prec_chol, dtype) -> KernelState:
        shift = global_shift(means, weights)
        arrays = self.kernel_arrays(prec_chol**2, means - shift)
        return KernelState(
            shift=shift,
            center=shift[0].astype(dtype),
            const=self.log_const(prec_chol, means.shape[1]).astype(dtype),
            arrays={name: a.astype(dtype) for name, a in arrays.items()},
        )

    def precisions_cholesky(self, covariances):
        per_component = np.reshape(covariances, (len(covariances), -1))
        bad = np.flatnonzero(~np.all(per_component > 0.0, axis=1))
        if bad.size:
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
                f"precisions_init ({self.name} precision) should be positive, but it "
                f"has {np.sum(~(precisions > 0.0))} non-positive entries."
            )

    def reseed(self, covariances, nk, empty):
        out = covariances.copy()
        out[empty] = np.average(covariances[~empty], axis=0, weights=nk[~empty])
        return out

    def to_full(self, covariances, n_components, n_features):
        variances = np.reshape(covariances, (n_components, -1))  # (K, d) or (K, 1)
        return variances[:, :, None] * np.eye(n_features)

    def sample(self, rng, means, covariances, counts):
        # sqrt(c) broadcasts: a vector of variances (diag) or one variance.
        return np.vstack([
            m + rng.standard_normal(size=(int(n), len(m))) * np.sqrt(c)
            for m, c, n in zip(means, covariances, counts, strict=True)
        ])
