"""The M-step: merged sufficient statistics to mixture parameters.

Empty components (no data, or all of it taken by others) would otherwise
collapse to a point; they are reseeded: mean at one of the worst-explained
rows of the last pass, covariance the pooled covariance of the other
components, weight 1/K before renormalisation. EM then continues from there.
"""

from __future__ import annotations

import numpy as np

from .covariance import CovarianceType
from .params import MixtureParams
from .stats import SuffStats

# As in scikit-learn: keeps every division by N_k finite.
NK_FLOOR = 10 * np.finfo(np.float64).eps


def m_step(stats: SuffStats, piece: CovarianceType, reg_covar: float) -> MixtureParams:
    """Maximum-likelihood parameters for the given statistics."""
    nk = stats.nk + NK_FLOOR
    delta = stats.s1 / nk[:, None]
    means = stats.shift + delta
    covariances = piece.covariances(nk, delta, stats.s2, reg_covar)
    empty = empty_components(stats)
    if empty.any():
        means, covariances, nk = _reseed(stats, piece, means, covariances, nk, empty)
    weights = nk / nk.sum()
    return MixtureParams(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=piece.precisions_cholesky(covariances),
    )


def empty_components(stats: SuffStats) -> np.ndarray:
    """Components whose total responsibility is negligible, as a mask."""
    return stats.nk <= NK_FLOOR * max(stats.weight, 1.0)


def _reseed(stats, piece, means, covariances, nk, empty):
    if empty.all():
        return means, covariances, nk
    if len(stats.worst_ll):  # none at initialisation: the mean stays put
        means = means.copy()
        order = np.argsort(stats.worst_ll, kind="stable")
        for j, k in enumerate(np.flatnonzero(empty)):
            means[k] = stats.worst_x[order[j % len(order)]]
    covariances = piece.reseed(covariances, nk, empty)
    nk = nk.copy()
    nk[empty] = nk.sum() / len(nk)
    return means, covariances, nk
