"""Benchmark: ``gaussmix.select`` with candidates in lockstep (shared passes)
against candidates fitted one by one, on the same data in the same run.

For each kind of rows (a persisted Dask array on the local threaded
scheduler, or on a ``distributed.LocalCluster`` with ``--cluster``; a
memory-mapped ``.npy`` file; an in-memory NumPy array) the same selection
(K = 1..``--k-max`` x the four covariance types, n_init=1, random_state=0) runs
with ``shared_passes=False`` (every candidate's EM iterations and criteria
pass each read the rows) and ``shared_passes=True`` (one pass per iteration
for all candidates still running, one criteria pass for all). Prints the best
of ``--repeat`` times of each, their ratio, the number of passes each made
(counted where chunks are read from the start) and the largest relative
difference between the two tables' BIC (rounding: the same fits).

Run ``python benchmarks/bench_select_lockstep.py`` (``--n``, ``--k-max``,
``--repeat``, ``--cluster``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import gaussmix
from gaussmix import NpySource, select

TYPES = ("full", "tied", "diag", "spherical")


def make_data(n: int, d: int = 8, k: int = 6, seed: int = 0) -> np.ndarray:
    """Rows from a k-component full-covariance mixture whose components
    overlap, so that EM takes tens of iterations."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=1.5, size=(k, d))
    factors = rng.normal(scale=0.6, size=(k, d, d)) + np.eye(d)
    labels = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 5.0)))
    z = rng.standard_normal((n, d))
    return means[labels] + np.einsum("nij,nj->ni", factors[labels], z)


def best_time(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t0)
    return best, result


class PassCounter:
    """Counts EM and criteria passes: calls of the engine's fold over a source
    that is not the in-memory seeding sample."""

    def __init__(self) -> None:
        from gaussmix.engine import loop, reducers
        from gaussmix.selection import passes

        self.count = 0
        fold = reducers.fold

        def counted(func: Any, source: Any, reducer: Any) -> Any:
            self.count += 1
            return fold(func, source, reducer)

        for module in (loop, passes):
            module.fold = counted  # type: ignore[attr-defined]

    def take(self) -> int:
        value, self.count = self.count, 0
        return value


def compare(name: str, rows: Any, ks: range, repeat: int, counter: PassCounter,
            context: Any) -> None:
    outcome = {}
    for shared in (False, True):
        def run(shared: bool = shared) -> Any:
            with context():
                return select(rows, ks, TYPES, random_state=0, shared_passes=shared)

        seconds, result = best_time(run, repeat)
        counter.take()
        run()  # once more, counting its passes
        outcome[shared] = (seconds, result, counter.take())
    (t_one, one, p_one), (t_lock, lock, p_lock) = outcome[False], outcome[True]
    rel = max(abs(a.bic - b.bic) / abs(b.bic)
              for a, b in zip(lock.table, one.table, strict=True))
    same = all(a.n_iter == b.n_iter for a, b in zip(lock.table, one.table, strict=True))
    print(f"{name:24s} one by one {t_one:7.2f} s ({p_one:4d} passes)   lockstep "
          f"{t_lock:7.2f} s ({p_lock:4d} passes)   {t_one / t_lock:5.2f} x   "
          f"max rel. BIC diff {rel:.1e}, same n_iter: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cluster", action="store_true",
                        help="Dask on a LocalCluster (2 worker processes) too")
    args = parser.parse_args()
    import contextlib

    import dask
    import dask.array as da

    X = make_data(args.n)
    ks = range(1, args.k_max + 1)
    print(f"gaussmix {gaussmix.__version__}; python {platform.python_version()}; "
          f"{platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    print(f"select K=1..{args.k_max} x {len(TYPES)} types = {len(ks) * len(TYPES)} "
          f"candidates, n={args.n}, d={X.shape[1]}, n_init=1; best of {args.repeat}")
    warnings.simplefilter("ignore", ConvergenceWarning)
    select(X[:500], range(1, 3), random_state=0)  # warm-up: imports, compiled loops
    counter = PassCounter()
    threads = lambda: dask.config.set(scheduler="threads")  # noqa: E731
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.npy")
        np.save(path, X)
        rows = da.from_array(X, chunks=(len(X) // 8 + 1, X.shape[1])).persist()
        compare("Dask array (threads)", rows, ks, args.repeat, counter, threads)
        if args.cluster:
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1,
                              processes=True) as cluster, Client(cluster):
                on_cluster = da.from_array(X, chunks=rows.chunks).persist()
                compare("Dask array (LocalCluster)", on_cluster, ks, args.repeat,
                        counter, contextlib.nullcontext)
        compare("NpySource (.npy)", NpySource(path), ks, args.repeat, counter,
                contextlib.nullcontext)
        compare("NumPy array (in memory)", X, ks, args.repeat, counter,
                contextlib.nullcontext)


if __name__ == "__main__":
    main()
