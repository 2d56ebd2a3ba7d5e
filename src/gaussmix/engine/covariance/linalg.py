"""Small dense linear algebra on the host (NumPy float64): Cholesky factors of
precisions, their inverses and checks. Never an explicit inverse or determinant
of a covariance: everything goes through triangular factors."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy.linalg import get_lapack_funcs

#: scikit-learn's message, word for word (code that matches it keeps working),
#: then which covariance failed.
ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because some components have ill-defined "
    "empirical covariance (for instance caused by singleton or collapsed samples). "
    "Try to decrease the number of components, increase reg_covar, or scale the "
    "input data. Not positive definite: {what}."
)


def upper_cholesky_of_inverse(covariance: np.ndarray, what: str) -> np.ndarray:
    """Upper factor U with U U^T = inv(covariance), by one triangular inversion
    (the steps of :func:`upper_cholesky_of_inverses` for one matrix, the same
    numbers without the stack's checks and copies: the tied M-step, at every
    ``partial_fit`` call)."""
    covariance = np.asarray(covariance, dtype=np.float64)
    lower = None
    if np.isfinite(covariance).all():
        try:
            lower = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            pass
    if lower is None or not np.isfinite(lower).all():
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=what))
    inverse = triangular_inverses(lower[None], lower=True, overwrite=True)[0]
    return np.ascontiguousarray(inverse.T)


def upper_cholesky_of_inverses(covariances: np.ndarray, names: Sequence[str]
                               ) -> np.ndarray:
    """Upper factors U_k with U_k U_k^T = inv(covariances[k]) for a (K, d, d)
    stack: one batched Cholesky and one LAPACK triangular inversion per matrix
    (no argument checks per call: a fit's M-step and kernel build do this for
    every component at every iteration). ``names[k]`` names matrix k in the
    error raised when it is not positive definite."""
    if not np.isfinite(covariances).all():
        not_finite = np.flatnonzero(~np.isfinite(covariances).all(axis=(1, 2)))
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=names[int(not_finite[0])]))
    try:
        lower = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        lower = None
    bad = _not_factored(covariances, lower)
    if bad is not None:
        raise ValueError(ILL_DEFINED_COVARIANCE.format(what=names[bad]))
    assert lower is not None
    # C order, as a loaded model's factors: products such as einsum may sum
    # in another order for other strides, and predictions must not change.
    return np.ascontiguousarray(
        triangular_inverses(lower, lower=True, overwrite=True).transpose(0, 2, 1))


def _not_factored(covariances: np.ndarray, lower: np.ndarray | None) -> int | None:
    """The first matrix whose Cholesky factor failed or is not finite."""
    if lower is not None:
        if np.isfinite(lower).all():  # the usual case, in one reduction
            return None
        bad = np.flatnonzero(~np.isfinite(lower).all(axis=(1, 2)))
        return int(bad[0]) if bad.size else None
    for k, c in enumerate(covariances):  # find which one failed
        try:
            if not np.isfinite(np.linalg.cholesky(c)).all():
                return k
        except np.linalg.LinAlgError:
            return k
    return None  # pragma: no cover - the batch failed, so one matrix did


def triangular_inverses(factors: np.ndarray, lower: bool, overwrite: bool = False
                        ) -> np.ndarray:
    """inv(T_k) for a (K, d, d) stack of triangular factors with nonzero
    diagonals (LAPACK's trtri on each; the other triangle is exactly 0).
    With ``overwrite`` (a float64 stack the caller owns) the inverses replace
    the factors: no second (K, d, d) array (800 MB at K=50, d=1,000)."""
    factors = np.asarray(factors, dtype=np.float64)
    trtri = get_lapack_funcs("trtri", (factors,))
    out = factors if overwrite else np.empty_like(factors)
    for k, t in enumerate(factors):
        out[k], info = trtri(t, lower=int(lower))
        if info != 0:
            raise np.linalg.LinAlgError(f"triangular factor {k} is singular")
    # trtri leaves the other triangle as it found it: zero it for all at once
    # (np.tril's result, from a cached mask: np.tril builds one each call),
    # in place.
    np.copyto(out, 0.0, where=_outside_triangle(out.shape[-1], lower))
    return out


@functools.cache
def _triangle(d: int, lower: bool) -> np.ndarray:
    """The (d, d) mask of the lower (or upper) triangle, diagonal included."""
    mask = np.tri(d, dtype=bool)
    mask.flags.writeable = False
    return mask if lower else mask.T


@functools.cache
def _outside_triangle(d: int, lower: bool) -> np.ndarray:
    """The mask of the other triangle, diagonal excluded."""
    mask = ~_triangle(d, lower)
    mask.flags.writeable = False
    return mask


def upper_cholesky_of_matrix(precision: np.ndarray) -> np.ndarray:
    """Upper factor U with U U^T = precision (Cholesky of the flipped matrix)."""
    flipped = precision[::-1, ::-1]
    return np.linalg.cholesky(flipped)[::-1, ::-1].copy()


def inverse_from_upper(prec_chol: np.ndarray) -> np.ndarray:
    """inv(U U^T) = U^-T U^-1 (one triangular inversion), for one (d, d)
    factor or a (K, d, d) stack."""
    stack = np.asarray(prec_chol)
    u_inv = triangular_inverses(stack.reshape((-1,) + stack.shape[-2:]), lower=False)
    return (u_inv.transpose(0, 2, 1) @ u_inv).reshape(stack.shape)


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
