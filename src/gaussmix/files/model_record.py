"""Model records: the plain values a model file holds, and their archive form.

A :class:`ModelRecord` knows nothing about estimator classes. This module
converts a fitted estimator into a record (by scikit-learn's attribute names)
and a record to and from the members of an ``.npz`` archive (float64 arrays
plus one UTF-8 JSON ``metadata`` member); :mod:`gaussmix.files.model` reads and
writes the archive and :mod:`gaussmix.files.model_checks` checks the values.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussmix._version import __version__

from . import model_checks as checks
from .model_checks import FITTED_ARRAYS, SAVE_HINT, RecordError

FORMAT_NAME = "gaussmix-model"
FORMAT_VERSION = 1
METADATA_KEY = "metadata"
PARAM_PREFIX = "param_"


@dataclass(frozen=True)
class ModelRecord:
    """What a model file holds, as plain values, independent of any estimator.

    Attributes
    ----------
    params : dict
        Constructor parameters by name: JSON scalars (``None`` for those that
        could not be stored) or float64 arrays for array-valued ones.
    arrays : dict of str to ndarray
        Fitted float64 arrays by attribute name: ``weights_``, ``means_``,
        ``covariances_``, ``precisions_``, ``precisions_cholesky_`` and,
        when known, ``lower_bounds_``.
    fitted : dict
        Fitted scalars: ``n_features_in_``, ``n_iter_``, ``converged_``,
        ``lower_bound_``.
    feature_names_in_ : list of str or None
        Column names seen in fit, if any.
    unserialised_params : tuple of str
        Parameters that had a value which could not be stored.
    estimator : str
        Name of the estimator the record describes.
    """

    params: dict[str, Any]
    arrays: dict[str, np.ndarray]
    fitted: dict[str, Any]
    feature_names_in_: list[str] | None = None
    unserialised_params: tuple[str, ...] = ()
    estimator: str = "GaussianMixture"


# ------------------------------------------------------------ estimator -> record


def record_from_estimator(model: Any) -> ModelRecord:
    """The record of a fitted scikit-learn-style Gaussian mixture.

    Reads ``get_params()`` and the fitted attributes the format stores, so
    any estimator with scikit-learn's attribute names works.
    """
    params: dict[str, Any] = {}
    unserialised: list[str] = []
    for name, value in sorted(model.get_params(deep=False).items()):
        if isinstance(value, (np.ndarray, list, tuple)):
            params[name] = np.asarray(value, dtype=np.float64)
        elif _is_json_scalar(value):
            params[name] = _plain_scalar(value)
        else:  # RandomState, Generator, callables, ...
            params[name] = None
            unserialised.append(name)
    arrays = {name: _float_array(getattr(model, name)) for name in FITTED_ARRAYS}
    if getattr(model, "lower_bounds_", None) is not None:
        arrays["lower_bounds_"] = np.asarray(model.lower_bounds_, np.float64).reshape(-1)
    fitted = {"n_features_in_": int(model.n_features_in_), "n_iter_": int(model.n_iter_),
              "converged_": bool(model.converged_),
              "lower_bound_": float(model.lower_bound_)}
    names = getattr(model, "feature_names_in_", None)
    return ModelRecord(params, arrays, fitted,
                       None if names is None else [str(n) for n in names],
                       tuple(unserialised))


def _float_array(value: Any) -> np.ndarray:
    """float64, or float32 as it is: scikit-learn keeps float32 attributes
    after a float32 fit, and checks allow for their rounding (see
    :func:`~gaussmix.files.model_checks.check_record`)."""
    array = np.asarray(value)
    return array.astype(np.float32 if array.dtype == np.float32 else np.float64,
                        copy=False)


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, np.bool_, str, numbers.Real))


def _plain_scalar(value: Any) -> Any:
    """A numpy scalar as the Python scalar JSON writes (np.int64(3) -> 3)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def estimator_from_record(cls: Any, record: ModelRecord) -> Any:
    """The fitted estimator of class ``cls`` a checked record describes;
    parameters ``cls`` does not know are left out (the loader warns about them)."""
    known = cls().get_params(deep=False)
    model = cls(**{k: v for k, v in record.params.items() if k in known})
    for name, value in record.arrays.items():  # float32 values are exact in float64
        setattr(model, name, value.astype(np.float64))
    for name, value in record.fitted.items():
        setattr(model, name, value)
    if "lower_bounds_" in record.arrays:
        model.lower_bounds_ = record.arrays["lower_bounds_"].tolist()
    if record.feature_names_in_ is not None:
        model.feature_names_in_ = np.asarray(record.feature_names_in_, dtype=object)
    return model


# ------------------------------------------------------------ record -> archive


def to_members(record: ModelRecord) -> dict[str, np.ndarray]:
    """The archive members of ``record``: its arrays plus the ``metadata`` JSON."""
    arrays = dict(record.arrays)
    params: dict[str, Any] = {}
    for name, value in record.params.items():
        params[name] = None if isinstance(value, np.ndarray) else _scalar_to_json(value)
        if isinstance(value, np.ndarray):
            arrays[PARAM_PREFIX + name] = value
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        "estimator": record.estimator,
        "params": params,
        "unserialised_params": list(record.unserialised_params),
        "fitted": {name: _scalar_to_json(value) for name, value in record.fitted.items()},
        "feature_names_in": record.feature_names_in_,
        "arrays": sorted(arrays),
    }
    text = json.dumps(metadata, allow_nan=False, ensure_ascii=False, indent=1)
    arrays[METADATA_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return arrays


def _scalar_to_json(value: Any) -> Any:
    # Plain JSON has no NaN or inf; the format writes them as strings.
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ------------------------------------------------------------ archive -> record


def from_members(members: dict[str, np.ndarray]) -> ModelRecord:
    """The record held by an archive's members; raises :class:`RecordError`.

    Checks the metadata's format, version and JSON types; the values are
    checked by :func:`gaussmix.files.model_checks.check_record`.
    """
    arrays = dict(members)
    metadata = _decode_metadata(arrays.pop(METADATA_KEY, None))
    missing = sorted((set(FITTED_ARRAYS) | set(metadata.get("arrays", []))) - set(arrays))
    if missing:
        raise RecordError(
            f"is missing the array(s) {', '.join(missing)}; it is truncated or was not "
            "written by save_model()"
        )
    params = checks.parse_params(metadata)
    fitted_arrays = {}
    for name, value in arrays.items():
        if name in FITTED_ARRAYS or name == "lower_bounds_":
            fitted_arrays[name] = _as_float(name, value)
        elif name.startswith(PARAM_PREFIX):
            params[name[len(PARAM_PREFIX):]] = _as_float(name, value)
        # Other members come from a later minor version: ignored, as promised.
    return ModelRecord(
        params=params,
        arrays=fitted_arrays,
        fitted=checks.parse_fitted(metadata),
        feature_names_in_=checks.parse_feature_names(metadata),
        unserialised_params=tuple(metadata.get("unserialised_params", [])),
        estimator=metadata["estimator"],
    )


def _decode_metadata(raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None:
        raise RecordError(
            "is not a gaussmix model file (no metadata entry); it may be another "
            "program's .npz", SAVE_HINT,
        )
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected a 1-D uint8 array, got {raw.dtype} {raw.shape}")
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; arrays nested
    # thousands deep exhaust the decoder's recursion
    except (ValueError, RecursionError) as exc:
        raise RecordError(f"has an unreadable metadata entry ({exc})", SAVE_HINT) from exc
    _check_format(metadata)
    checks.check_header(metadata)
    return metadata


def _check_format(metadata: Any) -> None:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        found = (metadata.get("format") if isinstance(metadata, dict)
                 else type(metadata).__name__)
        raise RecordError(
            f"is not a gaussmix model file (metadata format is {found!r}, "
            f"expected {FORMAT_NAME!r}); it may be another program's .npz", SAVE_HINT,
        )
    version = metadata.get("format_version")
    if not checks.is_int(version) or version < 1:
        raise RecordError(f"has an invalid format_version {version!r}", SAVE_HINT)
    if version > FORMAT_VERSION:
        writer = metadata.get("gaussmix_version", "unknown")
        raise RecordError(
            f"uses model format version {version} (written by gaussmix {writer}), "
            f"newer than the version {FORMAT_VERSION} that gaussmix {__version__} "
            "supports", "Upgrade gaussmix to load it.",
        )


def _as_float(name: str, value: np.ndarray) -> np.ndarray:
    """float64, or float32 kept so that the checks allow for its rounding."""
    if value.dtype.kind not in "fiu":
        raise RecordError(f"has array {name!r} of non-numeric dtype {value.dtype}")
    return _float_array(value)
