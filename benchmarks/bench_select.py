"""Benchmark: ``gaussmix.select`` against the same sweep as a scikit-learn loop.

The sweep is K = 1..10 x the four covariance types on n = 100k rows, d = 8,
drawn from a known 4-component full-covariance mixture. The scikit-learn side
is the loop users write by hand::

    for K in 1..10:
        for t in full, tied, diag, spherical:
            gm = sklearn.mixture.GaussianMixture(K, covariance_type=t, n_init=1,
                                                 init_params="kmeans",
                                                 random_state=0).fit(X)
            score = gm.bic(X)

and ``gaussmix.select(X, range(1, 11), criterion="bic", n_init=1,
init_params="kmeans", random_state=0, n_jobs=...)`` does the same work with a
shared k-means seeding per K (with an int random_state both sides start every
candidate from the same k-means labels), the package's chunked EM, and joblib
threads over candidates (one thread per fit). One run each, in this process,
after a tiny warm-up of both (imports only, sequential).

Run ``python benchmarks/bench_select.py`` (``--quick`` for n = 20k,
``--n-jobs`` to change gaussmix's parallelism, ``--profile`` to print where
each side spends its time). ``--sources`` also runs the same selection over
rows not in memory, a memory-mapped ``.npy`` file (``NpySource``) and a
persisted Dask array on the local threaded scheduler, and prints their times
against the in-memory selection and their largest BIC difference from it (to
rounding when n <= 50,000: then every source is seeded from all its rows).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGMM

import gaussmix
from gaussmix.selection import select

TYPES = ("full", "tied", "diag", "spherical")


def make_data(n: int, d: int = 8, k: int = 4, seed: int = 0) -> np.ndarray:
    """Rows from a k-component full-covariance mixture with separated means."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    factors = rng.normal(scale=0.6, size=(k, d, d)) + np.eye(d)
    labels = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 5.0)))
    z = rng.standard_normal((n, d))
    return means[labels] + np.einsum("nij,nj->ni", factors[labels], z)


def sklearn_sweep(X: np.ndarray, ks: range, seed: int) -> tuple[dict, dict]:
    bic, seconds = {}, {}
    for k in ks:
        for t in TYPES:
            t0 = time.perf_counter()
            gm = SkGMM(k, covariance_type=t, n_init=1, init_params="kmeans",
                       random_state=seed).fit(X)
            bic[(k, t)] = gm.bic(X)
            seconds[(k, t)] = time.perf_counter() - t0
    return bic, seconds


def sklearn_kmeans_time(X: np.ndarray, ks: range, seed: int) -> float:
    """Seconds scikit-learn's loop spends in its k-means initialisations."""
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    for k in ks:
        KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X)
    return (time.perf_counter() - t0) * len(TYPES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 20k instead of 100k")
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="gaussmix.select n_jobs (default -1: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", action="store_true",
                        help="also select over an .npy file and a Dask array")
    parser.add_argument("--profile", action="store_true",
                        help="also time scikit-learn's k-means share and print "
                             "per-candidate times")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    ks = range(1, 11)
    X = make_data(n)
    print(f"gaussmix {gaussmix.__version__}; python {platform.python_version()}; "
          f"{platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    print(f"sweep K={ks.start}..{ks.stop - 1} x {len(TYPES)} covariance types, "
          f"n={n}, d={X.shape[1]}, n_init=1, init_params='kmeans', "
          f"random_state={args.seed}")

    warnings.simplefilter("ignore", ConvergenceWarning)
    small = X[:500]
    SkGMM(2, random_state=0).fit(small).bic(small)  # warm-up: imports only
    select(small, range(1, 3), n_jobs=1, random_state=0)

    t0 = time.perf_counter()
    sk_bic, sk_seconds = sklearn_sweep(X, ks, args.seed)
    t_sk = time.perf_counter() - t0
    sk_best = min(sk_bic, key=sk_bic.get)

    t0 = time.perf_counter()
    result = select(X, ks, TYPES, "bic", n_init=1, init_params="kmeans",
                    random_state=args.seed, n_jobs=args.n_jobs)
    t_gm = time.perf_counter() - t0
    gm_best = (result.best_n_components_, result.best_covariance_type_)

    rel = max(abs(c.bic - sk_bic[(c.n_components, c.covariance_type)])
              / abs(sk_bic[(c.n_components, c.covariance_type)]) for c in result.table)
    print(f"scikit-learn loop : {t_sk:8.2f} s   best K={sk_best[0]} {sk_best[1]}")
    print(f"gaussmix.select   : {t_gm:8.2f} s   best K={gm_best[0]} {gm_best[1]}"
          f"   (n_jobs={args.n_jobs})")
    print(f"ratio             : {t_sk / t_gm:8.2f} x faster")
    print(f"same model chosen : {'yes' if sk_best == gm_best else 'NO'}")
    print(f"max relative BIC difference over the 40 candidates: {rel:.2e}")
    if args.sources:
        time_sources(X, ks, args.seed, t_gm, result)
    if args.profile:
        seeding = sum(result.seeding_time.values())
        fitting = sum(c.time for c in result.table)
        print(f"gaussmix: shared seeding {seeding:.2f} s (10 k-means), candidate "
              f"fits {fitting:.2f} s (summed over workers)")
        print(f"scikit-learn: k-means inside the loop ~{sklearn_kmeans_time(X, ks, args.seed):.2f}"
              " s (40 k-means), per-candidate seconds and iterations:")
        for c in result.table:
            key = (c.n_components, c.covariance_type)
            print(f"  K={key[0]:2d} {key[1]:9s} sklearn {sk_seconds[key]:6.2f} s   "
                  f"gaussmix {c.time:6.2f} s  iter {c.n_iter}")


def time_sources(X: np.ndarray, ks: range, seed: int, t_memory: float,
                 in_memory: gaussmix.SelectionResult) -> None:
    """The same selection over an .npy file and a persisted Dask array."""
    import dask
    import dask.array as da

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.npy")
        np.save(path, X)
        runs = {"NpySource (.npy)": lambda: select(gaussmix.NpySource(path), ks, TYPES,
                                                   random_state=seed)}
        rows = da.from_array(X, chunks=(len(X) // 8 + 1, X.shape[1])).persist()
        runs["Dask array (threads)"] = lambda: select(rows, ks, TYPES, random_state=seed)
        for name, run in runs.items():
            with dask.config.set(scheduler="threads"):
                t0 = time.perf_counter()
                result = run()
                seconds = time.perf_counter() - t0
            rel = max(abs(a.bic - b.bic) / abs(b.bic)
                      for a, b in zip(result.table, in_memory.table, strict=True))
            print(f"{name:21s}: {seconds:8.2f} s   {seconds / t_memory:5.2f} x the "
                  f"in-memory select; max relative BIC difference {rel:.2e}")


if __name__ == "__main__":
    main()
