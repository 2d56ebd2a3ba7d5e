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


@_jit
def padded(d: int) -> int:
    """``d`` rounded up to a multiple of :data:`BLOCK`."""
    return -(-d // BLOCK) * BLOCK


@_jit_sum
def second_moments(white, resp, floor, d, scaled, out):  # noqa: ANN001, ANN201
    """Adds ``sum_b resp[b] white[i, b] white[j, b]`` to ``out[i, j]`` for
    the lower triangle ``j <= i < d``, in 4x4 blocks (``out`` is (dp, dp);
    entries above the diagonal within a diagonal block get their values
    too, copied from below it). Responsibilities at most ``floor`` count as zero (see
    ``loops.full_chunk``); ``scaled`` (4, tile) is scratch in white's dtype."""
    tile = white.shape[1]
    for i in range(0, d, BLOCK):
        for r in range(BLOCK):
            yi, si = white[i + r], scaled[r]
            for b in range(tile):
                si[b] = resp[b] * yi[b] if resp[b] > floor else 0.0
        for j in range(0, i, BLOCK):
            _moment_block(scaled, white, i, j, out)
        _diagonal_block(scaled, white, i, out)


@_jit_sum
def _moment_block(scaled, white, i, j, out):  # noqa: ANN001, ANN202
    """Adds ``scaled[0:4] @ white[j:j+4].T`` to ``out[i:i+4, j:j+4]``."""
    s0, s1, s2, s3 = scaled[0], scaled[1], scaled[2], scaled[3]
    y0, y1, y2, y3 = white[j], white[j + 1], white[j + 2], white[j + 3]
    zero = _zero(white)  # sums in the tile's precision, as the reference
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
def _diagonal_block(scaled, white, i, out):  # noqa: ANN001, ANN202
    """:func:`_moment_block` for ``j == i``: the 10 sums on and below the
    diagonal only (the block is symmetric; at d=8 a quarter of the products),
    each also added to its mirror entry above the diagonal."""
    s0, s1, s2, s3 = scaled[0], scaled[1], scaled[2], scaled[3]
    y0, y1, y2, y3 = white[i], white[i + 1], white[i + 2], white[i + 3]
    zero = _zero(white)
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
