"""Second moments of a tile for full covariances, in compiled loops (numba).

Each component needs ``sum_b r_b y_b y_b^T`` over the tile's whitened rows
``y_b`` with its responsibilities ``r_b``: a (d, tile) @ (tile, d) product per
component, which a library call computes at a fraction of its speed (a short
output, a long sum, one call per component and tile). Here it is a loop that
sums 4x4 blocks of the lower triangle only, and in the blocks on the
diagonal their lower triangles (the matrix is symmetric: about half the
multiply-adds), with the 16 sums held in vector registers across the
tile's rows, and the responsibilities multiplied in on the way (no square
roots, no scaled copy of the whitened tile). The whitened rows are padded with
zero rows to a multiple of four features.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from .vectors import prefer_full_width

prefer_full_width()  # before any loop is compiled or loaded: see .vectors
_jit = njit(nogil=True, cache=True)
# The second moments sum over a tile's rows: letting the compiler reorder
# that sum (into one partial sum per vector lane) is what vectorises it.
_jit_sum = njit(nogil=True, cache=True, fastmath={"contract", "reassoc"})

#: Features are handled in blocks of this many.
BLOCK = 4


def _zero(a):  # noqa: ANN001, ANN202
    """Zero in ``a``'s dtype (float32 stays float32 when compiled)."""
    return a.dtype.type(0)


@overload(_zero)
def _zero_compiled(a):  # noqa: ANN001, ANN202
    if a.dtype == types.float32:
        return lambda a: np.float32(0.0)
    return lambda a: 0.0


def _like(a, x):  # noqa: ANN001, ANN202
    """``x`` rounded to ``a``'s dtype."""
    return a.dtype.type(x)


@overload(_like)
def _like_compiled(a, x):  # noqa: ANN001, ANN202
    if a.dtype == types.float32:
        return lambda a, x: np.float32(x)
    return lambda a, x: x


@_jit
def padded(d: int) -> int:
    """``d`` rounded up to a multiple of :data:`BLOCK`."""
    return -(-d // BLOCK) * BLOCK


@_jit_sum
def second_moments(white, resp, floor, d, scaled, out):  # noqa: ANN001, ANN201
    """Adds ``sum_b resp[b] white[i, b] white[j, b]`` to ``out[i, j]`` for
    the lower triangle ``j <= i < d``, in 4x4 blocks (``white`` is (dp,
    tile), ``out`` (dp, dp); entries above the diagonal within a diagonal
    block get their values too, copied from below it). Responsibilities at
    most ``floor`` count as zero (see ``full_loops.full_chunk``); ``scaled``
    (4, tile) is scratch in white's dtype."""
    dp, tile = white.shape
    block_second_moments(white.reshape((dp // BLOCK, BLOCK, tile)), 0, resp, floor, d,
                         scaled, out)


@_jit_sum
def block_second_moments(blocks, k, resp, floor, d, scaled, out):  # noqa: ANN001, ANN201
    """:func:`second_moments` of component ``k``'s rows in a block layout:
    ``blocks`` (dp/4, K*4, tile) holds feature ``4i + r`` of component k in
    ``blocks[i, 4k + r]`` (the layout the block-triangular whitening of
    :mod:`.full_loops` writes). Eight padded features take
    :func:`_eight_moments`."""
    tile = blocks.shape[2]
    lo = BLOCK * k
    if BLOCK < d <= 2 * BLOCK:
        _eight_moments(blocks[0, lo:lo + BLOCK], blocks[1, lo:lo + BLOCK], resp, floor, out)
        return
    for ib in range(-(-d // BLOCK)):
        yi = blocks[ib, lo:lo + BLOCK]
        for r in range(BLOCK):
            row, si = yi[r], scaled[r]
            for b in range(tile):
                si[b] = resp[b] * row[b] if resp[b] > floor else 0.0
        for jb in range(ib):
            _moment_block(scaled, blocks[jb, lo:lo + BLOCK], ib * BLOCK, jb * BLOCK, out)
        _diagonal_block(scaled, yi, ib * BLOCK, out)


@_jit_sum
def _moment_block(scaled, y, i, j, out):  # noqa: ANN001, ANN202
    """Adds ``scaled[0:4] @ y.T`` to ``out[i:i+4, j:j+4]`` (``y``: the (4,
    tile) whitened rows of features j to j+3)."""
    s0, s1, s2, s3 = scaled[0], scaled[1], scaled[2], scaled[3]
    y0, y1, y2, y3 = y[0], y[1], y[2], y[3]
    zero = _zero(y)  # sums in the tile's precision, as the reference
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = zero
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = zero
    for b in range(y0.shape[0]):
        v0, v1, v2, v3 = y0[b], y1[b], y2[b], y3[b]
        a00 += s0[b] * v0
        a01 += s0[b] * v1
        a02 += s0[b] * v2
        a03 += s0[b] * v3
        a10 += s1[b] * v0
        a11 += s1[b] * v1
        a12 += s1[b] * v2
        a13 += s1[b] * v3
        a20 += s2[b] * v0
        a21 += s2[b] * v1
        a22 += s2[b] * v2
        a23 += s2[b] * v3
        a30 += s3[b] * v0
        a31 += s3[b] * v1
        a32 += s3[b] * v2
        a33 += s3[b] * v3
    out[i, j] += a00
    out[i, j + 1] += a01
    out[i, j + 2] += a02
    out[i, j + 3] += a03
    out[i + 1, j] += a10
    out[i + 1, j + 1] += a11
    out[i + 1, j + 2] += a12
    out[i + 1, j + 3] += a13
    out[i + 2, j] += a20
    out[i + 2, j + 1] += a21
    out[i + 2, j + 2] += a22
    out[i + 2, j + 3] += a23
    out[i + 3, j] += a30
    out[i + 3, j + 1] += a31
    out[i + 3, j + 2] += a32
    out[i + 3, j + 3] += a33


@_jit_sum
def _diagonal_block(scaled, y, i, out):  # noqa: ANN001, ANN202
    """:func:`_moment_block` for ``j == i``: the 10 sums on and below the
    diagonal only (the block is symmetric; at d=8 a quarter of the products),
    each also added to its mirror entry above the diagonal."""
    s0, s1, s2, s3 = scaled[0], scaled[1], scaled[2], scaled[3]
    y0, y1, y2, y3 = y[0], y[1], y[2], y[3]
    zero = _zero(y)
    a00 = a10 = a11 = a20 = a21 = a22 = a30 = a31 = a32 = a33 = zero
    for b in range(y0.shape[0]):
        v0, v1, v2, v3 = y0[b], y1[b], y2[b], y3[b]
        a00 += s0[b] * v0
        a10 += s1[b] * v0
        a11 += s1[b] * v1
        a20 += s2[b] * v0
        a21 += s2[b] * v1
        a22 += s2[b] * v2
        a30 += s3[b] * v0
        a31 += s3[b] * v1
        a32 += s3[b] * v2
        a33 += s3[b] * v3
    out[i, i] += a00
    out[i + 1, i] += a10
    out[i + 1, i + 1] += a11
    out[i + 2, i] += a20
    out[i + 2, i + 1] += a21
    out[i + 2, i + 2] += a22
    out[i + 3, i] += a30
    out[i + 3, i + 1] += a31
    out[i + 3, i + 2] += a32
    out[i + 3, i + 3] += a33
    out[i, i + 1] += a10
    out[i, i + 2] += a20
    out[i, i + 3] += a30
    out[i + 1, i + 2] += a21
    out[i + 1, i + 3] += a31
    out[i + 2, i + 3] += a32


@_jit_sum
def _eight_moments(lo, hi, resp, floor, out):  # noqa: ANN001, ANN202
    """:func:`second_moments` for 5 to 8 features (eight padded rows): the 36
    sums of the lower triangle in two passes over the tile of 18 sums each,
    the responsibilities multiplied in on the way (no scaled rows written and
    read back, no products above the diagonal). In float32 they are rounded
    to float32 first (the loop then vectorises eight lanes wide): the
    products differ from the other blocks' by a rounding of float32.
    ``lo`` and ``hi``: the (4, tile) whitened rows of features 0-3 and 4-7."""
    y0, y1, y2, y3 = lo[0], lo[1], lo[2], lo[3]
    y4, y5, y6, y7 = hi[0], hi[1], hi[2], hi[3]
    zero = _zero(lo)
    # rows 0-3 with columns 0-3 (lower triangle), rows 4-7 with columns 0-1
    a00 = a10 = a11 = a20 = a21 = a22 = a30 = a31 = a32 = a33 = zero
    a40 = a41 = a50 = a51 = a60 = a61 = a70 = a71 = zero
    for b in range(y0.shape[0]):
        r = _like(lo, resp[b]) if resp[b] > floor else zero
        v0, v1, v2, v3 = y0[b], y1[b], y2[b], y3[b]
        s0, s1, s2, s3 = r * v0, r * v1, r * v2, r * v3
        s4, s5, s6, s7 = r * y4[b], r * y5[b], r * y6[b], r * y7[b]
        a00 += s0 * v0
        a10 += s1 * v0
        a11 += s1 * v1
        a20 += s2 * v0
        a21 += s2 * v1
        a22 += s2 * v2
        a30 += s3 * v0
        a31 += s3 * v1
        a32 += s3 * v2
        a33 += s3 * v3
        a40 += s4 * v0
        a41 += s4 * v1
        a50 += s5 * v0
        a51 += s5 * v1
        a60 += s6 * v0
        a61 += s6 * v1
        a70 += s7 * v0
        a71 += s7 * v1
    # rows 4-7 with columns 2-3, and with columns 4-7 (lower triangle)
    a42 = a43 = a52 = a53 = a62 = a63 = a72 = a73 = zero
    a44 = a54 = a55 = a64 = a65 = a66 = a74 = a75 = a76 = a77 = zero
    for b in range(y0.shape[0]):
        r = _like(lo, resp[b]) if resp[b] > floor else zero
        v2, v3, v4, v5, v6, v7 = y2[b], y3[b], y4[b], y5[b], y6[b], y7[b]
        s4, s5, s6, s7 = r * v4, r * v5, r * v6, r * v7
        a42 += s4 * v2
        a43 += s4 * v3
        a52 += s5 * v2
        a53 += s5 * v3
        a62 += s6 * v2
        a63 += s6 * v3
        a72 += s7 * v2
        a73 += s7 * v3
        a44 += s4 * v4
        a54 += s5 * v4
        a55 += s5 * v5
        a64 += s6 * v4
        a65 += s6 * v5
        a66 += s6 * v6
        a74 += s7 * v4
        a75 += s7 * v5
        a76 += s7 * v6
        a77 += s7 * v7
    sums = ((a00, 0, 0), (a10, 1, 0), (a11, 1, 1), (a20, 2, 0), (a21, 2, 1), (a22, 2, 2),
            (a30, 3, 0), (a31, 3, 1), (a32, 3, 2), (a33, 3, 3),
            (a40, 4, 0), (a41, 4, 1), (a42, 4, 2), (a43, 4, 3), (a44, 4, 4),
            (a50, 5, 0), (a51, 5, 1), (a52, 5, 2), (a53, 5, 3), (a54, 5, 4), (a55, 5, 5),
            (a60, 6, 0), (a61, 6, 1), (a62, 6, 2), (a63, 6, 3), (a64, 6, 4), (a65, 6, 5),
            (a66, 6, 6), (a70, 7, 0), (a71, 7, 1), (a72, 7, 2), (a73, 7, 3), (a74, 7, 4),
            (a75, 7, 5), (a76, 7, 6), (a77, 7, 7))
    for value, i, j in sums:
        out[i, j] += value
        if j < i and i // BLOCK == j // BLOCK:  # above the diagonal in a diagonal block
            out[j, i] += value
