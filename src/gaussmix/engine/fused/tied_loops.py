"""The compiled tile loops of the fused E-step for the tied covariance.

:func:`tied_chunk` folds a chunk into statistics, :func:`tied_rows` gives its
per-row results (see :mod:`.tile_steps` for what the loops share and return).
"""

from __future__ import annotations

import numpy as np

from .tile_steps import _centred_tile, _finish, _jit, _normalise, _overflowed, _weights, _wide


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
