"""Benchmark: gaussmix on a Dask LocalCluster against Spark ML's GaussianMixture.

Same data (n = 1,000,000, d = 16, drawn from an 8-component mixture), K = 8,
full covariances, the same cores:

- Spark: ``pyspark.ml.clustering.GaussianMixture`` on ``local[C]``, the rows
  cached in the JVM; one untimed fit first (warm JVM);
- gaussmix on a ``distributed.LocalCluster`` of C single-threaded worker
  processes, the rows persisted on the workers (each block drawn there);
- gaussmix in memory (C threads), for reference; and gaussmix on Dask again
  with workers started without Dask's default ``MALLOC_TRIM_THRESHOLD_``
  (see :func:`gaussmix_dask_fit`).

Seconds per iteration = (t(maxIter=6) - t(maxIter=1)) / 5, so start-up,
initialisation and the final pass cancel. Both libraries start from their own
initialisation (Spark cannot take initial parameters), so the final mean
log-likelihoods are shown side by side, not required to match: each is the
mean log-likelihood at the last iteration's E-step (Spark's
``summary.logLikelihood / n``, gaussmix's ``lower_bound_``).

Run ``python benchmarks/bench_spark.py`` (needs ``pip install pyspark`` and Java
17+; a few minutes) or ``--n 100000`` for a quick run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

K, D, BLOCK_ROWS = 8, 16, 125_000


def make_block(index: int, rows: int, seed: int = 0) -> np.ndarray:
    """Block ``index`` of the data: rows of a fixed 8-component mixture."""
    shape = np.random.default_rng(seed)
    means = shape.normal(scale=4.0, size=(K, D))
    scales = shape.uniform(0.5, 2.0, size=(K, D))
    rng = np.random.default_rng([seed, index])
    labels = rng.integers(K, size=rows)
    return means[labels] + rng.standard_normal((rows, D)) * scales[labels]


def block_sizes(n: int) -> list[int]:
    return [min(BLOCK_ROWS, n - start) for start in range(0, n, BLOCK_ROWS)]


def initial_parameters(X: np.ndarray, seed: int = 1) -> dict:
    """Means at random rows, equal weights, unit precisions (as bench_em.py)."""
    rng = np.random.default_rng(seed)
    return dict(weights_init=np.full(K, 1.0 / K),
                means_init=X[rng.choice(len(X), K, replace=False)],
                precisions_init=np.tile(np.eye(D), (K, 1, 1)))


def per_iteration(fit) -> tuple[float, object]:  # noqa: ANN001 - fit(max_iter) -> model
    """(t(6) - t(1)) / 5 and the 6-iteration model."""
    t = time.perf_counter()
    fit(1)
    one = time.perf_counter() - t
    t = time.perf_counter()
    model = fit(6)
    six = time.perf_counter() - t
    return (six - one) / 5, model


def spark_fit(X: np.ndarray, cores: int) -> tuple[float, float]:
    import pandas as pd
    from pyspark.ml.clustering import GaussianMixture as SparkGMM
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{cores}]").appName("bench_spark")
             .config("spark.driver.memory", "6g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        columns = [f"x{j}" for j in range(D)]
        frame = spark.createDataFrame(pd.DataFrame(X, columns=columns))
        data = (VectorAssembler(inputCols=columns, outputCol="features")
                .transform(frame).select("features")
                .repartition(cores * 4).cache())
        data.count()

        def fit(max_iter: int):  # noqa: ANN202
            return SparkGMM(k=K, maxIter=max_iter, tol=0.0, seed=1).fit(data)

        fit(2)  # warm the JVM (untimed)
        seconds, model = per_iteration(fit)
        assert model.summary.numIter == 6, model.summary.numIter
        return seconds, model.summary.logLikelihood / len(X)
    finally:
        spark.stop()


def gaussmix_dask_fit(X: np.ndarray, init: dict, cores: int, trim: bool = True
                      ) -> tuple[float, float]:
    """``trim=False`` starts the workers without Dask's default
    MALLOC_TRIM_THRESHOLD_=65536, which makes every large temporary array of
    the E-step a fresh mmap (page faults on each chunk)."""
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from gaussmix import GaussianMixture

    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    with dask.config.set({} if trim else {key: None}), \
            LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        sizes = block_sizes(len(X))
        blocks = [da.from_delayed(dask.delayed(make_block)(i, rows), (rows, D), float)
                  for i, rows in enumerate(sizes)]
        dX = client.persist(da.concatenate(blocks))  # drawn on the workers
        client.wait_for_workers(cores)
        dX.sum().compute()

        def fit(max_iter: int) -> GaussianMixture:
            return GaussianMixture(K, max_iter=max_iter, tol=0.0, **init).fit(dX)

        fit(1)  # warm the workers' imports (untimed)
        seconds, model = per_iteration(fit)
        return seconds, model.lower_bound_


def gaussmix_memory_fit(X: np.ndarray, init: dict, cores: int) -> tuple[float, float]:
    from gaussmix import GaussianMixture

    def fit(max_iter: int) -> GaussianMixture:
        return GaussianMixture(K, max_iter=max_iter, tol=0.0, n_threads=cores,
                               **init).fit(X)

    fit(1)
    seconds, model = per_iteration(fit)
    return seconds, model.lower_bound_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--kernel", choices=("fused", "reference", "auto"), default="fused",
                        help="GAUSSMIX_KERNEL for every gaussmix process (default: the "
                             "compiled loops from the first chunk, in the client and on "
                             "the workers, which inherit it; 'auto' would switch to them "
                             "only after a few iterations' work, mid-measurement)")
    args = parser.parse_args()
    os.environ["GAUSSMIX_KERNEL"] = args.kernel  # before the workers are spawned
    warnings.simplefilter("ignore")  # ConvergenceWarning: a fixed number of iterations
    X = np.concatenate([make_block(i, rows) for i, rows in enumerate(block_sizes(args.n))])
    init = initial_parameters(X)
    print(f"# {platform.processor() or platform.machine()}, {args.cores} cores, "
          f"n={args.n:,}, d={D}, K={K}, full, float64, load average "
          f"{os.getloadavg()[0]:.1f} before the run, GAUSSMIX_KERNEL={args.kernel}")
    results = {}
    for name, run in [("gaussmix in memory", lambda: gaussmix_memory_fit(X, init, args.cores)),
                      ("gaussmix on Dask", lambda: gaussmix_dask_fit(X, init, args.cores)),
                      ("  without malloc trim",
                       lambda: gaussmix_dask_fit(X, init, args.cores, trim=False)),
                      ("Spark ML", lambda: spark_fit(X, args.cores))]:
        results[name] = run()
        seconds, loglik = results[name]
        print(f"{name:20s} {seconds:8.3f} s/iteration   mean log-likelihood {loglik:.6f}",
              flush=True)
    spark, dask_ = results["Spark ML"][0], results["gaussmix on Dask"][0]
    print(f"Spark / gaussmix-on-Dask time per iteration: {spark / dask_:.1f}x "
          f"(load average {os.getloadavg()[0]:.1f} after the run)")


if __name__ == "__main__":
    main()
