"""What every covariance type's compiled tile loop shares (numba, no GIL held).

The loops (:mod:`.full_loops`, :mod:`.diag_loops`, :mod:`.spherical_loops`,
:mod:`.tied_loops`) each fold one chunk of rows into statistics buffers, a
tile of ``tile`` rows at a time. A tile is copied transposed (features x rows)
and centred on the group's centre, and every intermediate of the reference
kernel (:mod:`gaussmix.engine.covariance`) is formed for that tile only, so
the work set stays in L2 and the (n, K*d) arrays of the reference are never
written. The arithmetic is the reference's, in the same precision: the same
precomputed group arrays, the same products (small BLAS calls on the tile,
except the full covariances' second moments: compiled blocks, :mod:`.moments`),
the same log-sum-exp. Only the summation order differs (per tile, then over
tiles; in vector lanes where a sum over rows is vectorised), by a few units in
the last place.

Every loop returns a status: 0 when all went well, 1 when a row's scores
or row term are not finite (rows far beyond every component: the caller then
recomputes the chunk with the reference kernel, which rescues such rows) or,
for the statistics, when they overflowed.
``acc`` receives ``[loglik, weight, min_weight]``.

Here: the decorators the loops are compiled with, the centred tile, the
exponential and logarithm written to vectorise, the log-sum-exp that turns a
tile's scores into responsibilities (or per-row results), the weights' totals
and the overflow check. (numba checks a loop's on-disk cache against its own
module's file only: after editing this one, delete the ``*.nbi`` and ``*.nbc``
files of this folder's ``__pycache__``, or the loops keep the old steps.)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .vectors import prefer_full_width

prefer_full_width()  # before any loop is compiled or loaded: see .vectors
_jit = njit(nogil=True, cache=True, fastmath={"contract"})
_jit_sum = njit(nogil=True, cache=True, fastmath={"contract", "reassoc"})


@_jit
def _centred_tile(X, start, stop, centre, ct, ct64):  # noqa: ANN001, ANN202
    """Rows ``start:stop`` of X minus the centre, transposed into ``ct``
    (compute dtype) and, in float32, ``ct64`` (its float64 values: read it
    as ``_wide(ct, ct64)``); padding columns zero."""
    d = X.shape[1]
    m = stop - start
    narrow = ct.itemsize < 8
    for b in range(m):
        row = X[start + b]
        for i in range(d):
            v = row[i] - centre[i]
            ct[i, b] = v
            if narrow:
                ct64[i, b] = v
    for i in range(d):
        for b in range(m, ct.shape[1]):
            ct[i, b] = 0
            if narrow:
                ct64[i, b] = 0.0


def _wide(a, a64):  # noqa: ANN001, ANN202
    """``a`` if it is float64, else its float64 copy ``a64`` (chosen when
    the loops are compiled; float64 tiles are not copied twice)."""
    return a if a.dtype == np.float64 else a64


@overload(_wide)
def _wide_compiled(a, a64):  # noqa: ANN001, ANN202
    if a.dtype == types.float64:
        return lambda a, a64: a
    return lambda a, a64: a64


# exp(x) = 2^k exp(r), k = round(x / log 2), |r| <= log(2)/2, with log 2 split in
# two (Cody and Waite) so that r is exact, and exp(r) by its Taylor polynomial
# to degree 13 (remainder below 2e-17). Written as plain arithmetic, the loop
# vectorises (libm's exp does not), which makes the K exponentials per row as
# cheap as the products; it agrees with libm's to 2 units in the last place.
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125
_LN2_LO = 1.4286068203094173e-06
_UNDERFLOW = -708.3  # below this, exp(x) is subnormal: returned as 0
_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(13, -1, -1))


@_jit
def _exp_shifted(v, top, bits):  # noqa: ANN001, ANN202
    """``v[b] = exp(v[b] - top[b])`` in place (0 where subnormal); ``bits`` is
    an int64 buffer of v's length."""
    scale = bits.view(np.float64)
    for b in range(v.shape[0]):
        x = v[b] - top[b]
        under = x < _UNDERFLOW
        x = max(x, _UNDERFLOW)
        k = np.floor(x * _LOG2E + 0.5)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = _TAYLOR[0]
        p = p * r + _TAYLOR[1]
        p = p * r + _TAYLOR[2]
        p = p * r + _TAYLOR[3]
        p = p * r + _TAYLOR[4]
        p = p * r + _TAYLOR[5]
        p = p * r + _TAYLOR[6]
        p = p * r + _TAYLOR[7]
        p = p * r + _TAYLOR[8]
        p = p * r + _TAYLOR[9]
        p = p * r + _TAYLOR[10]
        p = p * r + _TAYLOR[11]
        p = p * r + _TAYLOR[12]
        p = p * r + _TAYLOR[13]
        bits[b] = (np.int64(k) + 1023) << 52
        v[b] = 0.0 if under else p
    for b in range(v.shape[0]):
        v[b] *= scale[b]


# log(x) = e log 2 + log(m), x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
# log(m) = 2 atanh(f) = 2 f (1 + f^2/3 + f^4/5 + ...), f = (m - 1) / (m + 1),
# |f| <= 0.172: twelve terms leave a remainder below 1e-18. As plain
# arithmetic the loop vectorises (libm's log does not); it agrees with libm's
# to 2 units in the last place.
_SQRT2 = 1.4142135623730951
_ATANH = tuple(1.0 / (2 * i + 1) for i in range(11, -1, -1))
_MANTISSA = (1 << 52) - 1
_ONE_BITS = 1023 << 52


@_jit
def _log_at_least_one(x, out, bits):  # noqa: ANN001, ANN202
    """``out[b] = log(x[b])`` for normal positive finite ``x`` (the sums of
    exponentials here, at least 1); ``bits`` is an int64 buffer of x's
    length."""
    mantissa = bits.view(np.float64)
    for b in range(x.shape[0]):
        mantissa[b] = x[b]
    for b in range(x.shape[0]):
        word = bits[b]
        out[b] = np.float64((word >> 52) - 1023)
        bits[b] = (word & _MANTISSA) | _ONE_BITS
    for b in range(x.shape[0]):
        m, e = mantissa[b], out[b]
        big = m > _SQRT2
        m = m * 0.5 if big else m
        e = e + 1.0 if big else e
        f = (m - 1.0) / (m + 1.0)
        f2 = f * f
        p = _ATANH[0]
        p = p * f2 + _ATANH[1]
        p = p * f2 + _ATANH[2]
        p = p * f2 + _ATANH[3]
        p = p * f2 + _ATANH[4]
        p = p * f2 + _ATANH[5]
        p = p * f2 + _ATANH[6]
        p = p * f2 + _ATANH[7]
        p = p * f2 + _ATANH[8]
        p = p * f2 + _ATANH[9]
        p = p * f2 + _ATANH[10]
        p = p * f2 + _ATANH[11]
        out[b] = e * _LN2_HI + (e * _LN2_LO + 2.0 * f * p)


@_jit
def _column_tops(sc, row, m, top):  # noqa: ANN001, ANN202
    """Column maxima of the scores into ``top``; False if a row among the
    first ``m`` has no finite score or row term."""
    K, tile = sc.shape
    for b in range(tile):
        top[b] = sc[0, b]
    for k in range(1, K):
        for b in range(tile):
            top[b] = max(top[b], sc[k, b])
    for b in range(m):
        if not (np.isfinite(top[b]) and np.isfinite(row[b])):
            return False
    for b in range(m, tile):
        top[b] = 0.0 if not np.isfinite(top[b]) else top[b]
    return True


@_jit
def _normalise(sc, row, m, w, start, acc, nk, work, bits):  # noqa: ANN001, ANN202
    """Log-scores ``sc`` (K, tile) into weighted responsibilities in place;
    adds ``w log p(x)`` to ``acc[0]`` and the responsibilities to ``nk``.
    ``row`` (tile,) is the row term (zeros where the type has none); ``work``
    (3, tile) float64 and ``bits`` (tile,) int64 are scratch. Returns False if
    a row has no finite score or row term."""
    K, tile = sc.shape
    top, total = work[0], work[1]
    if not _column_tops(sc, row, m, top):
        return False
    total[:] = 0.0
    for k in range(K):
        _exp_shifted(sc[k], top, bits)
        for b in range(tile):
            total[b] += sc[k, b]
    logs = work[2]
    _log_at_least_one(total, logs, bits)
    weighted = w.shape[0] > 0
    loglik = 0.0
    for b in range(m):
        wb = w[start + b] if weighted else 1.0
        loglik += wb * (logs[b] + top[b] + row[b])
        total[b] = wb / total[b]
    acc[0] += loglik
    for b in range(m, tile):
        total[b] = 0.0
    for k in range(K):
        nk[k] += _scaled_sum(sc[k], total)
    return True


@_jit_sum
def _scaled_sum(v, scale):  # noqa: ANN001, ANN202
    """``v *= scale`` in place; returns the sum of the result (summed in
    vector lanes: a sum in row order would not vectorise)."""
    total = 0.0
    for b in range(v.shape[0]):
        v[b] *= scale[b]
        total += v[b]
    return total


@_jit
def _finish(sc, row, start, stop, what, out, work, bits):  # noqa: ANN001, ANN202
    """Per-row results of a tile's scores, as the reference gives them:
    ``what`` 0: ``log p(x)`` into ``out[0, row]``; 1: log-responsibilities
    into ``out[:, row]`` (K, n); 2: the most probable component (first of
    ties) into ``out[0, row]``. False if a row has no finite score."""
    K, tile = sc.shape
    m = stop - start
    top, total = work[0], work[1]
    if not _column_tops(sc, row, m, top):
        return False
    if what == 2:
        for b in range(m):
            best = 0
            for k in range(1, K):
                if sc[k, b] > sc[best, b]:
                    best = k
            out[0, start + b] = best
        return True
    total[:] = 0.0
    for k in range(K):
        e = work[2 + k]
        e[:] = sc[k]
        _exp_shifted(e, top, bits)
        for b in range(tile):
            total[b] += e[b]
    for b in range(m):
        log_total = math.log(total[b])
        if what == 0:
            out[0, start + b] = log_total + top[b] + row[b]
        else:
            for k in range(K):
                out[k, start + b] = sc[k, b] - top[b] - log_total
    return True


@_jit
def _weights(w, n, acc):  # noqa: ANN001, ANN202
    """Total and smallest positive sample weight (n and 1 without weights)."""
    if w.shape[0] == 0:
        acc[1] = n
        acc[2] = 1.0
        return
    total, least = 0.0, np.inf
    for i in range(n):
        total += w[i]
        if w[i] > 0 and w[i] < least:
            least = w[i]
    acc[1] = total
    acc[2] = least


@_jit
def _overflowed(acc, nk, first, second):  # noqa: ANN001, ANN202
    """1 if the log-likelihood or a statistic is not finite (an overflow:
    the caller recomputes the chunk with the reference), else 0."""
    total = acc[0]
    for k in range(nk.shape[0]):
        total += nk[k]
    for v in first.ravel():
        total += v
    for v in second.ravel():
        total += v
    return 0 if np.isfinite(total) else 1
