"""Small dense linear algebra on the host (NumPy float64): Cholesky factors of
precisions, their inverses and checks. Never an explicit inverse or determinant
of a covariance: everything goes through triangular factors."""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because {what} has an ill-defined "
    "covariance (for instance caused by singleton or collapsed samples). Try to "
    "decrease the number of components, increase reg_covar, or scale the input "
    "data."
)


def upper_cholesky_of_inverse(covariance: np.ndarray, what: str) -> np.ndarray:
    """Upper factor U with U U^T = inv(covariance), by one triangular solve."""
    if not np.all(np.isfinite(covariance)):
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=what))
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
    u_inv = solve_triangular(prec_chol, np.eye(prec_chol.shape[0]), lower=False)
    return u_inv.T @ u_inv


def check_symmetric_positive_definite(matrix: np.ndarray, name: str, what: str
                                      ) -> None:
    """Raise ValueError unless ``matrix`` is symmetric positive definite.

    The message starts as scikit-learn's (``'full precision' should be ...``)
    and then says what is wrong with ``what``.
    """
    start = f"'{name} precision' should be symmetric, positive-definite"
    if not np.allclose(matrix, matrix.T):
        raise ValueError(f"{start}, but {what} is not symmetric.")
    if not np.all(np.linalg.eigvalsh(matrix) > 0.0):
        raise ValueError(f"{start}, but {what} has a non-positive eigenvalue.")


def symmetric_outer_update(s2: np.ndarray, s1: np.ndarray, nk: np.ndarray,
                           delta: np.ndarray) -> np.ndarray:
    """Per-component ``s2 - s1 d^T - d s1^T + n d d^T``: (K, d, d) moments moved
    by ``d`` (exact re-centring of second moments)."""
    cross = s1[:, :, None] * delta[:, None, :]
    return (s2 - cross - cross.transpose(0, 2, 1)
            + nk[:, None, None] * delta[:, :, None] * delta[:, None, :])
