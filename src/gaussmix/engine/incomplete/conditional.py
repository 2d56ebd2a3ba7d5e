"""Each component's marginal density on a row's observed coordinates and its
conditional distribution of the missing ones, for a block of rows.

With ``r = x - mu_k`` (observed part ``r_o``), precision ``L = U U^T`` and
``m`` the missing coordinates, the Gaussian identities used are (no inverse
of a covariance is ever formed; only ``L_mm``, q x q, is factorised):

- conditional covariance ``Sigma_{m|o} = Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om
  = L_mm^-1``, from the Cholesky factor ``C`` of ``L_mm`` (``C^-T C^-1``);
- conditional mean offset ``delta = E[x_m | x_o] - mu_m = -L_mm^-1 (L r~)_m``
  where ``r~`` is ``r`` with its missing entries set to zero;
- the marginal's squared Mahalanobis distance is the full one at the filled
  residual ``f = r~ + delta`` (the minimum over the missing values):
  ``|f U|^2``, a sum of squares (no cancellation);
- ``log det Sigma_oo = log det Sigma + log det L_mm``, so
  ``log N(x_o | k) = -|o|/2 log 2 pi + sum log diag U - sum log diag C - |f U|^2/2``.

Everything is float64 NumPy (rows of any dtype are converted); the per-pattern
factorisations are vectorised over patterns and components, the per-row work
is three (K, n, d) x (d, d) products and a few passes over (K, n, d) arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..covariance import CovarianceType
from ..covariance.linalg import ILL_DEFINED_COVARIANCE
from ..params import MixtureParams
from .patterns import Block

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Marginals:
    """The mixture's parameters in the full (K, d, d) form the conditionals use."""

    means: np.ndarray        # (K, d)
    chol: np.ndarray         # (K, d, d) upper factors U of the precisions
    precisions: np.ndarray   # (K, d, d) U U^T
    log_weights: np.ndarray  # (K,)
    log_det_chol: np.ndarray  # (K,) sum log diag U

    @classmethod
    def of(cls, piece: CovarianceType, params: MixtureParams) -> Marginals:
        K, d = params.means.shape
        chol = piece.to_full(params.precisions_cholesky, K, d)
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(params.weights)
        return cls(np.asarray(params.means, np.float64), chol,
                   np.matmul(chol, chol.transpose(0, 2, 1)), log_weights,
                   np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1))


@dataclass(frozen=True)
class Conditionals:
    """One block's per-component results.

    ``scores`` (K, n_b): ``log pi_k + log N(x_o | k)``; ``filled`` (K, n_b, d):
    ``E[x | x_o, k] - mu_k``; ``factor`` (K, P, q, q): upper ``F`` with
    ``F F^T = Sigma_{m|o,k}`` for each pattern of the block.
    """

    scores: np.ndarray
    filled: np.ndarray
    factor: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        """Conditional covariances ``Sigma_{m|o,k}`` (K, P, q, q)."""
        return np.matmul(self.factor, self.factor.transpose(0, 1, 3, 2))


def conditionals(model: Marginals, X: np.ndarray, block: Block) -> Conditionals:
    """Marginal scores and conditional moments of the rows ``X`` (n_b, d; NaN
    where missing) of ``block``."""
    d = X.shape[1]
    q = block.patterns.shape[1]
    pm = block.patterns
    lower = _cholesky(model.precisions[:, pm[:, :, None], pm[:, None, :]])  # (K,P,q,q)
    inverse = _lower_inverse(lower)
    factor = inverse.transpose(0, 1, 3, 2)
    observed = ~np.isnan(X)
    filled = np.where(observed, X, 0.0)[None, :, :] - model.means[:, None, :]
    filled *= observed[None, :, :]                          # r~ (K, n, d)
    where = np.broadcast_to(block.missing[None], (len(model.means),) + block.missing.shape)
    pulled = np.take_along_axis(filled @ model.precisions, where, axis=2)  # (L r~)_m
    cov = np.matmul(factor, inverse)[:, block.pattern]    # (K, n, q, q)
    delta = -np.einsum("knij,knj->kni", cov, pulled)
    np.put_along_axis(filled, where, delta, axis=2)
    white = filled @ model.chol
    maha = np.einsum("knd,knd->kn", white, white)
    log_det_c = np.log(np.diagonal(lower, axis1=2, axis2=3)).sum(axis=2)  # (K, P)
    scores = (model.log_weights + model.log_det_chol)[:, None] - log_det_c[:, block.pattern]
    scores -= 0.5 * (d - q) * LOG_2PI
    scores -= 0.5 * maha
    return Conditionals(scores, filled, factor)


def _cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of matrices, with advice on failure."""
    try:
        lower = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        lower = np.full_like(a, np.nan)
    bad = ~np.all(np.isfinite(lower), axis=(2, 3))
    if bad.any():
        k = int(np.argwhere(bad)[0][0])
        raise ValueError(ILL_DEFINED_COVARIANCE.format(
            what=f"component {k} (its precision restricted to a row's missing "
                 "coordinates)"))
    return lower


def _lower_inverse(lower: np.ndarray) -> np.ndarray:
    """``C^-1`` of lower-triangular factors (..., q, q), by forward
    substitution vectorised over the stack (q steps)."""
    q = lower.shape[-1]
    out = np.zeros_like(lower)
    diag = np.diagonal(lower, axis1=-2, axis2=-1)
    for i in range(q):
        row = -np.einsum("...j,...jc->...c", lower[..., i, :i], out[..., :i, :])
        row[..., i] += 1.0
        out[..., i, :] = row / diag[..., i, None]
    return out
