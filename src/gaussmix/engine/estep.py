"""The E-step of one chunk of rows: log-densities, responsibilities, statistics.

Every fitting mode (in memory, out of core, streaming, distributed) calls
:func:`chunk_statistics` on its chunks and adds the results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .covariance import CovarianceType, KernelState
from .params import MixtureParams
from .stats import SuffStats, lowest_rows


@dataclass(frozen=True)
class EStepKernel:
    """A covariance type bound to fixed parameters, ready for chunks."""

    piece: CovarianceType
    state: KernelState
    log_weights: np.ndarray

    @classmethod
    def build(
        cls, piece: CovarianceType, params: MixtureParams, dtype: np.dtype
    ) -> EStepKernel:
        state = piece.prepare(
            params.means, params.weights, params.precisions_cholesky, dtype
        )
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(params.weights).astype(dtype)
        return cls(piece, state, log_weights)

    def weighted_log_prob(self, X: np.ndarray) -> tuple[np.ndarray, object]:
        """log(pi_k) + log N(x | k) for a chunk, shape (n, K), and a work array."""
        log_prob, work = self.piece.log_prob(X, self.state)
        log_prob += self.log_weights
        return log_prob, work

    def log_resp(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood (n,) and log-responsibilities (n, K)."""
        log_prob, _ = self.weighted_log_prob(X)
        log_norm = logsumexp_rows(log_prob)
        log_prob -= log_norm[:, None]
        return log_norm, log_prob

    def statistics(self, X: np.ndarray, sample_weight: np.ndarray | None) -> SuffStats:
        """Sufficient statistics of one chunk at the kernel's parameters."""
        log_prob, work = self.weighted_log_prob(X)
        log_norm, resp = normalise_in_place(log_prob)
        if sample_weight is not None:
            resp *= sample_weight[:, None].astype(resp.dtype, copy=False)
            loglik = float(np.dot(sample_weight, log_norm))
            weight = float(sample_weight.sum())
            ranked = np.where(sample_weight > 0, log_norm, np.inf)
        else:
            loglik, weight, ranked = float(log_norm.sum(dtype=np.float64)), len(X), log_norm
        s1, s2 = self.piece.moments(X, resp, self.state, work)
        worst_ll, worst_x = lowest_rows(ranked, X, len(self.log_weights))
        keep = np.isfinite(worst_ll)
        return SuffStats(
            nk=resp.sum(axis=0, dtype=np.float64), s1=s1, s2=s2,
            shift=self.state.shift, loglik=loglik, weight=weight,
            worst_ll=worst_ll[keep], worst_x=worst_x[keep],
        )


def resp_statistics(
    piece: CovarianceType, state: KernelState, X: np.ndarray, resp: np.ndarray,
    sample_weight: np.ndarray | None,
) -> SuffStats:
    """Statistics of a chunk from given responsibilities (initialisation)."""
    resp = resp.astype(X.dtype, copy=True)
    if sample_weight is not None:
        resp *= sample_weight[:, None].astype(X.dtype, copy=False)
    s1, s2 = piece.moments(X, resp, state)
    weight = float(sample_weight.sum()) if sample_weight is not None else len(X)
    return SuffStats(
        nk=resp.sum(axis=0, dtype=np.float64), s1=s1, s2=s2, shift=state.shift,
        loglik=0.0, weight=weight, worst_ll=np.empty(0),
        worst_x=np.empty((0, X.shape[1])),
    )


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """log(sum(exp(a), axis=1)) without overflow; ``a`` is left unchanged."""
    top = a.max(axis=1)
    total = np.exp(a - top[:, None]).sum(axis=1)
    return np.log(total) + top


def normalise_in_place(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn weighted log-densities into responsibilities, in place, with one exp.

    Returns the per-row log-likelihood and the responsibilities (same buffer).
    """
    rows = log_prob.T  # the covariance types give (K, n) memory: reduce along K
    top = rows.max(axis=0)
    rows -= top
    np.exp(rows, out=rows)
    total = rows.sum(axis=0)
    rows /= total
    return np.log(total) + top, log_prob
