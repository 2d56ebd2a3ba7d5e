"""Benchmark: fitting files larger than memory (a float64 .npy file and a Parquet
file of the same rows) out of core, against the same rows in memory.

Writes an n x 16 float64 .npy file chunk by chunk (four separated blobs; 32M
rows = 4 GiB by default) and a Parquet file of the same rows (row groups of
262,144 rows), then fits a K=4 full-covariance mixture in a fresh process for
each of: the array loaded into memory (from a fixed start: an in-memory default
initialisation would run k-means on every row), ``NpySource`` and
``ParquetSource`` (default initialisation: k-means on a 50,000-row reservoir
sample, one extra pass). ``ParquetSource`` runs as a user gets it ("parquet":
``cache="auto"``, the sampling pass writes the rows to a row-major scratch
file in the temporary folder, which every EM pass then maps; see
gaussmix.files.spill) and with ``cache=False`` ("parquet,decoded": every pass
decodes the file). Prints the seconds per EM iteration (between the first and
last iteration callbacks, so initialisation is left out), the peak
*private* memory above the process's start (RssAnon from /proc/self/status,
sampled every 5 ms; pages of a memory map or of the page cache are not private)
and the total time. The files are deleted at the end unless --keep is given.

Before each fit, the file it reads is read through once (so it is in the page
cache, as the target "when the file is in the page cache" asks) and the other
file's pages are dropped from the page cache (``posix_fadvise(DONTNEED)``), so
that one mode's fit does not pay for the cache another left behind (with 24 GiB
of RAM, the rows in memory, the .npy, the Parquet file and a scratch file do
not all fit at once). ``--rounds R`` runs the modes R times in turn and prints
each mode's ratio to the in-memory iteration per round and their median.

Run ``python benchmarks/bench_out_of_core.py [--rows N] [--max-iter 4]
[--memory-rows M] [--rounds R] [--dir DIR]``. ``--memory-rows`` fits only the
first M rows in memory (when n rows do not fit alongside); seconds per
iteration are then compared per row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from private_memory import peak_private_memory

D, K = 16, 4
WRITE_ROWS = 1 << 20
ROW_GROUP = 1 << 18


def write_files(npy: str, parquet: str, n: int) -> None:
    """The rows, written chunk by chunk to both files (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    rows = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float64, shape=(n, D))
    names = [f"x{j}" for j in range(D)]
    schema = pa.schema([(name, pa.float64()) for name in names])
    with pq.ParquetWriter(parquet, schema, compression="none") as out:
        for start in range(0, n, WRITE_ROWS):
            m = min(WRITE_ROWS, n - start)
            block = rng.normal(size=(m, D)) + 6.0 * rng.integers(0, K, size=(m, 1))
            rows[start:start + m] = block
            for i in range(0, m, ROW_GROUP):
                part = block[i:i + ROW_GROUP]
                out.write_table(pa.table([part[:, j] for j in range(D)],
                                         schema=schema), row_group_size=ROW_GROUP)
    rows.flush()
    del rows


def fit_once(path: str, mode: str, max_iter: int, memory_rows: int) -> None:
    """Fit in this process and print 'mode s_per_iter peak_mib seconds lower_bound n
    seconds_to_the_first_iteration'."""
    from gaussmix import GaussianMixture, NpySource, ParquetSource

    warnings.simplefilter("ignore")
    stamps: list[float] = []
    settings: dict = dict(max_iter=max_iter, tol=0.0, random_state=0,
                          callback=lambda info: stamps.append(time.perf_counter()))
    with peak_private_memory() as peak:
        t = time.perf_counter()
        if mode == "memory":
            data = np.load(path, mmap_mode="r")[:memory_rows].copy()
            settings.update(weights_init=np.full(K, 1 / K),
                            means_init=6.0 * np.arange(K)[:, None] + np.zeros((K, D)),
                            precisions_init=np.tile(np.eye(D), (K, 1, 1)))
            n = len(data)
        elif mode == "npy":
            data = NpySource(path)
            n = data.n_rows
        else:
            data = (ParquetSource(path) if mode == "parquet"
                    else ParquetSource(path, cache=False))
            n = data.n_rows
        model = GaussianMixture(K, **settings).fit(data)
        seconds = time.perf_counter() - t
    per_iter = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    print(mode, per_iter, peak[0], seconds, model.lower_bound_, n, stamps[0] - t)


def in_page_cache(path: str, others: list[str]) -> None:
    """Read ``path`` through once (into the page cache) and drop the pages of
    ``others`` from it (clean pages: no privileges needed)."""
    for other in others:
        fd = os.open(other, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    with open(path, "rb", buffering=0) as f:
        block = bytearray(1 << 24)
        while f.readinto(block):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32_000_000)
    parser.add_argument("--max-iter", type=int, default=4)
    parser.add_argument("--memory-rows", type=int, default=None)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of all modes in turn (ratios per round, median)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, mode, max_iter, memory_rows = args.child
        fit_once(path, mode, int(max_iter), int(memory_rows))
        return
    folder = tempfile.mkdtemp(dir=args.dir)
    npy, parquet = os.path.join(folder, "rows.npy"), os.path.join(folder, "rows.parquet")
    n, memory_rows = args.rows, args.memory_rows or args.rows
    try:
        t = time.perf_counter()
        write_files(npy, parquet, n)
        sizes = {p: os.path.getsize(p) / 2**30 for p in (npy, parquet)}
        print(f"# {n} x {D} float64: .npy {sizes[npy]:.2f} GiB, Parquet "
              f"{sizes[parquet]:.2f} GiB (written in {time.perf_counter() - t:.0f} s); "
              f"K={K} full, {args.max_iter} EM iterations, {os.cpu_count()} cores, "
              f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} "
              f"GiB RAM, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print("| data given as | rows | s/it | s/it per 1M rows | peak private MiB "
              "above start | s to the 1st iteration | total s | lower bound |")
        print("|---|---|---|---|---|---|---|---|")
        modes = (("memory", npy), ("npy", npy), ("parquet", parquet),
                 ("parquet,decoded", parquet))
        ratios: dict[str, list[float]] = {mode: [] for mode, _ in modes[1:]}
        for _ in range(args.rounds):
            per_row = {}
            for mode, path in modes:
                in_page_cache(path, [p for p in (npy, parquet) if p != path])
                out = subprocess.run(
                    [sys.executable, __file__, "--child", path, mode, str(args.max_iter),
                     str(memory_rows)], capture_output=True, text=True, check=True
                ).stdout.split()
                _, sec, mib, total, bound, rows, first = out
                per_row[mode] = float(sec) / int(rows) * 1e6
                print(f"| {mode} | {int(rows)} | {float(sec):.3f} | {per_row[mode]:.4f} | "
                      f"{float(mib):.0f} | {float(first):.1f} | {float(total):.1f} | "
                      f"{float(bound):.6f} |", flush=True)
            for mode in ratios:
                ratios[mode].append(per_row[mode] / per_row["memory"])
        for mode, each in ratios.items():
            print(f"# {mode}: {np.median(each):.2f}x the in-memory seconds per iteration "
                  f"(per row; rounds: {', '.join(f'{r:.2f}' for r in each)})")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
