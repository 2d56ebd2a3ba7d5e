"""Benchmark: fitting from a memory-mapped .npy file and from a stream of chunks
against the same rows in memory.

Writes an n x d float64 .npy file (four separated blobs), then fits the same
full-covariance mixture from the same start three ways, each in a fresh
process: the array loaded into memory, ``NpySource`` (memory-mapped, read
chunk by chunk) and ``IterableSource`` (chunks read from the memory map by a
generator). Prints seconds per EM iteration, the peak *private* memory above
the process's start (RssAnon, sampled every 5 ms; a memory map's pages are
shared file cache, not private) and the final lower bound, which must agree.

Run ``python benchmarks/bench_sources.py [--rows N] [--path FILE]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from private_memory import peak_private_memory

D, K, ITER = 16, 4, 5


def write_rows(path: str, n: int) -> None:
    rng = np.random.default_rng(0)
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, D))
    step = 250_000
    for i in range(0, n, step):
        m = min(step, n - i)
        rows[i:i + m] = rng.normal(size=(m, D)) + 5.0 * ((i // step) % K)
    rows.flush()


def fit_once(path: str, mode: str) -> None:
    """Fit in this process and print 'mode seconds_per_iter peak_mib lower_bound'."""
    from gaussmix import GaussianMixture, IterableSource, NpySource

    warnings.simplefilter("ignore")
    start = dict(weights_init=np.full(K, 1 / K),
                 means_init=5.0 * np.arange(K)[:, None] + np.zeros((K, D)),
                 precisions_init=np.tile(np.eye(D), (K, 1, 1)))
    with peak_private_memory() as peak:
        t = time.perf_counter()
        if mode == "memory":
            data = np.load(path)
        elif mode == "npy":
            data = NpySource(path)
        else:
            rows = np.load(path, mmap_mode="r")
            data = IterableSource(lambda: (np.asarray(rows[i:i + 100_000])
                                           for i in range(0, len(rows), 100_000)))
        model = GaussianMixture(K, max_iter=ITER, tol=0.0, **start).fit(data)
        seconds = time.perf_counter() - t
    print(mode, seconds / ITER, peak[0], model.lower_bound_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--path", default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fit_once(*args.child)
        return
    path = args.path or os.path.join(tempfile.mkdtemp(), "rows.npy")
    if not os.path.exists(path):
        write_rows(path, args.rows)
    n = np.load(path, mmap_mode="r").shape[0]
    print(f"# {n} x {D} float64 ({n * D * 8 / 2**20:.0f} MiB), K={K} full, {ITER} EM "
          f"iterations from the same start, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| data given as | s/it | peak private MiB above start | lower bound |")
    print("|---|---|---|---|")
    results = {}
    for mode in ("memory", "npy", "chunks"):
        out = subprocess.run([sys.executable, __file__, "--child", path, mode],
                             capture_output=True, text=True, check=True).stdout.split()
        _, sec, mib, bound = out
        results[mode] = float(bound)
        print(f"| {mode} | {float(sec):.3f} | {float(mib):.0f} | {float(bound):.9f} |")
    assert abs(results["npy"] - results["memory"]) < 1e-9 * abs(results["memory"])
    assert abs(results["chunks"] - results["memory"]) < 1e-9 * abs(results["memory"])


if __name__ == "__main__":
    main()
