"""Additive sufficient statistics: the value every EM pass folds chunks into.

One EM iteration is ``stats = sum(chunk_statistics(chunk) for chunk in source)``
followed by ``params = m_step(stats)``. A :class:`SuffStats` is an immutable
value with ``+`` (associative and commutative) and a zero, so chunks may be
reduced in any order and grouping: sequentially, in threads, or in a tree on
a cluster.

Moments are *shifted*: they are accumulated about fixed centres ``shift``
(one row per component), ``s1 = sum w g (x - c)`` and
``s2 = sum w g (x - c)(x - c)^T`` (or the covariance type's reduced form),
so that the covariance ``s2/N - (s1/N)(s1/N)^T`` loses no digits when the
data lie far from the origin. Only statistics with the same shift add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SuffStats:
    """Sufficient statistics of a weighted Gaussian mixture E-step.

    Attributes
    ----------
    nk : ndarray of shape (n_components,)
        Sum of weighted responsibilities per component.
    s1 : ndarray of shape (n_components, n_features)
        Shifted first moments ``sum w g_k (x - shift_k)``.
    s2 : ndarray
        Shifted second moments; the shape is the covariance type's
        (``full``: (K, d, d), ``tied``: (d, d), ``diag``: (K, d),
        ``spherical``: (K,)).
    shift : ndarray of shape (n_components, n_features)
        Centres the moments are taken about.
    loglik : float
        Sum over rows of ``w * log p(x)``.
    weight : float
        Sum of the sample weights.
    worst_ll : ndarray of shape (m,)
        Lowest per-row log-likelihoods seen (at most n_components of them),
        used to reseed components that receive no data.
    worst_x : ndarray of shape (m, n_features)
        The rows those log-likelihoods belong to.
    """

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray
    loglik: float
    weight: float
    worst_ll: np.ndarray
    worst_x: np.ndarray

    @classmethod
    def zero(cls, shift: np.ndarray, s2_shape: tuple[int, ...]) -> SuffStats:
        """The neutral element for ``+`` with the given shift."""
        n_components, n_features = shift.shape
        return cls(
            nk=np.zeros(n_components),
            s1=np.zeros((n_components, n_features)),
            s2=np.zeros(s2_shape),
            shift=shift,
            loglik=0.0,
            weight=0.0,
            worst_ll=np.empty(0),
            worst_x=np.empty((0, n_features)),
        )

    def __add__(self, other: SuffStats) -> SuffStats:
        if not isinstance(other, SuffStats):
            return NotImplemented
        if self.shift is not other.shift and not np.array_equal(
            self.shift, other.shift
        ):
            raise ValueError(
                "Cannot add sufficient statistics taken about different centres; "
                "compute both with the same parameters."
            )
        worst_ll, worst_x = _keep_lowest(
            np.concatenate([self.worst_ll, other.worst_ll]),
            np.concatenate([self.worst_x, other.worst_x]),
            len(self.nk),
        )
        return SuffStats(
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            shift=self.shift,
            loglik=self.loglik + other.loglik,
            weight=self.weight + other.weight,
            worst_ll=worst_ll,
            worst_x=worst_x,
        )

    def __radd__(self, other: object) -> SuffStats:
        # Lets the built-in sum() start from 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented  # type: ignore[return-value]

    def scaled(self, factor: float) -> SuffStats:
        """Statistics with every additive part multiplied by ``factor``.

        Used to blend running statistics with a new batch (streaming EM).
        """
        return SuffStats(
            nk=self.nk * factor,
            s1=self.s1 * factor,
            s2=self.s2 * factor,
            shift=self.shift,
            loglik=self.loglik * factor,
            weight=self.weight * factor,
            worst_ll=self.worst_ll,
            worst_x=self.worst_x,
        )


def lowest_rows(
    loglik: np.ndarray, X: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` rows of ``X`` with the lowest log-likelihood, as float64."""
    count = min(count, len(loglik))
    if count == 0:
        return np.empty(0), np.empty((0, X.shape[1]))
    idx = np.argpartition(loglik, count - 1)[:count]
    return loglik[idx].astype(np.float64), X[idx].astype(np.float64)


def _keep_lowest(
    ll: np.ndarray, X: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    # A total order, so that the result does not depend on the order of addition.
    order = np.lexsort((*X.T[::-1], ll))[:count]
    return ll[order], X[order]
