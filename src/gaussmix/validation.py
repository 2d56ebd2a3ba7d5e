"""Input checks that say what is wrong and how to fix it."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils.validation import validate_data

from .engine.covariance import COVARIANCE_TYPES, CovarianceType

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has an invalid type or value."""


def _require(ok: bool, name: str, expected: str, value: Any) -> None:
    if not ok:
        raise InvalidParameterError(
            f"The {name!r} parameter of GaussianMixture must be {expected}. "
            f"Got {value!r} instead."
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    return bool(np.isfinite(float(value)))


def check_parameters(est: Any) -> None:
    """Validate the estimator's scalar constructor parameters."""
    p = est
    _require(_is_int(p.n_components) and p.n_components >= 1, "n_components",
             "an int >= 1", p.n_components)
    _require(p.covariance_type in COVARIANCE_TYPES, "covariance_type",
             f"one of {sorted(COVARIANCE_TYPES)}", p.covariance_type)
    _require(_is_real(p.tol) and p.tol >= 0, "tol", "a finite float >= 0", p.tol)
    _require(_is_real(p.reg_covar) and p.reg_covar >= 0, "reg_covar",
             "a finite float >= 0", p.reg_covar)
    _require(_is_int(p.max_iter) and p.max_iter >= 0, "max_iter", "an int >= 0",
             p.max_iter)
    _require(_is_int(p.n_init) and p.n_init >= 1, "n_init", "an int >= 1", p.n_init)
    _require(p.init_params in INIT_METHODS, "init_params",
             f"one of {list(INIT_METHODS)}", p.init_params)
    _require(isinstance(p.warm_start, (bool, np.bool_)), "warm_start", "a bool",
             p.warm_start)
    _require((_is_int(p.verbose) or isinstance(p.verbose, bool)) and p.verbose >= 0,
             "verbose", "an int >= 0", p.verbose)
    _require(_is_int(p.verbose_interval) and p.verbose_interval >= 1,
             "verbose_interval", "an int >= 1", p.verbose_interval)
    _require(p.chunk_size is None or (_is_int(p.chunk_size) and p.chunk_size >= 1),
             "chunk_size", "None or an int >= 1", p.chunk_size)
    _require(p.n_threads is None or (_is_int(p.n_threads) and p.n_threads >= 1),
             "n_threads", "None or an int >= 1", p.n_threads)
    _require(p.callback is None or callable(p.callback), "callback",
             "None or a callable", p.callback)


def check_data(est: Any, X: Any, *, reset: bool, min_samples: int = 1) -> np.ndarray:
    """A finite float32/float64 2-D array, with feature names/count recorded or
    checked as scikit-learn does."""
    try:
        X = validate_data(est, X, reset=reset, dtype=[np.float64, np.float32],
                          ensure_all_finite=False, ensure_min_samples=min_samples)
    except ValueError as err:
        if "could not convert" in str(err) or "dtype='numeric'" in str(err):
            raise ValueError(
                f"X must contain only numbers, but {err}. Convert or drop the "
                "non-numeric columns first (for a DataFrame: "
                "df.select_dtypes('number'))."
            ) from err
        raise
    check_finite(X, "X")
    return X


def check_finite(X: np.ndarray, name: str) -> None:
    """Raise ValueError naming the count and first position of NaN/inf values."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):  # fast path; overflow falls through to the scan
            return
    bad = ~np.isfinite(X)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    first = np.argwhere(bad)[0]
    n_nan = int(np.isnan(X).sum())
    where = f"row {first[0]}" + (f", column {first[1]}" if X.ndim == 2 else "")
    raise ValueError(
        f"Input {name} contains NaN or infinity: {n_bad} non-finite value(s) "
        f"({n_nan} NaN, {n_bad - n_nan} inf); the first is at {where}. Remove or "
        "impute them (e.g. sklearn.impute.SimpleImputer) before fitting."
    )


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Non-negative, finite per-row weights with a positive sum, as float64."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"sample_weight must be numeric: {err}") from err
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of "
            f"X, but got shape {w.shape}."
        )
    check_finite(w, "sample_weight")
    negative = np.flatnonzero(w < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight must be non-negative, but {negative.size} weight(s) are "
            f"negative; the first is {float(w[negative[0]])!r} at row {negative[0]}."
        )
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one row needs a "
                         "positive weight.")
    return w


def check_initial_parameters(
    est: Any, piece: CovarianceType, n_features: int
) -> dict[str, np.ndarray | None]:
    """Validated copies of weights_init, means_init and precisions_init."""
    K = est.n_components
    out: dict[str, np.ndarray | None] = {"weights": None, "means": None,
                                         "precisions": None}
    if est.weights_init is not None:
        w = _init_array(est.weights_init, "weights_init", (K,))
        if np.any(w < 0) or np.any(w > 1):
            raise ValueError(
                "weights_init must lie in [0, 1], but got min "
                f"{w.min():.5g} and max {w.max():.5g}."
            )
        if abs(1.0 - w.sum()) > 1e-6:
            raise ValueError(
                f"weights_init must sum to 1, but sums to {w.sum():.8g}; divide it "
                "by its sum."
            )
        out["weights"] = w
    if est.means_init is not None:
        out["means"] = _init_array(est.means_init, "means_init", (K, n_features))
    if est.precisions_init is not None:
        shape = piece.param_shape(K, n_features)
        prec = _init_array(est.precisions_init, "precisions_init", shape)
        piece.check_precisions(prec)
        out["precisions"] = prec
    return out


def _init_array(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array: {err}") from err
    if arr.shape != shape:
        raise ValueError(
            f"{name} should have the shape {shape} (from n_components, n_features "
            f"and covariance_type), but got {arr.shape}."
        )
    check_finite(arr, name)
    return arr
