"""Input checks that say what is wrong and how to fix it.

Where gaussmix checks what :class:`sklearn.mixture.GaussianMixture` checks, it
raises the same exception type with a message that begins with scikit-learn's
wording (code that matches scikit-learn's messages keeps working) and goes on
with gaussmix's own advice: which value, where, what to do. Constructor
parameters are validated against scikit-learn's own constraints, so their
messages are scikit-learn's exactly.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.sparse import issparse
from sklearn import config_context
from sklearn.utils import assert_all_finite, check_array
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data

from .engine.chunk_checks import check_weighted_rows
from .engine.covariance import CovarianceType
from .engine.sources import is_data_source
from .engine.xp import is_torch_array, to_host

__all__ = [
    "INIT_METHODS",
    "InvalidParameterError",
    "STEP_PARAMETERS",
    "check_data",
    "check_finite",
    "check_initial_parameters",
    "check_parameters",
    "check_sample_count",
    "check_sample_weight",
    "check_weighted_rows",
    "parameter_constraints",
]

try:
    from numpy.exceptions import DTypePromotionError
except ImportError:  # NumPy < 1.25 has none: a stand-in that is never raised
    DTypePromotionError = type("DTypePromotionError", (TypeError,), {})  # type: ignore[misc,assignment]

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
FLOAT_DTYPES = [np.float64, np.float32]

#: Constraints on the parameters only gaussmix has, in scikit-learn's terms.
GAUSSMIX_CONSTRAINTS: dict[str, Any] = {
    "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "callback": [callable, None],
    # partial_fit's step size (learning_offset + t)^(-learning_decay): stepwise
    # EM converges for a decay in (0.5, 1] (Cappe & Moulines, 2009).
    "learning_offset": [Interval(Real, 0, None, closed="left")],
    "learning_decay": [Interval(Real, 0.5, 1, closed="right")],
    # a str or a torch.device: checked when used (gaussmix.backends.torch)
    "device": "no_validation",
    "matmul_precision": [StrOptions({"highest", "tf32"})],
    "missing": [StrOptions({"raise", "marginalize"})],
}


@functools.cache
def parameter_constraints() -> dict[str, Any]:
    """scikit-learn's constraints on the shared parameters, then gaussmix's own.

    Taken from scikit-learn's class (imported on first use: fitting imports
    scikit-learn's clustering anyway), so that the messages, down to the order
    in which a set of options is listed, are scikit-learn's.
    """
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    return {**SkGaussianMixture._parameter_constraints, **GAUSSMIX_CONSTRAINTS}


#: Integer parameters that, unlike scikit-learn's check, do not take a bool
#: (``n_components=True`` passes scikit-learn's check and fails later with a
#: bare TypeError).
NOT_BOOL = ("n_components", "max_iter", "n_init", "verbose_interval", "chunk_size",
            "n_threads")


#: The parameters a partial_fit step after the first reads: checked again
#: whenever one changes (see check_parameters).
STEP_PARAMETERS = ("learning_offset", "learning_decay", "reg_covar", "n_components",
                   "covariance_type", "missing", "chunk_size", "n_threads")


def check_parameters(est: Any, names: tuple[str, ...] | None = None) -> None:
    """Validate the constructor parameters (only ``names`` if given, which
    skips the costly ``get_params``); raise InvalidParameterError."""
    caller = type(est).__name__
    constraints = parameter_constraints()
    if names is not None:
        constraints = {name: constraints[name] for name in names}
        params = {name: getattr(est, name) for name in names}
    else:
        params = est.get_params(deep=False)
    validate_parameter_constraints(constraints, params, caller_name=caller)
    for name in NOT_BOOL:
        if name in params and isinstance(params[name], (bool, np.bool_)):
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be "
                f"{_describe(constraints[name])}. Got {params[name]!r} instead."
            )


def _describe(constraints: list[Any]) -> str:
    """Constraints as scikit-learn words them in its messages: 'a, b or c'."""
    shown = [str(c) for c in map(make_constraint, constraints) if not c.hidden]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def check_data(est: Any, X: Any, *, reset: bool, min_samples: int = 1,
               allow_nan: bool | None = None) -> np.ndarray:
    """A finite float32/float64 2-D array, with feature names/count recorded or
    checked as scikit-learn does. NaN (missing values) pass where ``allow_nan``
    (default: ``est.missing == 'marginalize'``); inf never does."""
    if is_data_source(X):  # else scikit-learn's 'Expected 2D array, got scalar array'
        raise TypeError(f"This method takes rows as an array-like, not a "
                        f"{type(X).__name__}: data sources are read by fit, fit_predict, "
                        "predict, predict_proba, score_samples, score, bic, aic and "
                        "gaussmix.select. Load the rows into memory first.")
    try:
        X = validate_data(est, X, reset=reset, dtype=FLOAT_DTYPES,
                          ensure_all_finite=False, ensure_min_samples=min_samples)
    except ValueError as err:
        if "could not convert" in str(err) or "dtype='numeric'" in str(err):
            raise ValueError(
                f"{_sentence(str(err))} X must contain only numbers: convert or drop "
                "the non-numeric columns first (for a DataFrame: "
                "df.select_dtypes('number'))."
            ) from err
        raise
    except DTypePromotionError as err:  # e.g. a DataFrame's dates or times
        raise DTypePromotionError(
            f"X must contain only numbers: {_first_line(err)}. Convert dates or "
            "times to numbers (e.g. seconds since a reference time), or drop the "
            "non-numeric columns (for a DataFrame: df.select_dtypes('number'))."
        ) from err
    if allow_nan is None:
        allow_nan = getattr(est, "missing", "raise") == "marginalize"
    advice = ("NaN are missing values under missing='marginalize'; remove or replace "
              "the inf values." if allow_nan else "Remove or impute them (e.g. "
              "sklearn.impute.SimpleImputer) first, or pass missing='marginalize' "
              "to treat NaN as missing at random.")
    check_finite(np.where(np.isnan(X), 0, X) if allow_nan else X, "X",
                 estimator_name=type(est).__name__, advice=advice)
    return X


def check_finite(
    X: np.ndarray, name: str, *, input_name: str | None = None,
    estimator_name: str | None = None, advice: str = "",
) -> None:
    """Raise scikit-learn's ValueError for NaN/inf, plus their count and the
    first one's position.

    ``input_name`` is the name scikit-learn's message uses (``name`` unless
    given: scikit-learn says just "Input contains NaN." for initial parameters).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):  # fast path; overflow falls through to the scan
            return
    bad = ~np.isfinite(X)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    lead = _finite_message(X, name if input_name is None else input_name,
                           estimator_name)
    n_nan = int(np.isnan(X).sum())
    first = np.argwhere(bad)[0]
    where = (f"row {first[0]}, column {first[1]}" if X.ndim == 2
             else f"index {first[0] if X.ndim == 1 else tuple(first.tolist())}")
    raise ValueError(
        f"{lead} {name} has {n_bad} non-finite value(s) ({n_nan} NaN, "
        f"{n_bad - n_nan} inf); the first is at {where}. {advice}".rstrip()
    )


def _finite_message(X: np.ndarray, input_name: str, estimator_name: str | None) -> str:
    """scikit-learn's message for NaN/inf in X (which has some). Asked for
    with ``assume_finite`` off: under ``sklearn.set_config(assume_finite=True)``
    scikit-learn skips the check, gaussmix does not (NaN would reach EM)."""
    try:
        with config_context(assume_finite=False):
            assert_all_finite(X, estimator_name=estimator_name, input_name=input_name)
    except ValueError as err:
        return str(err)
    raise AssertionError("X has no NaN or inf")


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Non-negative, finite per-row weights with a positive sum, as float64."""
    if sample_weight is None:
        return None
    if is_torch_array(sample_weight):  # from any device (NumPy refuses a GPU's)
        sample_weight = to_host(sample_weight)
    if issparse(sample_weight):  # else NumPy's "setting an array element with a sequence"
        raise TypeError(
            "Sparse data was passed for sample_weight, but dense data is required. "
            f"Pass one weight per row as a 1-D array, e.g. "
            f"sample_weight.toarray().ravel() for this {type(sample_weight).__name__}.")
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
    check_finite(w, "sample_weight", advice="Give every row a finite weight.")
    negative = np.flatnonzero(w < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight must be non-negative, but {negative.size} weight(s) are "
            f"negative; the first is {float(w[negative[0]])!r} at row {negative[0]}."
        )
    if not np.any(w > 0):
        raise ValueError("sample_weight sums to zero: at least one row needs a "
                         "positive weight.")
    return w


def check_sample_count(n_samples: Any) -> int:
    """``n_samples`` of :meth:`~gaussmix.GaussianMixture.sample` as an int >= 1.

    An integer, or a whole float (``1e4``, ``np.float64(3.0)``) as
    scikit-learn takes it; a fractional count raises instead of being
    truncated.

    >>> check_sample_count(1e3)
    1000
    """
    try:
        count: int | None = operator.index(n_samples)
    except TypeError:
        whole = isinstance(n_samples, Real) and float(n_samples).is_integer()
        count = int(n_samples) if whole else None
    if count is None or count < 1:
        raise ValueError(
            f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires "
            "at least one sample. Pass a whole number of samples >= 1."
        )
    return count


def check_initial_parameters(
    est: Any, piece: CovarianceType, n_features: int
) -> dict[str, np.ndarray | None]:
    """Validated float64 copies of weights_init, means_init and precisions_init.

    In scikit-learn's order: each array is converted and checked for NaN/inf,
    then its shape, then its values.
    """
    K = est.n_components
    out: dict[str, np.ndarray | None] = {"weights": None, "means": None,
                                         "precisions": None}
    if est.weights_init is not None:
        out["weights"] = _checked_weights(est.weights_init, K)
    if est.means_init is not None:
        out["means"] = _init_array(
            est.means_init, "means_init", "means", (K, n_features),
            f"one row per component (n_components={K}) and one column per feature "
            f"of X (n_features={n_features})",
        )
    if est.precisions_init is not None:
        out["precisions"] = _checked_precisions(est.precisions_init, piece, K,
                                                n_features)
    return out


def _checked_weights(value: Any, n_components: int) -> np.ndarray:
    w = _init_array(value, "weights_init", "weights", (n_components,),
                    f"one weight per component (n_components={n_components})")
    if np.any(w < 0) or np.any(w > 1):
        # scikit-learn's wording, with the values the right way round
        # (scikit-learn prints the minimum as "max value" and vice versa).
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max "
            f"value {w.max():.5f}, min value {w.min():.5f}. weights_init holds "
            "the components' mixing proportions: each in [0, 1], summing to 1."
        )
    if abs(1.0 - w.sum()) > 1e-6:  # scikit-learn: 1e-8 for float64 weights
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = "
            f"{w.sum():.5f}. weights_init sums to {w.sum():.10g}; divide it by "
            "its sum."
        )
    return w


def _checked_precisions(
    value: Any, piece: CovarianceType, n_components: int, n_features: int
) -> np.ndarray:
    shape = piece.param_shape(n_components, n_features)
    prec = _init_array(
        value, "precisions_init", f"{piece.name} precision", shape,
        f"this shape for covariance_type={piece.name!r}, n_components="
        f"{n_components} and n_features={n_features}",
    )
    piece.check_precisions(prec)  # raises scikit-learn's message, then the detail
    return prec


def _init_array(
    value: Any, name: str, sk_name: str, shape: tuple[int, ...], needs: str
) -> np.ndarray:
    """A float64 copy of an initial parameter, checked as scikit-learn checks it
    (``sk_name`` is scikit-learn's name for it); ``needs`` explains the shape."""
    arr = check_array(value, dtype=FLOAT_DTYPES, ensure_2d=False,
                      allow_nd=len(shape) > 2, ensure_all_finite=False)
    check_finite(arr, name, input_name="")
    if arr.shape != shape:
        raise ValueError(
            f"The parameter '{sk_name}' should have the shape of {shape}, but got "
            f"{arr.shape}. {name} needs {needs}."
        )
    return np.array(arr, dtype=np.float64)


def _first_line(err: Exception) -> str:
    """The start of an exception's message: its first sentence."""
    return str(err).split(". ")[0].strip().rstrip(".")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


#: What validating the training rows records on an estimator.
FEATURE_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


@contextlib.contextmanager
def features_kept_on_failure(est: Any) -> Iterator[None]:
    """Restore ``n_features_in_`` and ``feature_names_in_`` when the block
    raises: a fit that fails after validating X keeps the earlier fit's model
    (or none), which must go on checking X against that model's features, not
    the failed data's (scikit-learn's keeps the failed data's)."""
    saved = {name: est.__dict__[name] for name in FEATURE_ATTRIBUTES
             if name in est.__dict__}
    try:
        yield
    except BaseException:
        for name in FEATURE_ATTRIBUTES:
            est.__dict__.pop(name, None)
        est.__dict__.update(saved)
        raise
