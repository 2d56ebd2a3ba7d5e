"""Each component's marginal density on a row's observed coordinates and its
conditional distribution of the missing ones, for a block of rows.

With ``r = x - mu_k`` (observed part ``r_o``), precision ``L = U U^T`` and
``m`` the missing coordinates, the Gaussian identities used are (no inverse
of a covariance is ever formed; only ``L_mm``, q x q, is factorised):

- conditional covariance ``Sigma_{m|o} = Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om
  = L_mm^-1`` (the q x q block by Cholesky and a triangular inverse, whose
  pivots also give ``log det L_mm``);
- conditional mean offset ``delta = E[x_m | x_o] - mu_m = -L_mm^-1 (L r~)_m``
  where ``r~`` is ``r`` with its missing entries set to zero (applied as
  ``C^-T C^-1`` with ``C`` the Cholesky factor of ``L_mm``);
- the marginal's squared Mahalanobis distance is the full one at the filled
  residual ``f = r~ + delta`` (the minimum over the missing values):
  ``|f U|^2``, a sum of squares (no cancellation);
- ``log det Sigma_oo = log det Sigma + log det L_mm``, so
  ``log N(x_o | k) = -|o|/2 log 2 pi + sum log diag U - log det L_mm / 2 - |f U|^2/2``.

Everything is float64 NumPy (rows of any dtype are converted); the per-pattern
factorisations are vectorised over patterns and components, the per-row work
is three (K, n, d) x (d, d) products and a few passes over (K, n, d) arrays.
This is the reference; :mod:`.loops` computes the same identities compiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..compiled_inputs import read_only
from ..covariance import CovarianceType
from ..covariance.linalg import ILL_DEFINED_COVARIANCE
from ..far_rows import far_scores, power_of_two_scale
from ..params import MixtureParams
from .patterns import Block

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Marginals:
    """The mixture's parameters in the (K, d, d) form the conditionals use, or
    for diagonal precisions their diagonals as (K, 1, d): K d^2 numbers each
    would be 1 GB at d=3,000, K=14."""

    means: np.ndarray        # (K, d)
    chol: np.ndarray         # (K, d, d) upper factors U of the precisions
    precisions: np.ndarray   # (K, d, d) U U^T (both (K, 1, d) when diagonal)
    log_weights: np.ndarray  # (K,)
    log_det_chol: np.ndarray  # (K,) sum log diag U
    diagonal: bool           # diagonal precisions, and the type keeps only the
    #                          diagonal of second moments (diag, spherical)

    @property
    def const(self) -> np.ndarray:
        """``log pi_k + sum log diag U_k`` (K,)."""
        return self.log_weights + self.log_det_chol

    def arguments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
        """The parameters as the compiled loops (:mod:`.loops`) take them
        (read-only views: see :func:`..compiled_inputs.read_only`)."""
        return (read_only(self.means), read_only(self.precisions), read_only(self.chol),
                read_only(self.const), self.diagonal)

    @classmethod
    def of(cls, piece: CovarianceType, params: MixtureParams) -> Marginals:
        K, d = params.means.shape
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(params.weights)
        means = np.ascontiguousarray(params.means, np.float64)
        if _keeps_only_diagonal(piece):  # (diag, spherical: diagonal factors)
            factors = np.broadcast_to(np.reshape(params.precisions_cholesky, (K, -1)),
                                      (K, d))
            chol = np.ascontiguousarray(factors, np.float64).reshape(K, 1, d)
            return cls(means, chol, chol * chol, log_weights,
                       np.log(chol[:, 0, :]).sum(axis=1), True)
        chol = np.ascontiguousarray(piece.to_full(params.precisions_cholesky, K, d))
        return cls(means, chol, np.matmul(chol, chol.transpose(0, 2, 1)), log_weights,
                   np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1), False)


def _keeps_only_diagonal(piece: CovarianceType) -> bool:
    """Whether the type's second-moment statistic ignores off-diagonal entries."""
    ones, eye = np.ones((1, 2, 2)), np.eye(2)[None]
    return bool(np.array_equal(piece.reduce_full_s2(ones), piece.reduce_full_s2(eye)))


@dataclass(frozen=True)
class Conditionals:
    """One block's per-component results.

    ``scores`` (K, n_b): ``log pi_k + log N(x_o | k)``; ``filled`` (K, n_b, d):
    ``E[x | x_o, k] - mu_k``; ``covariance`` (q, q, P, K): the conditional
    covariance ``Sigma_{m|o,k}`` of each pattern of the block (batch axes
    last, so that the q x q algebra is vectorised over patterns and
    components).
    """

    scores: np.ndarray
    filled: np.ndarray
    covariance: np.ndarray


def conditionals(model: Marginals, X: np.ndarray, block: Block) -> Conditionals:
    """Marginal scores and conditional moments of the rows ``X`` (n_b, d; NaN
    where missing) of ``block``."""
    inverse, covariance, scores = _pattern_factors(model, block)
    filled = X[None, :, :] - model.means[:, None, :]
    white = _fill(model, filled, block, inverse)
    maha = np.einsum("knd,knd->kn", white, white)
    scores -= 0.5 * maha
    return Conditionals(scores, filled, covariance)


def far_scores_of_block(model: Marginals, X: np.ndarray, block: Block
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Scores (K, n_b) and row term (n_b,) of rows of ``block`` whose
    distances overflow under every component, as
    :func:`~gaussmix.engine.far_rows.far_scores` gives them (their sum is
    ``log pi_k + log N(x_o | k)``): the whitening maps are the filled
    residual's, ``r_o -> (r~ + delta) U``, linear in ``r_o``."""
    K = len(model.means)
    inverse, _, base = _pattern_factors(model, block)
    scale = power_of_two_scale(X, model.means)
    rows = np.broadcast_to(X / scale[:, None], (K, *X.shape))
    a = _fill(model, rows.copy(), block, inverse)
    b = _fill(model, model.means[:, None, :] / scale[None, :, None], block, inverse)
    return far_scores(a, b, base, scale)


def _pattern_factors(model: Marginals, block: Block
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverses ``C^-1`` of the lower Cholesky factors of the block's
    patterns' ``L_mm`` and the conditional covariances ``L_mm^-1`` (both
    (q, q, P, K)), and each row's score before its distance, ``log pi_k +
    log N(x_o | k) + |f U|^2 / 2`` (K, n_b)."""
    K, d = model.means.shape
    q = block.missing.shape[1]
    pm = block.patterns.T                                   # (q, P)
    lower = _cholesky(_missing_blocks(model, pm))
    inverse, covariance = _inverse_from_cholesky(lower)     # (q, q, P, K)
    log_det = 2.0 * np.log(np.diagonal(lower)).sum(axis=-1)  # (P, K)
    base = (model.log_weights + model.log_det_chol)[:, None] - 0.5 * log_det[block.pattern].T
    base -= 0.5 * (d - q) * LOG_2PI
    if q == d:  # nothing observed: density 1, where log det L_mm, the rounded
        # precision's log det, would be off by cond(L) units in the last place
        base = np.repeat(model.log_weights[:, None], len(block.rows), axis=1)
    return inverse, covariance, base


def _missing_blocks(model: Marginals, pm: np.ndarray) -> np.ndarray:
    """The blocks ``L_mm`` (q, q, P, K) of the patterns' missing coordinates
    ``pm`` (q, P) (distinct within a pattern: diagonal precisions give
    diagonal blocks)."""
    K, d = model.means.shape
    if model.diagonal:
        q = pm.shape[0]
        blocks = np.zeros((q, q, *pm.shape[1:], K))
        at = np.arange(q)
        blocks[at, at] = np.take(model.precisions[:, 0, :].T, pm, axis=0)
        return blocks
    flat = model.precisions.reshape(K, d * d).T             # (d * d, K)
    return np.take(flat, pm[:, None, :] * d + pm[None, :, :], axis=0)


def _times(rows: np.ndarray, factors: np.ndarray, diagonal: bool) -> np.ndarray:
    """``rows @ factors`` (K, n, d) @ (K, d, d); for diagonal factors, given
    as (K, 1, d), the same numbers by one product each."""
    return rows * factors if diagonal else rows @ factors


def _fill(model: Marginals, filled: np.ndarray, block: Block, inverse: np.ndarray
          ) -> np.ndarray:
    """Residuals ``filled`` (K, n_b, d; anything at the missing entries) in
    place into ``r~ + delta``; returns them whitened, ``(r~ + delta) U``.

    ``delta = -C^-T (C^-1 (L r~)_m)`` through the inverse factors ``inverse``
    (C^-1): as accurate as the two triangular solves, where the explicit
    ``L_mm^-1`` errs by about ``cond(L_mm)`` units in the last place (and
    the distance with it, to first order: 2e-2 in a log-density at condition
    number 1e14)."""
    at = (np.arange(block.missing.shape[0])[:, None], block.missing)
    filled[:, at[0], at[1]] = 0.0                           # r~ (K, n, d)
    pulled = _times(filled, model.precisions, model.diagonal)[:, at[0], at[1]]  # (L r~)_m
    factors = inverse[:, :, block.pattern]                  # (q, q, n, K)
    half = np.einsum("ijnk,knj->kni", factors, pulled)
    delta = -np.einsum("jink,knj->kni", factors, half)
    filled[:, at[0], at[1]] = delta
    return _times(filled, model.chol, model.diagonal)


# Small SPD algebra on stacks with the batch axes last, (q, q, ...): one NumPy
# call per entry (or column) of the q x q factor, each over the whole stack,
# so that many tiny matrices cost about what one large array operation does.
def _cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices; ValueError with
    advice when one is not positive definite."""
    q = a.shape[0]
    lower = np.zeros_like(a)
    for j in range(q):
        column = a[j:, j] - np.einsum("ip...,p...->i...", lower[j:, :j], lower[j, :j])
        if not np.all(column[0] > 0):
            bad = np.argwhere(~(column[0] > 0))[0]
            raise ValueError(ILL_DEFINED_COVARIANCE.format(
                what=f"component {bad[-1]} (its precision restricted to a row's "
                     "missing coordinates)"))
        root = np.sqrt(column[0])
        lower[j, j] = root
        lower[j + 1:, j] = column[1:] / root
    return lower


def _inverse_from_cholesky(lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``C^-1`` and ``(C C^T)^-1 = C^-T C^-1`` from lower factors ``C``
    (forward substitution for ``C^-1``, row by row)."""
    q = lower.shape[0]
    inv = np.zeros_like(lower)
    for i in range(q):
        inv[i, i] = 1.0 / lower[i, i]
        inv[i, :i] = -np.einsum("jc...,j...->c...", inv[:i, :i], lower[i, :i]) * inv[i, i]
    out = np.empty_like(lower)
    for i in range(q):  # the lower triangle, mirrored
        out[i, :i + 1] = np.einsum("rc...,r...->c...", inv[i:, :i + 1], inv[i:, i])
        out[:i, i] = out[i, :i]
    return inv, out
