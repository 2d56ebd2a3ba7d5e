"""Tiles of incomplete rows for the compiled loops (numba, no GIL held).

A tile is a run of rows, sorted by their number q of missing coordinates,
that share q (their patterns may differ): :func:`_sorted_copy` lays a
chunk's incomplete rows out in that order once, :func:`_next_tile` cuts the
next run from it (transposed, with each row's missing columns), at most
:func:`_tile_rows` rows. See :mod:`.tile_scores` for what is computed on a tile.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .lanes import LANES, QMAX

_jit = njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
# For sums over a tile's lanes: summed in vector lanes (a plain loop is one
# long dependency chain); the order of the rows' terms differs by rounding.
_lanes_jit = njit(nogil=True, cache=True, error_model="numpy",
                  fastmath={"contract", "reassoc"})
TILE = 128          # rows per tile at most
BUDGET = 1 << 16    # numbers in a tile's factors (K, q, q, rows): bounds the tile


@_jit
def _missing_of(X, i, M, XT, r):  # noqa: ANN001, ANN202
    """Row ``X[i]`` into ``XT[:, r]`` and its missing (NaN) columns into
    ``M[:, r]``; returns their number. Branch-free (whether an entry is NaN
    is unpredictable): every column is written at slot q, which only the
    missing ones advance."""
    q = 0
    for j in range(X.shape[1]):
        v = X[i, j]
        XT[j, r] = v
        M[q, r] = j
        q += np.isnan(v)
    return q


@_jit
def _tile_rows(K, d, q):  # noqa: ANN001, ANN202
    """Rows per tile at most for q missing coordinates: :data:`TILE`, the
    factors' :data:`BUDGET`, and at most :data:`.lanes.LANES` (row,
    component) lanes (one row where K alone exceeds either)."""
    return max(1, min(TILE, BUDGET // (K * max(d, q * q)), LANES // K))


@_jit
def _stride(K, q, n):  # noqa: ANN001, ANN202
    """Distance between the rows of a tile's lanes (n rows, K components):
    :data:`.lanes.LANES` where the kernels of :mod:`.lanes` take them, else
    the lanes themselves."""
    return LANES if q <= QMAX and n * K <= LANES else n * K


@_jit
def _sorted_copy(X, rows):  # noqa: ANN001, ANN202
    """``X[rows]``, read in one pass along ``X``: the rows come sorted by
    their number of NaN, which scatters them over the chunk, and reading
    them in that order waited on memory for each (a third of the time of a
    row at d = 16, K = 8); read in order, the hardware prefetches them, and
    the copy's writes run along a few runs (one per number of NaN)."""
    at = np.full(X.shape[0], -1, np.int64)
    for j in range(rows.shape[0]):
        at[rows[j]] = j
    out = np.empty((rows.shape[0], X.shape[1]))
    for i in range(X.shape[0]):
        j = at[i]
        if j >= 0:
            for c in range(X.shape[1]):
                out[j, c] = X[i, c]
    return out


@_jit
def _next_tile(Xs, t0, K, M, XT):  # noqa: ANN001, ANN202
    """The tile starting at row t0 of ``Xs`` (the rows of :func:`_sorted_copy`):
    the run of rows with its number q of missing coordinates, at most
    :func:`_tile_rows`; the rows transposed into ``XT[:, :n]``, their
    missing columns into ``M[:q, :n]``. Returns (n, q)."""
    d = Xs.shape[1]
    q = _missing_of(Xs, t0, M, XT, 0)
    cap = _tile_rows(K, d, q)
    n = 1
    while (n < cap and t0 + n < Xs.shape[0]
           and _missing_of(Xs, t0 + n, M, XT, n) == q):
        n += 1
    return n, q
