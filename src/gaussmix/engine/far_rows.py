"""Rows so far out that their Mahalanobis distance overflows under every component.

Such a row's log-densities ``base_k - q_k / 2`` are all ``-inf`` in floating
point (or NaN from ``inf - inf``), yet their differences, which decide the
responsibilities, are exact numbers: astronomically large, or finite. They are
recomputed here (a rare path, vectorised over the rows that need it) from the
row and the means scaled by a power of two ``s`` (an exact scaling). With
``W_k`` component k's whitening map (``|r W_k|^2`` its squared distance),
``a_k = (x / s) W_k``, ``b_k = (mu_k / s) W_k`` and ``y_k = a_k - b_k``,
``q_k = s^2 |y_k|^2`` and, for two components j and k,

    q_k - q_j = s^2 (y_k - y_j) . (y_k + y_j),   y_k - y_j = (a_k - a_j) - (b_k - b_j):

a product, with no cancellation of the large ``|y|^2``. Where j and k whiten
alike (tied covariances) ``a_k - a_j`` is exactly 0 and the difference comes
from the means alone, however far out the row. (``q_k - q_j`` from the two
rounded ``|y|^2`` would be rounding noise then, as large as ``s^2 |y|^2 eps``.)
The dot product is taken of the two factors scaled by powers of two of their
own size, and ``s^2`` applied last, in steps, so that nothing underflows on
the way (``y_k - y_j`` is about ``1 / s`` where the means decide).

The scores are taken relative to the nearest component j (the smallest
``|y_k|``, refined by the exact differences): ``base_k - base_j - (q_k - q_j)
/ 2``, and the row term ``-q_j / 2`` (``-inf`` where it overflows). The
responsibilities are thus one-hot on the component nearest in Mahalanobis
terms when the gaps are astronomically large, as they are for a row whose
distances overflow, and the exact softmax where they are not; components at
exactly the same distance share by ``base_k`` (log weight plus log
normaliser), as their exact log-densities do. Ties closer than float64 can
tell (``|y_k|`` of different whitening maps equal to rounding) are decided
by the rounded distances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .xp import array_namespace, device


def power_of_two_scale(rows: Any, means: Any) -> Any:
    """Per row (m,), a power of two ``s`` with ``|x| / s < 2`` and
    ``|mu_k| / s < 2`` for every entry (NaN entries ignored), float64.

    Examples
    --------
    >>> import numpy as np
    >>> s = power_of_two_scale(np.array([[3e200, np.nan], [0.5, 1.0]]),
    ...                        np.array([[1.0, -6.0]]))
    >>> np.log2(s).tolist()
    [665.0, 2.0]
    """
    xp = array_namespace(rows)
    observed = xp.where(xp.isnan(rows), xp.zeros_like(rows), rows)
    size = xp.maximum(xp.max(xp.abs(observed), axis=1), xp.max(xp.abs(means)))
    return _power_of_two(size)


def _power_of_two(size: Any) -> Any:
    """The power of two at or below each (finite, non-negative) ``size``; 1
    for 0."""
    xp = array_namespace(size)
    size = xp.where(size > 0, size, xp.ones_like(size))
    return xp.pow(xp.full_like(size, 2.0), xp.floor(xp.log2(size)))


def far_scores(a: Any, b: Any, base: Any, scale: Any) -> tuple[Any, Any]:
    """Scores (K, m) and row term (m,) of far rows, float64, whose sum is
    ``base_k - q_k / 2`` (see the module notes).

    ``a`` (K, m, e): each row scaled by ``scale`` (m,), whitened by each
    component; ``b`` (K, m, e): the means, scaled and whitened alike;
    ``base`` (K, m): log weight plus log normaliser (``-inf`` for a
    component of weight 0, which never counts).
    """
    with np.errstate(over="ignore"):  # s^2 |y|^2 / 2 overflows: that is the point
        return _far_scores(a, b, base, scale)


def _far_scores(a: Any, b: Any, base: Any, scale: Any) -> tuple[Any, Any]:
    xp = array_namespace(a)
    K = a.shape[0]
    counts = xp.isfinite(base)
    y = a - b
    q = xp.where(counts, xp.sum(y * y, axis=-1), xp.full_like(base, xp.inf))
    best = xp.argmin(q, axis=0)
    components = xp.arange(K, device=device(a))[:, None]
    for _ in range(K):  # the nearest by |y| is nearly always right: one pass
        pick = components == best[None, :]
        gap = _gaps(a, b, y, base, scale, pick)
        better = xp.argmax(gap, axis=0)
        if not bool(xp.any(xp.max(gap, axis=0) > 0)):
            break
        best = better
    gap = xp.where(gap > 0, xp.zeros_like(gap), gap)  # (only after K passes)
    y_best = _picked(y, pick)
    size = _power_of_two(xp.max(xp.abs(y_best), axis=-1))  # |y| may underflow: scaled
    half_q = 0.5 * xp.sum((y_best / size[:, None]) ** 2, axis=-1)
    wide = size * scale
    row = -xp.where(half_q > 0, (half_q * wide) * wide, xp.zeros_like(half_q))
    return _picked(base, pick)[None, :] + gap, row


def _gaps(a: Any, b: Any, y: Any, base: Any, scale: Any, pick: Any) -> Any:
    """``log p_k - log p_j`` (K, m) for the picked component j of each row:
    0 for j itself, ``-inf`` for components that never count."""
    xp = array_namespace(a)
    w = (a - _picked(a, pick)) - (b - _picked(b, pick))  # y_k - y_j
    v = y + _picked(y, pick)
    # (q_k - q_j) / 2 = s^2 (w . v) / 2 with w and v scaled by powers of two
    # of their own size (w . v alone may underflow: w ~ 1e-300 where the means
    # decide) and s^2 taken in steps (inf where the gap overflows)
    tw = _power_of_two(xp.max(xp.abs(w), axis=-1))
    tv = _power_of_two(xp.max(xp.abs(v), axis=-1))
    dot = xp.sum((w / tw[:, :, None]) * (v / tv[:, :, None]), axis=-1)
    zero = xp.zeros_like(dot)
    penalty = xp.where(dot == 0, zero, ((0.5 * dot) * (tw * scale)) * (tv * scale))
    counts = xp.isfinite(base)
    finite_base = xp.where(counts, base, zero)
    gap = finite_base - _picked(finite_base, pick)[None, :] - penalty
    gap = xp.where(counts, gap, xp.full_like(gap, -xp.inf))
    return xp.where(pick, zero, gap)


def _picked(v: Any, pick: Any) -> Any:
    """Each row's entry (m,) or vector (m, e) of the picked component from
    ``v`` (K, m) or (K, m, e), exactly (a sum of one value and zeros)."""
    xp = array_namespace(v)
    if v.ndim == 3:
        return xp.sum(xp.where(pick[:, :, None], v, xp.zeros_like(v)), axis=0)
    return xp.sum(xp.where(pick, v, xp.zeros_like(v)), axis=0)
