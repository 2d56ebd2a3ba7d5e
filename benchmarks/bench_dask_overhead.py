"""Benchmark: the fixed cost of one EM pass on a Dask cluster, by pass path.

The data of ``bench_spark.py`` (n = 1,000,000, d = 16, 8 blocks, K = 8 full)
persisted on a ``distributed.LocalCluster`` of ``--cores`` single-threaded
worker processes, and in memory. A pass over Dask blocks takes one of two
paths (:class:`gaussmix.backends.dask.DaskTree`):

- *futures*: the rows are persisted as they are fitted, so each pass submits
  its tasks on the blocks' futures (``Client.map``);
- *graph*: any other collection; each pass is one Dask graph computed with
  ``dask.compute``. Timed here on the same persisted rows behind one trivial
  ``map_blocks`` layer (which returns each block as it is).

Times, interleaved round by round so that load from other jobs on a shared
machine hits every case alike:

- *empty pass*: a pass of a chunk function that returns a small array without
  arithmetic on the rows: what each pass costs besides the E-step (scheduling,
  shipping the function, the row checks, adding the values);
- *E-step pass*: one pass of the E-step kernel over all rows, in memory
  (``--cores`` threads) and then on the cluster by each path, in turn, at
  fixed parameters, in chunks of the sizes a fit takes in each place; the
  ratio of each pass to the in-memory pass just before;
- *iteration*: the median time between two EM iterations (the estimator's
  ``callback``: start-up and the final labels pass are left out) in memory
  (``--cores`` threads) and on the cluster by each path, and their ratio.

The blocks are spread evenly over the workers first (as in ``bench_spark.py``).
Also printed: the pickled size of the chunk function of a pass (what travels
to the workers each iteration) and how many blocks each worker holds.
Run ``python benchmarks/bench_dask_overhead.py`` (about two minutes) or
``--n 200000 --rounds 2`` for a quick run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections import defaultdict

import numpy as np
from bench_spark import (
    D,
    K,
    block_sizes,
    blocks_per_worker,
    drawn_on_workers,
    initial_parameters,
    make_block,
)


def empty_value(chunk) -> np.ndarray:  # noqa: ANN001 - a chunk of rows
    return np.zeros(4)


def same_block(block: np.ndarray) -> np.ndarray:
    return block


def pass_time(source) -> float:  # noqa: ANN001 - a DaskSource
    from gaussmix.backends.dask import DaskTree
    from gaussmix.engine.reducers import fold

    t = time.perf_counter()
    fold(empty_value, source, DaskTree())
    return time.perf_counter() - t


def estep_time(source, reducer, model) -> float:  # noqa: ANN001
    """Seconds of one E-step pass (kernel built, chunks folded) at ``model``'s
    parameters, as an EM iteration runs it."""
    from gaussmix.engine.incomplete import kernel_type
    from gaussmix.engine.reducers import fold
    from gaussmix.engine.threads import single_threaded_blas

    t = time.perf_counter()
    with single_threaded_blas():
        kernel = kernel_type(source).build(model._piece, model._params, source.spec)
        fold(lambda c: kernel.statistics(*c), source, reducer)
    return time.perf_counter() - t


def iteration_times(fit, X, iters: int) -> list[float]:  # noqa: ANN001
    """Seconds between consecutive EM iterations of ``fit(X, callback, iters)``."""
    stamps: list[float] = []
    fit(X, lambda info: stamps.append(time.perf_counter()), iters)
    return np.diff(stamps).tolist()


def kernel_size(init: dict) -> int:
    """Bytes of the pickled chunk function of one E-step pass."""
    import cloudpickle

    from gaussmix import GaussianMixture
    from gaussmix.engine.incomplete import kernel_type
    from gaussmix.engine.sources import ArraySource

    sample = np.random.default_rng(0).standard_normal((1000, D))
    gm = GaussianMixture(K, max_iter=1, tol=0.0, **init).fit(sample)
    source = ArraySource(sample, None, 1000)
    kernel = kernel_type(source).build(gm._piece, gm._params, source.spec)
    return len(cloudpickle.dumps(lambda c: kernel.statistics(*c)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--iters", type=int, default=6, help="EM iterations per fit")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--empty", type=int, default=8, help="empty passes per round")
    parser.add_argument("--passes", type=int, default=4,
                        help="E-step passes per round and path, in turn with in memory")
    args = parser.parse_args()
    os.environ.setdefault("GAUSSMIX_KERNEL", "fused")  # inherited by the workers
    warnings.simplefilter("ignore")  # ConvergenceWarning: a fixed number of iterations

    from distributed import Client, LocalCluster

    from gaussmix import GaussianMixture
    from gaussmix.backends.dask import DaskSource, DaskTree
    from gaussmix.engine.reducers import ThreadPool
    from gaussmix.engine.sources import ArraySource

    sizes = block_sizes(args.n)
    X = np.concatenate([make_block(i, rows) for i, rows in enumerate(sizes)])
    init = initial_parameters(X)

    def fit_memory(data, callback, iters):  # noqa: ANN001, ANN202
        return GaussianMixture(K, max_iter=iters, tol=0.0, n_threads=args.cores,
                               callback=callback, **init).fit(data)

    def fit_dask(data, callback, iters):  # noqa: ANN001, ANN202
        return GaussianMixture(K, max_iter=iters, tol=0.0, callback=callback,
                               **init).fit(data)

    print(f"# {platform.processor() or platform.machine()}, {args.cores} cores, "
          f"n={args.n:,}, d={D}, K={K}, full, {len(sizes)} blocks, load average "
          f"{os.getloadavg()[0]:.1f} before, GAUSSMIX_KERNEL={os.environ['GAUSSMIX_KERNEL']}")
    print(f"pickled chunk function of an E-step pass: {kernel_size(init) / 1024:.1f} KiB")
    with LocalCluster(n_workers=args.cores, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(args.cores)
        persisted = drawn_on_workers(client, sizes)
        print("blocks per worker:", blocks_per_worker(client, persisted))
        layered = persisted.map_blocks(same_block, dtype=float)
        paths = {"futures": persisted, "graph": layered}
        model = fit_memory(X, None, 1)
        size, on_workers = model._chunk_size(D), model._worker_chunk_size(D)
        print(f"rows per chunk: {size} in memory, {on_workers} on the workers (as fits)")
        sources = {path: DaskSource(data, chunk_size=on_workers)
                   for path, data in paths.items()}
        in_memory = (ArraySource(X, None, size), ThreadPool(args.cores))
        assert sources["futures"].persisted_blocks(client) is not None
        assert sources["graph"].persisted_blocks(client) is None
        for data in [X, *paths.values()]:  # warm imports and compiled kernels
            (fit_memory if data is X else fit_dask)(data, None, 2)
        empty: dict[str, list[float]] = defaultdict(list)
        lapses: dict[str, list[float]] = defaultdict(list)
        ratios: dict[str, list[float]] = defaultdict(list)
        estep: dict[str, list[float]] = defaultdict(list)  # ratios to in memory
        for _ in range(args.rounds):
            for path, source in sources.items():
                empty[path] += [pass_time(source) for _ in range(args.empty)]
            for _ in range(args.passes):
                memory = estep_time(*in_memory, model)
                for path, source in sources.items():
                    estep[path].append(estep_time(source, DaskTree(), model) / memory)
            memory = statistics.median(iteration_times(fit_memory, X, args.iters))
            lapses["in memory"].append(memory)
            for path, data in paths.items():
                seconds = statistics.median(iteration_times(fit_dask, data, args.iters))
                lapses[path].append(seconds)
                ratios[path].append(seconds / memory)
    for path, times in empty.items():
        print(f"empty pass, {path:8s}: median {statistics.median(times) * 1e3:6.1f} ms, "
              f"best {min(times) * 1e3:6.1f} ms ({len(times)} passes)")
    for path, r in estep.items():
        print(f"E-step pass, {path:8s} / in memory: median {statistics.median(r):.2f}x "
              f"(quartiles {np.percentile(r, 25):.2f}-{np.percentile(r, 75):.2f}x, "
              f"{len(r)} passes, each timed right after one in memory)")
    for name, times in lapses.items():
        line = (f"iteration, {name:9s}: median {statistics.median(times):.3f} s "
                f"(round medians {', '.join(f'{t:.3f}' for t in times)})")
        if name in ratios:
            line += (f"; / in memory: median {statistics.median(ratios[name]):.2f}x "
                     f"({', '.join(f'{r:.2f}' for r in ratios[name])})")
        print(line)
    print(f"load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
