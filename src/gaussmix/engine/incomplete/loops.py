"""Compiled per-row loops for incomplete rows (numba, no GIL held).

The identities of :mod:`.conditional`, one row at a time, with every step
vectorised over the K components (the innermost loop of each step runs over
k, on arrays laid out (..., K)): for each component the residual
``r = x - mu_k`` with its missing entries zeroed, ``(L r)_m`` (q x d), the
Cholesky factor of the q x q block ``L_mm`` of the precision, two triangular
solves for the conditional mean offset, and the squared Mahalanobis distance
``|f U|^2`` of the filled residual (d^2/2, as for a complete row).
Responsibilities by log-sum-exp over K, then the moments about the component
means: ``g f``, ``g f f^T`` and ``g L_mm^-1`` on the missing rows and columns
(lower triangles; the caller mirrors them). Per component the q x q steps are
chains of dependent operations (square roots, divisions, short sums); running
K of them side by side in vector lanes is what makes an incomplete row cost
about what a complete one does. Everything is float64; no work array is
allocated per row.

``diagonal`` selects the closed forms for diagonal precisions (diag and
spherical types): the conditional mean is the component mean, the conditional
variances are the component variances, and only the diagonal of the second
moments is accumulated.

Every loop returns a status: 0 when all went well, 1 when a row's scores have
no finite maximum (far beyond every component: the caller recomputes the
chunk with the NumPy reference, whose behaviour such rows then get), and 2
when a component's precision restricted to a row's missing coordinates is not
positive definite (the reference then raises its error).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_jit = njit(nogil=True, cache=True, fastmath={"contract"})

LOG_2PI = math.log(2.0 * math.pi)
# log det L_mm is kept as log_det + log(det), the product ``det`` folded into
# ``log_det`` when it leaves this range: one logarithm per component and row.
_FOLD = 1e100


@_jit
def _missing_of(X, i, miss):  # noqa: ANN001, ANN202
    """The missing (NaN) columns of row ``X[i]`` into ``miss``; returns their number."""
    q = 0
    for j in range(X.shape[1]):
        if np.isnan(X[i, j]):
            miss[q] = j
            q += 1
    return q


@_jit
def _times(log_det, det, pivot):  # noqa: ANN001, ANN202
    """``det *= pivot`` for every component, folding into ``log_det`` out of
    range; False if a pivot is not positive."""
    for k in range(det.shape[0]):
        if not pivot[k] > 0.0:
            return False
        det[k] *= pivot[k]
        if not 1.0 / _FOLD < det[k] < _FOLD:
            log_det[k] += math.log(det[k])
            det[k] = 1.0
    return True


@_jit
def _condition(miss, q, prec, F, lower, pulled, piv, log_det, det):  # noqa: ANN001, ANN202
    """Fills the missing entries of the residuals ``F`` (d, K) with the
    conditional mean offsets ``-L_mm^-1 (L r~)_m`` and leaves the Cholesky
    factors ``C`` of ``L_mm`` in ``lower[:q, :q]`` (``1 / C_aa`` on the
    diagonal). False if an ``L_mm`` is not positive definite."""
    d, K = F.shape
    for a in range(q):
        for k in range(K):
            pulled[a, k] = 0.0
    for j in range(d):  # (L r~)_m, the q sums interleaved
        for a in range(q):
            for k in range(K):
                pulled[a, k] += prec[miss[a], j, k] * F[j, k]
    for a in range(q):  # Cholesky factors, row by row
        for b in range(a):
            for k in range(K):
                lower[a, b, k] = prec[miss[a], miss[b], k]
            for c in range(b):
                for k in range(K):
                    lower[a, b, k] -= lower[a, c, k] * lower[b, c, k]
            for k in range(K):
                lower[a, b, k] *= lower[b, b, k]
        for k in range(K):
            piv[k] = prec[miss[a], miss[a], k]
        for c in range(a):
            for k in range(K):
                piv[k] -= lower[a, c, k] * lower[a, c, k]
        if not _times(log_det, det, piv):
            return False
        for k in range(K):
            lower[a, a, k] = 1.0 / math.sqrt(piv[k])
    for a in range(q):  # forward substitution, then back
        for k in range(K):
            pulled[a, k] = -pulled[a, k]
        for c in range(a):
            for k in range(K):
                pulled[a, k] -= lower[a, c, k] * pulled[c, k]
        for k in range(K):
            pulled[a, k] *= lower[a, a, k]
    for a in range(q - 1, -1, -1):
        for c in range(a + 1, q):
            for k in range(K):
                pulled[a, k] -= lower[c, a, k] * pulled[c, k]
        for k in range(K):
            pulled[a, k] *= lower[a, a, k]
            F[miss[a], k] = pulled[a, k]
    return True


@_jit
def _row_scores(X, i, miss, means, prec, chol, const, diagonal, F, lower, pulled, white,
                sc):  # noqa: ANN001, ANN202
    """Scores ``log pi_k + log N(x_o | k)`` of row ``X[i]`` into ``sc`` (K,),
    the filled residuals ``E[x | x_o, k] - mu_k`` into ``F`` (d, K) and the
    factors into ``lower``; ``pulled`` (d, K) and ``white`` (d + 3, K) are
    work arrays. Returns (q, status)."""
    d, K = means.shape
    q = _missing_of(X, i, miss)
    for j in range(d):
        for k in range(K):
            F[j, k] = X[i, j] - means[j, k]
    for a in range(q):
        for k in range(K):
            F[miss[a], k] = 0.0
    log_det, det, piv = white[d], white[d + 1], white[d + 2]
    for k in range(K):
        log_det[k] = 0.0
        det[k] = 1.0
    if diagonal:
        for a in range(q):
            for k in range(K):
                piv[k] = prec[miss[a], miss[a], k]
            if not _times(log_det, det, piv):
                return q, 2
    elif not _condition(miss, q, prec, F, lower, pulled, piv, log_det, det):
        return q, 2
    for k in range(K):
        sc[k] = const[k] - 0.5 * (d - q) * LOG_2PI - 0.5 * (log_det[k] + math.log(det[k]))
    if diagonal:
        for j in range(d):
            for k in range(K):
                sc[k] -= 0.5 * prec[j, j, k] * F[j, k] * F[j, k]
        return q, 0
    for j in range(d):  # white = f U, vectorised over k
        for k in range(K):
            white[j, k] = 0.0
    for j in range(d):
        for c in range(j, d):
            for k in range(K):
                white[c, k] += F[j, k] * chol[j, c, k]
    for j in range(d):
        for k in range(K):
            sc[k] -= 0.5 * white[j, k] * white[j, k]
    return q, 0


@_jit
def _normalise(sc, resp):  # noqa: ANN001, ANN202
    """Responsibilities of one row into ``resp``; returns ``log p(x_o)``
    (NaN when no score is finite)."""
    top = sc.max()
    if not np.isfinite(top):
        return np.nan
    total = 0.0
    for k in range(sc.shape[0]):
        resp[k] = math.exp(sc[k] - top)
        total += resp[k]
    for k in range(sc.shape[0]):
        resp[k] /= total
    return math.log(total) + top


@_jit
def _add_moments(s1, s2, g, F, miss, q, prec, lower, diagonal, inv, tmp):  # noqa: ANN001, ANN202
    """``s1 += g f``, ``s2 += g (f f^T + L_mm^-1)`` for every component
    (lower triangles; ``L_mm^-1`` on the missing rows and columns; only
    diagonals when ``diagonal``)."""
    d, K = F.shape
    for a in range(d):
        for k in range(K):
            tmp[k] = g[k] * F[a, k]
            s1[a, k] += tmp[k]
        if diagonal:
            for k in range(K):
                s2[a, a, k] += tmp[k] * F[a, k]
            continue
        for b in range(a + 1):
            for k in range(K):
                s2[a, b, k] += tmp[k] * F[b, k]
    if diagonal:
        for a in range(q):
            for k in range(K):
                s2[miss[a], miss[a], k] += g[k] / prec[miss[a], miss[a], k]
        return
    # L_mm^-1 = C^-T C^-1 from the factors C (1 / C_aa on lower's diagonal),
    # C^-1 by forward substitution
    for a in range(q):
        for k in range(K):
            inv[a, a, k] = lower[a, a, k]
        for b in range(a):
            for k in range(K):
                tmp[k] = 0.0
            for c in range(b, a):
                for k in range(K):
                    tmp[k] += lower[a, c, k] * inv[c, b, k]
            for k in range(K):
                inv[a, b, k] = -tmp[k] * inv[a, a, k]
    for a in range(q):
        for b in range(a + 1):
            for k in range(K):
                tmp[k] = 0.0
            for c in range(a, q):
                for k in range(K):
                    tmp[k] += inv[c, a, k] * inv[c, b, k]
            for k in range(K):
                s2[miss[a], miss[b], k] += g[k] * tmp[k]


@_jit
def statistics(X, rows, w, means, prec, chol, const, diagonal, nk, s1, s2, acc):  # noqa: ANN001, ANN201
    """Adds the moments of ``X[rows]`` (weights ``w[rows]``) about ``means``
    (d, K) to ``nk`` (K,), ``s1`` (d, K) and the lower triangle of ``s2``
    (d, d, K; only its diagonal when ``diagonal``), and ``w log p(x_o)`` to
    ``acc[0]``. ``prec`` and ``chol`` are (d, d, K)."""
    d, K = means.shape
    miss = np.empty(d, np.int64)
    F, pulled, white = np.empty((d, K)), np.empty((d, K)), np.empty((d + 3, K))
    lower, inv = np.empty((d, d, K)), np.empty((d, d, K))
    sc, resp, tmp = np.empty(K), np.empty(K), np.empty(K)
    for i in rows:
        q, status = _row_scores(X, i, miss, means, prec, chol, const, diagonal, F, lower,
                                pulled, white, sc)
        if status:
            return status
        log_norm = _normalise(sc, resp)
        if np.isnan(log_norm):
            return 1
        acc[0] += w[i] * log_norm
        for k in range(K):
            resp[k] *= w[i]
            nk[k] += resp[k]
        _add_moments(s1, s2, resp, F, miss, q, prec, lower, diagonal, inv, tmp)
    return 0


@_jit
def scores(X, rows, means, prec, chol, const, diagonal, out):  # noqa: ANN001, ANN201
    """``log pi_k + log N(x_o | k)`` of ``X[rows]`` into ``out`` (K, len(rows))."""
    d, K = means.shape
    miss = np.empty(d, np.int64)
    F, pulled, white = np.empty((d, K)), np.empty((d, K)), np.empty((d + 3, K))
    lower = np.empty((d, d, K))
    sc = np.empty(K)
    for t in range(rows.shape[0]):
        _, status = _row_scores(X, rows[t], miss, means, prec, chol, const, diagonal, F,
                                lower, pulled, white, sc)
        if status:
            return status
        for k in range(K):
            out[k, t] = sc[k]
    return 0


@_jit
def impute(X, rows, means, prec, chol, const, diagonal):  # noqa: ANN001, ANN201
    """Replaces the NaN of ``X[rows]`` in place by ``E[x_m | x_o]``."""
    d, K = means.shape
    miss = np.empty(d, np.int64)
    F, pulled, white = np.empty((d, K)), np.empty((d, K)), np.empty((d + 3, K))
    lower = np.empty((d, d, K))
    sc, resp = np.empty(K), np.empty(K)
    for i in rows:
        q, status = _row_scores(X, i, miss, means, prec, chol, const, diagonal, F, lower,
                                pulled, white, sc)
        if status:
            return status
        if np.isnan(_normalise(sc, resp)):
            return 1
        for a in range(q):
            fill = 0.0
            for k in range(K):
                fill += resp[k] * (means[miss[a], k] + F[miss[a], k])
            X[i, miss[a]] = fill
    return 0
