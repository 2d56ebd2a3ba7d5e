"""The compiled tile loops of the fused E-step for diagonal covariances.

:func:`diag_chunk` folds a chunk into statistics, :func:`diag_rows` gives its
per-row results (see :mod:`.tile_steps` for what the loops share and return).
"""

from __future__ import annotations

import numpy as np

from .tile_steps import _centred_tile, _finish, _jit, _normalise, _overflowed, _weights, _wide


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

