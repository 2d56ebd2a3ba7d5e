"""The streaming blend: online (stepwise) EM over a stream of batches.

Stepwise EM (Cappé & Moulines, 2009) keeps *running statistics* ``S``, the
expected sufficient statistics of one row, and for each batch ``B``

    S <- (1 - rho_t) S + rho_t * stats(B, theta) / weight(B)
    theta <- m_step(S)

where ``stats(B, theta)`` is the batch's ordinary E-step (the same chunked
fold as one iteration of a full fit) and the step size is
``rho_t = (t0 + t)^(-alpha)`` after ``t`` steps, ``alpha`` in (0.5, 1] and
``t0 >= 0`` (the conditions under which the recursion converges to a
stationary point of the likelihood). Running statistics are kept per row
(their total weight is 1), so the M-step, which only divides by ``N_k``, is
the same as for a full fit.

The blend is exact with respect to centres: the running statistics and the
batch's are generally taken about different centres (the means at different
steps), and :meth:`SuffStats.__add__ <gaussmix.engine.stats.SuffStats>`
moves both to the blended means before adding (Chan, Golub and LeVeque's
pairwise update), so no digits are lost to cancellation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .covariance import CovarianceType
from .loop import data_statistics, worst_rows
from .mstep import m_step
from .params import MixtureParams
from .recentre import m_step_about_new_means, moments_about
from .reducers import Reducer
from .sources import DataSource
from .stats import SuffStats


@dataclass(frozen=True)
class StepSize:
    """The schedule ``rho_t = (offset + t)^(-decay)`` for the step after ``t``
    steps (``t >= 1``; the first step has no running statistics to blend).

    Examples
    --------
    >>> rate = StepSize(offset=0.0, decay=0.7)
    >>> rate(1), round(rate(2), 4)
    (1.0, 0.6156)
    """

    offset: float
    decay: float

    def __call__(self, t: int) -> float:
        return min(1.0, float((self.offset + t) ** -self.decay))


@dataclass(frozen=True)
class StreamState:
    """Running statistics (per row), the number of steps taken, the step
    size and parameters of the last step (the estimator takes the parameters
    as they are while its attributes still hold them), and the estimator's
    settings at the last step, opaque here (it validates them again only
    when they change)."""

    stats: SuffStats
    n_steps: int
    rate: StepSize | None = None
    params: MixtureParams | None = None
    settings: tuple[Any, ...] = ()


def blend(running: SuffStats | None, batch: SuffStats, rho: float) -> SuffStats:
    """``(1 - rho) * running + rho * batch / batch.weight``, exact about centres.

    ``running`` holds statistics per row (total weight 1) or is None (nothing
    seen yet: the result is the batch's per row). With ``rho == 1`` the result
    is the batch's statistics per row, about the batch's centres.

    Examples
    --------
    >>> import numpy as np
    >>> a = SuffStats("spherical", np.array([1.0]), np.array([[0.0]]),
    ...               np.array([1.0]), np.array([[0.0]]), -1.0, 1.0, 1.0)
    >>> b = SuffStats("spherical", np.array([2.0]), np.array([[0.0]]),
    ...               np.array([2.0]), np.array([[2.0]]), -4.0, 2.0, 1.0)
    >>> s = blend(a, b, 0.5)   # half a, half b's rows: mean 1, variance 1 + 1
    >>> s.nk, s.shift, s.s2, s.weight
    (array([1.]), array([[1.]]), array([2.]), 1.0)
    """
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"The step size must be in (0, 1], got {rho!r}.")
    if running is None or rho == 1.0:
        return batch.scaled(1.0 / batch.weight)
    return running.scaled_sum(1.0 - rho, batch, rho / batch.weight)


def stream_step(
    batch: DataSource, piece: CovarianceType, params: MixtureParams,
    state: StreamState | None, rate: StepSize, reg_covar: float, reducer: Reducer,
    settings: tuple[Any, ...] = (),
) -> tuple[MixtureParams, StreamState, float]:
    """One step of stepwise EM on a batch.

    Returns the new parameters, the new state (holding ``settings``, the
    caller's, as they are) and the batch's weighted mean log-likelihood at
    ``params`` (before the update). Empty components are reseeded at the
    batch's worst-explained rows, as in a full fit.
    """
    stats, kernel = data_statistics(batch, piece, params, reducer)
    n_steps = 0 if state is None else state.n_steps
    rho = 1.0 if state is None else rate(n_steps)
    previous = None if state is None else state.stats
    worst = functools.partial(worst_rows, batch, kernel, reducer)

    def recentred() -> SuffStats:
        # the batch's moments about its own means, blended exactly
        return blend(previous, moments_about(batch, kernel, piece, stats,
                                             reducer=reducer), rho)

    new, running = m_step_about_new_means(
        blend(previous, stats, rho), lambda s: m_step(s, piece, reg_covar, worst),
        recentred, piece, passed=stats)
    return (new, StreamState(running, n_steps + 1, rate, new, settings),
            stats.loglik / stats.weight)
