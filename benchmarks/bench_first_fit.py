"""Benchmark: the first fit in a fresh process, fused kernel against reference.

The fused kernel imports numba and loads its compiled loops (from numba's
on-disk cache; the very first run on a machine compiles them, several
seconds) on the first chunk big enough for it. This times, in fresh
processes, ``import gaussmix`` plus the first fit and a second fit, for
``GAUSSMIX_KERNEL=reference``, ``auto`` (the default: the reference until the
process has done enough E-step work to repay loading the loops) and ``fused``
(loads them on the first big chunk), at a small n and larger ones.

Run ``python benchmarks/bench_first_fit.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import numpy as np
from gaussmix import GaussianMixture
t_import = time.perf_counter() - t0
n, d, K, cov = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
X = np.random.default_rng(0).standard_normal((n, d))
warnings.simplefilter("ignore")
times = []
for _ in range(2):
    t = time.perf_counter()
    GaussianMixture(K, covariance_type=cov, max_iter=10, tol=0, random_state=0,
                    init_params="random_from_data").fit(X)
    times.append(time.perf_counter() - t)
print(json.dumps([t_import, *times]))
"""

CASES = [(1_000, 4, 3, "full"), (1_000, 16, 8, "full"), (50_000, 16, 8, "full"),
         (200_000, 16, 8, "full")]


def run(kernel: str, case: tuple) -> list[float]:
    env = {**os.environ, "GAUSSMIX_KERNEL": kernel}
    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, case)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    repeats = 3
    print("# seconds, median of", repeats, "fresh processes")
    print("| case | kernel | import | first fit | second fit |")
    print("|---|---|---|---|---|")
    for case in CASES:
        for kernel in ("reference", "auto", "fused"):
            runs = [run(kernel, case) for _ in range(repeats)]
            cells = [statistics.median(r[i] for r in runs) for i in range(3)]
            n, d, K, cov = case
            print(f"| {cov} n={n} d={d} K={K} (10 iterations) | {kernel} | "
                  + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
