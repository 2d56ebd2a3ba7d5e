"""Benchmark: cost per row of ``partial_fit`` against one iteration of ``fit``.

One EM iteration of a full fit costs one E-step pass over the rows plus one
M-step; a ``partial_fit`` call costs one E-step pass over its batch plus one
M-step, validation and bookkeeping, so its cost per row should approach the
full fit's per-iteration cost once batches are large enough to amortise the
per-call work.

- full fit: seconds per row per iteration, the median time between two
  iterations (from the ``callback``) of fits with ``tol=0`` from a fixed start,
  so fixed costs such as validation and the final labels pass are left out;
- partial_fit: wall time of a pass over the rows in batches of each size,
  divided by the rows (after a first call that initialises the stream).

Both use the same threads (all cores unless ``--threads``); fits and passes
repeated ``--repeat`` times (partial_fit: the fastest pass).
Run ``python benchmarks/bench_partial_fit.py`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from bench_em import initial_parameters, make_data
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture

CASES = [  # (covariance_type, n, d, K)
    ("full", 200_000, 16, 8),
    ("diag", 200_000, 32, 16),
    ("tied", 200_000, 16, 8),
    ("spherical", 200_000, 16, 8),
]
BATCHES = (1_000, 10_000, 50_000)


def fit_cost(X, cov, K, init, iters, threads, repeat) -> float:
    """Seconds per row per EM iteration of a full fit: the median time between
    two iteration callbacks (so validation and the final labels pass are out)."""
    lapses: list[float] = []

    def record(info: dict) -> None:
        now = time.perf_counter()
        if info["iteration"] > 1:
            lapses.append(now - record.last)  # type: ignore[attr-defined]
        record.last = now  # type: ignore[attr-defined]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(repeat):
            GaussianMixture(K, covariance_type=cov, tol=0.0, max_iter=iters + 1,
                            n_threads=threads, callback=record, **init).fit(X)
    return float(np.median(lapses)) / len(X)


def partial_fit_cost(X, cov, K, init, batch, threads, repeat) -> float:
    """Seconds per row of a pass of partial_fit over X in batches."""
    starts = range(0, len(X), batch)

    def stream():
        gm = GaussianMixture(K, covariance_type=cov, n_threads=threads, **init)
        gm.partial_fit(X[:batch])  # initialises; not timed below
        start = time.perf_counter()
        for i in starts:
            gm.partial_fit(X[i:i + batch])
        return time.perf_counter() - start

    return min(stream() for _ in range(repeat)) / len(X)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, threads={args.threads or 'all'}")
    print(f"{'cov':>9} {'n':>8} {'d':>3} {'K':>3} {'batch':>6} "
          f"{'fit us/row/iter':>16} {'partial us/row':>15} {'ratio':>6}")
    for cov, n, d, K in CASES:
        if args.quick:
            n //= 10
        X = make_data(n, d, K, "float64")
        init = initial_parameters(X, K, cov)
        fit_cost(X[: n // 10], cov, K, init, 2, args.threads, 1)  # warm up
        per_iter = fit_cost(X, cov, K, init, args.iters, args.threads, args.repeat)
        for batch in BATCHES:
            if batch > n // 2:
                continue
            per_row = partial_fit_cost(X, cov, K, init, batch, args.threads,
                                       args.repeat)
            print(f"{cov:>9} {n:>8} {d:>3} {K:>3} {batch:>6} {per_iter * 1e6:>16.3f} "
                  f"{per_row * 1e6:>15.3f} {per_row / per_iter:>6.2f}")


if __name__ == "__main__":
    main()
