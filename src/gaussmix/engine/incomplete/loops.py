"""Compiled loops for incomplete rows (numba, no GIL held).

The identities of :mod:`.conditional`, computed for a *tile* of rows that
miss the same number q of coordinates (their patterns may differ), with
every step vectorised over the tile's rows (arrays laid out (..., rows)) or
over its *lanes*, one per (row, component) pair: lane ``r K + k``, so that
a row's K components lie side by side. For each component k:

- ``F``: the residuals ``x - mu_k`` of the tile, transposed (d, rows), with
  the missing entries zeroed (``r~``);
- ``L F``: one BLAS product (d x d per row), whose rows at each row's
  missing coordinates give ``y = -(L r~)_m`` and whose dot with ``F`` gives
  ``r~^T L r~``, both moved into the lanes.

Then, for all lanes at once, the q x q part: the ``L D L^T`` factors of the
block ``L_mm`` (gathered for the K components of a row side by side), the
conditional mean offset ``delta = L_mm^-1 y`` (written into ``F``, which
then holds ``E[x | x_o, k] - mu_k``), the marginal distance
``r~^T L r~ - y^T L_mm^-1 y`` (the minimum over the missing values of the
full quadratic form, without a second d x d product; a difference, whose
rounding error, about 1e-16 of ``r~^T L r~``, grows relative to the result
only where the observed coordinates nearly determine the missing ones,
where that lane's distance is summed as ``|U^T f|^2`` instead: see
:data:`CANCELLATION`), ``det L_mm`` (one vectorised logarithm per lane,
:func:`.log_det._logs`) and, for the moments, ``L_mm^-1``. For q up to
:data:`.lanes.QMAX` this is one straight-line kernel per q (:mod:`.lanes`,
written by :mod:`.lanes_source`) that keeps every number of a lane in
registers and vectorises over the lanes as a whole; beyond it,
:func:`_lanes_generic` does the same as loops over the lanes.

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
(:func:`_sorted_copy`). Every loop returns a status: 0 when all went well, 1 when a
row's scores are not all defined or have no finite maximum (far beyond every
component: the caller recomputes the chunk with the NumPy reference, whose
behaviour such rows then get), and 2 when a component's precision restricted
to a row's missing coordinates is not positive definite (the reference then
raises its error).
"""


from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..fused.moments import padded, second_moments
from ..fused.tile_steps import _exp_shifted
from .four_wide import add_product4, copy4
from .lanes import LANES, QMAX, lanes
from .lanes_source import layout as _layout
from .log_det import _log_det, _times
from .tiles import BUDGET, _jit, _next_tile, _sorted_copy, _stride, _tile_rows

# For sums over a tile's lanes: summed in vector lanes (a plain loop is one
# long dependency chain); the order of the rows' terms differs by rounding.
_lanes_jit = njit(nogil=True, cache=True, error_model="numpy",
                 fastmath={"contract", "reassoc"})

LOG_2PI = math.log(2.0 * math.pi)
layout = _jit(_layout)  # rows of a component's per-lane numbers (lanes_source)
# A responsibility below exp(_NEGLIGIBLE) = 1e-200 of the row's largest is
# taken as 0: its terms are far below the rounding of any moment that counts,
# and products of such numbers would be subnormal, which costs a hundred
# times the time of normal arithmetic.
_NEGLIGIBLE = -460.0
_NEGLIGIBLE_RATIO = math.exp(_NEGLIGIBLE)
# A lane's marginal distance, the difference ``r~^T L r~ - y^T L_mm^-1 y``,
# errs by some 1e-16 of ``r~^T L r~``; where that exceeds this many times the
# distance (plus one), the observed coordinates nearly determine the missing
# ones (nearly collinear data: the difference was off by 2e-3 in a
# log-density at condition number 1e14), and the lane's distance is taken
# as ``|U^T f|^2`` instead, a sum of squares into which an error of ``delta``
# enters to second order only (1e-10 there). Well-conditioned components
# stay far below, but not all: the mixture of benchmarks/bench_missing.py
# (d = 16, K = 8, 30% missing) has components of condition number 5.6e4 and
# 3.7e6, 4% and 82% of whose lanes exceed it (the others none). A lane that
# passes loses at most about 1e-13 of ``distance + 1`` to the difference's
# rounding. (Not
# caught: the solve's error in ``y^T delta`` where ``L_mm`` alone is ill
# conditioned, two missing columns nearly collinear with each other: some 1e-5
# relative at condition number 4e10, where forming ``L_mm`` from the rounded
# precision already costs every method 4e-7.)
CANCELLATION = 1024.0
# Lanes of a component whose distances :data:`CANCELLATION` sends to the
# second product: one BLAS product for the whole tile once more than one
# in this many of its lanes need it, else a product per lane.
_DENSE = 6
# Numbers between the components' parts of a tile's buffers (one cache line):
# without it, parts of 16 x 128 numbers lie 16 KiB apart, the same sets of
# the L1 cache, and the moves that take a row's K components at once
# (:func:`_into_lanes`, :func:`_fill`) evict their own lines.
_PAD = 8


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
def _residuals(XT, n, mean, Fk):  # noqa: ANN001, ANN202
    """``Fk[:, r] = x_r - mean`` with the missing entries zeroed: those of
    ``XT`` are NaN, and a select on ``v == v`` vectorises where a scatter
    through ``M`` would not."""
    for j in range(XT.shape[0]):
        for r in range(n):
            v = XT[j, r] - mean[j]
            Fk[j, r] = v if v == v else 0.0

@_jit
def _products(F, XT, n, means, prec, PF, dist):  # noqa: ANN001, ANN202
    """Each component's residuals into its part of ``F`` (missing entries
    zero, see :func:`_part`), ``L F`` by one BLAS product into its part of
    ``PF`` and ``r~^T L r~`` into ``dist[k n:(k + 1) n]``."""
    K, d = means.shape
    for k in range(K):
        Fk, PFk, dk = _part(F, k, d, n), _part(PF, k, d, n), dist[k * n:(k + 1) * n]
        _residuals(XT, n, means[k], Fk)
        np.dot(prec[k], Fk, PFk)  # L F: one BLAS product for the tile
        _dot_columns(Fk, PFk, n, dk)  # r~ . (L r~) (r~ zero at the missing entries)


@_jit
def _dot_columns(A, B, n, out):  # noqa: ANN001, ANN202
    """``out[r] = sum_j A[j, r] B[j, r]`` over the d rows of ``B`` (``A`` may
    have more), four rows a pass: one load and store of ``out`` per four
    products, not per product."""
    d = B.shape[0]
    for r in range(n):
        out[r] = 0.0
    j = 0
    while j + 4 <= d:
        for r in range(n):
            out[r] += ((A[j, r] * B[j, r] + A[j + 1, r] * B[j + 1, r])
                       + (A[j + 2, r] * B[j + 2, r] + A[j + 3, r] * B[j + 3, r]))
        j += 4
    for i in range(j, d):
        for r in range(n):
            out[r] += A[i, r] * B[i, r]


@_jit
def _into_lanes(PF, dist, M, n, q, W, s, scale):  # noqa: ANN001, ANN202
    """The lanes' inputs to the q x q part (lane ``r K + k``, rows of
    :func:`.lanes_source.layout`, stride s): ``r~^T L r~`` (row S, and a copy
    in ``scale``) and ``y = -(L r~)_m`` (rows Y) from :func:`_products`. Rows
    outer and components inner: the writes run along the lanes, and the
    reads of one row's K components stay in cache for the next row."""
    K, stride = PF.shape
    flat = PF.reshape(PF.size)
    _, y_row, _, s_row = layout(q)
    for r in range(n):
        for k in range(K):
            v = dist[k * n + r]
            W[s_row * s + r * K + k] = v
            scale[r * K + k] = v
    for a in range(q):
        row = (y_row + a) * s
        for r in range(n):
            at = np.uint64(row + r * K)  # (unsigned: see _buffers)
            src = np.uint64(M[a, r] * n + r)
            for k in range(K):
                W[at + np.uint64(k)] = -flat[src + np.uint64(k * stride)]


@_jit
def _fill(F, M, n, q, W, start, s):  # noqa: ANN001, ANN202
    """The conditional mean offsets (rows Y of ``W`` from ``start``, stride
    s) into the missing entries of every component's part of ``F``: rows
    outer and components inner, as :func:`_into_lanes` (the reads run along
    the lanes; the components' parts do not share cache sets, see
    :data:`_PAD`)."""
    K, stride = F.shape
    flat = F.reshape(F.size)
    for a in range(q):
        row = start + a * s
        for r in range(n):
            at = np.uint64(row + r * K)
            to = np.uint64(M[a, r] * n + r)
            for k in range(K):
                flat[to + np.uint64(k * stride)] = W[at + np.uint64(k)]


@_jit
def _filled(F, M, n, q, UT, W, s, scale, PF, count, acc):  # noqa: ANN001, ANN202
    """The conditional mean offsets (rows Y of ``W``, from the q x q part)
    written into the missing entries of ``F`` (see :func:`_part`).

    The lanes' distances (row S) are ``r~^T L r~ - y^T L_mm^-1 y`` (the
    minimum over the missing values of the full quadratic form, as the
    filled residual's ``|f U|^2``), so no second product, except for a lane
    where that difference is small against its rounding scale ``scale``
    (``r~^T L r~``, :data:`CANCELLATION`): its distance is the filled
    residual's ``|U^T f|^2`` (``UT`` = U^T), see :func:`_recomputed`.
    ``count`` is scratch of K numbers, ``acc`` of n."""
    K, d = UT.shape[0], UT.shape[1]
    _, y_row, _, s_row = layout(q)
    _fill(F, M, n, q, W, y_row * s, s)
    maha = W[s_row * s:s_row * s + n * K]
    held = True
    for lane in range(n * K):
        held &= scale[lane] <= CANCELLATION * (maha[lane] + 1.0)
    if held:
        return
    for k in range(K):
        count[k] = 0.0
    for r in range(n):
        for k in range(K):
            count[k] += _cancelled(scale, maha, r * K + k)
    for k in range(K):
        if count[k]:
            _recomputed(_part(F, k, d, n), UT[k], _part(PF, k, d, n), n, k, scale, maha,
                        count[k] * _DENSE > n, acc)


@_jit
def _cancelled(scale, maha, lane):  # noqa: ANN001, ANN202
    """Whether a lane's distance lost too many digits (:data:`CANCELLATION`;
    also where it is NaN)."""
    return not scale[lane] <= CANCELLATION * (maha[lane] + 1.0)


@_jit
def _recomputed(Fk, UTk, PFk, n, k, scale, maha, dense, acc):  # noqa: ANN001, ANN202
    """``maha[r K + k] = |U^T f_r|^2`` for component k's lanes that
    :func:`_cancelled` picks (``f_r`` its filled residuals, ``Fk`` (d, n)):
    where many do, by one BLAS product for the tile (into ``PFk``; ``acc``
    scratch of n numbers); where few do, lane by lane (a product for the
    whole tile cost as much as some 25 lanes' own)."""
    K = maha.shape[0] // n
    d = Fk.shape[0]
    if dense:
        np.dot(UTk, Fk, PFk)
        _dot_columns(PFk, PFk, n, acc)
        for r in range(n):
            if _cancelled(scale, maha, r * K + k):
                maha[r * K + k] = acc[r]
        return
    f = PFk.reshape(PFk.size)[:d]  # (scratch: d numbers of d n)
    for r in range(n):
        if _cancelled(scale, maha, r * K + k):
            for j in range(d):
                f[j] = Fk[j, r]
            maha[r * K + k] = _squared_image(UTk, f)


@_lanes_jit
def _squared_image(UTk, f):  # noqa: ANN001, ANN202
    """``|U^T f|^2`` of one residual ``f`` (d,), each entry of ``U^T f`` a
    dot product summed in vector lanes."""
    total = 0.0
    for i in range(UTk.shape[0]):
        z = 0.0
        for j in range(UTk.shape[1]):
            z += UTk[i, j] * f[j]
        total += z * z
    return total


@_jit
def _lanes_generic(n, q, W, s, cov, work):  # noqa: ANN001, ANN202
    """What the kernels of :mod:`.lanes` do, for any q, as loops over the
    lanes (row stride s); ``work`` holds 2 q^2 n numbers or more."""
    _, y_row, d_row, s_row = layout(q)
    w = work[:q * q * n].reshape((q, q, n))       # w_ab = L_ab d_b, later N = L^-1
    L = work[q * q * n:2 * q * q * n].reshape((q, q, n))  # 1 / d_a on the diagonal
    for a in range(q):  # L D L^T
        for b in range(a):
            row = (a * (a + 1) // 2 + b) * s
            for r in range(n):
                w[a, b, r] = W[row + r]
            for c in range(b):
                for r in range(n):
                    w[a, b, r] -= w[a, c, r] * L[b, c, r]
            for r in range(n):
                L[a, b, r] = w[a, b, r] * L[b, b, r]
        dk = (d_row + a) * s
        row = (a * (a + 1) // 2 + a) * s
        for r in range(n):
            W[dk + r] = W[row + r]
        for c in range(a):
            for r in range(n):
                W[dk + r] -= w[a, c, r] * L[a, c, r]
        for r in range(n):
            L[a, a, r] = 1.0 / W[dk + r]
    for r in range(n):
        W[(s_row + 1) * s + r] = 1.0
        W[(s_row + 2) * s + r] = np.inf
    for a in range(q):
        dk = (d_row + a) * s
        for r in range(n):
            W[(s_row + 1) * s + r] *= W[dk + r]
            W[(s_row + 2) * s + r] = min(W[(s_row + 2) * s + r], W[dk + r])
    for a in range(q):  # forward: f = L^-1 y, and the distance correction
        ya = (y_row + a) * s
        for c in range(a):
            for r in range(n):
                W[ya + r] -= L[a, c, r] * W[(y_row + c) * s + r]
        for r in range(n):
            W[s_row * s + r] -= W[ya + r] * W[ya + r] * L[a, a, r]
    for a in range(q - 1, -1, -1):  # back: delta = L^-T D^-1 f
        ya = (y_row + a) * s
        for r in range(n):
            W[ya + r] *= L[a, a, r]
        for c in range(a + 1, q):
            for r in range(n):
                W[ya + r] -= L[c, a, r] * W[(y_row + c) * s + r]
    if not cov:
        return
    for a in range(q):  # N = L^-1 (unit lower), into w
        for b in range(a):
            for r in range(n):
                w[a, b, r] = -L[a, b, r]
            for c in range(b + 1, a):
                for r in range(n):
                    w[a, b, r] -= L[a, c, r] * w[c, b, r]
        for r in range(n):
            w[a, a, r] = 1.0
    for a in range(q):  # (L_mm^-1)_ab = sum_{c >= a} N_ca N_cb / d_c
        for b in range(a + 1):
            row = (a * (a + 1) // 2 + b) * s
            for r in range(n):
                W[row + r] = 0.0
            for c in range(a, q):
                for r in range(n):
                    W[row + r] += w[c, a, r] * L[c, c, r] * w[c, b, r]

@_jit
def _gather_blocks(pairs, n, q, PT, W, s, K):  # noqa: ANN001, ANN202
    """Each component's ``L_mm`` entries into its lanes of ``W`` (rows of
    :func:`.lanes_source.layout`, stride s; lane ``r K + k``): through the
    precisions transposed, ``PT`` (flat, d * d by K), one lane's pair index
    fetches the K components' entries side by side, stored side by side
    (eight, four, then one at a time: see :func:`_add_conditionals`)."""
    eight, four = K - K % 8, K - K % 4
    for a in range(q):
        for b in range(a + 1):
            row, P = (a * (a + 1) // 2 + b) * s, pairs[a, b]
            for r in range(n):
                at, to = np.uint64(P[r]) * np.uint64(K), np.uint64(row + r * K)
                for k in range(0, eight, 8):
                    copy4(PT, at + np.uint64(k), W, to + np.uint64(k))
                    copy4(PT, at + np.uint64(k + 4), W, to + np.uint64(k + 4))
                for k in range(eight, four, 4):
                    copy4(PT, at + np.uint64(k), W, to + np.uint64(k))
                for k in range(four, K):
                    W[to + np.uint64(k)] = PT[at + np.uint64(k)]


@_jit
def _part(F, k, rows, n):  # noqa: ANN001, ANN202
    """Component k's first ``rows`` rows of a tile's buffer ``F`` (K, stride;
    each component's rows of n lanes one after the other, :data:`_PAD`
    numbers apart from the next component's) as a contiguous (rows, n) array
    (for the BLAS products and :func:`..fused.moments.second_moments`)."""
    return F[k][:rows * n].reshape((rows, n))


@_jit
def _tile_scores(XT, n, q, M, pairs, means, prec, PT, UT, const, diagonal, F, W, s, PF,
                 cov, work, generic, sc):  # noqa: ANN001, ANN202
    """Scores ``log pi_k + log N(x_o | k)`` of the tile into ``sc`` (K, n),
    the filled residuals ``E[x | x_o, k] - mu_k`` into ``F`` (:func:`_part`) and
    the lanes' rows of :func:`.lanes_source.layout` into ``W`` (stride s,
    lane ``r K + k``; with ``L_mm^-1`` when ``cov``). Returns a status (1
    where a score is NaN: a distance of a row far out came as ``inf - inf``;
    2 where a pivot is not positive)."""
    if diagonal:
        return _diagonal_scores(XT, n, q, M, means, prec, UT, const, F, work, sc)
    K, d = means.shape
    _, _, d_row, s_row = layout(q)
    lanes_n = n * K
    log_det, scale, dist, scratch = work[0], work[1], work[2], work[5]
    _gather_blocks(pairs, n, q, PT, W, s, K)
    _products(F, XT, n, means, prec, PF, dist)
    _into_lanes(PF, dist, M, n, q, W, s, scale)
    if not (s == LANES and lanes(q, lanes_n, W, cov)):
        _lanes_generic(lanes_n, q, W, s, cov, generic)
    _filled(F, M, n, q, UT, W, s, scale, PF, work[3], work[4])
    det = W[(s_row + 1) * s:(s_row + 1) * s + lanes_n]
    low = W[(s_row + 2) * s:(s_row + 2) * s + lanes_n]
    if not _log_det(det, low, lanes_n, q, M, prec[0], W, s, d_row, False, log_det, scratch):
        return 2
    maha = W[s_row * s:s_row * s + lanes_n]
    for k in range(K):
        if _scores_of(sc[k], const[k], UT[k], d, q, n, log_det, maha, K, k, False):
            return 1
    return 0


@_jit
def _diagonal_scores(XT, n, q, M, means, prec, UT, const, F, work, sc):  # noqa: ANN001, ANN202
    """:func:`_tile_scores` for diagonal precisions: the conditional mean
    is the component mean (the missing entries of ``F`` stay zero), the
    marginal's determinant the product of the missing diagonal entries."""
    K, d = means.shape
    log_det, det, low, pivot, maha, scratch = work[0], work[1], work[2], work[3], work[4], work[5]
    for k in range(K):
        Fk, P = _part(F, k, d, n), prec[k]
        _residuals(XT, n, means[k], Fk)
        for r in range(n):
            det[r] = 1.0
            low[r] = np.inf
        for a in range(q):
            for r in range(n):
                pivot[r] = P[0, M[a, r]]
            _times(det, low, pivot, n)
        for r in range(n):
            maha[r] = 0.0
        for j in range(d):
            for r in range(n):
                maha[r] += P[0, j] * Fk[j, r] * Fk[j, r]
        if not _log_det(det, low, n, q, M, P, scratch, 0, 0, True, log_det, scratch):
            return 2
        if _scores_of(sc[k], const[k], UT[k], d, q, n, log_det, maha, 1, 0, True):
            return 1
    return 0


@_jit
def _scores_of(sck, const, UT, d, q, n, log_det, maha, K, k, diagonal):  # noqa: ANN001, ANN202
    """One component's scores ``sck`` (n,) from its lanes ``r K + k`` of
    ``log_det`` and ``maha``; True if one is NaN (``inf - inf`` in the
    distance of a row far out). ``UT``: see :func:`_nothing_observed`."""
    undefined = False
    for r in range(n):
        sck[r] = (const - 0.5 * (d - q) * LOG_2PI
                  - 0.5 * log_det[r * K + k] - 0.5 * maha[r * K + k])
        undefined |= sck[r] != sck[r]
    if q == d:  # nothing observed: log pi_k exactly (see _nothing_observed)
        _nothing_observed(const, UT, diagonal, sck[:n])
    return undefined


@_jit
def _nothing_observed(const, UT, diagonal, out):  # noqa: ANN001, ANN202
    """``out[:] = log pi_k``, the score of rows with nothing observed (their
    marginal density is 1), from ``const = log pi_k + sum log diag U``: the
    general formula's ``log det L_mm`` would be ``log det L`` of the rounded
    precision ``U U^T``, off by about cond(L) units in the last place (2e-6 at
    condition number 9e10). ``UT`` is (1, d), the diagonal, when ``diagonal``."""
    log_pi = const
    for j in range(UT.shape[1]):
        log_pi -= math.log(UT[0, j] if diagonal else UT[j, j])
    for r in range(out.shape[0]):
        out[r] = log_pi


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
    (see :func:`_part`): F (K, dp n + pad) with its rows from d on zero (dp =
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
