"""The E-step of chunks whose rows may have missing (NaN) coordinates.

Statistics are additive over rows, so a chunk splits into its complete rows,
which go through the ordinary :class:`~gaussmix.engine.estep.EStepKernel`
unchanged, and its incomplete rows, grouped by missingness pattern
(:mod:`.patterns`) and handled exactly (:mod:`.conditional`): each row's
log-density is the mixture's marginal density on its observed coordinates,
and its moments use the conditional expectation ``E[x_m | x_o, k]`` with the
conditional covariance added to the second moments (Ghahramani & Jordan,
1994). Chunks without NaN cost one ``isnan`` pass more than the ordinary
kernel and give bit-identical statistics. Once the compiled loops are in use
(below), a chunk's rows are sorted by their number of NaN in one compiled
pass, and a float64 chunk's complete rows, while fewer than
:data:`COMPLETE_SHARE_IN_LOOPS` of it, go through the loops with the others
(saving the ordinary kernel's fixed cost per call).

Two implementations give the same statistics (to rounding; the tests hold
them to 1e-12): the NumPy reference below, and compiled loops (numba,
:mod:`.loops`), which :mod:`.compiled` switches to once a process has done
enough incomplete-row work to repay loading them (or at once with
``GAUSSMIX_KERNEL=fused``; never with ``GAUSSMIX_KERNEL=reference`` or
without numba). Per-row results (``scores``, ``impute`` without draws) use
the same switch.

Cost of the incomplete rows of a chunk, with q missing coordinates per row:

- compiled loops: rows are taken in tiles of up to 128 rows with the same q
  (any patterns), each step vectorised over the tile's rows or over its
  (row, component) pairs; per row and component O(d^2) for ``L r~`` (one
  BLAS product, as for a complete row) and for the second moments, O(q^3)
  for the ``L D L^T`` factors of the q x q block ``L_mm``, its solves and
  ``L_mm^-1`` (straight-line code per q up to 10, every number in
  registers). Nothing is per pattern, so the number of distinct patterns
  does not matter: one EM iteration measured about 2.7x one on complete
  data at 30% MCAR, d = 16, K = 8, where nearly every row has its own
  pattern (``benchmarks/bench_missing.py``). Per incomplete row (K = 8, one
  thread, AMD Zen 4) about 0.48 us against 0.19 us for a complete row in the
  ordinary compiled kernel; in cycles of the time-stamp counter: the tile's
  rows and missing columns 100 (after one copy of the chunk's rows in sorted
  order), ``L r~`` with the residuals 335 (the BLAS products 215), the
  moves between the components' arrays and the lanes (``L_mm`` gathered,
  ``y`` in, the conditional means out) 185, the q x q kernels 170, the
  distances recomputed where the difference cancels 70, scores and
  responsibilities 115, the second moments 225, the scatter of the
  conditional covariances (K q (q + 1) / 2 additions at data-dependent
  places) 80.
- NumPy reference: rows grouped by pattern, O(P K q^3) for the factorisations
  of the P patterns of a block (vectorised over patterns and components) plus
  three (K, n, d) x (d, d) products per row; when nearly every row has its
  own pattern the factorisations are per row but stay vectorised over rows,
  and blocks of at most 1024 rows bound the per-pattern arrays to about 2^18
  numbers whatever P is. Measured 4-12x a complete row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from ..compiled_inputs import read_only
from ..covariance import ComputeSpec, CovarianceType
from ..estep import EStepKernel, LowestRows
from ..logspace import log_normalise
from ..params import MixtureParams
from ..stats import SuffStats
from ..xp import to_host
from .compiled import loaded, loops_for
from .conditional import Conditionals, Marginals, conditionals, far_scores_of_block
from .patterns import Block, pattern_blocks

# nk (K,), s1 (K, d), full s2 (K, d, d) about the component means, loglik
Moments = tuple[np.ndarray, np.ndarray, np.ndarray, float]

# An incomplete row whose largest score exceeds this in magnitude has its
# per-row results (scores, log-likelihood, responsibilities, labels) from
# :func:`.conditional.far_scores_of_block` (exact gaps between the
# components), as if its distances overflowed: the scores' rounding, |score|
# 1e-16, would reach 1e-4 beyond it, and exceed the gaps themselves for a row
# some 1e16 standard deviations out (tied covariances: labels drawn by
# rounding, where complete rows keep the exact gaps in their row term).
FAR_SCORE = 2.0**40

# In a float64 chunk with missing values, the complete rows go through the
# compiled loops with the others while they are fewer than this share of the
# chunk (the ordinary kernel is faster per row, but has a fixed cost per call).
COMPLETE_SHARE_IN_LOOPS = 1 / 8


@dataclass(frozen=True)
class MarginalKernel:
    """:class:`EStepKernel`'s operations on rows with missing values."""

    base: EStepKernel
    model: Marginals
    piece: CovarianceType

    @classmethod
    def build(cls, piece: CovarianceType, params: MixtureParams, spec: ComputeSpec
              ) -> MarginalKernel:
        return cls(EStepKernel.build(piece, params, spec), Marginals.of(piece, params),
                   piece)

    # -- statistics ----------------------------------------------------------
    def statistics(self, X: Any, sample_weight: Any = None) -> SuffStats:
        """Sufficient statistics of one chunk (NaN entries missing at random)."""
        X = to_host(X, X.dtype)
        loops = loaded()
        if loops is not None:
            stats = self._loops_statistics(loops, X, sample_weight)
            if stats is not None:
                return stats
        mask = np.isnan(X)
        complete = _missing_counts(mask) == 0
        if complete.all():
            return self.base.statistics(X, sample_weight)
        w = None if sample_weight is None else to_host(sample_weight)
        stats = self._incomplete_statistics(X, mask, ~complete, w)
        if complete.any():
            stats = self.base.statistics(
                X[complete], None if w is None else w[complete]) + stats
        return stats

    def _loops_statistics(self, loops: Any, X: np.ndarray, sample_weight: Any
                          ) -> SuffStats | None:
        """:meth:`statistics` when the compiled loops are in use already: the
        rows sorted by their number of NaN in one compiled pass, and a few
        complete rows taken with the others (no call of the ordinary kernel
        for them); None where a row needs the reference's handling."""
        order = np.empty(len(X), np.intp)
        n_complete = int(loops.by_count(read_only(X), order))
        if n_complete == len(X):
            return self.base.statistics(X, sample_weight)
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        w = None if sample_weight is None else to_host(sample_weight)
        # (float32 complete rows stay with the ordinary kernel, which computes
        # them in float32 as it does in chunks without NaN)
        alone = (n_complete >= COMPLETE_SHARE_IN_LOOPS * len(X64)
                 or X.dtype != np.float64)
        rows = order[n_complete:] if alone else order
        moments = self._run_loops(loops, X64, rows, w)
        if moments is None:
            return None
        stats = self._stats(moments, rows, w)
        if alone and n_complete:  # (a chunk of float32 rows may have none complete)
            complete = order[:n_complete]
            stats = self.base.statistics(
                X[complete], None if w is None else w[complete]) + stats
        return stats

    def _incomplete_statistics(self, X: np.ndarray, mask: np.ndarray, rows: np.ndarray,
                               w: np.ndarray | None) -> SuffStats:
        moments = self._compiled_moments(X, mask, w)
        return self._stats(moments or self._reference_moments(X, mask, w), rows, w)

    def _stats(self, moments: Moments, rows: np.ndarray, w: np.ndarray | None
               ) -> SuffStats:
        """The statistics value of the moments of ``rows`` (a mask or indices)."""
        nk, s1, s2, loglik = moments
        ww = None if w is None else w[rows]
        stats = SuffStats(
            covariance_type=self.piece.name, nk=nk, s1=s1,
            s2=self.piece.reduce_full_s2(s2), shift=self.model.means, loglik=loglik,
            weight=float(np.count_nonzero(rows) if rows.dtype == bool else rows.size)
            if ww is None else float(ww.sum()),
            min_weight=1.0 if ww is None else _min_positive(ww),
        )
        return stats.recentred(self.base.state.shift)

    def _reference_moments(self, X: np.ndarray, mask: np.ndarray, w: np.ndarray | None,
                           centres: np.ndarray | None = None) -> Moments:
        """The moments of the incomplete rows about the component means, or
        about ``centres`` (K, d) where given (conditional expectations and
        covariances at the kernel's parameters all the same)."""
        K, d = self.model.means.shape
        nk, s1, s2 = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
        loglik = 0.0
        for block, cond in self._conditionals(X, mask):
            # rows of density 0 give a log-likelihood of -inf, which the pass
            # reports (loop._check_finite)
            with np.errstate(invalid="ignore"):
                log_resp, log_norm = log_normalise(cond.scores, axis=0)
            g = np.exp(log_resp)
            bw = None if w is None else w[block.rows]
            if bw is not None:
                g *= bw[None, :]
            loglik += float(log_norm.sum() if bw is None else bw @ log_norm)
            filled = cond.filled if centres is None else self._residuals(
                X[block.rows], block, cond, centres)
            nk += g.sum(axis=1)
            s1 += np.einsum("kn,knd->kd", g, filled)
            s2 += np.matmul((filled * g[:, :, None]).transpose(0, 2, 1), filled)
            s2 += _conditional_scatter(g, block, cond, d)
        return nk, s1, s2, loglik

    def _residuals(self, X: np.ndarray, block: Block, cond: Conditionals,
                   centres: np.ndarray) -> np.ndarray:
        """``E[x | x_o, k] - c_k`` (K, n_b, d) of a block's rows: ``x_o - c_k``
        from the rows themselves (one rounding, however far ``c_k`` is from
        ``mu_k``) and, at the missing coordinates, the conditional offset
        from ``mu_k`` plus ``mu_k - c_k``."""
        at = (np.arange(len(block.rows))[:, None], block.missing)
        out = X.astype(np.float64, copy=False)[None, :, :] - centres[:, None, :]
        out[:, at[0], at[1]] = (cond.filled[:, at[0], at[1]]
                                + (self.model.means - centres)[:, block.missing])
        return out

    def moments_about(self, X: Any, sample_weight: Any, centres: np.ndarray
                      ) -> SuffStats:
        """:meth:`EStepKernel.moments_about <gaussmix.engine.estep.EStepKernel.
        moments_about>` for rows with missing values: the weights and moments
        of :meth:`statistics` (the same responsibilities, conditional
        expectations and covariances, at the kernel's parameters) taken about
        ``centres`` (K, d) instead of the component means; log-likelihood and
        weight 0. The incomplete rows always take the NumPy reference: the
        compiled loops accumulate about the means only, and this pass is rare
        (a mean that jumps far, :mod:`~gaussmix.engine.recentre`)."""
        X = to_host(X, X.dtype)
        mask = np.isnan(X)
        complete = _missing_counts(mask) == 0
        if complete.all():
            return self.base.moments_about(X, sample_weight, centres)
        w = None if sample_weight is None else to_host(sample_weight)
        nk, s1, s2, _ = self._reference_moments(X, mask, w, centres)
        stats = SuffStats(self.piece.name, nk, s1, self.piece.reduce_full_s2(s2),
                          centres, 0.0, 0.0, np.inf)
        if complete.any():
            stats = self.base.moments_about(
                X[complete], None if w is None else w[complete], centres) + stats
        return stats

    def _compiled_moments(self, X: np.ndarray, mask: np.ndarray, w: np.ndarray | None
                          ) -> Moments | None:
        """The moments from the compiled loops; None where they do not apply
        (see :mod:`.compiled`) or a row needs the reference's handling."""
        m = self.model
        K, d = m.means.shape
        rows = _by_count(mask)
        loops = loops_for(len(rows), K, d)
        if loops is None:
            return None
        return self._run_loops(loops, np.ascontiguousarray(X, dtype=np.float64), rows, w)

    def _run_loops(self, loops: Any, X64: np.ndarray, rows: np.ndarray,
                   w: np.ndarray | None) -> Moments | None:
        """The moments of ``X64[rows]`` (rows sorted by their number of NaN)
        from the compiled loops; None where a row needs the reference."""
        m = self.model
        K, d = m.means.shape
        w64 = np.ones(len(X64)) if w is None else np.ascontiguousarray(w, np.float64)
        nk, s1, s2, acc = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d)), np.zeros(1)
        if loops.statistics(read_only(X64), read_only(rows), read_only(w64), *m.arguments(),
                            nk, s1, s2, acc):
            return None
        s2 += np.tril(s2, -1).transpose(0, 2, 1)  # the loops fill lower triangles
        return nk, s1, s2, float(acc[0])

    def _conditionals(self, X: np.ndarray, mask: np.ndarray
                      ) -> Iterator[tuple[Block, Conditionals]]:
        X64 = X.astype(np.float64, copy=False)
        for block in pattern_blocks(mask, len(self.model.means)):
            yield block, conditionals(self.model, X64[block.rows], block)

    # -- per-row results -----------------------------------------------------
    def scores(self, X: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, None]:
        """``log(pi_k) + log N(x_o | k)`` (K, n) with the row term folded in,
        except for rows whose distances overflow under every component (their
        row term apart, see :mod:`~gaussmix.engine.far_rows`); the same tuple
        as :meth:`EStepKernel.scores` (row term None where no row overflows)."""
        X = to_host(X, X.dtype)
        mask = np.isnan(X)
        out = np.empty((len(self.model.means), X.shape[0]))
        far_row = np.zeros(X.shape[0])
        complete = np.flatnonzero(_missing_counts(mask) == 0)
        if complete.size:
            scores, row, _, _ = self.base.scores(X[complete])
            scores = to_host(scores)
            if row is None:
                out[:, complete] = scores
            else:
                row = to_host(row)
                kept = np.isfinite(row)  # (-inf: a rescued row)
                out[:, complete] = np.where(kept, scores + row[None, :], scores)
                far_row[complete] = np.where(kept, 0.0, row)
        if not self._compiled_scores(X, mask, out):
            for block, cond in self._conditionals(X, mask):
                out[:, block.rows] = cond.scores
        top = out.max(axis=0)
        # (complete ones came rescued, and keep their row term apart anyway)
        far = np.flatnonzero(~np.isfinite(top) | ((np.abs(top) > FAR_SCORE)
                                                   & (_missing_counts(mask) > 0)))
        if far.size:
            self._far_scores(X[far], mask[far], far, out, far_row)
            top = out.max(axis=0)
        return out, far_row if far_row.any() else None, top, None

    def _far_scores(self, X: np.ndarray, mask: np.ndarray, at: np.ndarray,
                    out: np.ndarray, row: np.ndarray) -> None:
        """Scores and row terms of incomplete rows ``X`` (chunk positions
        ``at``) whose distances overflow under every component (or whose
        scores exceed :data:`FAR_SCORE`), into ``out``
        and ``row``."""
        X64 = X.astype(np.float64, copy=False)
        for block in pattern_blocks(mask, len(self.model.means)):
            scores, far_row = far_scores_of_block(self.model, X64[block.rows], block)
            out[:, at[block.rows]] = scores
            row[at[block.rows]] = far_row

    def _compiled_scores(self, X: np.ndarray, mask: np.ndarray, out: np.ndarray) -> bool:
        m = self.model
        rows = _by_count(mask)
        loops = loops_for(len(rows), *m.means.shape) if rows.size else None
        if loops is None:
            return False
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        part = np.empty((len(m.means), len(rows)))
        if loops.scores(read_only(X64), read_only(rows), *m.arguments(), part):
            return False
        out[:, rows] = part
        return True

    def log_likelihood(self, X: Any) -> np.ndarray:
        """``log p(x_o)`` of each row, shape (n,) (0 for a row with nothing observed)."""
        scores, row, _, _ = self.scores(X)
        log_norm = log_normalise(scores, axis=0)[1]
        return log_norm if row is None else log_norm + row

    def log_resp(self, X: Any) -> np.ndarray:
        """Log-responsibilities ``log p(k | x_o)``, shape (K, n)."""
        return log_normalise(self.scores(X)[0], axis=0)[0]

    def labels(self, X: Any) -> np.ndarray:
        """Most probable component of each row, shape (n,)."""
        return np.argmax(self.scores(X)[0], axis=0)

    def lowest_rows(self, X: Any, sample_weight: Any, count: int) -> LowestRows:
        """As :meth:`EStepKernel.lowest_rows`, rows returned imputed."""
        ll = self.log_likelihood(X)
        if sample_weight is not None:
            ll = np.where(to_host(sample_weight) > 0, ll, np.inf)
        count = min(count, len(ll))
        idx = np.argpartition(ll, count - 1)[:count] if count else np.empty(0, int)
        idx = idx[ll[idx] < np.inf]
        return LowestRows(ll[idx], self.impute(to_host(X, X.dtype)[idx]), count)

    # -- imputation ----------------------------------------------------------
    def impute(self, X: np.ndarray, uniforms: np.ndarray | None = None, *,
               check_density: bool = False) -> np.ndarray:
        """X with each NaN replaced by ``E[x_m | x_o]`` (``uniforms`` None)
        or by a draw from the conditional mixture ``p(x_m | x_o)`` made from
        each row's ``uniforms`` (n, d + 1), numbers in (0, 1): see
        :mod:`.draws` (float64 copy). ``check_density``: raise for an
        incomplete row whose density is 0 under every component (else its
        NaN stay NaN, or its draw is junk, which the statistics of a fit
        tolerate)."""
        out = np.array(X, dtype=np.float64)
        if uniforms is None and self._compiled_impute(out):
            return out
        for block, cond in self._conditionals(out, np.isnan(out)):
            with np.errstate(invalid="ignore"):  # rows of density 0: checked next
                log_resp, log_norm = log_normalise(cond.scores, axis=0)
            if check_density:
                _check_density(log_norm, out[block.rows])
            resp = np.exp(log_resp)                            # (K, n_b)
            values = (np.take_along_axis(cond.filled, _each(block.missing, resp), axis=2)
                      + self.model.means[:, block.missing])  # (K, n_b, q)
            if uniforms is None:
                fill = np.einsum("kn,knq->nq", resp, values)
            else:
                fill = _draw(uniforms[block.rows], resp, values, cond.covariance, block)
            out[block.rows[:, None], block.missing] = fill
        return out


    def _compiled_impute(self, out: np.ndarray) -> bool:
        """Fills ``out`` in place by the compiled loops; False (``out``
        untouched) where they do not apply."""
        m = self.model
        rows = _by_count(np.isnan(out))
        loops = loops_for(len(rows), *m.means.shape) if rows.size else None
        if loops is None:
            return False
        filled = out.copy()  # left as it was if a row needs the reference
        if loops.impute(filled, read_only(rows), *m.arguments()):
            return False
        out[rows] = filled[rows]
        return True


def _check_density(log_norm: np.ndarray, rows: np.ndarray) -> None:
    """Raise for rows whose density is 0 (log -inf) under every component:
    their responsibilities, so their imputation, are undefined (NaN)."""
    bad = np.flatnonzero(~np.isfinite(log_norm))
    if bad.size:
        raise ValueError(
            f"{bad.size} row(s) of X lie too far from every component for their "
            "density to be represented (it underflows to 0), so their missing values "
            f"cannot be imputed; the first is {rows[bad[0]]}. Check these values, or "
            "rescale X before fitting.")


def _missing_counts(mask: np.ndarray) -> np.ndarray:
    """Missing entries per row of ``mask``, as float32 (exact below 2^24):
    one BLAS matrix-vector product, some ten times faster than NumPy's
    reductions along the short axis of a (n, d) array."""
    return mask.astype(np.float32) @ np.ones(mask.shape[1], np.float32)  # type: ignore[no-any-return]


def _by_count(mask: np.ndarray) -> np.ndarray:
    """The incomplete rows of ``mask`` (True where missing) ordered by their
    number of missing entries, as the compiled loops take them. Counts as
    16-bit integers (or 32-bit), which NumPy's stable sort orders by radix
    (linear time); complete rows (count 0) come first and are cut off."""
    count = _missing_counts(mask).astype(np.uint16 if mask.shape[1] < 1 << 16 else np.uint32)
    order = np.argsort(count, kind="stable")
    return order[np.count_nonzero(count == 0):]


def _each(missing: np.ndarray, resp: np.ndarray) -> np.ndarray:
    return np.broadcast_to(missing[None], (resp.shape[0],) + missing.shape)


def _draw(uniforms: np.ndarray, resp: np.ndarray, values: np.ndarray,
          covariance: np.ndarray, block: Block) -> np.ndarray:
    """One draw per row of the block: a component from ``p(k | x_o)`` by the
    row's first uniform number, then ``x_m`` from that component's
    conditional Gaussian, its standard normal deviates the inverse normal
    CDF of the row's numbers at its missing coordinates."""
    n = resp.shape[1]
    cumulative = np.cumsum(resp, axis=0)
    u = uniforms[:, 0] * cumulative[-1]
    k = np.minimum((cumulative < u[None, :]).sum(axis=0), resp.shape[0] - 1)
    eps = ndtri(np.take_along_axis(uniforms[:, 1:], block.missing, axis=1))
    lower = np.linalg.cholesky(covariance[:, :, block.pattern, k].transpose(2, 0, 1))
    return values[k, np.arange(n)] + np.einsum("nij,nj->ni", lower, eps)


def _conditional_scatter(g: np.ndarray, block: Block, cond: Conditionals, d: int
                         ) -> np.ndarray:
    """``sum_i g_ik Sigma_{m|o,k}`` placed at each pattern's missing rows and
    columns, (K, d, d): one weighted sum per pattern, then one bincount per
    component over the patterns' q x q entries."""
    K, P = g.shape[0], len(block.patterns)
    index = (np.arange(K)[:, None] * P + block.pattern[None, :]).ravel()
    per_pattern = np.bincount(index, g.ravel(), minlength=K * P).reshape(K, P)
    weighted = (cond.covariance * per_pattern.T[None, None]).reshape(-1, K)
    pm = block.patterns.T                                           # (q, P)
    target = (pm[:, None, :] * d + pm[None, :, :]).ravel()
    return np.stack([np.bincount(target, weighted[:, k], minlength=d * d)
                     for k in range(K)]).reshape(K, d, d)


def _min_positive(w: np.ndarray) -> float:
    positive = w[w > 0]
    return float(positive.min()) if positive.size else float("inf")
