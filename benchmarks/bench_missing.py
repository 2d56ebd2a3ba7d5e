"""Benchmark: one EM iteration with missing values against one on complete data.

Both iterations run in this process on data of the same size (n rows, d
features, K full-covariance components), from the same parameters (a short
fit on the complete data), with the estimator's chunk size and threads: the
complete data through the ordinary kernel, the same data with a fraction of
its entries removed completely at random (NaN) through the exact
missing-value kernel (``missing='marginalize'``). Each is timed as the E-step
pass plus the M-step, best of ``--repeat`` (the two taking turns) after one
untimed iteration; the ratio is printed, with the number of distinct missingness patterns, and
the ratio of CPU times (all threads; steadier than the wall clock when other
jobs share the machine); the pair is timed ``--runs`` times one after the
other and the median ratios reported. The
issue's target: ratio <= 3 at 30% missing, n = 200k, d = 16, K = 8.

The kernels are those ``GAUSSMIX_KERNEL`` chooses; unset, this script sets it
to ``fused`` (compiled loops from the first chunk, steady-state timing; the
default ``auto`` switches to them only after some seconds of work, see
``gaussmix.engine.incomplete.compiled``). ``GAUSSMIX_KERNEL=reference``
times the NumPy reference instead.

Run ``python benchmarks/bench_missing.py`` (or ``--quick`` for small sizes).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.loop import data_statistics
from gaussmix.engine.mstep import m_step
from gaussmix.engine.reducers import reducer_for
from gaussmix.engine.sources import ArraySource
from gaussmix.engine.threads import resolve_threads, single_threaded_blas


def make_data(n: int, d: int, K: int, seed: int = 0) -> np.ndarray:
    """Rows from a K-component mixture with random means and correlated covariances."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(K, d))
    factors = rng.normal(size=(K, d, d)) / np.sqrt(d)
    labels = rng.integers(K, size=n)
    noise = rng.standard_normal((n, d))
    return means[labels] + np.einsum("nd,nde->ne", noise, factors[labels]) + 0.3 * noise


def iteration_times(sources: list[ArraySource], gm: GaussianMixture, repeat: int
                    ) -> tuple[list[float], list[float]]:
    """Best wall time and best CPU time (all threads of the process) of one
    iteration (E-step pass plus M-step) on each source, the sources taking
    turns ``repeat`` times (so that a change of load on a shared machine hits
    both alike). CPU time counts the work done, whatever the other jobs on
    the machine take from the wall clock."""
    piece, params = gm._piece, gm._params
    wall, cpu = [np.inf] * len(sources), [np.inf] * len(sources)
    with single_threaded_blas():
        reducers = [reducer_for(resolve_threads(None), source) for source in sources]
        for source, reducer in zip(sources, reducers, strict=True):
            data_statistics(source, piece, params, reducer)  # loads compiled code
        for _ in range(repeat):
            for i, (source, reducer) in enumerate(zip(sources, reducers, strict=True)):
                t0, c0 = time.perf_counter(), time.process_time()
                stats, _ = data_statistics(source, piece, params, reducer)
                m_step(stats, piece, gm.reg_covar)
                wall[i] = min(wall[i], time.perf_counter() - t0)
                cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed iterations per run, complete and missing in "
                             "turn (the best of each is kept)")
    parser.add_argument("--runs", type=int, default=3,
                        help="complete/missing pairs timed one after the other; "
                             "the median ratio is reported")
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--few-patterns", action="store_true",
                        help="instead: a fraction of rows miss one of 4 fixed sets "
                             "of 5 columns (4 patterns)")
    args = parser.parse_args()
    os.environ.setdefault("GAUSSMIX_KERNEL", "fused")
    n, d, K = (20_000, 16, 8) if args.quick else (200_000, 16, 8)
    X = make_data(n, d, K)
    rng = np.random.default_rng(1)
    X_missing = X.copy()
    if args.few_patterns:
        sets = [rng.choice(d, 5, replace=False) for _ in range(4)]
        for i in np.flatnonzero(rng.random(n) < args.fraction):
            X_missing[i, sets[i % 4]] = np.nan
    else:
        X_missing[rng.random(X.shape) < args.fraction] = np.nan
    X_missing = X_missing[~np.isnan(X_missing).all(axis=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(K, max_iter=3, random_state=0).fit(X)
    chunk = gm._chunk_size(d)
    complete = ArraySource(X[: len(X_missing)], None, chunk)
    missing = ArraySource(X_missing, None, chunk, missing=True)
    mask = np.isnan(X_missing)
    patterns = len(np.unique(np.packbits(mask, axis=1), axis=0))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, GAUSSMIX_KERNEL={os.environ['GAUSSMIX_KERNEL']}")
    what = "rows miss 5 of 16 columns" if args.few_patterns else "entries missing (MCAR)"
    print(f"n={len(X_missing)} d={d} K={K} full, {args.fraction:.0%} {what}: "
          f"{np.mean(mask.any(axis=1)):.1%} of rows incomplete, "
          f"{patterns} distinct patterns, chunk {chunk} rows")
    print(f"{'run':<5}{'complete s/it':>15}{'missing s/it':>15}{'ratio':>8}"
          f"{'CPU ratio':>11}")
    ratios, cpu_ratios = [], []
    for run in range(args.runs):
        wall, cpu = iteration_times([complete, missing], gm, args.repeat)
        ratios.append(wall[1] / wall[0])
        cpu_ratios.append(cpu[1] / cpu[0])
        print(f"{run + 1:<5}{wall[0]:>15.3f}{wall[1]:>15.3f}{ratios[-1]:>8.2f}"
              f"{cpu_ratios[-1]:>11.2f}")
    print(f"ratio missing / complete, median of {args.runs}: "
          f"{float(np.median(ratios)):.2f} wall, {float(np.median(cpu_ratios)):.2f} CPU "
          "(target <= 3)")

if __name__ == "__main__":
    main()
