"""The fused E-step kernel: :class:`EStepKernel` with compiled statistics.

:class:`FusedEStepKernel` is the reference kernel bound to the same parameters
and the same precomputed arrays; only :meth:`FusedEStepKernel.statistics`
differs, running the tile loops of :mod:`.loops` (numba, GIL released) on
chunks of NumPy float32/float64 rows. Per-row results (``log_likelihood``,
``log_resp``, ``labels``) are the reference's. A chunk falls back to the
reference when it is small (the compiled loops are not worth importing for
it), not NumPy, or when one of its rows has no finite score (the reference
rescues such rows) or its statistics overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..estep import EStepKernel
from ..stats import SuffStats

#: Chunks with fewer rows than this use the reference kernel: below it the
#: compiled loops gain little, and a fit that never reaches it never imports
#: numba (about half a second) nor loads the compiled loops.
MIN_ROWS = 4096

# Bytes of one tile's work arrays: about a quarter of a core's L2, so that the
# tile, its products and the statistics stay in cache.
TILE_BYTES = 1 << 19


@dataclass(frozen=True)
class FusedEStepKernel(EStepKernel):
    """An :class:`EStepKernel` whose statistics come from compiled tile loops.

    ``fused`` holds the arrays the loops need (contiguous NumPy arrays in the
    compute dtype); ``tile`` is the number of rows per tile.
    """

    fused: dict[str, np.ndarray] | None = None
    tile: int = 256

    def statistics(self, X: Any, sample_weight: Any = None) -> SuffStats:
        if (self.fused is None or not isinstance(X, np.ndarray) or X.shape[0] < MIN_ROWS
                or X.dtype != self.fused["centre"].dtype
                or not (sample_weight is None or isinstance(sample_weight, np.ndarray))):
            return super().statistics(X, sample_weight)
        stats = _STATISTICS[self.covariance_type](self, np.ascontiguousarray(X),
                                                  _weights(sample_weight))
        if stats is None:
            return super().statistics(X, sample_weight)
        return stats

    def _stats(self, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, acc: np.ndarray
               ) -> SuffStats | None:
        if not (np.all(np.isfinite(s1)) and np.all(np.isfinite(s2))
                and np.isfinite(acc[0])):
            return None  # overflow: the reference handles (or reports) it
        return SuffStats(
            covariance_type=self.covariance_type, nk=nk, s1=s1, s2=s2,
            shift=self.state.shift, loglik=float(acc[0]), weight=float(acc[1]),
            min_weight=float(acc[2]),
        )


def _weights(sample_weight: Any) -> np.ndarray:
    if sample_weight is None:
        return np.empty(0)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


def _full(kernel: FusedEStepKernel, X: np.ndarray, w: np.ndarray) -> SuffStats | None:
    from .loops import full_chunk

    a = kernel.fused
    assert a is not None
    K, d = kernel.state.shift.shape
    nk, mom, s2w, acc = np.zeros(K), np.zeros((K, d + 1)), np.zeros((K, d, d)), np.zeros(3)
    if full_chunk(X, w, a["centre"], a["stacked"], a["base"], kernel.tile, nk, mom,
                  s2w, acc):
        return None
    s1 = mom[:, :d] - mom[:, d:] * a["offsets"]
    back = a["unwhiten"]
    return kernel._stats(nk, s1, np.matmul(back.transpose(0, 2, 1), np.matmul(s2w, back)),
                         acc)


def _diag(kernel: FusedEStepKernel, X: np.ndarray, w: np.ndarray) -> SuffStats | None:
    from .loops import diag_chunk

    a = kernel.fused
    assert a is not None
    K, d = kernel.state.shift.shape
    nk, sums, acc = np.zeros(K), np.zeros((K, 2 * d)), np.zeros(3)
    if diag_chunk(X, w, a["centre"], a["coef"], a["offset_sq"], a["base"], kernel.tile,
                  nk, sums, acc):
        return None
    return kernel._stats(nk, sums[:, d:].copy(), sums[:, :d].copy(), acc)


def _spherical(kernel: FusedEStepKernel, X: np.ndarray, w: np.ndarray
               ) -> SuffStats | None:
    from .loops import spherical_chunk

    a = kernel.fused
    assert a is not None
    K, d = kernel.state.shift.shape
    nk, s1, s2, acc = np.zeros(K), np.zeros((K, d)), np.zeros(K), np.zeros(3)
    if spherical_chunk(X, w, a["centre"], a["prec"], a["cross"], a["offset_sq"],
                       a["base"], kernel.tile, nk, s1, s2, acc):
        return None
    return kernel._stats(nk, s1, s2, acc)


def _tied(kernel: FusedEStepKernel, X: np.ndarray, w: np.ndarray) -> SuffStats | None:
    from .loops import tied_chunk

    a = kernel.fused
    assert a is not None
    K, d = kernel.state.shift.shape
    nk, s1, s2, acc = np.zeros(K), np.zeros((K, d)), np.zeros((d, d)), np.zeros(3)
    if tied_chunk(X, w, a["centre"], a["chol_t"], a["means2"], a["means_sq"], a["base"],
                  kernel.tile, nk, s1, s2, acc):
        return None
    return kernel._stats(nk, s1, s2, acc)


_STATISTICS: dict[str, Callable[[FusedEStepKernel, np.ndarray, np.ndarray],
                                SuffStats | None]] = {
    "full": _full, "diag": _diag, "spherical": _spherical, "tied": _tied,
}


def loop_arrays(kernel: EStepKernel) -> dict[str, np.ndarray] | None:
    """The arrays the tile loops need, from the reference kernel's own
    precomputed group arrays; None where the loops do not apply (several
    centre groups, a namespace other than NumPy, a dtype other than
    float32/float64)."""
    state = kernel.state
    if len(state.groups) != 1 or kernel.covariance_type not in _STATISTICS:
        return None
    group = state.groups[0]
    centre = group.centre
    if not isinstance(centre, np.ndarray) or centre.dtype not in (np.float32, np.float64):
        return None
    g = group.arrays
    dtype = centre.dtype

    def c(a: Any, dt: Any = dtype) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dt)

    with np.errstate(invalid="ignore"):  # -inf log weights stay -inf
        base = np.asarray(state.const, np.float64) + np.asarray(kernel.log_weights,
                                                                np.float64)
    arrays = {"centre": c(centre), "base": c(base, np.float64)}
    if kernel.covariance_type == "full":
        arrays |= {"stacked": c(g["stacked"]), "offsets": c(g["offsets"], np.float64),
                   "unwhiten": c(g["unwhiten"], np.float64)}
    elif kernel.covariance_type == "diag":
        arrays |= {"coef": c(g["coef"]), "offset_sq": c(g["offset_sq"], np.float64)}
    elif kernel.covariance_type == "spherical":
        arrays |= {"prec": c(g["prec"], np.float64), "cross": c(np.asarray(g["cross_t"]).T),
                   "offset_sq": c(g["offset_sq"], np.float64)}
    else:
        arrays |= {"chol_t": c(np.asarray(g["chol"]).T), "means2": c(
            np.asarray(g["white_means_t2"]).T), "means_sq": c(g["white_means_sq"], np.float64)}
    return arrays


def tile_rows(covariance_type: str, n_components: int, n_features: int) -> int:
    """Rows per tile: the tile's work arrays (about ``K*d + 4d + 3K`` numbers
    per row for full covariances, ``4d + 3K`` otherwise) fill ``TILE_BYTES``."""
    K, d = n_components, n_features
    per_row = 4 * d + 3 * K + (K * d if covariance_type == "full" else 0)
    rows = TILE_BYTES // (8 * per_row)
    return int(np.clip(rows // 16 * 16, 32, 1024))
