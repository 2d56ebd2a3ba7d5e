"""Benchmark: this checkout's fused tile loops against another checkout's, one process.

On a shared machine, fits timed in two processes minutes apart differ by more
than the change being measured. This script loads the compiled loops of a
second checkout (``--before path/to/src``: its ``gaussmix/engine/fused/<type>_loops.py``,
or ``loops.py`` in checkouts from before those were split, and the modules of
that folder they import) beside this checkout's, and times
one single-threaded chunk pass of each, alternated, on the same arrays (this
checkout's ``loop_arrays`` and tile rows, or ``--before-tile`` rows for the
other), as thread CPU time, best of ``--repeat``. It prints both, their ratio
and each against the single-thread GEMM floor measured in the same run (4 n K
d^2 flops for full covariances, see ``bench_em.iteration_flops``).

Run ``python benchmarks/bench_kernel_ab.py --before /path/to/main/src``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable

import numba
import numpy as np
from bench_em import initial_parameters, iteration_flops, make_data
from threadpoolctl import threadpool_limits

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.fused import kernel as fused_kernel
from gaussmix.engine.params import MixtureParams

CASES = [("full", 200_000, 16, 8, "float64"), ("full", 1_000_000, 8, 16, "float64"),
         ("full", 100_000, 64, 8, "float64"), ("diag", 1_000_000, 32, 16, "float64"),
         ("tied", 500_000, 16, 8, "float64"), ("spherical", 500_000, 16, 8, "float64"),
         ("full", 200_000, 16, 8, "float32")]


def after_loop(cov: str) -> Callable[..., int]:
    """This checkout's chunk loop for covariance type ``cov``."""
    module = importlib.import_module(f"gaussmix.engine.fused.{cov}_loops")
    return getattr(module, f"{cov}_chunk")


def load_before(src: str) -> Callable[[str], Callable[..., int]]:
    """The other checkout's chunk loop for a covariance type, from its
    ``fused/<type>_loops.py`` (or ``fused/loops.py`` before the split),
    imported in a package ``before_fused`` so that its relative imports
    (``.moments``, ``.tile_steps``) find that checkout's modules."""
    folder = os.path.join(src, "gaussmix", "engine", "fused")
    package = types.ModuleType("before_fused")
    package.__path__ = [folder]
    sys.modules["before_fused"] = package

    def loop(cov: str) -> Callable[..., int]:
        split = os.path.exists(os.path.join(folder, f"{cov}_loops.py"))
        # Compiled under another module name, its functions must not be cached
        # beside their sources: that checkout would then load them by this name.
        saved = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), "gaussmix-bench-before")
        try:
            module = importlib.import_module(f"before_fused.{cov}_loops" if split
                                             else "before_fused.loops")
        finally:
            numba.config.CACHE_DIR = saved
        return getattr(module, f"{cov}_chunk")

    return loop


def fused_kernel_for(X: np.ndarray, cov: str, K: int) -> fused_kernel.FusedEStepKernel:
    """The fused kernel at the parameters after one EM iteration."""
    warnings.simplefilter("ignore")
    gm = GaussianMixture(K, covariance_type=cov, max_iter=1, tol=0.0,
                         **initial_parameters(X, K, cov)).fit(X)
    params = MixtureParams(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
    os.environ["GAUSSMIX_KERNEL"] = "fused"
    kernel = EStepKernel.build(get_covariance_type(cov), params, ComputeSpec(np, X.dtype))
    assert isinstance(kernel, fused_kernel.FusedEStepKernel)
    return kernel


def one_pass(loop, kernel, X: np.ndarray, tile: int) -> tuple[float, float]:  # noqa: ANN001
    """Thread CPU seconds of one pass over X by the chunk loop ``loop``, and
    its log-likelihood."""
    layout = fused_kernel._LAYOUTS[kernel.covariance_type]
    K, d = kernel.state.shift.shape
    buffers, acc = layout.buffers(K, d), np.zeros(3)
    args = [kernel.fused[name] for name in layout.order]
    t = time.thread_time()
    status = loop(X, np.empty(0), *args, tile, *buffers, acc)
    elapsed = time.thread_time() - t
    assert status == 0
    return elapsed, float(acc[0])


def gemm_rate(dtype: str, size: int = 1024, repeat: int = 5) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    a @ a
    best = np.inf
    for _ in range(repeat):
        t = time.thread_time()
        a @ a
        best = min(best, time.thread_time() - t)
    return 2.0 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other checkout's src/")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", type=int, action="append")
    parser.add_argument("--before-tile", type=int,
                        help="rows per tile for the other checkout (default: this one's)")
    args = parser.parse_args()
    before_loop = load_before(args.before)
    print("| case | tile rows (before, after) | before ms | after ms | before/after "
          "| GEMM GFLOP/s (1 thread) | before x floor | after x floor | log-lik rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for i, (cov, n, d, K, dtype) in enumerate(CASES):
            if args.case and i not in args.case:
                continue
            X = make_data(n, d, K, dtype)
            kernel = fused_kernel_for(X, cov, K)
            small = X[:2000]
            before, after = before_loop(cov), after_loop(cov)
            tiles = {before: args.before_tile or kernel.tile, after: kernel.tile}
            for loop, tile in tiles.items():  # compile or load from cache
                one_pass(loop, kernel, small, tile)
            t_before = t_after = np.inf
            rate = 0.0
            for _ in range(args.repeat):  # alternated: a slow spell hits both
                tb, ll_b = one_pass(before, kernel, X, tiles[before])
                ta, ll_a = one_pass(after, kernel, X, tiles[after])
                t_before, t_after = min(t_before, tb), min(t_after, ta)
                rate = max(rate, gemm_rate(dtype))
            floor = iteration_flops(cov, n, d, K) / rate
            print(f"| {cov} n={n} d={d} K={K} {dtype} | {tiles[before]}, {kernel.tile} | "
                  f"{1e3 * t_before:.1f} | {1e3 * t_after:.1f} | {t_before / t_after:.2f}x | "
                  f"{rate / 1e9:.0f} | {t_before / floor:.2f}x | {t_after / floor:.2f}x | "
                  f"{abs(ll_a - ll_b) / abs(ll_b):.1e} |", flush=True)


if __name__ == "__main__":
    main()
