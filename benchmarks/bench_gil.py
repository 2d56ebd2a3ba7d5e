"""Benchmark: the share of an E-step pass during which the GIL is held.

Threads scale only while the chunk pass runs without the GIL. Two measures,
both of one pass (the statistics of every chunk, added) in one thread:

- *timing*: the pass's wall time against the time spent inside the fused
  kernel's compiled loops (which release the GIL). Everything outside them is
  counted as holding the GIL, so this is an upper bound (NumPy calls outside
  the loops release it too).
- *probe*: a second Python thread counts in a loop; it advances only while it
  holds the GIL, so ``1 - rate during the pass / rate alone`` is the share of
  time the pass kept the GIL from it. It needs a free core for the probe:
  noisy on a loaded machine.

Both are printed for the fused kernel and for the reference
(``GAUSSMIX_KERNEL=reference``; only the probe applies to it).

Run ``python benchmarks/bench_gil.py`` (or ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
from bench_em import initial_parameters, make_data

from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.fused import kernel as fused_kernel
from gaussmix.engine.params import MixtureParams
from gaussmix.engine.reducers import Sequential, fold
from gaussmix.engine.sources import ArraySource, auto_chunk_size
from gaussmix.mixture import GaussianMixture

CASES = [("full", 200_000, 16, 8), ("full", 1_000_000, 8, 16), ("diag", 1_000_000, 32, 16),
         ("tied", 500_000, 16, 8), ("spherical", 500_000, 16, 8)]


def params_of(X: np.ndarray, K: int, cov: str) -> MixtureParams:
    gm = GaussianMixture(K, covariance_type=cov, max_iter=1, tol=0.0,
                         **initial_parameters(X, K, cov)).fit(X)
    return MixtureParams(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)


def one_pass(kernel: EStepKernel, source: ArraySource) -> float:
    t = time.perf_counter()
    fold(lambda c: kernel.statistics(*c), source, Sequential())
    return time.perf_counter() - t


def timing_share(kernel: EStepKernel, source: ArraySource) -> float:
    """1 - (time inside the compiled loops) / (pass time)."""
    inside = [0.0]
    original = fused_kernel._loop

    def timed_loop(cov: str, kind: str):  # noqa: ANN202
        func = original(cov, kind)

        def run(*args):  # noqa: ANN202
            t = time.perf_counter()
            try:
                return func(*args)
            finally:
                inside[0] += time.perf_counter() - t
        return run

    fused_kernel._loop = timed_loop
    try:
        total = one_pass(kernel, source)
    finally:
        fused_kernel._loop = original
    return 1.0 - inside[0] / total


def probe_share(kernel: EStepKernel, source: ArraySource, seconds: float = 0.5) -> float:
    """1 - probe rate during passes / probe rate alone."""
    def rate(work) -> float:  # noqa: ANN001
        count, stop = [0], threading.Event()

        def probe() -> None:
            while not stop.is_set():
                count[0] += 1

        thread = threading.Thread(target=probe)
        t = time.perf_counter()
        thread.start()
        work()
        stop.set()
        thread.join()
        return count[0] / (time.perf_counter() - t)

    alone = rate(lambda: time.sleep(seconds))
    deadline = time.perf_counter() + seconds

    def passes() -> None:
        while time.perf_counter() < deadline:
            one_pass(kernel, source)

    return max(0.0, 1.0 - rate(passes) / alone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n divided by 10")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores; GIL-held share of one single-threaded pass")
    print("| case | pass ms (fused) | GIL share, timing (fused) | GIL share, probe (fused) "
          "| pass ms (reference) | GIL share, probe (reference) |")
    print("|---|---|---|---|---|---|")
    for cov, n, d, K in CASES:
        n = n // 10 if args.quick else n
        X = make_data(n, d, K, "float64")
        piece = get_covariance_type(cov)
        params = params_of(X, K, cov)
        source = ArraySource(X, None, auto_chunk_size(K, d, piece))
        cells = []
        for choice in ("fused", "reference"):
            os.environ["GAUSSMIX_KERNEL"] = choice
            kernel = EStepKernel.build(piece, params, source.spec)
            one_pass(kernel, source)  # warm (compiled loops loaded)
            t = min(one_pass(kernel, source) for _ in range(3))
            cells.append(f"{1e3 * t:.1f}")
            if choice == "fused":
                cells.append(f"{timing_share(kernel, source):.1%}")
            cells.append(f"{probe_share(kernel, source):.1%}")
        os.environ.pop("GAUSSMIX_KERNEL")
        print(f"| {cov} n={n} d={d} K={K} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
