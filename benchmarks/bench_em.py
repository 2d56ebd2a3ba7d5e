"""Benchmark: gaussmix.GaussianMixture against sklearn.mixture.GaussianMixture.

Both estimators start from the same weights_init/means_init/precisions_init,
run the same fixed number of EM iterations (tol=0) on the same data in this
one process, and are timed with wall-clock time (best of ``--repeat`` fits).
Peak extra memory during a fit is measured separately with tracemalloc
(NumPy reports its allocations to it).

Run ``python benchmarks/bench_em.py`` (all cases) or ``--quick`` (small sizes).
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGMM

from gaussmix import GaussianMixture

CASES = [  # (covariance_type, n, d, K, dtype)
    ("full", 200_000, 16, 8, "float64"),
    ("full", 1_000_000, 8, 16, "float64"),
    ("full", 100_000, 64, 8, "float64"),
    ("diag", 1_000_000, 32, 16, "float64"),
    ("tied", 500_000, 16, 8, "float64"),
    ("spherical", 500_000, 16, 8, "float64"),
    ("full", 200_000, 16, 8, "float32"),
]


def make_data(n: int, d: int, K: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Rows from a K-component mixture with random means and covariances."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(K, d))
    labels = rng.integers(K, size=n)
    scales = rng.uniform(0.5, 2.0, size=(K, d))
    X = means[labels] + rng.standard_normal((n, d)) * scales[labels]
    return X.astype(dtype)


def initial_parameters(X: np.ndarray, K: int, cov: str, seed: int = 1) -> dict:
    """Means at random rows, equal weights, unit precisions of the right shape."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    precisions = {
        "full": np.tile(np.eye(d), (K, 1, 1)),
        "tied": np.eye(d),
        "diag": np.ones((K, d)),
        "spherical": np.ones(K),
    }[cov]
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=X[rng.choice(len(X), K, replace=False)].astype(np.float64),
        precisions_init=precisions,
    )


def timed_fit(cls, X, K, cov, init, n_iter, repeat):
    best, model = np.inf, None
    for _ in range(repeat):
        model = cls(K, covariance_type=cov, max_iter=n_iter, tol=0.0, **init)
        t = time.perf_counter()
        model.fit(X)
        best = min(best, time.perf_counter() - t)
    return best, model


def peak_memory(cls, X, K, cov, init) -> float:
    """Peak bytes allocated during a one-iteration fit, beyond X itself."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    cls(K, covariance_type=cov, max_iter=1, tol=0.0, **init).fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def matmul_rate(dtype: str = "float64", size: int = 2048, repeat: int = 5) -> float:
    """The machine's measured matrix-product rate (FLOP/s) with all BLAS threads."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2.0 * size**3 / best


def _timed(func) -> float:
    t = time.perf_counter()
    func()
    return time.perf_counter() - t


def full_iteration_flops(n: int, d: int, K: int) -> float:
    """About 4 n K d^2: the whitening product and the second moments."""
    return 4.0 * n * K * d * d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iter", type=int, default=5, help="EM iterations per fit")
    parser.add_argument("--repeat", type=int, default=2, help="fits timed, best kept")
    parser.add_argument("--quick", action="store_true", help="n divided by 20")
    parser.add_argument("--case", type=int, action="append",
                        help="run only these case indices")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"# {platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, numpy {np.__version__}, "
          f"sklearn {__import__('sklearn').__version__}, {time.strftime('%Y-%m-%d')}")
    rates = {dt: matmul_rate(dt) for dt in ("float64", "float32")}
    print("# measured matrix-product rate: " + ", ".join(
        f"{dt} {r / 1e9:.1f} GFLOP/s" for dt, r in rates.items()))
    header = ("case", "sklearn s/it", "gaussmix s/it", "speed-up",
              "sklearn loglik", "gaussmix loglik", "sk MiB", "gm MiB",
              "of matmul rate")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for i, (cov, n, d, K, dtype) in enumerate(CASES):
        if args.case and i not in args.case:
            continue
        n = n // 20 if args.quick else n
        X = make_data(n, d, K, dtype)
        init = initial_parameters(X, K, cov)
        t_sk, sk = timed_fit(SkGMM, X, K, cov, init, args.iter, args.repeat)
        t_gm, gm = timed_fit(GaussianMixture, X, K, cov, init, args.iter, args.repeat)
        mem_sk = peak_memory(SkGMM, X, K, cov, init) / 2**20
        mem_gm = peak_memory(GaussianMixture, X, K, cov, init) / 2**20
        name = f"{cov} n={n} d={d} K={K} {dtype}"
        # fraction of the measured matmul rate (full covariances: 4 n K d^2 flops)
        share = (f"{full_iteration_flops(n, d, K) / (t_gm / args.iter) / rates[dtype]:.0%}"
                 if cov == "full" else "-")
        print(f"| {name} | {t_sk / args.iter:.4f} | {t_gm / args.iter:.4f} | "
              f"{t_sk / t_gm:.2f}x | {sk.lower_bound_:.6f} | {gm.lower_bound_:.6f} | "
              f"{mem_sk:.0f} | {mem_gm:.0f} | {share} |", flush=True)


if __name__ == "__main__":
    main()
