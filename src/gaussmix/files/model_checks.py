"""Checks that a model record is one a fit could have produced.

:mod:`gaussmix.files.model` reads a file into a plain record and calls these
checks before any estimator sees the values, so a tampered or corrupt file is
refused instead of giving NaN or wrong answers. Every check raises
:class:`RecordError`, whose ``problem`` completes a sentence about the file
(``"'m.npz' " + problem``); the caller adds the file name. The same checks run
before a model is saved, so :func:`~gaussmix.files.model.save_model` never
writes a file that :func:`~gaussmix.files.model.load_model` refuses.

Nothing here knows a covariance type by name: shapes and derived parameters
come from the pieces registered in :mod:`gaussmix.engine.covariance`.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
from sklearn.utils import check_random_state  # type: ignore[import-untyped]

from gaussmix.engine.covariance import COVARIANCE_TYPES, CovarianceType
from gaussmix.validation import check_initial_parameters, check_parameters

if TYPE_CHECKING:  # pragma: no cover
    from .model import ModelRecord

SAVE_HINT = "Save models with GaussianMixture.save() or gaussmix.files.model.save_model()."
RESAVE_HINT = (
    "The file is corrupt or was edited; re-save the model with "
    "gaussmix.files.model.save_model()."
)
FITTED_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)
INIT_ARRAYS = ("weights_init", "means_init", "precisions_init")
FITTED_SCALARS = ("n_features_in_", "n_iter_", "converged_", "lower_bound_")
# Weights are normalised by one division; anything further from one was edited.
WEIGHTS_RTOL = 1e-8
# Stored precisions and covariances must equal those derived from the Cholesky
# factors to this relative tolerance, plus rounding that grows with conditioning.
AGREEMENT_RTOL = 1e-8


class RecordError(ValueError):
    """A model record breaks an invariant of the format or of a fitted model.

    Parameters
    ----------
    problem : str
        What is wrong, phrased to follow the file's name: ``"has ..."``.
    advice : str, optional
        What to do about it.
    """

    def __init__(self, problem: str, advice: str = RESAVE_HINT) -> None:
        super().__init__(problem)
        self.problem = problem
        self.advice = advice


# ------------------------------------------------------------ JSON metadata


def is_int(value: Any) -> TypeGuard[int]:
    """True for integers, but not for booleans (JSON keeps them apart)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_header(metadata: dict[str, Any]) -> None:
    """The metadata's bookkeeping keys have the types the format gives them."""
    for key in ("estimator", "gaussmix_version"):
        if not isinstance(metadata.get(key), str):
            raise RecordError(
                f"has an invalid {key!r} in its metadata: {metadata.get(key)!r} is not "
                "a string"
            )
    for key in ("arrays", "unserialised_params"):
        names = metadata.get(key, [])
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise RecordError(
                f"has an invalid {key!r} in its metadata (expected a list of strings)"
            )


def parse_params(metadata: dict[str, Any]) -> dict[str, Any]:
    """The stored constructor parameters: JSON scalars or null, nothing nested."""
    params = metadata.get("params")
    if not isinstance(params, dict):
        raise RecordError("has no 'params' object in its metadata", SAVE_HINT)
    for name, value in params.items():
        if not (value is None or isinstance(value, (bool, str, int, float))):
            raise RecordError(
                f"has an invalid constructor parameter {name!r} in its metadata: a "
                f"JSON {type(value).__name__}, where only scalars or null are stored"
            )
    return dict(params)


def parse_fitted(metadata: dict[str, Any]) -> dict[str, Any]:
    """The fitted scalars, with JSON types checked strictly (``"no"`` is no bool)."""
    fitted = metadata.get("fitted")
    if not isinstance(fitted, dict):
        raise RecordError("has no 'fitted' object in its metadata", SAVE_HINT)
    missing = [name for name in FITTED_SCALARS if name not in fitted]
    if missing:
        raise RecordError(
            f"is missing the fitted attribute(s) {', '.join(missing)} in its metadata"
        )
    out = {name: fitted[name] for name in FITTED_SCALARS}
    for name in ("n_features_in_", "n_iter_"):
        _require_json(is_int(out[name]), name, out[name], "an integer")
    _require_json(isinstance(out["converged_"], bool), "converged_", out["converged_"],
                  "a JSON boolean (true or false)")
    out["lower_bound_"] = _json_float(out["lower_bound_"])
    return out


def _require_json(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise RecordError(
            f"has an invalid fitted attribute {name} in its metadata: {value!r} is not "
            f"{expected}"
        )


def _json_float(value: Any) -> float:
    # Non-finite floats are written as strings, as plain JSON has no NaN or inf.
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    _require_json(isinstance(value, (int, float)) and not isinstance(value, bool),
                  "lower_bound_", value, "a number")
    return float(value)


def parse_feature_names(metadata: dict[str, Any]) -> list[str] | None:
    """The feature names, or None when the model was fitted without them."""
    names = metadata.get("feature_names_in")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise RecordError("has invalid feature_names_in (expected a list of strings)")
    return names


# ------------------------------------------------------------ the record


def check_record(record: ModelRecord) -> None:
    """Raise :class:`RecordError` unless ``record`` is a consistent fitted model.

    Checks, in order: ``n_components`` and ``covariance_type`` (they fix the
    array shapes), the fitted scalars, the feature names, every array's shape
    and finiteness, then the values: weights, Cholesky factors, and the
    precisions and covariances derived from those factors.
    """
    piece = _piece(record.params)
    k, d = record.params["n_components"], record.fitted["n_features_in_"]
    _check_fitted_scalars(record.fitted)
    if record.feature_names_in_ is not None and len(record.feature_names_in_) != d:
        raise RecordError(
            f"has invalid feature_names_in (expected a list of {d} strings, got "
            f"{len(record.feature_names_in_)})"
        )
    _check_shapes(record, piece, k, d)
    check_weights(record.arrays["weights_"], k)
    check_cholesky(record.arrays["precisions_cholesky_"], piece)
    check_agreement(record.arrays, piece)


def _piece(params: dict[str, Any]) -> CovarianceType:
    n_components = params.get("n_components")
    if not is_int(n_components) or n_components < 1:
        raise RecordError(f"has an invalid n_components {n_components!r}", SAVE_HINT)
    name = params.get("covariance_type")
    if not isinstance(name, str) or name not in COVARIANCE_TYPES:
        raise RecordError(
            f"has an invalid covariance_type {name!r} (expected one of "
            f"{sorted(COVARIANCE_TYPES)})",
            SAVE_HINT,
        )
    return COVARIANCE_TYPES[name]


def _check_fitted_scalars(fitted: dict[str, Any]) -> None:
    if fitted["n_features_in_"] < 1:
        raise RecordError(f"has n_features_in_ = {fitted['n_features_in_']}, not >= 1")
    if fitted["n_iter_"] < 0:
        raise RecordError(f"has n_iter_ = {fitted['n_iter_']}, not >= 0")
    if not math.isfinite(fitted["lower_bound_"]):
        raise RecordError(
            f"has a non-finite lower_bound_ ({fitted['lower_bound_']!r}); a fitted "
            "model's lower bound is a finite mean log-likelihood"
        )


def _check_shapes(record: ModelRecord, piece: CovarianceType, k: int, d: int) -> None:
    missing = [name for name in FITTED_ARRAYS if name not in record.arrays]
    if missing:
        raise RecordError(
            f"is missing the array(s) {', '.join(missing)}; it is truncated or was not "
            "written by save_model()"
        )
    cov = piece.param_shape(k, d)
    shapes = {"weights_": (k,), "means_": (k, d), "covariances_": cov,
              "precisions_": cov, "precisions_cholesky_": cov}
    context = f"n_components={k}, n_features={d}, covariance_type={piece.name!r}"
    for name, value in sorted(record.arrays.items()):
        check_array(name, value, shapes.get(name), context)
    init_shapes = {"weights_init": (k,), "means_init": (k, d), "precisions_init": cov}
    for name, expected in init_shapes.items():
        init = record.params.get(name)
        if isinstance(init, np.ndarray):
            check_array("param_" + name, init, expected, context)


def check_array(
    name: str, value: np.ndarray, expected: tuple[int, ...] | None, context: str
) -> None:
    """A finite array of the ``expected`` shape (None: 1-D of any length)."""
    if (value.ndim != 1) if expected is None else (value.shape != expected):
        want = "1-D" if expected is None else str(expected)
        raise RecordError(
            f"has array {name!r} of shape {value.shape}, expected {want} for {context}"
        )
    if not np.all(np.isfinite(value)):
        raise RecordError(f"has non-finite values (nan or inf) in array {name!r}")


# ------------------------------------------------------------ fitted values


def check_weights(weights: np.ndarray, k: int = 1) -> None:
    """Mixture weights are non-negative and sum to one (to rounding in their
    own precision: float32 for a scikit-learn model fitted on float32 data)."""
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        i = int(negative[0])
        raise RecordError(
            f"has negative mixture weights: weights_[{i}] = {float(weights[i])!r}"
        )
    total = float(np.sum(weights))
    if not abs(total - 1.0) <= WEIGHTS_RTOL + 4 * k * _eps(weights):
        raise RecordError(f"has mixture weights_ that sum to {total:.12g}, not 1")


def holds_matrices(piece: CovarianceType) -> bool:
    """Whether the type's parameters are d x d matrices (else variances).

    Asked through the shape with distinct probe sizes, so that a (K, d) array
    of variances never looks square.
    """
    return piece.param_shape(2, 3)[-2:] == (3, 3)


def check_cholesky(prec_chol: np.ndarray, piece: CovarianceType) -> None:
    """Upper-triangular factors with a strictly positive diagonal (or positive
    values, for variance types): the only factors a fit produces, and the ones
    whose log-determinant is defined."""
    if holds_matrices(piece):
        below = np.argwhere(np.tril(prec_chol, -1) != 0)
        if below.size:
            raise RecordError(
                "has precisions_cholesky_ that are not upper-triangular: entry "
                f"{tuple(int(i) for i in below[0])} below the diagonal is non-zero"
            )
    diagonal = _diagonal(prec_chol, piece)
    bad = np.argwhere(~(diagonal > 0))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise RecordError(
            "has precisions_cholesky_ with a non-positive diagonal entry "
            f"{float(diagonal[where])!r} (at diagonal index {where}); Cholesky factors "
            "of a precision have a strictly positive diagonal"
        )


def check_agreement(arrays: dict[str, np.ndarray], piece: CovarianceType) -> None:
    """precisions_ and covariances_ equal those derived from precisions_cholesky_.

    Differences are measured in units of each entry's natural scale
    (``sqrt(a_ii a_jj)`` for matrices, the value itself for variances), so
    the test does not depend on the units of the features. Rounding in the
    derived covariances grows with the condition number, which widens the
    tolerance for nearly singular components.
    """
    chol = arrays["precisions_cholesky_"].astype(np.float64)
    eps = max(_eps(arrays[name]) for name in FITTED_ARRAYS)
    with np.errstate(all="ignore"):
        precisions = piece.precisions(chol)
        covariances = piece.covariances_from_cholesky(chol)
    for derived in (precisions, covariances):
        diagonal = _diagonal(derived, piece)
        if not (np.all(np.isfinite(derived)) and np.all(diagonal > 0)):
            raise RecordError(
                "has precisions_cholesky_ so large or small that the precisions or "
                "covariances they define overflow or underflow float64"
            )
    kappa = _condition(precisions, covariances, piece)
    size = chol.shape[-1] if holds_matrices(piece) else 1
    _compare("precisions_", arrays["precisions_"], precisions, piece, 16 * eps * size)
    _compare("covariances_", arrays["covariances_"], covariances, piece,
             16 * eps * (kappa + size))


def _diagonal(values: np.ndarray, piece: CovarianceType) -> np.ndarray:
    """The diagonal of each matrix, or the variances themselves."""
    if holds_matrices(piece):
        return np.diagonal(values, axis1=-2, axis2=-1)
    return values


def _scale(derived: np.ndarray, piece: CovarianceType) -> np.ndarray:
    if holds_matrices(piece):
        root = np.sqrt(np.diagonal(derived, axis1=-2, axis2=-1))
        return root[..., :, None] * root[..., None, :]
    return derived


def _condition(
    precisions: np.ndarray, covariances: np.ndarray, piece: CovarianceType
) -> np.ndarray | float:
    """Condition number (Frobenius) of each covariance scaled to unit diagonal."""
    if not holds_matrices(piece):
        return 1.0
    scale = _scale(covariances, piece)
    norm = np.linalg.norm(covariances / scale, axis=(-2, -1))
    inverse_norm = np.linalg.norm(precisions * scale, axis=(-2, -1))
    return (norm * inverse_norm)[..., None, None]


def _eps(values: np.ndarray) -> float:
    """Rounding unit of an array's floats (float64's for integers)."""
    kind = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    return float(np.finfo(kind).eps)


def _compare(
    name: str, stored: np.ndarray, derived: np.ndarray, piece: CovarianceType,
    rounding: np.ndarray | float,
) -> None:
    with np.errstate(all="ignore"):
        error = np.abs(stored - derived) / _scale(derived, piece)
    tolerance = AGREEMENT_RTOL + np.asarray(rounding)
    bad = ~(error <= tolerance)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise RecordError(
            f"has {name} inconsistent with precisions_cholesky_: {name}{list(where)} "
            f"is {float(stored[where])!r} but the Cholesky factors give "
            f"{float(derived[where])!r} (relative difference {float(error[where]):.3g})"
        )


# ------------------------------------------------------------ the estimator


def check_estimator(model: Any, n_features: int) -> None:
    """Run the parameter validation of ``fit`` on a model built from a file."""
    try:
        check_parameters(model)
        piece = COVARIANCE_TYPES[model.covariance_type]
        check_initial_parameters(model, piece, n_features)
    except (ValueError, TypeError) as exc:
        raise _invalid_param(exc) from exc
    try:
        check_random_state(model.random_state)
    except (ValueError, TypeError) as exc:
        raise _invalid_param(
            f"'random_state' must be None or an int seed, got {model.random_state!r} ({exc})"
        ) from exc


def _invalid_param(detail: object) -> RecordError:
    # The validators' messages name the parameter ("The 'tol' parameter ...").
    return RecordError(
        "has an invalid constructor parameter in its metadata 'params': "
        + str(detail).rstrip("."),
        SAVE_HINT,
    )
