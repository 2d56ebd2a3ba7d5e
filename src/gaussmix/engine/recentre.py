"""A second pass for components whose mean jumped far in one iteration.

The E-step takes each component's moments about its current mean ``c``; the
M-step's covariance is then ``s2/N - delta delta^T`` with ``delta`` the move
of the mean. Both terms are about ``|delta|^2``: when the mean jumps by many
standard deviations (a component that takes a far cluster or an outlier), the
difference keeps only ``eps * |delta|^2 / lambda_min`` of relative accuracy
in the covariance's smallest direction, and can lose all of it.

:func:`jumped` tells when that loss passes :data:`JUMP_LIMIT`;
:func:`moments_about` then takes the same responsibilities' moments about the
new means in one more pass (each row's own residual, no cancellation), through
the chunk kernel's ``moments_about``: the ordinary kernel's, or for rows with
missing values the residuals of their conditional expectations, with the
conditional covariances added as in the E-step. Rare: ordinary iterations
move the means by a fraction of a standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .covariance import CovarianceType
from .incomplete import Kernel
from .params import MixtureParams
from .reducers import Reducer, fold
from .sources import DataSource
from .stats import SuffStats

# |delta|^2 * trace(inverse covariance) past which the covariance would keep
# fewer than about 10 of float64's 16 digits.
JUMP_LIMIT = 1e6


def m_step_about_new_means(
    stats: SuffStats, step: Callable[[SuffStats], MixtureParams],
    recentre: Callable[[], SuffStats], piece: CovarianceType,
    passed: SuffStats | None = None,
) -> tuple[MixtureParams, SuffStats]:
    """``step(stats)`` (an M-step), or ``step(recentre())`` where a mean of
    the pass's statistics ``passed`` (default ``stats``) jumped so far that
    the covariance lost digits or failed to factorise; ``recentre`` gives the
    statistics again about the new means. Returns the parameters and the
    statistics they come from."""
    passed = stats if passed is None else passed
    try:
        params = step(stats)
    except ValueError:
        stats = recentre()
        return step(stats), stats
    if jumped(passed, params, piece):
        del params  # (K, d, d) arrays each, not needed for the second step
        stats = recentre()
        params = step(stats)
    return params, stats


def jumped(stats: SuffStats, params: MixtureParams, piece: CovarianceType) -> bool:
    """Whether some component's mean moved so far from ``stats.shift`` that
    its covariance from those moments lost digits.

    The covariance type bounds the loss (:meth:`CovarianceType.jump_losses`).
    Empty components (reseeded by the M-step) do not count.
    """
    return piece.jumps_past(_moves(stats), params.covariances, params.precisions_cholesky,
                            JUMP_LIMIT)


def _moves(stats: SuffStats) -> np.ndarray:
    """Each component's new mean minus ``stats.shift`` (``s1 / N_k``; 0 for
    an empty component), shape (K, d)."""
    occupied = stats.nk > 0
    if occupied.all():  # the usual case, without the two selections
        return stats.s1 / stats.nk[:, None]
    occupied = occupied[:, None]
    return np.where(occupied, stats.s1 / np.where(occupied, stats.nk[:, None], 1.0), 0.0)


def moments_about(source: DataSource, kernel: Kernel, piece: CovarianceType,
                  stats: SuffStats, reducer: Reducer) -> SuffStats:
    """``stats`` taken again about the components' new means: the kernel's
    responsibilities (those of ``stats``) and each row's residual from the
    new mean (for rows with missing values, from their conditional
    expectations at the kernel's parameters), in one pass through
    ``kernel.moments_about``. Log-likelihood and weights are ``stats``'s."""
    centres = stats.shift + _moves(stats)
    moved = fold(lambda c: kernel.moments_about(c.X, c.sample_weight, centres),
                 source, reducer)
    return SuffStats(piece.name, moved.nk, moved.s1, moved.s2, centres, stats.loglik,
                     stats.weight, stats.min_weight)
