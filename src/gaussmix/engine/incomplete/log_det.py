"""Log-determinants of the q x q blocks ``L_mm`` of the compiled loops
(numba), one per (row, component) lane, vectorised over the lanes: from the
product of each lane's pivots by a logarithm written as plain arithmetic
(libm's does not vectorise), or from the pivots' logarithms where that
product leaves the range of float64.
"""

from __future__ import annotations

import math

import numpy as np

from .tiles import _jit

# Where the product of a row's pivots is smaller than this or larger than its
# inverse, log det L_mm is summed from their logarithms instead.
_TINY = 1e-290
_MANTISSA, _ONE_BITS = (1 << 52) - 1, 0x3FF << 52
_SQRT2 = math.sqrt(2.0)
_LN2_HI, _LN2_LO = 0.693145751953125, 1.4286068203094173e-06
# 2 atanh(s) = 2 s + s^3 sum_j 2 s^(2j) / (2j + 3), Horner's coefficients
_ATANH = tuple(2.0 / (2 * j + 3) for j in range(10, -1, -1))


@_jit
def _times(det, low, pivot, n):  # noqa: ANN001, ANN202
    """``det *= pivot`` and ``low = min(low, pivot)`` on n lanes."""
    for r in range(n):
        det[r] *= pivot[r]
        low[r] = pivot[r] if pivot[r] < low[r] else low[r]


@_jit
def _log_det(det, low, n, q, M, P, W, s, d_row, diagonal, log_det, scratch):  # noqa: ANN001, ANN202
    """``log det L_mm`` of each lane from the product of its pivots (one
    vectorised logarithm per lane, :func:`_logs`), or from their logarithms
    where the product left the range of float64 (the pivots are the
    diagonal P, (1, d), when ``diagonal``, else rows ``d_row + a`` of ``W``, of
    stride s); False if a pivot is not positive."""
    for r in range(n):
        if not low[r] > 0.0:
            return False
    _logs(det, n, log_det, scratch)
    for r in range(n):
        if _TINY < det[r] < 1.0 / _TINY:
            continue
        log_det[r] = 0.0
        for a in range(q):
            log_det[r] += math.log(P[0, M[a, r]] if diagonal
                                   else W[(d_row + a) * s + r])
    return True


@_jit
def _logs(v, n, out, scratch):  # noqa: ANN001, ANN202
    """``out = log(v)`` on n lanes of positive normal numbers (others give
    meaningless values): ``v = 2^e m`` with ``m`` in [1/sqrt 2, sqrt 2) from
    the bits, ``log m = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``
    (``|s| < 0.172``) by its series to ``s^23`` (remainder below 1e-19 of
    the sum), and ``e log 2`` with log 2 split in two (Cody and Waite) so
    that ``e log 2`` is exact. Written as plain arithmetic, the loop
    vectorises (libm's log does not); within 2 units in the last place of
    libm's. ``scratch`` is a float64 array of n lanes or more."""
    bits, mantissa = v.view(np.int64), scratch.view(np.int64)
    for r in range(n):
        mantissa[r] = (bits[r] & _MANTISSA) | _ONE_BITS
    for r in range(n):
        e = float(((bits[r] >> 52) & 0x7FF) - 1023)
        m = scratch[r]  # in [1, 2)
        big = m > _SQRT2
        m = 0.5 * m if big else m
        e = e + 1.0 if big else e
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        p = _ATANH[0]
        for c in _ATANH[1:]:
            p = p * s2 + c
        out[r] = e * _LN2_HI + (e * _LN2_LO + (2.0 * s + s * s2 * p))
