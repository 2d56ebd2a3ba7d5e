"""Benchmark: gaussmix on a GPU (torch) against the GPU mixture libraries.

Both cases of the GPU issue, full covariance, float32, the same data and the
same start (equal weights, means at fixed rows, identity precisions) for
every library, in this one process:

    case 1: n=10,000,000  d=32  K=32
    case 2: n= 2,000,000  d=64  K=32

Data is drawn on the device (no host transfer is timed). Time per EM
iteration is measured by difference, ``(t(1 + N iterations) - t(1)) / N``
after a warm-up fit, so start-up, compilation, initialisation and the final
labelling pass cancel; the device is synchronised before each clock read.
Reported per library: ms per iteration, achieved TFLOP/s counting
``4 n K d^2`` flops per iteration, the final mean log-likelihood (each
library's fitted parameters scored by gaussmix in float64 on the same rows),
and the ratio to gaussmix (strict float32). Also reported: the device's
measured float32 matrix-product rate with TF32 off and on, and gaussmix with
``matmul_precision="tf32"`` (time and log-likelihood change: its accuracy cost).

Peers, each skipped with the reason when it cannot run: scikit-learn's
array-API mode on torch tensors (needs ``SCIPY_ARRAY_API=1`` in the
environment before Python starts; only the random inits, so it is given
``init_params='random_from_data'`` and the start as ``*_init``), pomegranate
1.x (torch) and gmmx (JAX, which multiplies in TF32 by its default).

Run ``python benchmarks/bench_gpu.py`` on a GPU (a few minutes on an H200),
``--quick`` for tiny sizes (on the CPU when there is no GPU), ``--json PATH``
to keep the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import get_covariance_type

CASES = [(10_000_000, 32, 32), (2_000_000, 64, 32)]  # (n, d, K)
QUICK_CASES = [(20_000, 8, 4), (8_000, 16, 4)]
TARGET_MS = {CASES[0]: 60.0, CASES[1]: 30.0}  # the targets, strict float32


class Skip(Exception):
    """A library that cannot run here, with the reason."""


@dataclass
class Row:
    case: str
    library: str
    ms_per_iter: float | None
    tflops: float | None
    mean_loglik: float | None
    note: str = ""


# ----------------------------------------------------------------- the data
def make_data(n: int, d: int, K: int, device: torch.device, seed: int = 0
              ) -> torch.Tensor:
    """float32 rows from a K-component mixture, drawn on the device."""
    gen = torch.Generator(device=device).manual_seed(seed)
    means = 4.0 * torch.randn((K, d), generator=gen, device=device)
    scales = 0.5 + 1.5 * torch.rand((K, d), generator=gen, device=device)
    labels = torch.randint(K, (n,), generator=gen, device=device)
    X = torch.randn((n, d), generator=gen, device=device)
    X.mul_(scales[labels]).add_(means[labels])
    return X


def start(X: torch.Tensor, K: int) -> dict[str, np.ndarray]:
    """The shared start: equal weights, means at K fixed rows, identity precisions."""
    n, d = X.shape
    rows = np.random.default_rng(1).choice(n, K, replace=False)
    means = X[torch.as_tensor(np.sort(rows), device=X.device)].double().cpu().numpy()
    return {"weights_init": np.full(K, 1.0 / K), "means_init": means,
            "precisions_init": np.tile(np.eye(d), (K, 1, 1))}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_iteration(fit: Callable[[int], Any], n_iter: int, device: torch.device
                  ) -> tuple[float, Any]:
    """Seconds per EM iteration by difference, and the longer fit's result."""
    fit(1)  # warm-up: CUDA context, cuBLAS handles, JIT compilation
    times, results = {}, {}
    for iters in (1, 1 + n_iter):
        sync(device)
        t = time.perf_counter()
        results[iters] = fit(iters)
        sync(device)
        times[iters] = time.perf_counter() - t
    return max(times[1 + n_iter] - times[1], 1e-9) / n_iter, results[1 + n_iter]


def mean_loglik(X: torch.Tensor, weights: Any, means: Any, covariances: Any) -> float:
    """Mean log-likelihood of X (float64 copy, chunked on its device) at the
    given full-covariance parameters."""
    w, m, c = (np.asarray(torch.as_tensor(a).double().cpu()) for a in
               (weights, means, covariances))
    full = get_covariance_type("full")
    gm = GaussianMixture(len(w), weights_init=w / w.sum(), means_init=m, max_iter=0,
                         precisions_init=full.precisions(full.precisions_cholesky(c)))
    gm._fit_parameters(X.double(), None)  # max_iter=0: the start's log-likelihood
    return float(gm.lower_bound_)


# --------------------------------------------------------------- libraries
def run_gaussmix(X: torch.Tensor, K: int, init: dict, n_iter: int,
                 precision: str = "highest") -> tuple[float, float]:
    def fit(iters: int) -> GaussianMixture:
        gm = GaussianMixture(K, max_iter=iters, tol=0.0, matmul_precision=precision,
                             **init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm._fit_parameters(X, None)  # all of fit but the final labelling pass
        return gm

    seconds, gm = per_iteration(fit, n_iter, X.device)
    return seconds, mean_loglik(X, gm.weights_, gm.means_, gm.covariances_)


def run_sklearn_array_api(X: torch.Tensor, K: int, init: dict, n_iter: int
                          ) -> tuple[float, float]:
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        raise Skip("SCIPY_ARRAY_API=1 is not set (it must be set before Python "
                   "starts): scikit-learn's array-API mode is off")
    import sklearn
    from sklearn.mixture import GaussianMixture as SkGMM

    on = {k: torch.as_tensor(v, dtype=X.dtype, device=X.device) for k, v in init.items()}

    def fit(iters: int) -> Any:
        gm = SkGMM(K, covariance_type="full", init_params="random_from_data",
                   max_iter=iters, tol=0.0, random_state=0, **on)
        with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return gm.fit(X)

    seconds, gm = per_iteration(fit, n_iter, X.device)
    return seconds, mean_loglik(X, gm.weights_, gm.means_, gm.covariances_)


def run_pomegranate(X: torch.Tensor, K: int, init: dict, n_iter: int
                    ) -> tuple[float, float]:
    try:
        from pomegranate.distributions import Normal
        from pomegranate.gmm import GeneralMixtureModel
    except ImportError as err:
        raise Skip(f"pomegranate is not importable ({err})") from None

    def fit(iters: int) -> Any:
        # built on the host, then moved: pomegranate caches factors at
        # construction on its own (host) device, and they move with .to()
        parts = [Normal(means=torch.as_tensor(m, dtype=X.dtype),
                        covs=torch.eye(X.shape[1], dtype=X.dtype),
                        covariance_type="full") for m in init["means_init"]]
        model = GeneralMixtureModel(
            parts, priors=torch.as_tensor(init["weights_init"], dtype=X.dtype),
            max_iter=iters, tol=-float("inf")).to(X.device)
        return model.fit(X)

    seconds, model = per_iteration(fit, n_iter, X.device)
    means = torch.stack([p.means for p in model.distributions])
    covs = torch.stack([p.covs for p in model.distributions])
    return seconds, mean_loglik(X, model.priors, means, covs)


def run_gmmx(X: torch.Tensor, K: int, init: dict, n_iter: int) -> tuple[float, float]:
    try:
        import jax
        import jax.numpy as jnp
        from gmmx import EMFitter, GaussianMixtureModelJax
    except ImportError as err:
        raise Skip(f"gmmx/jax is not importable ({err})") from None
    x = jax.dlpack.from_dlpack(X.contiguous())
    d = X.shape[1]

    def fit(iters: int) -> Any:
        gmm = GaussianMixtureModelJax.from_squeezed(
            means=jnp.asarray(init["means_init"], jnp.float32),
            covariances=jnp.tile(jnp.eye(d, dtype=jnp.float32), (K, 1, 1)),
            weights=jnp.asarray(init["weights_init"], jnp.float32),
            covariance_type="full")
        result = EMFitter(tol=0.0, max_iter=iters).fit(x=x, gmm=gmm)
        jax.block_until_ready(result.gmm.means_numpy)
        return result

    seconds, result = per_iteration(fit, n_iter, X.device)
    g = result.gmm
    return seconds, mean_loglik(X, np.asarray(g.weights_numpy), np.asarray(g.means_numpy),
                                np.asarray(g.covariances.values_numpy))


# ---------------------------------------------------------- the device rate
def matmul_rate(device: torch.device, size: int, tf32: bool) -> float:
    """Measured float32 matrix-product rate (TFLOP/s) of size x size products."""
    from gaussmix.backends.torch import matmul_precision

    a = torch.randn((size, size), device=device)
    b = torch.randn((size, size), device=device)
    with matmul_precision("tf32" if tf32 else "highest"):
        torch.mm(a, b)
        reps = 20 if device.type == "cuda" else 3
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        sync(device)
        seconds = (time.perf_counter() - t) / reps
    return 2.0 * size**3 / seconds / 1e12


# -------------------------------------------------------------------- main
def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU testing)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--iters", type=int, default=5, help="EM iterations timed")
    p.add_argument("--no-peers", action="store_true", help="gaussmix only")
    p.add_argument("--json", default=None, help="write the rows to this file")
    return p.parse_args()


def describe(device: torch.device) -> str:
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    cuda = f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""
    return f"{name} (torch {torch.__version__}{cuda})"


def main() -> None:
    args = parse()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cases = QUICK_CASES if args.quick else CASES
    print(f"device: {describe(device)}")
    size = 1024 if args.quick else 8192
    rates = {tf32: matmul_rate(device, size, tf32) for tf32 in (False, True)}
    print(f"float32 matmul rate ({size}^3): TF32 off {rates[False]:.1f} TFLOP/s, "
          f"TF32 on {rates[True]:.1f} TFLOP/s")
    peers: list[tuple[str, Callable[..., Any]]] = [] if args.no_peers else [
        ("scikit-learn array-API", run_sklearn_array_api),
        ("pomegranate", run_pomegranate), ("gmmx (TF32)", run_gmmx)]
    rows: list[Row] = []
    for n, d, K in cases:
        run_case(rows, n, d, K, device, args.iters, peers)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": describe(device), "matmul_tflops": {
                "tf32_off": rates[False], "tf32_on": rates[True]},
                "rows": [asdict(r) for r in rows]}, f, indent=1)


def run_case(rows: list[Row], n: int, d: int, K: int, device: torch.device,
             n_iter: int, peers: list[tuple[str, Callable[..., Any]]]) -> None:
    """gaussmix (strict, then TF32) and the peers on one case's data."""
    label = f"n={n:,} d={d} K={K}"
    X = make_data(n, d, K, device)
    init = start(X, K)
    flops = 4.0 * n * K * d * d
    print(f"\n{label}: {flops / 1e12:.3f} TFLOP per iteration, {n_iter} iterations timed")
    base = _row(rows, label, "gaussmix", flops, lambda: run_gaussmix(X, K, init, n_iter))
    target = TARGET_MS.get((n, d, K))
    if target is not None and base.ms_per_iter is not None:
        base.note = (f"target <= {target:.0f} ms: "
                     f"{'met' if base.ms_per_iter <= target else 'NOT met'}")
    tf32 = _row(rows, label, "gaussmix tf32", flops,
                lambda: run_gaussmix(X, K, init, n_iter, "tf32"))
    if base.mean_loglik is not None and tf32.mean_loglik is not None:
        tf32.note = f"loglik change vs strict {tf32.mean_loglik - base.mean_loglik:+.2e}"
    for name, run in peers:
        _row(rows, label, name, flops, lambda run=run: run(X, K, init, n_iter), base)


def _row(rows: list[Row], case: str, library: str, flops: float,
         run: Callable[[], tuple[float, float]], base: Row | None = None) -> Row:
    """Run one library, print its line (or why it was skipped), keep the row."""
    try:
        seconds, loglik = run()
    except Skip as why:
        row = Row(case, library, None, None, None, f"skipped: {why}")
    except Exception as err:  # a peer that fails must not stop the others
        row = Row(case, library, None, None, None,
                  f"failed: {type(err).__name__}: {str(err)[:200]}")
    else:
        row = Row(case, library, 1e3 * seconds, flops / seconds / 1e12, loglik)
        if base is not None and base.ms_per_iter:
            row.note = f"{row.ms_per_iter / base.ms_per_iter:.1f}x gaussmix's time"
    rows.append(row)
    if row.ms_per_iter is None:
        print(f"  {library:<24} {row.note}")
    else:
        print(f"  {library:<24} {row.ms_per_iter:9.1f} ms/iter {row.tflops:7.2f} TFLOP/s"
              f"  mean loglik {row.mean_loglik:.6f}  {row.note}")
    return row


if __name__ == "__main__":
    main()
