"""The compiled tile loops of the fused E-step for full covariances.

:func:`full_chunk` folds a chunk into statistics, :func:`full_rows` gives its
per-row results (see :mod:`.tile_steps` for what the loops share and return).
The whitened rows' second moments come from :mod:`.moments`; rows far from a
component are summed from their residuals (:data:`FAR_DISTANCE`).
"""

from __future__ import annotations

import numpy as np

from .moments import BLOCK, block_second_moments, padded
from .tile_steps import _centred_tile, _finish, _jit, _normalise, _overflowed, _weights, _wide


@_jit
def _full_scores(X, start, stop, centre, stack, base, tri, cb, ct64, white, sc, sq):  # noqa: ANN001, ANN202
    """Scores of one tile (into ``sc``) and its whitened copy (``white``,
    (dp/4, K*4, tile): feature 4i + r of component k in ``white[i, 4k + r]``,
    dp = d rounded up to a multiple of four, the features from d on zero).
    ``cb`` (d+2, tile) holds the tile's centred rows between two rows of
    ones (``cb[1:]`` is the ``[x - c, 1]`` of the other loops, ``cb[:j+1]``
    the ``[1, x - c]`` of the first j features). ``stack`` is
    :func:`_block_stack`'s. Where ``tri`` holds the factors (see
    :func:`_eight_factors`), the whitening is :func:`_whiten_eight` (``sq``:
    its scratch)."""
    d = X.shape[1]
    K = base.shape[0]
    tile = sc.shape[1]
    ct = cb[1:]
    _centred_tile(X, start, stop, centre, ct, ct64)
    if stop - start < tile:
        ct[d, stop - start:] = 0
        cb[0, stop - start:] = 0
    if tri.shape[0] == K:
        for k in range(K):
            _whiten_eight(ct, d, tri[k], base[k], white[0, k * BLOCK:(k + 1) * BLOCK],
                          white[1, k * BLOCK:(k + 1) * BLOCK], sc[k], sq)
        return
    flat, starts, widths = stack
    for i in range(white.shape[0]):
        factors = flat[starts[i]:starts[i + 1]].reshape((K * BLOCK, widths[i] + 1))
        np.dot(factors, cb[:widths[i] + 1], white[i])
    for k in range(K):
        score = sc[k]
        for b in range(tile):
            score[b] = 0.0
        for i in range(white.shape[0]):  # padding rows are zero
            w = white[i, k * BLOCK:(k + 1) * BLOCK]
            w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
            for b in range(tile):
                score[b] += (w0[b] * w0[b] + w1[b] * w1[b]) + (w2[b] * w2[b] + w3[b] * w3[b])
        for b in range(tile):
            score[b] = -0.5 * score[b] + base[k]


@_jit
def _block_stack(stacked, K, d):  # noqa: ANN001, ANN202
    """The whitening factors ``stacked`` (K*d, d+1; the offsets in column d)
    cut into blocks of four features, for one product per block:
    ``(flat, starts, widths)``, block i being ``flat[starts[i]:starts[i+1]]``
    as a (K*4, widths[i] + 1) matrix whose row 4k + r is component k's
    feature 4i + r (zero from d on), its offset first, then its factors on
    the first ``widths[i]`` features. The factors are lower triangular (as
    the M-step's are), so block i needs only the first 4i + 4 features:
    with 16 blocks (d=64) about half the multiply-adds of one (K*d, d+1)
    product. A block whose factors reach further (a user's start) takes all
    d."""
    nb = padded(d) // BLOCK
    widths = np.empty(nb, np.int64)
    starts = np.zeros(nb + 1, np.int64)
    for i in range(nb):
        width = min(BLOCK * (i + 1), d)
        for k in range(K):
            for f in range(BLOCK * i, min(BLOCK * (i + 1), d)):
                for j in range(width, d):
                    if stacked[k * d + f, j] != 0:
                        width = d
        widths[i] = width
        starts[i + 1] = starts[i] + K * BLOCK * (width + 1)
    flat = np.zeros(starts[nb], stacked.dtype)
    for i in range(nb):
        width = widths[i]
        for k in range(K):
            for f in range(BLOCK * i, min(BLOCK * (i + 1), d)):
                row = starts[i] + (BLOCK * k + f - BLOCK * i) * (width + 1)
                flat[row] = stacked[k * d + f, d]
                for j in range(width):
                    flat[row + 1 + j] = stacked[k * d + f, j]
    return flat, starts, widths


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
def _whiten_eight(ct, d, f, base, lo, hi, score, sq):  # noqa: ANN001, ANN202
    """One component's whitened rows ``y = f[:, :8] [x - c] + f[:, 8]``
    (``f`` lower triangular, (8, 9)) into ``lo`` and ``hi`` (4, tile each:
    features 0-3 and 4-7) and its score
    ``-|y|^2 / 2 + base`` into ``score``, in one pass over the tile: 44
    multiply-adds per row against the 72 of the library product (which
    cannot skip the zeros above the diagonal), and no second pass for the
    squares. Features beyond d read the row of ones (their factors are 0);
    ``sq`` (tile,) is scratch in white's dtype."""
    x0, x1, x2, x3 = ct[0], ct[1], ct[2], ct[3]
    x4, x5, x6, x7 = ct[4], ct[min(5, d)], ct[min(6, d)], ct[min(7, d)]
    y0, y1, y2, y3 = lo[0], lo[1], lo[2], lo[3]
    y4, y5, y6, y7 = hi[0], hi[1], hi[2], hi[3]
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
    stack = _block_stack(stacked, K, d)
    tri = _eight_factors(stacked, K, d)
    sq = np.empty(tile, X.dtype)
    cb = np.ones((d + 2, tile), X.dtype)
    ct = cb[1:]
    ct64 = np.ones((d + 1, tile))
    sc = np.empty((K, tile))
    work = np.empty((3, tile))
    bits = np.empty(tile, np.int64)
    white = np.empty((dp // BLOCK, K * BLOCK, tile), X.dtype)
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
        _full_scores(X, start, stop, centre, stack, base, tri, cb, ct64, white, sc, sq)
        n_far = _far_pairs(sc, base, stop - start, far_sq, far)
        if not _normalise(sc, row, stop - start, w, start, acc, nk, work, bits):
            return 1
        np.dot(sc, _wide(ct, ct64).T, mom_t)
        mom += mom_t
        if n_far:
            _far_moments(sc, far, stop - start, _wide(ct, ct64), offsets, far_sq, s2far)
        for k in range(K):
            block_second_moments(white, k, sc[k], floor, d, scaled, s2w[k])
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
    cb = np.ones((d + 2, tile), X.dtype)
    ct64 = np.ones((d + 1, tile))
    sc = np.empty((K, tile))
    work = np.empty((2 + K, tile))
    bits = np.empty(tile, np.int64)
    stack = _block_stack(stacked, K, d)
    tri = _eight_factors(stacked, K, d)
    sq = np.empty(tile, X.dtype)
    white = np.empty((padded(d) // BLOCK, K * BLOCK, tile), X.dtype)
    row = np.zeros(tile)
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        _full_scores(X, start, stop, centre, stack, base, tri, cb, ct64, white, sc, sq)
        if not _finish(sc, row, start, stop, what, out, work, bits):
            return 1
    return 0
