"""The M-step: merged sufficient statistics to mixture parameters.

Empty components (no data, or all of it taken by others) would otherwise
collapse to a point; they are reseeded: mean at one of the worst-explained
rows of the last pass, covariance the pooled covariance of the other
components, weight 1/K before renormalisation. EM then continues from there.

"Empty" is measured against one row: a component is empty when it holds less
than ``NK_FLOOR`` of the lightest row's weight. That makes the fit invariant
to the scale of ``sample_weight`` and keeps a component that holds light rows
beside one very heavy row (it is not empty, only light).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .covariance import CovarianceType
from .estep import LowestRows
from .params import MixtureParams
from .stats import SuffStats

# As in scikit-learn (for unit weights): keeps every division by N_k finite.
NK_FLOOR = 10 * np.finfo(np.float64).eps

WorstRows = Callable[[int], LowestRows]


def m_step(stats: SuffStats, piece: CovarianceType, reg_covar: float,
           worst_rows: WorstRows | None = None,
           precisions_cholesky: np.ndarray | None = None) -> MixtureParams:
    """Maximum-likelihood parameters for the given statistics.

    ``worst_rows(count)`` finds rows to reseed empty components at; without
    it (at initialisation) their means stay where they are. Given
    ``precisions_cholesky`` (a start from ``precisions_init``) replace the
    covariances' M-step, which is then never factored: it may be singular.
    """
    floor = NK_FLOOR * row_scale(stats)
    nk = stats.nk + floor
    delta = stats.s1 / nk[:, None]
    means = stats.shift + delta
    covariances = piece.covariances(nk, delta, stats.s2, reg_covar)
    empty = stats.nk <= floor
    # one reduction (not any() and all(): each M-step, each partial_fit call)
    if 0 < np.count_nonzero(empty) < len(empty):
        means, covariances, nk = _reseed(piece, means, covariances, nk, empty,
                                         worst_rows)
    weights = nk / nk.sum()
    if precisions_cholesky is None:
        precisions_cholesky = piece.precisions_cholesky(covariances)
    else:
        covariances = piece.covariances_from_cholesky(precisions_cholesky)
    return MixtureParams(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=precisions_cholesky,
    )


def row_scale(stats: SuffStats) -> float:
    """Weight of the lightest row (1 for unweighted data)."""
    # (math, not np.isfinite: a scalar, asked at every M-step)
    return stats.min_weight if math.isfinite(stats.min_weight) else 1.0


def _reseed(piece, means, covariances, nk, empty, worst_rows):
    if worst_rows is not None:
        worst = worst_rows(int(empty.sum()))
        if len(worst.loglik):
            means = means.copy()
            order = np.argsort(worst.loglik, kind="stable")
            for j, k in enumerate(np.flatnonzero(empty)):
                means[k] = worst.rows[order[j % len(order)]]
    covariances = piece.reseed(covariances, nk, empty)
    nk = nk.copy()
    nk[empty] = nk.sum() / len(nk)
    return means, covariances, nk
