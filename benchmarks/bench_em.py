"""Benchmark: gaussmix.GaussianMixture against sklearn.mixture.GaussianMixture.

Both estimators start from the same weights_init/means_init/precisions_init,
run the same fixed number of EM iterations (tol=0) on the same data in this
one process, and are timed with wall-clock time (best of ``--repeat`` fits).
Peak extra memory during a fit is measured separately with tracemalloc
(NumPy reports its allocations to it).

The same run measures the machine's matrix-product (GEMM) rate and reports
each fit against the *GEMM floor*: the time the iteration's matrix products
(:func:`iteration_flops`, e.g. 4 n K d^2 for full covariances) would take at
that rate ("x floor" = time / floor). Two times per iteration: "s/it", a
whole fit's time divided by its iterations (as scikit-learn's is timed: it
includes what a fit does once, such as the first pass and the final labels
pass), and "steady s/it", one iteration once the fit runs (the median time
between iterations, :func:`steady_iteration`), which is what the floor bounds;
"fraction of the GEMM floor" is floor / steady. It also times gaussmix with its
reference array-API kernel (``GAUSSMIX_KERNEL=reference``) beside the default
(the fused, compiled kernel where numba is installed): that pair is the
before/after of the fused kernel, measured in one process.

``--threads 1,2,4`` adds a thread-scaling table: gaussmix (both kernels; the
default one alone with ``--gaussmix-only``, then with its steady iteration and
the fraction of the GEMM floor at each thread count, the matrix-product rate
measured with that many BLAS threads) with each number of threads on the
selected cases, and the speed-up over one thread. ``--rows N`` sets the
selected cases' n (the issue's scaling case is ``--case 0 --rows 1000000``).
The default kernel's table also times the machine's own ceiling: one pass of
the compiled kernel over the same chunks split statically over plain threads
that merge nothing (:class:`StaticSplit`);
``--chunk-sizes 4096,8192`` adds rows for the largest thread count with those
``chunk_size`` values (the default is chosen from d and K).

Run ``python benchmarks/bench_em.py`` (all cases) or ``--quick`` (small sizes).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGMM
from threadpoolctl import threadpool_limits

from gaussmix import GaussianMixture
from gaussmix.engine.threads import available_cores

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


def timed_fit(cls, X, K, cov, init, n_iter, repeat, **options):
    best, model = np.inf, None
    for _ in range(repeat):
        model = cls(K, covariance_type=cov, max_iter=n_iter, tol=0.0, **init, **options)
        t = time.perf_counter()
        model.fit(X)
        best = min(best, time.perf_counter() - t)
    return best, model


def _stamp(stamps: list, _info: dict) -> None:
    stamps.append(time.perf_counter())


def steady_iteration(X, K, cov, init, n_iter, repeat, **options) -> float:
    """Seconds of one EM iteration of gaussmix (default kernel) once running:
    the median time between consecutive iterations (from the ``callback``),
    best of ``repeat`` fits. Unlike fit time / iterations, it leaves out what
    a fit does once (validation, the first pass from the initial parameters,
    the final labels pass), so it is the time the GEMM floor is about."""
    best = np.inf
    for _ in range(repeat):
        stamps: list[float] = []
        GaussianMixture(K, covariance_type=cov, max_iter=max(n_iter, 3), tol=0.0,
                        callback=functools.partial(_stamp, stamps), **init,
                        **options).fit(X)
        best = min(best, float(np.median(np.diff(stamps))))
    return best


def kernel_fit(kernel, X, K, cov, init, n_iter, repeat, **options):
    """A gaussmix fit timed with ``GAUSSMIX_KERNEL=kernel`` (reference|auto|fused)."""
    before = os.environ.get("GAUSSMIX_KERNEL")
    os.environ["GAUSSMIX_KERNEL"] = kernel
    try:
        return timed_fit(GaussianMixture, X, K, cov, init, n_iter, repeat, **options)
    finally:
        if before is None:
            del os.environ["GAUSSMIX_KERNEL"]
        else:
            os.environ["GAUSSMIX_KERNEL"] = before


def peak_memory(cls, X, K, cov, init) -> float:
    """Peak bytes allocated during a one-iteration fit, beyond X itself."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    cls(K, covariance_type=cov, max_iter=1, tol=0.0, **init).fit(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def matmul_rate(dtype: str = "float64", size: int = 2048, repeat: int = 5,
                threads: int | None = None) -> float:
    """The machine's measured matrix-product rate (FLOP/s) with all BLAS
    threads, or with ``threads`` of them."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2.0 * size**3 / best


def _timed(func) -> float:
    t = time.perf_counter()
    func()
    return time.perf_counter() - t


def iteration_flops(cov: str, n: int, d: int, K: int) -> float:
    """Flops of one iteration's matrix products, the floor of the E-step.

    full: 4 n K d^2 (whitening for all components, second moments); tied:
    4 n d^2 + 4 n K d (one whitening, the shared second moment, scores and
    first moments); diag: 8 n K d (scores from [(x-c)^2, x-c], moments of the
    same); spherical: 4 n K d (scores and first moments).
    """
    return {
        "full": 4.0 * n * K * d * d,
        "tied": 4.0 * n * d * d + 4.0 * n * K * d,
        "diag": 8.0 * n * K * d,
        "spherical": 4.0 * n * K * d,
    }[cov]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iter", type=int, default=5, help="EM iterations per fit")
    parser.add_argument("--repeat", type=int, default=2, help="fits timed, best kept")
    parser.add_argument("--quick", action="store_true", help="n divided by 20")
    parser.add_argument("--case", type=int, action="append",
                        help="run only these case indices")
    parser.add_argument("--threads", help="thread-scaling table for these counts, "
                        "e.g. 1,2,4,8,16")
    parser.add_argument("--rows", type=int, help="n of every selected case")
    parser.add_argument("--chunk-sizes", help="scaling table: also these chunk_size "
                        "values at the largest thread count, e.g. 4096,32768")
    parser.add_argument("--gaussmix-only", action="store_true",
                        help="time only gaussmix's default kernel (no scikit-learn, "
                        "reference kernel or memory columns): for before/after runs of "
                        "two checkouts, PYTHONPATH=<checkout>/src")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"# {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}, "
          f"sklearn {__import__('sklearn').__version__}, {time.strftime('%Y-%m-%d')}")
    rates = {dt: matmul_rate(dt) for dt in ("float64", "float32")}
    print("# measured matrix-product rate: " + ", ".join(
        f"{dt} {r / 1e9:.1f} GFLOP/s" for dt, r in rates.items())
        + " (and again before and after each case: the floor uses the best)")
    selected = [(i, case if args.rows is None else (case[0], args.rows, *case[2:]))
                for i, case in enumerate(CASES) if not args.case or i in args.case]
    warm_up(selected, args.quick)
    if args.gaussmix_only:
        floor_table(selected, args)
        if args.threads:
            default_kernel_scaling(selected, args)
        return
    header = ("case", "sklearn s/it", "reference s/it", "gaussmix s/it", "speed-up",
              "fused/reference", "sklearn loglik", "gaussmix loglik", "sk MiB", "gm MiB",
              "GEMM GFLOP/s", "GEMM floor s/it", "x floor", "steady s/it", "steady x floor",
              "fraction of the GEMM floor")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cov, n, d, K, dtype, X, init in case_data(selected, args.quick):
        rate = matmul_rate(dtype)  # measured beside each case: the VM's speed moves
        t_sk, sk = timed_fit(SkGMM, X, K, cov, init, args.iter, args.repeat)
        t_ref, t_gm, gm = alternated(X, K, cov, init, args.iter, args.repeat)
        steady = steady_iteration(X, K, cov, init, args.iter, args.repeat)
        rate = max(rate, matmul_rate(dtype))
        mem_sk = peak_memory(SkGMM, X, K, cov, init) / 2**20
        mem_gm = peak_memory(GaussianMixture, X, K, cov, init) / 2**20
        name = f"{cov} n={n} d={d} K={K} {dtype}"
        floor = iteration_flops(cov, n, d, K) / rate
        per_iter = t_gm / args.iter
        print(f"| {name} | {t_sk / args.iter:.4f} | {t_ref / args.iter:.4f} | "
              f"{per_iter:.4f} | {t_sk / t_gm:.2f}x | {t_ref / t_gm:.2f}x | "
              f"{sk.lower_bound_:.6f} | {gm.lower_bound_:.6f} | {mem_sk:.0f} | "
              f"{mem_gm:.0f} | {rate / 1e9:.0f} | {floor:.4f} | {per_iter / floor:.2f}x | "
              f"{steady:.4f} | {steady / floor:.2f}x | {floor / steady:.0%} |", flush=True)
    if args.threads:
        thread_scaling(selected, args)


def case_data(selected, quick: bool):  # noqa: ANN201 - a generator of tuples
    """Each selected case with its data and start: (cov, n, d, K, dtype, X, init);
    n divided by 20 with ``--quick``."""
    for _, (cov, n, d, K, dtype) in selected:
        n = n // 20 if quick else n
        X = make_data(n, d, K, dtype)
        yield cov, n, d, K, dtype, X, initial_parameters(X, K, cov)


def floor_table(selected, args) -> None:
    """gaussmix (default kernel) against the GEMM floor only."""
    print("| case | gaussmix s/it | GEMM GFLOP/s | GEMM floor s/it | x floor | "
          "steady s/it | steady x floor |")
    print("|---|---|---|---|---|---|---|")
    for cov, n, d, K, dtype, X, init in case_data(selected, args.quick):
        rate = matmul_rate(dtype)
        t_gm = steady = np.inf
        for _ in range(args.repeat):  # floor and fit alternated: the VM's speed moves
            t_gm = min(t_gm, kernel_fit("auto", X, K, cov, init, args.iter, 1)[0])
            steady = min(steady, steady_iteration(X, K, cov, init, args.iter, 1))
            rate = max(rate, matmul_rate(dtype))
        floor = iteration_flops(cov, n, d, K) / rate
        per_iter = t_gm / args.iter
        print(f"| {cov} n={n} d={d} K={K} {dtype} | {per_iter:.4f} | {rate / 1e9:.0f} | "
              f"{floor:.4f} | {per_iter / floor:.2f}x | {steady:.4f} | "
              f"{steady / floor:.2f}x |", flush=True)


def alternated(X, K, cov, init, n_iter, repeat, **options):
    """Best times of the reference and the default (fused) kernel, their fits
    alternated so that a slow spell of this shared machine hits both."""
    t_ref = t_gm = np.inf
    gm = None
    for _ in range(repeat):
        t_ref = min(t_ref, kernel_fit("reference", X, K, cov, init, n_iter, 1,
                                      **options)[0])
        t, gm = kernel_fit("auto", X, K, cov, init, n_iter, 1, **options)
        t_gm = min(t_gm, t)
    return t_ref, t_gm, gm


def warm_up(selected, quick: bool) -> None:
    """One small fit per case's type and dtype with the fused kernel forced,
    so that loading (or first compiling) its loops is not timed: the timed
    ``auto`` fits then use them from their first pass (see
    ``benchmarks/bench_first_fit.py`` for that one-time cost)."""
    for cov, dtype in {(cov, dtype) for _, (cov, _, _, _, dtype) in selected}:
        X = make_data(20_000, 4, 2, dtype)
        kernel_fit("fused", X, 2, cov, {"random_state": 0}, 2, 1)


def thread_scaling(selected, args) -> None:
    """ms per iteration of gaussmix (both kernels) for each thread count."""
    counts = [int(t) for t in args.threads.split(",")]
    print()
    print(f"# thread scaling ({os.cpu_count()} cores here; ms per iteration, "
          "speed-up over one thread)")
    header = ("case", "kernel", *(f"{t} threads" for t in counts))
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cov, n, d, K, dtype, X, init in case_data(selected, args.quick):
        pairs = [alternated(X, K, cov, init, args.iter, args.repeat, n_threads=t)
                 for t in counts]
        for name, column in (("reference", 0), ("fused", 1)):
            times = [pair[column] / args.iter for pair in pairs]
            cells = [f"{1e3 * t:.1f} ({times[0] / t:.1f}x)" for t in times]
            print(f"| {cov} n={n} d={d} K={K} {dtype} | {name} | " + " | ".join(cells)
                  + " |", flush=True)


def default_kernel_scaling(selected, args) -> None:
    """The default kernel alone at each thread count: fit s/it, steady s/it,
    speed-ups over one thread and the fraction of the GEMM floor (the rate
    measured with as many BLAS threads); then ``--chunk-sizes`` at the
    largest count."""
    counts = [int(t) for t in args.threads.split(",")]
    print()
    print(f"# thread scaling, default kernel ({os.cpu_count()} cores here, "
          f"{available_cores()} available; best of {args.repeat} fits of {args.iter} "
          "iterations)")
    print("| case | threads | chunk_size | fit s/it | speed-up | steady s/it | speed-up | "
          "GEMM GFLOP/s | fraction of the GEMM floor | static split ms | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for cov, n, d, K, dtype, X, init in case_data(selected, args.quick):
        runs = [(t, None) for t in counts]
        if args.chunk_sizes:
            runs += [(counts[-1], int(c)) for c in args.chunk_sizes.split(",")]
        first = None
        split = StaticSplit(X, K, cov, init)
        for t, chunk in runs:
            options = {"n_threads": t, "chunk_size": chunk}
            fit = kernel_fit("auto", X, K, cov, init, args.iter, args.repeat,
                             **options)[0] / args.iter
            steady = steady_iteration(X, K, cov, init, args.iter, args.repeat, **options)
            rate = matmul_rate(dtype, threads=t)
            alone = split.best(t, args.repeat) if chunk is None else None
            first = first or (fit, steady, alone)
            floor = iteration_flops(cov, n, d, K) / rate
            static = ("| |" if alone is None else
                      f"| {1e3 * alone:.1f} | {first[2] / alone:.1f}x |")
            print(f"| {cov} n={n} d={d} K={K} {dtype} | {t} | {chunk or 'auto'} | "
                  f"{fit:.4f} | {first[0] / fit:.1f}x | {steady:.4f} | "
                  f"{first[1] / steady:.1f}x | {rate / 1e9:.0f} | {floor / steady:.0%} "
                  + static, flush=True)


class StaticSplit:
    """The machine's own scaling of the chunk kernel: one E-step pass over the
    fit's chunks, split statically over ``t`` plain threads that run the
    compiled kernel on their share and merge nothing (no statistics sums, no
    Python between chunks beyond the kernel call). What the engine's
    pass loses against it is orchestration; what it loses against ``t`` times
    one thread is the hardware's (clock speed under load, shared caches)."""

    def __init__(self, X, K, cov, init) -> None:  # noqa: ANN001
        from gaussmix.engine.covariance import get_covariance_type
        from gaussmix.engine.estep import EStepKernel
        from gaussmix.engine.params import MixtureParams
        from gaussmix.engine.sources import ArraySource

        gm = GaussianMixture(K, covariance_type=cov, max_iter=1, tol=0.0, **init).fit(X)
        params = MixtureParams(gm.weights_, gm.means_, gm.covariances_,
                               gm.precisions_cholesky_)
        source = ArraySource(X, None, gm._chunk_size(X.shape[1], X.shape[0]))
        self.chunks = list(source.chunks())
        self.pools: dict = {}
        spec = source.spec
        before = os.environ.get("GAUSSMIX_KERNEL")
        os.environ["GAUSSMIX_KERNEL"] = "fused"
        try:
            self.kernel = EStepKernel.build(get_covariance_type(cov), params, spec)
        finally:
            os.environ.pop("GAUSSMIX_KERNEL")
            if before is not None:
                os.environ["GAUSSMIX_KERNEL"] = before

    def best(self, threads: int, repeat: int) -> float:
        self.run(threads)
        return min(self.run(threads) for _ in range(repeat))

    def run(self, threads: int) -> float:
        from concurrent.futures import ThreadPoolExecutor

        from gaussmix.engine.threads import single_threaded

        def work(share) -> None:  # noqa: ANN001
            for chunk in share:
                self.kernel.statistics(*chunk)

        # threads kept across passes (as the engine's pool), one share each;
        # BLAS held to one thread once, around the whole pass: the limit is
        # process-wide, so a worker restoring it on exit would let the others'
        # products spawn BLAS threads
        pool = self.pools.setdefault(threads, ThreadPoolExecutor(threads))
        with single_threaded():
            t = time.perf_counter()
            for done in [pool.submit(work, self.chunks[i::threads])
                         for i in range(threads)]:
                done.result()
            return time.perf_counter() - t


if __name__ == "__main__":
    main()
