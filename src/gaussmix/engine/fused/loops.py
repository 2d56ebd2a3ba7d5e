"""The compiled tile loops of the fused E-step (numba, no GIL held).

Each function folds one chunk of rows into statistics buffers, a tile of
``tile`` rows at a time. A tile is copied transposed (features x rows) and
centred on the group's centre, and every intermediate of the reference kernel
(:mod:`gaussmix.engine.covariance`) is formed for that tile only, so the work
set stays in L2 and the (n, K*d) arrays of the reference are never written.
The arithmetic is the reference's, in the same precision: the same precomputed
group arrays, the same products (small BLAS calls on the tile, except the
full covariances' second moments: compiled blocks, :mod:`.moments`), the same
log-sum-exp. Only the summation order differs (per tile, then over tiles; in
vector lanes where a sum over rows is vectorised), by a few units in the last
place.

Every function returns a status: 0 when all went well, 1 when a row's scores
or row term are not finite (rows far beyond every component: the caller then
recomputes the chunk with the reference kernel, which rescues such rows) or,
for the statistics, when they overflowed.
``acc`` receives ``[loglik, weight, min_weight]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .moments import BLOCK, padded, second_moments

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


@_jit
def _full_scores(X, start, stop, centre, stacked, base, tri, ct, ct64, white, sc, sq):  # noqa: ANN001, ANN202
    """Scores of one tile (into ``sc``) and its whitened copy (``white``,
    (K*dp, tile): component k's rows from k*dp, its d features first, then
    zero rows up to dp, a multiple of four, from zero rows in ``stacked``,
    see :func:`_padded_stack`). Where ``tri`` holds the factors (see
    :func:`_eight_factors`), the whitening is :func:`_whiten_eight` (``sq``:
    its scratch)."""
    d = X.shape[1]
    K = base.shape[0]
    dp = stacked.shape[0] // K
    tile = sc.shape[1]
    _centred_tile(X, start, stop, centre, ct, ct64)
    if stop - start < tile:
        ct[d, stop - start:] = 0
    if tri.shape[0] == K:
        for k in range(K):
            _whiten_eight(ct, d, tri[k], base[k], white[k * dp:(k + 1) * dp], sc[k], sq)
        return
    np.dot(stacked, ct, white)
    for k in range(K):
        score = sc[k]
        for b in range(tile):
            score[b] = 0.0
        for j in range(k * dp, (k + 1) * dp, BLOCK):  # padding rows are zero
            w0, w1, w2, w3 = white[j], white[j + 1], white[j + 2], white[j + 3]
            for b in range(tile):
                score[b] += (w0[b] * w0[b] + w1[b] * w1[b]) + (w2[b] * w2[b] + w3[b] * w3[b])
        for b in range(tile):
            score[b] = -0.5 * score[b] + base[k]


#: Features up to which (5 to 8: eight whitened rows per component) full
#: covariances are whitened by :func:`_whiten_eight`, not one library product.
EIGHT = 8


@_jit
def _eight_factors(stacked, K, d):  # noqa: ANN001, ANN202
    """The factors of ``stacked`` (K*d, d+1) as (K, 8, 9) arrays for
    :func:`_whiten_eight`: rows and columns beyond d zero, the offsets in
    column 8; (0, 8, 9) where they do not apply (d not 5 to 8, or a factor
    not lower triangular, as the reference's are)."""
    if d <= BLOCK or d > EIGHT:
        return np.zeros((0, EIGHT, EIGHT + 1), stacked.dtype)
    tri = np.zeros((K, EIGHT, EIGHT + 1), stacked.dtype)
    for k in range(K):
        for i in range(d):
            for j in range(i + 1, d):
                if stacked[k * d + i, j] != 0:
                    return np.zeros((0, EIGHT, EIGHT + 1), stacked.dtype)
            for j in range(i + 1):
                tri[k, i, j] = stacked[k * d + i, j]
            tri[k, i, EIGHT] = stacked[k * d + i, d]
    return tri


@_jit
def _whiten_eight(ct, d, f, base, white, score, sq):  # noqa: ANN001, ANN202
    """One component's whitened rows ``y = f[:, :8] [x - c] + f[:, 8]``
    (``f`` lower triangular, (8, 9)) into ``white`` (8, tile) and its score
    ``-|y|^2 / 2 + base`` into ``score``, in one pass over the tile: 44
    multiply-adds per row against the 72 of the library product (which
    cannot skip the zeros above the diagonal), and no second pass for the
    squares. Features beyond d read the row of ones (their factors are 0);
    ``sq`` (tile,) is scratch in white's dtype."""
    x0, x1, x2, x3 = ct[0], ct[1], ct[2], ct[3]
    x4, x5, x6, x7 = ct[4], ct[min(5, d)], ct[min(6, d)], ct[min(7, d)]
    y0, y1, y2, y3 = white[0], white[1], white[2], white[3]
    y4, y5, y6, y7 = white[4], white[5], white[6], white[7]
    f00 = f[0, 0]
    f10, f11 = f[1, 0], f[1, 1]
    f20, f21, f22 = f[2, 0], f[2, 1], f[2, 2]
    f30, f31, f32, f33 = f[3, 0], f[3, 1], f[3, 2], f[3, 3]
    f40, f41, f42, f43, f44 = f[4, 0], f[4, 1], f[4, 2], f[4, 3], f[4, 4]
    f50, f51, f52, f53, f54, f55 = f[5, 0], f[5, 1], f[5, 2], f[5, 3], f[5, 4], f[5, 5]
    f60, f61, f62, f63, f64, f65, f66 = (f[6, 0], f[6, 1], f[6, 2], f[6, 3], f[6, 4],
                                         f[6, 5], f[6, 6])
    f70, f71, f72, f73, f74, f75, f76, f77 = (f[7, 0], f[7, 1], f[7, 2], f[7, 3], f[7, 4],
                                              f[7, 5], f[7, 6], f[7, 7])
    o0, o1, o2, o3, o4, o5, o6, o7 = (f[0, 8], f[1, 8], f[2, 8], f[3, 8], f[4, 8], f[5, 8],
                                      f[6, 8], f[7, 8])
    for b in range(score.shape[0]):
        v0, v1, v2, v3, v4, v5, v6, v7 = x0[b], x1[b], x2[b], x3[b], x4[b], x5[b], x6[b], x7[b]
        a0 = o0 + f00 * v0
        a1 = o1 + f10 * v0 + f11 * v1
        a2 = o2 + f20 * v0 + f21 * v1 + f22 * v2
        a3 = o3 + f30 * v0 + f31 * v1 + f32 * v2 + f33 * v3
        a4 = o4 + f40 * v0 + f41 * v1 + f42 * v2 + f43 * v3 + f44 * v4
        a5 = o5 + f50 * v0 + f51 * v1 + f52 * v2 + f53 * v3 + f54 * v4 + f55 * v5
        a6 = o6 + f60 * v0 + f61 * v1 + f62 * v2 + f63 * v3 + f64 * v4 + f65 * v5 + f66 * v6
        a7 = (o7 + f70 * v0 + f71 * v1 + f72 * v2 + f73 * v3 + f74 * v4 + f75 * v5
              + f76 * v6 + f77 * v7)
        y0[b], y1[b], y2[b], y3[b] = a0, a1, a2, a3
        y4[b], y5[b], y6[b], y7[b] = a4, a5, a6, a7
        total = ((a0 * a0 + a1 * a1) + (a2 * a2 + a3 * a3)) + ((a4 * a4 + a5 * a5)
                                                              + (a6 * a6 + a7 * a7))
        sq[b] = total
    for b in range(score.shape[0]):  # apart: in float32, the loop above vectorises
        score[b] = -0.5 * sq[b] + base


@_jit
def _padded_stack(stacked, K, dp):  # noqa: ANN001, ANN202
    """``stacked`` (K*d, d+1) with each component's rows padded with zero
    rows to ``dp``: (K*dp, d+1)."""
    d = stacked.shape[1] - 1
    out = np.zeros((K * dp, d + 1), stacked.dtype)
    for k in range(K):
        out[k * dp:k * dp + d] = stacked[k * d:(k + 1) * d]
    return out


@_jit
def full_chunk(X, w, centre, stacked, base, offsets, unwhiten, tile, nk, s1, s2, acc):  # noqa: ANN001, ANN201
    """Full covariances. ``stacked`` (K*d, d+1) whitens ``[x - c, 1]`` for all
    components; ``base`` (K,) = log weight + log normaliser. Accumulates
    ``resp @ [x - c, 1]`` and the second moments in each component's whitened
    coordinates (:mod:`.moments`), then gives, as the reference, ``s1`` (K, d)
    about the means (``offsets`` = means - c) and ``s2`` (K, d, d) mapped back
    with ``unwhiten`` (K, d, d): x - mu = y U^-1."""
    n, d = X.shape
    K = base.shape[0]
    dp = padded(d)
    padded_stack = _padded_stack(stacked, K, dp)
    tri = _eight_factors(stacked, K, d)
    sq = np.empty(tile, X.dtype)
    ct = np.ones((d + 1, tile), X.dtype)
    ct64 = np.ones((d + 1, tile))
    sc = np.empty((K, tile))
    work = np.empty((3, tile))
    bits = np.empty(tile, np.int64)
    white = np.empty((K * dp, tile), X.dtype)
    scaled = np.empty((BLOCK, tile), X.dtype)
    mom_t = np.empty((K, d + 1))
    mom = np.zeros((K, d + 1))
    s2w = np.zeros((K, dp, dp))
    row = np.zeros(tile)
    # Responsibilities below ``floor`` (1e-30 in float32) count as zero: their
    # products would be subnormal numbers, a hundred times slower, for no
    # visible change.
    floor = 1e-30 if X.itemsize == 4 else 0.0
    far_sq = FAR_DISTANCE
    far = np.zeros((K, tile))
    s2far = np.zeros((K, d, d))
    _weights(w, n, acc)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _full_scores(X, start, stop, centre, padded_stack, base, tri, ct, ct64, white, sc,
                     sq)
        n_far = _far_pairs(sc, base, stop - start, far_sq, far)
        if not _normalise(sc, row, stop - start, w, start, acc, nk, work, bits):
            return 1
        np.dot(sc, _wide(ct, ct64).T, mom_t)
        mom += mom_t
        if n_far:
            _far_moments(sc, far, stop - start, _wide(ct, ct64), offsets, far_sq, s2far)
        for k in range(K):
            second_moments(white[k * dp:(k + 1) * dp], sc[k], floor, d, scaled, s2w[k])
    back = np.empty((d, d))
    lower = np.empty((d, d))
    for k in range(K):
        for i in range(d):
            s1[k, i] = mom[k, i] - mom[k, d] * offsets[k, i]
            for j in range(i + 1):
                lower[i, j] = s2w[k, i, j]
                lower[j, i] = s2w[k, i, j]
        np.dot(lower, unwhiten[k], back)
        np.dot(unwhiten[k].T, back, s2[k])
        s2[k] += s2far[k]
    return _overflowed(acc, nk, s1, s2)


#: Squared whitened distance beyond which a row leaves a component's whitened
#: sums for its own residual's: the reference's ``covariance.full.FAR_DISTANCE``
#: (a test keeps them equal; a constant of this module, so that numba's cache
#: of these loops sees a change of it).
FAR_DISTANCE = 1e4


@_jit
def _far_pairs(sc, base, m, far_sq, far):  # noqa: ANN001, ANN202
    """Squared whitened distances ``|y|^2`` (from a tile's scores
    ``sc = -|y|^2 / 2 + base``) of the (component, row) pairs beyond
    ``far_sq`` into ``far`` (K, tile), 0 elsewhere; returns how many."""
    K = sc.shape[0]
    count = 0
    for k in range(K):  # usually none: counted first, without writes
        limit = base[k] - 0.5 * far_sq
        for b in range(m):
            count += sc[k, b] < limit
    if count:
        for k in range(K):
            limit = base[k] - 0.5 * far_sq
            for b in range(m):
                far[k, b] = 2.0 * (base[k] - sc[k, b]) if sc[k, b] < limit else 0.0
    return count


@_jit
def _far_moments(resp, far, m, ct, offsets, far_sq, out):  # noqa: ANN001, ANN202
    """For each pair of :func:`_far_pairs` whose weight in the whitened sums,
    ``r |y|^2``, exceeds ``far_sq``: adds ``r (x - mu_k)(x - mu_k)^T`` to
    ``out[k]`` (float64, from the tile's centred rows ``ct`` and ``offsets``
    = mu - c) and zeroes its responsibility for the whitened sums that
    follow. (Pairs of negligible responsibility stay: their rounding there is
    as small as a near row's.)"""
    K, d = offsets.shape
    v = np.empty(d)
    for k in range(K):
        for b in range(m):
            r = resp[k, b]
            if r * far[k, b] <= far_sq:
                continue
            resp[k, b] = 0.0
            for i in range(d):
                v[i] = ct[i, b] - offsets[k, i]
            for i in range(d):
                for j in range(d):
                    out[k, i, j] += r * v[i] * v[j]


@_jit
def full_rows(X, centre, stacked, base, offsets, unwhiten, tile, what, out):  # noqa: ANN001, ANN201, ARG001
    """Per-row results (see :func:`_finish`) for full covariances (``offsets``
    and ``unwhiten`` serve only the statistics)."""
    n, d = X.shape
    K = base.shape[0]
    ct = np.ones((d + 1, tile), X.dtype)
    ct64 = np.ones((d + 1, tile))
    sc = np.empty((K, tile))
    work = np.empty((2 + K, tile))
    bits = np.empty(tile, np.int64)
    dp = padded(d)
    padded_stack = _padded_stack(stacked, K, dp)
    tri = _eight_factors(stacked, K, d)
    sq = np.empty(tile, X.dtype)
    white = np.empty((K * dp, tile), X.dtype)
    row = np.zeros(tile)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _full_scores(X, start, stop, centre, padded_stack, base, tri, ct, ct64, white, sc,
                     sq)
        if not _finish(sc, row, start, stop, what, out, work, bits):
            return 1
    return 0


@_jit
def _diag_scores(X, start, stop, centre, coef, offset_sq, base, ct, ct64, feats,  # noqa: ANN001, ANN202
                 feats64, maha, sc):
    d = X.shape[1]
    K, tile = sc.shape
    _centred_tile(X, start, stop, centre, ct, ct64)
    narrow = ct.itemsize < 8
    for i in range(d):
        for b in range(tile):
            feats[i, b] = ct[i, b] * ct[i, b]
            feats[d + i, b] = ct[i, b]
            if narrow:
                feats64[i, b] = ct64[i, b] * ct64[i, b]
                feats64[d + i, b] = ct64[i, b]
    np.dot(coef, feats, maha)
    for k in range(K):
        for b in range(tile):
            v = maha[k, b] + offset_sq[k]
            sc[k, b] = -0.5 * max(v, 0.0) + base[k]


@_jit
def diag_chunk(X, w, centre, coef, offset_sq, base, tile, nk, sums, acc):  # noqa: ANN001, ANN201
    """Diagonal covariances: ``coef`` (K, 2d) applied to ``[(x-c)^2, x-c]``;
    accumulates ``sums`` (K, 2d) = resp @ [(x-c)^2, x-c] in float64."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    feats, feats64 = np.empty((2 * d, tile), X.dtype), np.empty((2 * d, tile))
    row = np.zeros(tile)
    sc = np.empty((K, tile))
    work = np.empty((3, tile))
    bits = np.empty(tile, np.int64)
    maha = np.empty((K, tile), X.dtype)
    sums_t = np.empty((K, 2 * d))
    _weights(w, n, acc)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _diag_scores(X, start, stop, centre, coef, offset_sq, base, ct, ct64, feats,
                     feats64, maha, sc)
        if not _normalise(sc, row, stop - start, w, start, acc, nk, work, bits):
            return 1
        np.dot(sc, _wide(feats, feats64).T, sums_t)
        sums += sums_t
    return _overflowed(acc, nk, sums, sums)


@_jit
def diag_rows(X, centre, coef, offset_sq, base, tile, what, out):  # noqa: ANN001, ANN201
    """Per-row results (see :func:`_finish`) for diagonal covariances."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    feats, feats64 = np.empty((2 * d, tile), X.dtype), np.empty((2 * d, tile))
    row = np.zeros(tile)
    sc = np.empty((K, tile))
    work = np.empty((2 + K, tile))
    bits = np.empty(tile, np.int64)
    maha = np.empty((K, tile), X.dtype)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _diag_scores(X, start, stop, centre, coef, offset_sq, base, ct, ct64, feats,
                     feats64, maha, sc)
        if not _finish(sc, row, start, stop, what, out, work, bits):
            return 1
    return 0


@_jit
def _spherical_scores(X, start, stop, centre, prec, cross, offset_sq, base, ct, ct64,  # noqa: ANN001, ANN202
                      sq, sq64, lin, sc):
    d = X.shape[1]
    K, tile = sc.shape
    _centred_tile(X, start, stop, centre, ct, ct64)
    sq[:] = 0
    sq64[:] = 0.0
    for i in range(d):
        for b in range(tile):
            sq[b] += ct[i, b] * ct[i, b]
            sq64[b] += _wide(ct, ct64)[i, b] * _wide(ct, ct64)[i, b]
    np.dot(cross, ct, lin)
    for k in range(K):
        for b in range(tile):
            v = prec[k] * sq[b] - lin[k, b] + offset_sq[k]
            sc[k, b] = -0.5 * max(v, 0.0) + base[k]


@_jit
def spherical_chunk(X, w, centre, prec, cross, offset_sq, base, tile, nk, s1, s2,  # noqa: ANN001, ANN201
                    acc):
    """Spherical covariances: ``prec (K) |x-c|^2 - cross (K, d) (x-c) +
    offset_sq (K)``; accumulates ``s1`` (K, d) and ``s2`` (K,) about c."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    sq, sq64 = np.empty(tile, X.dtype), np.empty(tile)
    row = np.zeros(tile)
    sc = np.empty((K, tile))
    work = np.empty((3, tile))
    bits = np.empty(tile, np.int64)
    lin = np.empty((K, tile), X.dtype)
    s1_t = np.empty((K, d))
    _weights(w, n, acc)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _spherical_scores(X, start, stop, centre, prec, cross, offset_sq, base, ct, ct64,
                          sq, sq64, lin, sc)
        if not _normalise(sc, row, stop - start, w, start, acc, nk, work, bits):
            return 1
        np.dot(sc, _wide(ct, ct64).T, s1_t)
        s1 += s1_t
        for k in range(K):
            total = 0.0
            for b in range(tile):
                total += sc[k, b] * sq64[b]
            s2[k] += total
    return _overflowed(acc, nk, s1, s2)


@_jit
def spherical_rows(X, centre, prec, cross, offset_sq, base, tile, what, out):  # noqa: ANN001, ANN201
    """Per-row results (see :func:`_finish`) for spherical covariances."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    sq, sq64 = np.empty(tile, X.dtype), np.empty(tile)
    row = np.zeros(tile)
    sc = np.empty((K, tile))
    work = np.empty((2 + K, tile))
    bits = np.empty(tile, np.int64)
    lin = np.empty((K, tile), X.dtype)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _spherical_scores(X, start, stop, centre, prec, cross, offset_sq, base, ct, ct64,
                          sq, sq64, lin, sc)
        if not _finish(sc, row, start, stop, what, out, work, bits):
            return 1
    return 0


@_jit
def _tied_scores(X, start, stop, centre, chol_t, means2, means_sq, base, ct, ct64,  # noqa: ANN001, ANN202
                 white, lin, row, sc):
    d = X.shape[1]
    K, tile = sc.shape
    _centred_tile(X, start, stop, centre, ct, ct64)
    np.dot(chol_t, ct, white)
    np.dot(means2, white, lin)
    for b in range(tile):
        row[b] = 0.0
    for j in range(d):
        for b in range(tile):
            row[b] += white[j, b] * white[j, b]
    for b in range(tile):
        row[b] *= -0.5
    for k in range(K):
        for b in range(tile):
            sc[k, b] = (lin[k, b] - means_sq[k]) * 0.5 + base[k]


@_jit
def tied_chunk(X, w, centre, chol_t, means2, means_sq, base, tile, nk, s1, s2, acc):  # noqa: ANN001, ANN201
    """Tied covariance: whitens ``x - c`` once (``chol_t`` = U^T), scores
    ``(2 y.m_k - |m_k|^2) / 2`` with the row term ``-|y|^2 / 2``; accumulates
    ``s1`` (K, d) and the shared ``s2`` (d, d) about c."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    scaled = np.empty((d, tile))
    row = np.empty(tile)
    sc = np.empty((K, tile))
    work = np.empty((3, tile))
    bits = np.empty(tile, np.int64)
    white = np.empty((d, tile), X.dtype)
    lin = np.empty((K, tile), X.dtype)
    s1_t = np.empty((K, d))
    s2_t = np.empty((d, d))
    _weights(w, n, acc)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _tied_scores(X, start, stop, centre, chol_t, means2, means_sq, base, ct, ct64,
                     white, lin, row, sc)
        if not _normalise(sc, row, stop - start, w, start, acc, nk, work, bits):
            return 1
        np.dot(sc, _wide(ct, ct64).T, s1_t)
        s1 += s1_t
        for b in range(tile):
            total = 0.0
            for k in range(K):
                total += sc[k, b]
            for i in range(d):
                scaled[i, b] = _wide(ct, ct64)[i, b] * total
        np.dot(scaled, _wide(ct, ct64).T, s2_t)
        s2 += s2_t
    return _overflowed(acc, nk, s1, s2)


@_jit
def tied_rows(X, centre, chol_t, means2, means_sq, base, tile, what, out):  # noqa: ANN001, ANN201
    """Per-row results (see :func:`_finish`) for the tied covariance."""
    n, d = X.shape
    K = base.shape[0]
    ct, ct64 = np.empty((d, tile), X.dtype), np.empty((d, tile))
    row = np.empty(tile)
    sc = np.empty((K, tile))
    work = np.empty((2 + K, tile))
    bits = np.empty(tile, np.int64)
    white = np.empty((d, tile), X.dtype)
    lin = np.empty((K, tile), X.dtype)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _tied_scores(X, start, stop, centre, chol_t, means2, means_sq, base, ct, ct64,
                     white, lin, row, sc)
        if not _finish(sc, row, start, stop, what, out, work, bits):
            return 1
    return 0
