"""Scores of a tile of incomplete rows, compiled (numba, no GIL held).

The identities of :mod:`.conditional`, computed for a *tile* of rows that
miss the same number q of coordinates (their patterns may differ; see
:mod:`.tiles`), with every step vectorised over the tile's rows (arrays laid
out (..., rows)) or over its *lanes*, one per (row, component) pair: lane
``r K + k``, so that a row's K components lie side by side. For each
component k:

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
:func:`_lanes_generic` does the same as loops over the lanes. The gathers
of ``L_mm`` move a lane's K components four at a time (:mod:`.four_wide`).
Everything is float64.

``diagonal`` selects the closed forms for diagonal precisions (diag and
spherical types): the conditional mean is the component mean and the
marginal's determinant the product of the missing diagonal entries.

:func:`_tile_scores` returns a status as the loops of :mod:`.loops` do (1: a
score is not defined; 2: a block ``L_mm`` is not positive definite), which
turn the scores into responsibilities and moments.
"""


from __future__ import annotations

import math

import numpy as np

from .four_wide import copy4
from .lanes import LANES, lanes
from .lanes_source import layout as _layout
from .log_det import _log_det, _times
from .tiles import _jit, _lanes_jit

LOG_2PI = math.log(2.0 * math.pi)
layout = _jit(_layout)  # rows of a component's per-lane numbers (lanes_source)
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
            at = np.uint64(row + r * K)  # (unsigned: see .loops._buffers)
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
    (eight, four, then one at a time: see :func:`.loops._add_conditionals`)."""
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
