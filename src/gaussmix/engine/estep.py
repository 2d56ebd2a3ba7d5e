"""The E-step of one chunk of rows: log-densities, responsibilities, statistics.

Every fitting mode (in memory, out of core, streaming, distributed) calls
:meth:`EStepKernel.statistics` on its chunks and adds the results; prediction
calls :meth:`EStepKernel.log_likelihood`, :meth:`EStepKernel.log_resp` and
:meth:`EStepKernel.labels`. The kernel is written against the array API
standard, so chunks may be NumPy arrays, torch tensors or any namespace that
``array-api-compat`` knows.

Rows whose log-densities overflow for every component (a finite row at 1e160,
or means at 1e200) are recomputed from the row and the means scaled by a power
of two (:mod:`.far_rows`): the log-density is then ``-inf`` at worst, never
NaN, and the responsibilities still sum to one, all of them on the component
nearest in Mahalanobis terms (exact ties share by weight and normaliser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .covariance import ComputeSpec, CovarianceType, KernelState
from .deferred import deferred
from .far_rows import far_scores, power_of_two_scale
from .logspace import log_normalise, normalise_in_place
from .params import MixtureParams
from .stats import SuffStats
from .xp import array_namespace, device, to_host


@dataclass(frozen=True)
class EStepKernel:
    """A covariance type bound to fixed parameters, ready for chunks."""

    piece: CovarianceType
    state: KernelState
    log_weights: Any
    covariance_type: str

    @classmethod
    def build(cls, piece: CovarianceType, params: MixtureParams, spec: ComputeSpec
              ) -> EStepKernel:
        state = piece.prepare(params.means, params.weights,
                              params.precisions_cholesky, spec)
        with np.errstate(divide="ignore"):  # an empty component has log weight -inf
            log_weights = np.log(params.weights)
        kernel = cls(piece, state, spec.asarray(log_weights), piece.name)
        if cls is not EStepKernel:
            return kernel
        # compiled loops for NumPy chunks, if numba is (the fused package
        # imports this module: deferred)
        return deferred("gaussmix.engine.fused").specialised(kernel, spec)  # type: ignore[no-any-return]

    # -- per-row results -----------------------------------------------------
    def scores(self, X: Any) -> tuple[Any, Any, Any, list[Any]]:
        """``log(pi_k) + log N(x | k)`` as (K, n) scores plus a row term.

        Returns the scores, the row term (n,) or None (add it to every
        component's score), the column maxima of the scores (n,) and the
        covariance type's work arrays.
        """
        xp = array_namespace(X)
        with np.errstate(over="ignore", invalid="ignore"):
            scores, row, work = self.piece.log_prob(X, self.state)
            scores += self.log_weights[:, None]
            top = xp.max(scores, axis=0)
            overflowed = ~xp.isfinite(top)
            if xp.any(overflowed):
                scores, row = self._rescue(X, scores, row, overflowed)
                top = xp.max(scores, axis=0)
        return scores, row, top, work

    def log_likelihood(self, X: Any) -> Any:
        """``log p(x)`` of each row, shape (n,)."""
        scores, row, _, _ = self.scores(X)
        _, log_norm = log_normalise(scores, axis=0)
        return log_norm if row is None else log_norm + row

    def log_resp(self, X: Any) -> Any:
        """Log-responsibilities, shape (K, n)."""
        scores, _, _, _ = self.scores(X)
        return log_normalise(scores, axis=0)[0]

    def labels(self, X: Any) -> Any:
        """Most probable component of each row, shape (n,)."""
        scores, _, _, _ = self.scores(X)
        return array_namespace(X).argmax(scores, axis=0)

    # -- statistics ----------------------------------------------------------
    def statistics(self, X: Any, sample_weight: Any = None) -> SuffStats:
        """Sufficient statistics of one chunk at the kernel's parameters."""
        xp = array_namespace(X)
        scores, row, top, work = self.scores(X)
        resp, log_norm = normalise_in_place(scores, top)
        if row is not None:
            log_norm = log_norm + row
        if sample_weight is not None:
            resp *= xp.astype(sample_weight, resp.dtype, copy=False)[None, :]
            loglik = float(to_host(xp.astype(sample_weight, xp.float64, copy=False)
                                   @ xp.astype(log_norm, xp.float64, copy=False)))
            weight = float(to_host(xp.sum(sample_weight)))
            positive = xp.where(sample_weight > 0, sample_weight,
                                xp.full_like(sample_weight, np.inf))
            min_weight = float(to_host(xp.min(positive)))
        else:
            loglik = float(to_host(xp.sum(log_norm, dtype=xp.float64)))
            weight, min_weight = float(X.shape[0]), 1.0
        s1, s2 = self.piece.moments(X, resp, self.state, work)
        return SuffStats(
            covariance_type=self.covariance_type,
            nk=to_host(xp.sum(resp, axis=1, dtype=xp.float64)), s1=s1, s2=s2,
            shift=self.state.shift, loglik=loglik, weight=weight,
            min_weight=min_weight,
        )

    def moments_about(self, X: Any, sample_weight: Any, centres: np.ndarray
                      ) -> SuffStats:
        """The chunk's weights and moments about per-component ``centres``
        (K, d), with the responsibilities of :meth:`statistics`, from each
        row's own residual (:mod:`~gaussmix.engine.recentre`'s second pass;
        log-likelihood and weight 0)."""
        xp = array_namespace(X)
        resp = xp.exp(self.log_resp(X))
        if sample_weight is not None:
            resp = resp * xp.astype(sample_weight, resp.dtype)[None, :]
        s1, s2 = self.piece.direct_moments(X, resp, centres)
        nk = to_host(xp.sum(xp.astype(resp, xp.float64), axis=1))
        return SuffStats(self.covariance_type, nk, s1, s2, centres, 0.0, 0.0, np.inf)

    def lowest_rows(self, X: Any, sample_weight: Any, count: int) -> LowestRows:
        """The ``count`` rows of the chunk with the lowest log-likelihood
        (rows of zero weight excluded), for reseeding empty components."""
        ll = to_host(self.log_likelihood(X))
        if sample_weight is not None:
            ll = np.where(to_host(sample_weight) > 0, ll, np.inf)
        count = min(count, len(ll))
        idx = np.argpartition(ll, count - 1)[:count] if count else np.empty(0, int)
        idx = idx[ll[idx] < np.inf]  # rows of zero weight never reseed
        return LowestRows(ll[idx], to_host(X)[idx], count)

    # -- rows that overflow --------------------------------------------------
    def _rescue(self, X: Any, scores: Any, row: Any, overflowed: Any
                ) -> tuple[Any, Any]:
        """Scores and row term of the ``overflowed`` rows recomputed without
        overflow (:func:`~gaussmix.engine.far_rows.far_scores`: exact gaps
        between the components, the row term ``-inf`` where it overflows)."""
        xp = array_namespace(X)
        n, K = X.shape[0], scores.shape[0]
        rows = xp.astype(X[overflowed], xp.float64, copy=False)
        means, chol = self.state.means, self.state.prec_chol
        scale = power_of_two_scale(rows, means)
        b = self.piece.whiten(means[:, None, :] / scale[None, :, None], chol)  # (K, m, d)
        a = xp.broadcast_to(self.piece.whiten((rows / scale[:, None])[None, :, :], chol),
                            b.shape)
        base = xp.astype(self.state.const + self.log_weights, xp.float64, copy=False)
        base = xp.broadcast_to(base[:, None], (K, rows.shape[0]))
        rescued, rescued_row = far_scores(a, b, base, scale)
        on = device(scores)
        by_row = xp.zeros((n, K), dtype=scores.dtype, device=on)
        by_row[overflowed] = xp.astype(xp.permute_dims(rescued, (1, 0)), scores.dtype,
                                       copy=False)
        scores = xp.where(overflowed[None, :], xp.permute_dims(by_row, (1, 0)), scores)
        new_row = xp.zeros((n,), dtype=scores.dtype, device=on)
        new_row[overflowed] = xp.astype(rescued_row, scores.dtype, copy=False)
        old_row = xp.zeros_like(new_row) if row is None else row
        return scores, xp.where(overflowed, new_row, old_row)


@dataclass(frozen=True)
class LowestRows:
    """The lowest-log-likelihood rows seen, at most ``count``; ``+`` merges.

    The merge keeps a total order (by log-likelihood, then the row's values),
    so the result does not depend on the order of addition.
    """

    loglik: np.ndarray
    rows: np.ndarray
    count: int

    def __add__(self, other: LowestRows) -> LowestRows:
        ll = np.concatenate([self.loglik, other.loglik])
        rows = np.concatenate([self.rows, other.rows])
        order = np.lexsort((*rows.T[::-1], ll))[: self.count]
        return LowestRows(ll[order], rows[order], self.count)
