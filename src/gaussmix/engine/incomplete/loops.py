"""Compiled loops for incomplete rows (numba, no GIL held).

:func:`statistics`, :func:`scores` and :func:`impute` take a chunk's
incomplete rows tile by tile (:mod:`.tiles`: runs of rows that miss the same
number q of coordinates), and score each tile's lanes, one per (row,
component) pair, by :func:`.tile_scores._tile_scores`, which also leaves the
filled residuals ``E[x | x_o, k] - mu_k`` and ``L_mm^-1`` in the tile's
buffers (see :mod:`.tile_scores` for how).

Then the responsibilities by log-sum-exp over K, and the moments about the
component means: ``sum g f`` and ``sum g f f^T`` (the latter by the complete
kernel's 4 x 4-block loops over the lower triangle with the responsibilities
multiplied in, :func:`..fused.moments.second_moments`, for which ``F`` has
its rows padded with zeros to a multiple of four) and ``g L_mm^-1`` added
at each row's missing rows and columns (a scatter, all K components at once,
:func:`_add_conditionals`). Each tile's missing pairs become flat indices
once, for the gathers of ``L_mm`` and the scatter, which move a lane's K
components four at a time (:mod:`.four_wide`). Second moments are
accumulated in lower triangles (the caller mirrors them). Everything is
float64.

``diagonal`` selects the closed forms for diagonal precisions (diag and
spherical types): the conditional mean is the component mean, the conditional
variances are the component variances, and only the diagonal of the second
moments is accumulated.

Rows must come sorted by their number of missing coordinates (the tiles are
runs of equal q); the loops first copy them in that order
(:func:`.tiles._sorted_copy`). Every loop returns a status: 0 when all went well, 1 when a
row's scores are not all defined or have no finite maximum (far beyond every
component: the caller recomputes the chunk with the NumPy reference, whose
behaviour such rows then get), and 2 when a component's precision restricted
to a row's missing coordinates is not positive definite (the reference then
raises its error).
"""


from __future__ import annotations

import math

import numpy as np

from ..fused.moments import padded, second_moments
from ..fused.tile_steps import _exp_shifted
from .four_wide import add_product4
from .lanes import QMAX
from .tile_scores import _PAD, _part, _tile_scores, layout
from .tiles import BUDGET, _jit, _lanes_jit, _next_tile, _sorted_copy, _stride, _tile_rows

# A responsibility below exp(_NEGLIGIBLE) = 1e-200 of the row's largest is
# taken as 0: its terms are far below the rounding of any moment that counts,
# and products of such numbers would be subnormal, which costs a hundred
# times the time of normal arithmetic.
_NEGLIGIBLE = -460.0
_NEGLIGIBLE_RATIO = math.exp(_NEGLIGIBLE)


@_jit
def by_count(X, order):  # noqa: ANN001, ANN201
    """The rows of X ordered by their number of NaN (stable: a counting
    sort, one pass over X) into ``order`` (n,); returns the number of
    complete rows, which come first."""
    n, d = X.shape
    count = np.empty(n, np.int64)
    start = np.zeros(d + 2, np.int64)
    for i in range(n):
        q = 0
        for j in range(d):
            q += np.isnan(X[i, j])
        count[i] = q
        start[q + 1] += 1
    for q in range(d + 1):
        start[q + 1] += start[q]
    for i in range(n):
        order[start[count[i]]] = i
        start[count[i]] += 1
    return start[0]


@_jit
def _responsibilities(sc, n, rows, t0, w, acc, top, total, bits):  # noqa: ANN001, ANN202
    """Scores (K, n) into weighted responsibilities in place, adding
    ``w log p(x_o)`` to ``acc[0]``; False if a row has no finite score.
    ``top`` and ``total`` are float64 work arrays of n lanes or more, ``bits``
    an int64 one; the exponentials are the fused kernel's vectorised ones."""
    K = sc.shape[0]
    for r in range(n):
        top[r] = sc[0, r]
        total[r] = 0.0
    for k in range(1, K):
        for r in range(n):
            top[r] = max(top[r], sc[k, r])
    for r in range(n):
        if not np.isfinite(top[r]):
            return False
    for k in range(K):
        _exp_shifted(sc[k, :n], top, bits)
        for r in range(n):
            sc[k, r] = sc[k, r] if sc[k, r] > _NEGLIGIBLE_RATIO else 0.0
            total[r] += sc[k, r]
    for r in range(n):
        wi = w[rows[t0 + r]]
        acc[0] += wi * (math.log(total[r]) + top[r])
        total[r] = wi / total[r]
    for k in range(K):
        for r in range(n):
            sc[k, r] *= total[r]
    return True


@_lanes_jit
def _add_moments(Fk, g, n, s1k, s2k, diagonal):  # noqa: ANN001, ANN202
    """``s1k += sum_r g_r f_r`` over the first d rows of ``Fk`` (dp, n), and
    for diagonal precisions the diagonal of ``sum_r g_r f_r f_r^T`` into
    ``s2k``; returns ``sum_r g_r``. (The full second moments are
    :func:`..fused.moments.second_moments`'.)"""
    d = s1k.shape[0]
    total = 0.0
    for r in range(n):
        total += g[r]
    for a in range(d):
        s = 0.0
        for r in range(n):
            s += g[r] * Fk[a, r]
        s1k[a] += s
        if diagonal:
            s = 0.0
            for r in range(n):
                s += g[r] * Fk[a, r] * Fk[a, r]
            s2k[a, a] += s
    return total


@_jit
def _add_conditional_diagonal(g, n, q, M, P, s2k):  # noqa: ANN001, ANN202
    """``s2k[m, m] += g_r / P_mm`` for each lane r: the conditional variances
    for diagonal precisions (``P`` their diagonal, (1, d))."""
    for a in range(q):
        for r in range(n):
            s2k[M[a, r], M[a, r]] += g[r] / P[0, M[a, r]]

@_jit
def _add_conditionals(sc, n, q, pairs, W, s, C, g):  # noqa: ANN001, ANN202
    """``C[(m_a d + m_b) K + k] += g_kr (L_mm^-1)_ab`` for each lane ``r K + k``
    (lower triangle), ``g`` the responsibilities ``sc`` (K, n), ``L_mm^-1``
    in the rows of ``W`` (stride s). ``C`` (d * d * K) keeps a pair's K
    entries side by side, as the lanes keep a row's components: one lane's
    pair adds K neighbours to K neighbours, four at a time. ``g`` is scratch
    of K n numbers (the responsibilities by row). The components go eight
    at a time (two steps of four), then four, then one at a time, each a
    loop with its count known before it starts, and the indices unsigned:
    a ``while`` loop over steps of four with signed indices took 2.3 times
    as long (d = 16, K = 8)."""
    K = sc.shape[0]
    for k in range(K):
        for r in range(n):
            g[r * K + k] = sc[k, r]
    eight, four = K - K % 8, K - K % 4
    for a in range(q):
        for b in range(a + 1):
            row, P = (a * (a + 1) // 2 + b) * s, pairs[a, b]
            for r in range(n):  # no branch on g = 0 (unpredictable, and adds 0)
                at, gi = np.uint64(P[r]) * np.uint64(K), np.uint64(r * K)
                wi = np.uint64(row + r * K)
                for k in range(0, eight, 8):
                    u = np.uint64(k)
                    add_product4(C, at + u, g, gi + u, W, wi + u)
                    u += np.uint64(4)
                    add_product4(C, at + u, g, gi + u, W, wi + u)
                for k in range(eight, four, 4):
                    u = np.uint64(k)
                    add_product4(C, at + u, g, gi + u, W, wi + u)
                for k in range(four, K):
                    u = np.uint64(k)
                    C[at + u] += g[gi + u] * W[wi + u]


@_jit
def _buffers(K, d, X, rows, diagonal):  # noqa: ANN001, ANN202
    """Work arrays for tiles of at most :func:`_tile_rows` rows of
    ``X[rows]`` (sorted by their number of NaN: the last misses the most,
    which bounds the lanes' buffers; diagonal precisions need none of them:
    at d = 3,000, K = 5 the general buffers would take 0.7 GB)."""
    cap = _tile_rows(K, d, 0)
    dp = padded(d)
    # Indices read from arrays are unsigned: numba then skips its test for a
    # negative index (an add and a select at each use; the moves between the
    # tiles' arrays and the lanes, d = 16, K = 8: 6% of a row's time).
    M = np.empty((d, cap), np.uint32)  # missing columns, (q, rows) in use
    XT = np.empty((d, cap))
    # F (K, dp rows) and PF (K, d rows) are cut to each tile's rows by
    # _tile_views, so that the BLAS products get contiguous arrays.
    F = np.empty(K * (dp * cap + _PAD))
    q_most = int(np.isnan(X[rows[-1]]).sum()) if rows.shape[0] else 0
    q_lanes = 0 if diagonal else q_most
    PF = np.empty(K * (d * cap + _PAD) if q_lanes else 0)
    size = 0  # the lanes' rows of lanes_source.layout, stride _stride
    for q in range(1, q_lanes + 1):
        size = max(size, layout(q)[0] * _stride(K, q, _tile_rows(K, d, q)))
    # (q, q, rows): m_a d + m_b, below 2^32 for any d whose K d^2 precisions fit
    pairs = np.empty(max(BUDGET // K, q_most * q_most), np.uint32)
    generic = np.empty(2 * max(BUDGET, K * q_lanes * q_lanes) if q_lanes > QMAX else 0)
    return (M, XT, F, PF, np.empty(size), pairs, generic, np.empty((6, cap * K)),
            np.empty((K, cap)))


@_jit
def _tile_views(F, PF, W, pairs, M, K, d, q, n):  # noqa: ANN001, ANN202
    """The flat buffers of :func:`_buffers` as arrays for a tile of n rows
    (see :func:`.tile_scores._part`): F (K, dp n + pad) with its rows from d on zero (dp =
    padded(d), for :func:`..fused.moments.second_moments`), PF (K, d n +
    pad), the lanes' rows
    (layout(q) rows of stride s) and s, and the pairs (q, q, n), whose lower
    triangles get the flat indices ``m_a d + m_b`` of each lane's missing
    pairs (found once for all K components)."""
    P = pairs[:q * q * n].reshape((q, q, n))
    for a in range(q):
        for b in range(a + 1):
            for r in range(n):
                P[a, b, r] = M[a, r] * d + M[b, r]
    s = _stride(K, q, n)
    dp = padded(d)
    F2 = F[:K * (dp * n + _PAD)].reshape((K, dp * n + _PAD))
    for k in range(K):
        for i in range(d * n, dp * n):
            F2[k, i] = 0.0
    PF2 = (PF[:K * (d * n + _PAD)].reshape((K, d * n + _PAD)) if PF.shape[0]
           else np.empty((0, 0)))
    return F2, PF2, W[:min(layout(q)[0] * s, W.shape[0])], s, P


@_jit
def _transposed(prec, chol, diagonal):  # noqa: ANN001, ANN202
    """The precisions as (d * d * K,), component fastest, and the factors
    transposed, (K, d, d); for diagonal precisions (given as their
    diagonals, (K, 1, d)) no precisions and the diagonals as they are."""
    K, d = prec.shape[0], prec.shape[2]
    if diagonal:
        return np.empty(0), chol
    return (np.ascontiguousarray(prec.reshape((K, d * d)).T).reshape(d * d * K),
            np.ascontiguousarray(chol.transpose((0, 2, 1))))


@_jit
def statistics(X, rows, w, means, prec, chol, const, diagonal, nk, s1, s2, acc):  # noqa: ANN001, ANN201
    """Adds the moments of ``X[rows]`` (weights ``w[rows]``; rows sorted by
    their number of NaN) about ``means`` (K, d) to ``nk`` (K,), ``s1``
    (K, d) and the lower triangles of ``s2`` (K, d, d; only the diagonals
    when ``diagonal``), and ``w log p(x_o)`` to ``acc[0]``. ``prec`` and
    ``chol`` are (K, d, d), or (K, 1, d) diagonals when ``diagonal``."""
    K, d = means.shape
    M, XT, Fb, PFb, Wb, pairb, generic, work, sc = _buffers(K, d, X, rows, diagonal)
    PT, UT = _transposed(prec, chol, diagonal)
    Xs = _sorted_copy(X, rows)
    # full second moments in padded lower-triangular blocks, added to s2 at
    # the end (second_moments also writes above the diagonal in its blocks)
    dp = padded(d)
    S2 = np.zeros((K, dp, dp)) if not diagonal else np.zeros((K, 0, 0))
    C = np.zeros(d * d * K)  # the conditional covariances, see _add_conditionals
    g = np.empty(K * sc.shape[1])
    scaled = np.empty((4, sc.shape[1]))
    bits = np.empty(sc.shape[1], np.int64)
    t0 = 0
    while t0 < rows.shape[0]:
        n, q = _next_tile(Xs, t0, K, M, XT)
        F, PF, W, s, pairs = _tile_views(Fb, PFb, Wb, pairb, M, K, d, q, n)
        status = _tile_scores(XT, n, q, M, pairs, means, prec, PT, UT, const, diagonal, F, W,
                              s, PF, True, work, generic, sc)
        if status:
            return status
        if not _responsibilities(sc, n, rows, t0, w, acc, work[0], work[1], bits):
            return 1
        for k in range(K):
            Fk = _part(F, k, dp, n)
            nk[k] += _add_moments(Fk, sc[k], n, s1[k], s2[k], diagonal)
            if diagonal:
                _add_conditional_diagonal(sc[k], n, q, M, prec[k], s2[k])
            else:
                second_moments(Fk, sc[k], -np.inf, d, scaled, S2[k])
        if not diagonal:
            _add_conditionals(sc, n, q, pairs, W, s, C, g)
        t0 += n
    if not diagonal:
        for k in range(K):
            for a in range(d):
                for b in range(a + 1):
                    s2[k, a, b] += S2[k, a, b] + C[(a * d + b) * K + k]
    return 0


@_jit
def scores(X, rows, means, prec, chol, const, diagonal, out):  # noqa: ANN001, ANN201
    """``log pi_k + log N(x_o | k)`` of ``X[rows]`` (sorted by their number of
    NaN) into ``out`` (K, len(rows))."""
    K, d = means.shape
    M, XT, Fb, PFb, Wb, pairb, generic, work, sc = _buffers(K, d, X, rows, diagonal)
    PT, UT = _transposed(prec, chol, diagonal)
    Xs = _sorted_copy(X, rows)
    t0 = 0
    while t0 < rows.shape[0]:
        n, q = _next_tile(Xs, t0, K, M, XT)
        F, PF, W, s, pairs = _tile_views(Fb, PFb, Wb, pairb, M, K, d, q, n)
        status = _tile_scores(XT, n, q, M, pairs, means, prec, PT, UT, const, diagonal, F, W,
                              s, PF, False, work, generic, sc)
        if status:
            return status
        for k in range(K):
            for r in range(n):
                out[k, t0 + r] = sc[k, r]
        t0 += n
    return 0


@_jit
def impute(X, rows, means, prec, chol, const, diagonal):  # noqa: ANN001, ANN201
    """Replaces the NaN of ``X[rows]`` (sorted by their number of NaN) in
    place by ``E[x_m | x_o]``."""
    K, d = means.shape
    M, XT, Fb, PFb, Wb, pairb, generic, work, sc = _buffers(K, d, X, rows, diagonal)
    PT, UT = _transposed(prec, chol, diagonal)
    Xs = _sorted_copy(X, rows)
    ones, acc = np.ones(X.shape[0]), np.zeros(1)
    bits = np.empty(sc.shape[1], np.int64)
    t0 = 0
    while t0 < rows.shape[0]:
        n, q = _next_tile(Xs, t0, K, M, XT)
        F, PF, W, s, pairs = _tile_views(Fb, PFb, Wb, pairb, M, K, d, q, n)
        status = _tile_scores(XT, n, q, M, pairs, means, prec, PT, UT, const, diagonal, F, W,
                              s, PF, False, work, generic, sc)
        if status:
            return status
        if not _responsibilities(sc, n, rows, t0, ones, acc, work[0], work[1], bits):
            return 1
        for r in range(n):
            for a in range(q):
                m = M[a, r]
                fill = 0.0
                for k in range(K):
                    fill += sc[k, r] * (means[k, m] + F[k, m * n + r])
                X[rows[t0 + r], m] = fill
        t0 += n
    return 0
