"""Additive sufficient statistics: the value every EM pass folds chunks into.

One EM iteration is ``stats = sum(chunk_statistics(chunk) for chunk in source)``
followed by ``params = m_step(stats)``. A :class:`SuffStats` is an immutable
value with ``+`` (associative and commutative) and a zero, so chunks may be
reduced in any order and grouping: sequentially, in threads, or in a tree on
a cluster.

Moments are *shifted*: they are accumulated about centres ``shift`` (one row
per component) that lie near each component's mean, ``s1 = sum w g (x - c)``
and ``s2 = sum w g (x - c)(x - c)^T`` (or the covariance type's reduced form),
so that the covariance ``s2/N - (s1/N)(s1/N)^T`` loses no digits whatever the
data's offset, outliers or the distance between components.

Statistics about different centres are combined exactly by first moving both
to the merged means (:meth:`SuffStats.recentred`): moving moments to their own
mean only adds non-negative terms, the pairwise update of Chan, Golub and
LeVeque. :meth:`SuffStats.to_dict` / :meth:`SuffStats.from_dict` give a plain
form (a dict of NumPy arrays and floats) for sending between processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .covariance import CovarianceType, get_covariance_type


@dataclass(frozen=True)
class SuffStats:
    """Sufficient statistics of a weighted Gaussian mixture E-step.

    Attributes
    ----------
    covariance_type : str
        Name of the covariance type; fixes the shape and meaning of ``s2``.
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
    min_weight : float
        Smallest positive sample weight seen (``inf`` for no rows): the scale
        of one row, against which a component counts as empty.

    Examples
    --------
    >>> import numpy as np
    >>> a = SuffStats.zero("diag", np.zeros((1, 2)))
    >>> b = SuffStats("diag", np.array([2.0]), np.array([[2.0, 0.0]]),
    ...               np.array([[4.0, 2.0]]), np.zeros((1, 2)), -3.0, 2.0, 1.0)
    >>> (a + b).nk
    array([2.])
    >>> moved = b.recentred(np.array([[1.0, 0.0]]))   # moments about the mean
    >>> moved.s1, moved.s2
    (array([[0., 0.]]), array([[2., 2.]]))
    >>> SuffStats.from_dict(b.to_dict()) == b
    True
    """

    covariance_type: str
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray
    loglik: float
    weight: float
    min_weight: float

    @classmethod
    def zero(cls, covariance_type: str, shift: np.ndarray) -> SuffStats:
        """The neutral element for ``+`` with the given centres."""
        n_components, n_features = shift.shape
        piece = get_covariance_type(covariance_type)
        return cls(
            covariance_type=covariance_type,
            nk=np.zeros(n_components),
            s1=np.zeros((n_components, n_features)),
            s2=np.zeros(piece.param_shape(n_components, n_features)),
            shift=shift,
            loglik=0.0,
            weight=0.0,
            min_weight=math.inf,
        )

    def __add__(self, other: SuffStats) -> SuffStats:
        if not isinstance(other, SuffStats):
            return NotImplemented
        if self.covariance_type != other.covariance_type:
            raise ValueError(
                f"Cannot add statistics of a {self.covariance_type!r} and a "
                f"{other.covariance_type!r} mixture."
            )
        nk, s1, s2, shift = _sums(self.covariance_type,
                                  (self.nk, self.s1, self.s2, self.shift),
                                  (other.nk, other.s1, other.s2, other.shift))
        return SuffStats(self.covariance_type, nk, s1, s2, shift,
                         self.loglik + other.loglik, self.weight + other.weight,
                         min(self.min_weight, other.min_weight))

    def __radd__(self, other: object) -> SuffStats:
        # Lets the built-in sum() start from 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SuffStats):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def recentred(self, shift: np.ndarray) -> SuffStats:
        """The same statistics with moments taken about ``shift`` (K, d).

        Exact in exact arithmetic; in floating point it loses no digits when
        ``shift`` is at the components' means (only non-negative terms are
        added), which is how :meth:`__add__` merges different centres.
        """
        shift = np.asarray(shift, dtype=np.float64)
        s1, s2 = _moved(get_covariance_type(self.covariance_type),
                        (self.nk, self.s1, self.s2, self.shift), shift)
        # the constructor, not dataclasses.replace (a few times its cost; a
        # partial_fit call on a small batch blends with two scalings and two
        # re-centrings)
        return SuffStats(self.covariance_type, self.nk, s1, s2, shift,
                         self.loglik, self.weight, self.min_weight)

    def scaled(self, factor: float) -> SuffStats:
        """The statistics of the same rows with every weight times ``factor``
        (>= 0): moments, log-likelihood and weights scale, centres stay."""
        return SuffStats(self.covariance_type, self.nk * factor, self.s1 * factor,
                         self.s2 * factor, self.shift, self.loglik * factor,
                         self.weight * factor, self.min_weight * factor)

    def scaled_sum(self, factor: float, other: SuffStats, other_factor: float
                   ) -> SuffStats:
        """``self.scaled(factor) + other.scaled(other_factor)``, the same
        numbers without the four intermediate values (the streaming blend,
        once per ``partial_fit`` call)."""
        if self.covariance_type != other.covariance_type:
            return self.scaled(factor) + other.scaled(other_factor)  # (its error)
        nk, s1, s2, shift = _sums(
            self.covariance_type,
            (self.nk * factor, self.s1 * factor, self.s2 * factor, self.shift),
            (other.nk * other_factor, other.s1 * other_factor, other.s2 * other_factor,
             other.shift))
        return SuffStats(self.covariance_type, nk, s1, s2, shift,
                         self.loglik * factor + other.loglik * other_factor,
                         self.weight * factor + other.weight * other_factor,
                         min(self.min_weight * factor, other.min_weight * other_factor))

    def to_dict(self) -> dict[str, Any]:
        """A plain form: NumPy arrays, floats and the covariance type's name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuffStats:
        """Inverse of :meth:`to_dict` (arrays are copied to float64)."""
        def array(name: str) -> np.ndarray:
            return np.array(data[name], dtype=np.float64)

        return cls(
            covariance_type=str(data["covariance_type"]), nk=array("nk"),
            s1=array("s1"), s2=array("s2"), shift=array("shift"),
            loglik=float(data["loglik"]), weight=float(data["weight"]),
            min_weight=float(data["min_weight"]),
        )


def _same_centres(a: np.ndarray, b: np.ndarray) -> bool:
    """``np.array_equal(a, b)`` for two float arrays, without its conversions
    (asked at every addition: twice a ``partial_fit`` call)."""
    return a.shape == b.shape and bool((a == b).all())


Moments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # nk, s1, s2, shift


def _sums(covariance_type: str, a: Moments, b: Moments) -> Moments:
    """The (nk, s1, s2, shift) of the union of two sets of rows: added as they
    are about the same centres, else both first moved to the merged means."""
    nk_a, s1_a, s2_a, c_a = a
    nk_b, s1_b, s2_b, c_b = b
    if c_a is c_b or _same_centres(c_a, c_b):
        return nk_a + nk_b, s1_a + s1_b, s2_a + s2_b, c_a
    nk = nk_a + nk_b
    centre = _merged_means(nk, a, b)
    piece = get_covariance_type(covariance_type)
    (s1a, s2a), (s1b, s2b) = _moved(piece, a, centre), _moved(piece, b, centre)
    return nk, s1a + s1b, s2a + s2b, centre


def _moved(piece: CovarianceType, moments: Moments, centre: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """(s1, s2) of ``moments`` taken about ``centre`` instead (exact)."""
    nk, s1, s2, shift = moments
    delta = centre - shift
    return s1 - nk[:, None] * delta, piece.recentre_s2(s2, s1, nk, delta)


def merged_means(a: SuffStats, b: SuffStats) -> np.ndarray:
    """Per-component means of the union of ``a``'s and ``b``'s rows, (K, d).

    A component with no weight in either keeps ``a``'s centre.
    """
    return _merged_means(a.nk + b.nk, (a.nk, a.s1, a.s2, a.shift),
                         (b.nk, b.s1, b.s2, b.shift))


def _merged_means(nk: np.ndarray, a: Moments, b: Moments) -> np.ndarray:
    # ``nk``: a's plus b's
    total = a[0][:, None] * a[3] + a[1] + b[0][:, None] * b[3] + b[1]
    occupied = nk > 0
    if occupied.all():  # the usual case, without the two selections
        return total / nk[:, None]
    safe = np.where(occupied, nk, 1.0)[:, None]
    return np.where(occupied[:, None], total / safe, a[3])
