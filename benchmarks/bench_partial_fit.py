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

Times are wall-clock, or with ``--clock cpu`` the process's CPU time summed
over its threads (steadier where other work shares the cores). Both use the
same threads (all cores unless ``--threads``) and the same E-step
kernel (``--kernel``, default ``fused``: in ``auto`` mode the compiled loops
load only after some seconds of E-step work, so the fit's first iterations
would run the reference kernel and flatter the ratio); fits and passes
repeated ``--repeat`` times (partial_fit: the fastest pass).
``--pairs N`` measures the fit and the passes N times in turn and prints each
round's ratio and their median (the machine's speed drifts between rounds; a
ratio within one round is steadier).
Run ``python benchmarks/bench_partial_fit.py`` or ``--quick``.

``--floor`` prints, per covariance type and batch size, what no
implementation of a call (one E-step of its batch, then an M-step) can go
below on this machine: the compiled E-step of the batch alone (one chunk, one
thread, median of 200) and the kernel build for it, against the 2x budget
(twice the fit's cost per row per iteration, times the batch's rows). Where
the E-step alone is near or above the budget, a call within 2x of a fit
iteration per row needs larger batches, not a faster call.

``--baseline SRC`` times another gaussmix (the ``src`` folder of another
checkout, e.g. ``/work/main/src``) against the one this interpreter imports,
in the same run: each case runs in a fresh subprocess per version,
alternating ``--rounds`` times, and the fastest time of each is kept, so that
load on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
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
BATCHES = (1_000, 5_000, 10_000, 20_000, 50_000)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def fit_cost(X, cov, K, init, iters, threads, repeat, clock=time.perf_counter) -> float:
    """Seconds per row per EM iteration of a full fit: the median time between
    two iteration callbacks (so validation and the final labels pass are out)."""
    lapses: list[float] = []

    def record(info: dict) -> None:
        now = clock()
        if info["iteration"] > 1:
            lapses.append(now - record.last)  # type: ignore[attr-defined]
        record.last = now  # type: ignore[attr-defined]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(repeat):
            GaussianMixture(K, covariance_type=cov, tol=0.0, max_iter=iters + 1,
                            n_threads=threads, callback=record, **init).fit(X)
    return float(np.median(lapses)) / len(X)


def partial_fit_cost(X, cov, K, init, batch, threads, repeat,
                     clock=time.perf_counter) -> float:
    """Seconds per row of a pass of partial_fit over X in batches."""
    starts = range(0, len(X), batch)

    def stream():
        gm = GaussianMixture(K, covariance_type=cov, n_threads=threads, **init)
        gm.partial_fit(X[:batch])  # initialises; not timed below
        start = clock()
        for i in starts:
            gm.partial_fit(X[i:i + batch])
        return clock() - start

    return min(stream() for _ in range(repeat)) / len(X)


def measure(case: int, args: argparse.Namespace) -> dict:
    """Seconds per row: one full-fit iteration, and partial_fit per batch size.

    With ``--pairs N`` the fit and the passes are measured N times in turn
    (fit, passes, fit, passes, ...), and each batch size also gets the ratio
    of every round (``ratios``): the machine's speed drifts between rounds, so
    a ratio within one round is steadier than one of two separate bests."""
    os.environ["GAUSSMIX_KERNEL"] = args.kernel  # read at each kernel build
    cov, n, d, K = CASES[case]
    n = n // 10 if args.quick else n
    X = make_data(n, d, K, "float64")
    init = initial_parameters(X, K, cov)
    fit_cost(X[: n // 10], cov, K, init, 2, args.threads, 1)  # warm up
    clock = CLOCKS[args.clock]
    rounds = []
    for _ in range(args.pairs):
        one = {"fit": fit_cost(X, cov, K, init, args.iters, args.threads, args.repeat,
                               clock)}
        for batch in BATCHES:
            if batch <= n // 2:
                one[str(batch)] = partial_fit_cost(X, cov, K, init, batch, args.threads,
                                                   args.repeat, clock)
        rounds.append(one)
    out: dict = {k: min(r[k] for r in rounds) for k in rounds[0]}
    out["ratios"] = {k: [r[k] / r["fit"] for r in rounds] for k in rounds[0] if k != "fit"}
    return out


def floor(args: argparse.Namespace) -> None:
    """The E-step of a batch alone, and its kernel build, against the 2x budget."""
    from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
    from gaussmix.engine.estep import EStepKernel
    from gaussmix.engine.xp import array_namespace

    os.environ["GAUSSMIX_KERNEL"] = args.kernel
    print(f"{'cov':>9} {'batch':>6} {'fit us/row/iter':>16} {'2x budget us':>13} "
          f"{'E-step us':>10} {'build us':>9} {'E-step/budget':>14}")
    for cov, n, d, K in CASES:
        X = make_data(n, d, K, "float64")
        init = initial_parameters(X, K, cov)
        fit_cost(X[: n // 10], cov, K, init, 2, args.threads, 1)  # warm up
        fit = min(fit_cost(X, cov, K, init, args.iters, args.threads, 1)
                  for _ in range(args.repeat))
        params = GaussianMixture(K, covariance_type=cov, **init).partial_fit(X[:5000])._params
        piece, spec = get_covariance_type(cov), ComputeSpec(array_namespace(X), X.dtype)
        kernel = EStepKernel.build(piece, params, spec)
        for batch in (1_000, 2_000, 5_000):
            starts = [(i * batch) % (n - batch) for i in range(200)]
            kernel.statistics(X[:batch])
            e_step = _median_time(
                [functools.partial(kernel.statistics, X[i:i + batch]) for i in starts])
            build = _median_time(
                [functools.partial(EStepKernel.build, piece, params, spec)] * len(starts))
            budget = 2 * fit * batch
            print(f"{cov:>9} {batch:>6} {fit * 1e6:>16.3f} {budget * 1e6:>13.0f} "
                  f"{e_step * 1e6:>10.0f} {build * 1e6:>9.0f} {e_step / budget:>14.2f}",
                  flush=True)


def _median_time(calls: list) -> float:
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def in_subprocess(case: int, args: argparse.Namespace, src: str | None) -> dict:
    """:func:`measure` in a fresh interpreter importing gaussmix from ``src``
    (None: as this one does)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    command = [sys.executable, __file__, "--worker", str(case), "--iters",
               str(args.iters), "--repeat", str(args.repeat),
               "--kernel", args.kernel, "--clock", args.clock,
               *(["--threads", str(args.threads)] if args.threads else []),
               *(["--quick"] if args.quick else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def compare(args: argparse.Namespace) -> None:
    import gaussmix

    print(f"# new: {os.path.dirname(os.path.dirname(gaussmix.__file__))}, "
          f"old: {args.baseline}; fastest of {args.rounds} alternating rounds")
    print(f"{'cov':>9} {'n':>8} {'d':>3} {'K':>3} {'batch':>6} {'fit us/row/iter':>16} "
          f"{'old us/row':>11} {'new us/row':>11} {'old ratio':>10} {'new ratio':>10}"
          f" {'new/old':>8}")
    for case, (cov, n, d, K) in enumerate(CASES):
        n = n // 10 if args.quick else n
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            runs["old"].append(in_subprocess(case, args, args.baseline))
            runs["new"].append(in_subprocess(case, args, None))
        best = {v: {k: min(r[k] for r in rs) for k in rs[0] if k != "ratios"}
                for v, rs in runs.items()}
        fit = min(best["old"]["fit"], best["new"]["fit"])  # the same code in both
        for batch in (k for k in best["new"] if k != "fit"):
            old, new = best["old"][batch], best["new"][batch]
            print(f"{cov:>9} {n:>8} {d:>3} {K:>3} {batch:>6} {fit * 1e6:>16.3f} "
                  f"{old * 1e6:>11.3f} {new * 1e6:>11.3f} {old / fit:>10.2f} "
                  f"{new / fit:>10.2f} {new / old:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", default="wall", choices=tuple(CLOCKS),
                        help="wall time, or the process's CPU time (all threads; "
                             "steadier on a shared machine)")
    parser.add_argument("--kernel", default="fused", choices=("fused", "reference", "auto"),
                        help="GAUSSMIX_KERNEL for both the fit and partial_fit")
    parser.add_argument("--baseline", default=None, metavar="SRC",
                        help="compare with the gaussmix in this src folder")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating runs per version with --baseline")
    parser.add_argument("--pairs", type=int, default=1,
                        help="rounds of (fit, partial_fit passes) measured in turn; "
                             "prints each round's ratio and their median")
    parser.add_argument("--floor", action="store_true",
                        help="the E-step of a small batch alone against the 2x budget")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args)))
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, threads={args.threads or 'all'}, kernel={args.kernel}, "
          f"clock={args.clock}")
    if args.baseline is not None:
        compare(args)
        return
    if args.floor:
        floor(args)
        return
    print(f"{'cov':>9} {'n':>8} {'d':>3} {'K':>3} {'batch':>6} "
          f"{'fit us/row/iter':>16} {'partial us/row':>15} {'ratio':>6}"
          + ("  median of rounds (each round)" if args.pairs > 1 else ""))
    for case, (cov, n, d, K) in enumerate(CASES):
        costs = measure(case, args)
        for batch, ratios in costs["ratios"].items():
            each = (f"  {np.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
                    if args.pairs > 1 else "")
            print(f"{cov:>9} {n // 10 if args.quick else n:>8} {d:>3} {K:>3} "
                  f"{batch:>6} {costs['fit'] * 1e6:>16.3f} {costs[batch] * 1e6:>15.3f} "
                  f"{costs[batch] / costs['fit']:>6.2f}{each}")


if __name__ == "__main__":
    main()
