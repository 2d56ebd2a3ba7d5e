"""The fused E-step kernel: :class:`EStepKernel` with compiled statistics.

:class:`FusedEStepKernel` is the reference kernel bound to the same parameters
and the same precomputed arrays; only its statistics and per-row results
(``log_likelihood``, ``log_resp``, ``labels``) come from the tile loops of
:mod:`.full_loops` and its siblings (numba, GIL released; the steps they share
in :mod:`.tile_steps`) on chunks of NumPy float32/float64 rows.
A chunk falls back to the reference when it is small, not NumPy, or when one
of its rows has no finite score (the reference rescues such rows) or its
statistics overflow.

Loading the compiled loops costs about a second once per process (importing
numba, reading its on-disk cache; the very first run on a machine compiles
them, tens of seconds). So that small fits never pay it, a kernel built in
``auto`` mode runs the reference until the process has passed
``LOAD_AFTER_FLOPS`` of E-step work through it, then loads the loops at the
next kernel build (the start of a pass: every chunk of a pass takes the same
path). ``GAUSSMIX_KERNEL=fused`` loads them at once.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compiled_inputs import read_only
from ..estep import EStepKernel
from ..stats import SuffStats
from ..threads import WorkCounter

#: Chunks with fewer rows than this use the reference kernel (a tile is
#: computed whole, padding included).
MIN_ROWS = 64

#: E-step work (about 4 (d+1) flops per number of the reference's work array)
#: after which ``auto`` mode loads the compiled loops: about as long in the
#: reference kernel as loading them takes, so a process never spends more
#: than about twice the best time (8.6 GFLOP: some 5 iterations of a full
#: n=200k, d=16, K=8 fit; a fit of n=1000 never gets there).
LOAD_AFTER_FLOPS = float(1 << 33)

_work = WorkCounter()


def loops_loaded() -> bool:
    """Whether the compiled loops are imported in this process (every set of
    them imports :mod:`.tile_steps`, the incomplete rows' too)."""
    return f"{__package__}.tile_steps" in sys.modules


def load_loops_if_worth_it() -> bool:
    """Import the loops if done already or ``LOAD_AFTER_FLOPS`` reached;
    False if not (yet) or if numba fails to import."""
    if not loops_loaded() and _work.total < LOAD_AFTER_FLOPS:
        return False
    return _loop("full", "chunk") is not None


def count_rows(kernel: EStepKernel, n_rows: int) -> None:
    """Count the E-step work of ``n_rows`` rows for the ``auto`` mode."""
    K, d = kernel.state.shift.shape
    per_row = 4.0 * kernel.piece.numbers_per_row(K, d) * (d + 1)
    _work.add(per_row * n_rows)

# A tile's work arrays take this share of one core's L2 cache, so that the
# tile, its products and the statistics stay in cache between the steps.
TILE_SHARE_OF_L2 = 0.25
# Fewest rows per tile worth taking more than TILE_SHARE_OF_L2 for.
SHORT_TILE = 320
# L2 size assumed where the system does not say (most current x86/ARM cores
# have 1-2 MiB).
DEFAULT_L2_BYTES = 1 << 20


@dataclass(frozen=True)
class FusedEStepKernel(EStepKernel):
    """An :class:`EStepKernel` whose statistics come from compiled tile loops.

    ``fused`` holds the arrays the loops need (contiguous NumPy arrays in the
    compute dtype); ``tile`` is the number of rows per tile; ``compiled``
    False makes it the reference that counts its work (see the module notes).
    """

    fused: dict[str, np.ndarray] | None = None
    tile: int = 256
    compiled: bool = True

    def statistics(self, X: Any, sample_weight: Any = None) -> SuffStats:
        if not self._applies(X) or not (sample_weight is None
                                        or isinstance(sample_weight, np.ndarray)):
            return super().statistics(X, sample_weight)
        a = self.fused
        assert a is not None
        K, d = self.state.shift.shape
        loop = _loop(self.covariance_type, "chunk")
        if loop is None:
            return super().statistics(X, sample_weight)
        layout = _LAYOUTS[self.covariance_type]
        buffers, acc = layout.buffers(K, d), np.zeros(3)
        args = [a[name] for name in layout.order]
        status = loop(read_only(np.ascontiguousarray(X, a["centre"].dtype)),
                      read_only(_weights(sample_weight)), *args, self.tile, *buffers, acc)
        if status:
            # a row far beyond every component, or an overflow: the reference
            # rescues such rows (or reports them)
            return super().statistics(X, sample_weight)
        nk, s1, s2 = layout.moments(buffers, d)
        return SuffStats(
            covariance_type=self.covariance_type, nk=nk, s1=s1, s2=s2,
            shift=self.state.shift, loglik=float(acc[0]), weight=float(acc[1]),
            min_weight=float(acc[2]),
        )

    # -- per-row results -----------------------------------------------------
    def log_likelihood(self, X: Any) -> Any:
        out = self._rows(X, 0)
        return super().log_likelihood(X) if out is None else out[0]

    def log_resp(self, X: Any) -> Any:
        out = self._rows(X, 1)
        return super().log_resp(X) if out is None else out

    def labels(self, X: Any) -> Any:
        out = self._rows(X, 2)
        return super().labels(X) if out is None else out[0].astype(np.int64)

    def _applies(self, X: Any) -> bool:
        # (float32 rows with float64 arrays: scored in float64, see
        # CovarianceType._precise_enough)
        applies = (self.fused is not None and isinstance(X, np.ndarray) and X.ndim == 2
                   and X.shape[0] >= MIN_ROWS
                   and X.dtype in (self.fused["centre"].dtype, np.float32))
        if applies and not self.compiled:
            count_rows(self, X.shape[0])
            return False
        return applies

    def _rows(self, X: Any, what: int) -> np.ndarray | None:
        """Per-row results from the loops (``what``: 0 log p(x), 1 log
        responsibilities (K, n), 2 labels), or None where the reference must
        give them."""
        loop = _loop(self.covariance_type, "rows") if self._applies(X) else None
        if loop is None:
            return None
        a = self.fused
        assert a is not None
        K = self.state.shift.shape[0]
        out = np.empty((K if what == 1 else 1, X.shape[0]))
        args = [a[name] for name in _LAYOUTS[self.covariance_type].order]
        status = loop(read_only(np.ascontiguousarray(X, a["centre"].dtype)), *args,
                      self.tile, what, out)
        return None if status else out


def _weights(sample_weight: Any) -> np.ndarray:
    if sample_weight is None:
        return np.empty(0)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


@dataclass(frozen=True)
class _Layout:
    """What one covariance type's tile loops take and give (the one place
    that knows each type's loops).

    ``order``: the loops' parameter arrays in argument order; ``sources``:
    for each array but ``centre`` and ``base``, the reference's group array
    it is copied from, whether transposed, and whether kept in float64 (else
    the compute dtype); ``second``: the shape of the s2 buffer, or None where
    the loop packs ``[s2, s1]`` side by side in one (K, 2d) buffer;
    ``whitened``: whether a tile holds K*d whitened numbers per row.
    """

    order: tuple[str, ...]
    sources: dict[str, tuple[str, bool, bool]]
    second: Callable[[int, int], tuple[int, ...]] | None
    whitened: bool = False

    def buffers(self, K: int, d: int) -> tuple[np.ndarray, ...]:
        """Zeroed statistics buffers the chunk loop accumulates into."""
        if self.second is None:
            return np.zeros(K), np.zeros((K, 2 * d))
        return np.zeros(K), np.zeros((K, d)), np.zeros(self.second(K, d))

    def moments(self, buffers: tuple[np.ndarray, ...], d: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nk, s1, s2) about the kernel's shift from the loop's buffers."""
        if self.second is None:
            nk, sums = buffers
            return nk, sums[:, d:].copy(), sums[:, :d].copy()
        nk, s1, s2 = buffers
        return nk, s1, s2


_LAYOUTS = {
    "full": _Layout(("centre", "stacked", "base", "offsets", "unwhiten"),
                    {"stacked": ("stacked", False, False),
                     "offsets": ("offsets", False, True),
                     "unwhiten": ("unwhiten", False, True)},
                    lambda K, d: (K, d, d), whitened=True),
    "diag": _Layout(("centre", "coef", "offset_sq", "base"),
                    {"coef": ("coef", False, False),
                     "offset_sq": ("offset_sq", False, True)},
                    None),
    "spherical": _Layout(("centre", "prec", "cross", "offset_sq", "base"),
                         {"prec": ("prec", False, True),
                          "cross": ("cross_t", True, False),
                          "offset_sq": ("offset_sq", False, True)},
                         lambda K, d: (K,)),
    "tied": _Layout(("centre", "chol_t", "means2", "means_sq", "base"),
                    {"chol_t": ("chol", True, False),
                     "means2": ("white_means_t2", True, False),
                     "means_sq": ("white_means_sq", False, True)},
                    lambda K, d: (d, d)),
}


@functools.cache
def _loop(covariance_type: str, kind: str) -> Callable[..., int] | None:
    """The compiled loop, or None where numba is installed but fails to import
    (a NumPy it does not support): the reference kernel then serves."""
    try:  # imports numba: only once a chunk is big enough
        loops = importlib.import_module(f".{covariance_type}_loops", __package__)
    except ImportError:
        return None
    return getattr(loops, f"{covariance_type}_{kind}")  # type: ignore[no-any-return]


def loop_arrays(kernel: EStepKernel) -> dict[str, np.ndarray] | None:
    """The arrays the tile loops need, from the reference kernel's own
    precomputed group arrays; None where the loops do not apply (several
    centre groups, a namespace other than NumPy, a dtype other than
    float32/float64)."""
    state = kernel.state
    if len(state.groups) != 1 or kernel.covariance_type not in _LAYOUTS:
        return None
    group = state.groups[0]
    centre = group.centre
    if not isinstance(centre, np.ndarray) or centre.dtype not in (np.float32, np.float64):
        return None
    dtype = centre.dtype

    def c(a: Any, dt: Any = dtype) -> np.ndarray:  # (read-only: see read_only)
        return read_only(np.ascontiguousarray(a, dtype=dt))

    with np.errstate(invalid="ignore"):  # -inf log weights stay -inf
        base = np.asarray(state.const, np.float64) + np.asarray(kernel.log_weights,
                                                                np.float64)
    arrays = {"centre": c(centre), "base": c(base, np.float64)}
    for name, (key, transposed, wide) in _LAYOUTS[kernel.covariance_type].sources.items():
        value = np.asarray(group.arrays[key])
        arrays[name] = c(value.T if transposed else value, np.float64 if wide else dtype)
    return arrays


@functools.cache  # asked at every kernel build (each pass, each partial_fit call)
def tile_rows(covariance_type: str, n_components: int, n_features: int) -> int:
    """Rows per tile: the tile's work arrays (about ``K*d + 4d + 3K`` numbers
    per row for full covariances, ``4d + 3K`` otherwise) fill a quarter of
    the L2 cache, or up to all of it to reach ``SHORT_TILE`` rows; a
    multiple of 16 between 32 and 1024."""
    K, d = n_components, n_features
    per_row = 4 * d + 3 * K + (K * d if _LAYOUTS[covariance_type].whitened else 0)
    rows = int(TILE_SHARE_OF_L2 * l2_cache_bytes()) // (8 * per_row)
    # Products over fewer rows than SHORT_TILE run well below the library's
    # speed (d=64, K=8: 160 rows are 10% faster than 80, and 320 another 3-10%
    # than 160, in float32 too; d=8 and d=16 do not change): worth the whole L2.
    rows = max(rows, min(SHORT_TILE, l2_cache_bytes() // (8 * per_row)))
    return int(np.clip(rows // 16 * 16, 32, 1024))


@functools.cache
def l2_cache_bytes() -> int:
    """Size of one core's L2 cache (Linux sysfs), else ``DEFAULT_L2_BYTES``."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            with open(os.path.join(base, index, "level")) as f:
                if f.read().strip() != "2":
                    continue
            with open(os.path.join(base, index, "size")) as f:
                return _bytes(f.read().strip())
    except (OSError, ValueError):
        pass
    return DEFAULT_L2_BYTES


def _bytes(size: str) -> int:
    """``"2048K"`` / ``"2M"`` / ``"1048576"`` as a number of bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if size and size[-1].upper() in units:
        return int(size[:-1]) * units[size[-1].upper()]
    return int(size)
