"""The compiled tile loops of the fused E-step for spherical covariances.

:func:`spherical_chunk` folds a chunk into statistics, :func:`spherical_rows`
gives its per-row results (see :mod:`.tile_steps` for what the loops share and
return).
"""

from __future__ import annotations

import numpy as np

from .tile_steps import _centred_tile, _finish, _jit, _normalise, _overflowed, _weights, _wide


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

