"""Benchmark: the share of an E-step pass during which the GIL is held.

Threads scale only while the chunk pass runs without the GIL. The fused
kernel's compiled loops release it; everything else in a pass (per chunk:
the Python call, the statistics value, adding it) holds it. So one pass in
one thread is timed twice over: in total, and inside the compiled loops; the
GIL-held share is ``1 - inside / total``, an upper bound (NumPy calls outside
the loops release the GIL too). Both are measured as this thread's CPU time
(``time.thread_time``) and as wall time: on a shared machine, time the thread
spends descheduled would otherwise count as "outside".

(A probe thread counting in pure Python while the pass runs would measure the
same thing directly, but on this machine with other load the probe's own
scheduling swamped it: its numbers were not reproducible, so it is not used.)

Run ``python benchmarks/bench_gil.py`` (or ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
from bench_em import initial_parameters, make_data

from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.fused import kernel as fused_kernel
from gaussmix.engine.params import MixtureParams
from gaussmix.engine.reducers import Sequential, fold
from gaussmix.engine.sources import ArraySource, auto_chunk_size
from gaussmix.mixture import GaussianMixture

CASES = [("full", 200_000, 16, 8), ("full", 1_000_000, 8, 16), ("full", 100_000, 64, 8),
         ("diag", 1_000_000, 32, 16), ("tied", 500_000, 16, 8),
         ("spherical", 500_000, 16, 8)]


def params_of(X: np.ndarray, K: int, cov: str) -> MixtureParams:
    warnings.simplefilter("ignore")  # one iteration: not converged
    gm = GaussianMixture(K, covariance_type=cov, max_iter=1, tol=0.0,
                         **initial_parameters(X, K, cov)).fit(X)
    return MixtureParams(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)


def one_pass(kernel: EStepKernel, source: ArraySource, clock=time.perf_counter) -> float:  # noqa: ANN001
    t = clock()
    fold(lambda c: kernel.statistics(*c), source, Sequential())
    return clock() - t


def gil_share(kernel: EStepKernel, source: ArraySource, clock) -> float:  # noqa: ANN001
    """1 - (time inside the compiled loops) / (pass time), on ``clock``."""
    inside = [0.0]
    original = fused_kernel._loop

    def timed_loop(cov: str, kind: str):  # noqa: ANN202
        func = original(cov, kind)

        def run(*args):  # noqa: ANN202
            t = clock()
            try:
                return func(*args)
            finally:
                inside[0] += clock() - t
        return run

    fused_kernel._loop = timed_loop
    try:
        total = one_pass(kernel, source, clock)
    finally:
        fused_kernel._loop = original
    return 1.0 - inside[0] / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n divided by 10")
    parser.add_argument("--repeat", type=int, default=5, help="passes; median kept")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} cores; one single-threaded pass; GIL-held share = "
          f"1 - time in compiled loops / pass time (median of {args.repeat})")
    print("| case | chunk rows | pass ms (reference) | pass ms (fused) | fused/reference "
          "| GIL share, CPU time | GIL share, wall time |")
    print("|---|---|---|---|---|---|---|")
    for cov, n, d, K in CASES:
        n = n // 10 if args.quick else n
        X = make_data(n, d, K, "float64")
        piece = get_covariance_type(cov)
        params = params_of(X, K, cov)
        source = ArraySource(X, None, auto_chunk_size(K, d, piece))
        kernels = {}
        for choice in ("reference", "fused"):
            os.environ["GAUSSMIX_KERNEL"] = choice
            kernels[choice] = EStepKernel.build(piece, params, source.spec)
            one_pass(kernels[choice], source)  # warm: compiled loops loaded
        os.environ.pop("GAUSSMIX_KERNEL")
        times: dict[str, list[float]] = {c: [] for c in kernels}
        for _ in range(args.repeat):  # alternated: a slow spell hits both
            for choice, kernel in kernels.items():
                times[choice].append(one_pass(kernel, source))
        ref, fast = (statistics.median(times[c]) for c in ("reference", "fused"))
        shares = [statistics.median(gil_share(kernels["fused"], source, clock)
                                    for _ in range(args.repeat))
                  for clock in (time.thread_time, time.perf_counter)]
        print(f"| {cov} n={n} d={d} K={K} | {source.chunk_size} | {1e3 * ref:.1f} | "
              f"{1e3 * fast:.1f} | {ref / fast:.2f}x | {shares[0]:.1%} | {shares[1]:.1%} |",
              flush=True)


if __name__ == "__main__":
    main()
