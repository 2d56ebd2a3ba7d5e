"""Save and load fitted Gaussian mixture models in a portable, pickle-free file.

A model file is a plain, uncompressed NumPy ``.npz`` archive (a zip file whose
members are ``.npy`` arrays), written with :func:`numpy.savez` and read with
``numpy.load(path, allow_pickle=False)``. Nothing in it is pickled, so loading a
file cannot execute code. Any language that reads zip files and the ``.npy``
format (a short, documented text header followed by the raw array bytes) plus
JSON can read it.

File name
---------
Model files always end in ``.npz``; the recommended name is ``model.npz``.
Like :func:`numpy.savez`, :func:`save_model` appends ``.npz`` to a path that
does not already end with it (``"model"`` -> ``"model.npz"``,
``"model.gmm"`` -> ``"model.gmm.npz"``) and returns the path actually written.

Archive members (format version 1)
----------------------------------
Each key below is the zip member ``<key>.npy``. ``K`` is ``n_components`` and
``d`` is ``n_features_in_``. Numeric arrays are IEEE ``float64`` in the byte
order given in each ``.npy`` header (``<f8``, little-endian, on all common
platforms), stored bit for bit, so a round trip is exact.

===========================  =======  ========================================
key                          dtype    shape
===========================  =======  ========================================
``metadata``                 uint8    ``(n_bytes,)``: UTF-8 JSON, see below
``weights_``                 float64  ``(K,)``
``means_``                   float64  ``(K, d)``
``covariances_``             float64  by ``covariance_type``, see below
``precisions_``              float64  by ``covariance_type``
``precisions_cholesky_``     float64  by ``covariance_type``
``lower_bounds_``            float64  ``(n_steps,)``: lower bound after each
                                      EM step of the best initialisation
                                      (optional)
``param_weights_init``       float64  ``(K,)``, only if ``weights_init`` set
``param_means_init``         float64  ``(K, d)``, only if ``means_init`` set
``param_precisions_init``    float64  by ``covariance_type``, only if set
===========================  =======  ========================================

Shapes by ``covariance_type``: ``"full"`` ``(K, d, d)``, ``"tied"`` ``(d, d)``,
``"diag"`` ``(K, d)``, ``"spherical"`` ``(K,)``. Every array-valued
constructor parameter ``<name>`` is stored as ``param_<name>``.

The ``metadata`` JSON object has these keys:

- ``"format"``: always ``"gaussmix-model"``.
- ``"format_version"``: integer, ``1`` for this layout.
- ``"gaussmix_version"``: version string of the gaussmix that wrote the file.
- ``"estimator"``: ``"GaussianMixture"``.
- ``"params"``: object, every constructor parameter from ``get_params()``.
  Scalars (int, float, bool, str, null) are stored as is; array-valued
  parameters are ``null`` here and stored as ``param_<name>`` arrays;
  parameters that cannot be stored portably (a ``numpy`` ``RandomState`` or
  ``Generator`` as ``random_state``, a ``callback`` function) are ``null``.
- ``"unserialised_params"``: list of the names of parameters that had a value
  but were stored as ``null`` because the value cannot be serialised.
- ``"fitted"``: object with ``"n_features_in_"`` (int), ``"n_iter_"`` (int),
  ``"converged_"`` (bool) and ``"lower_bound_"`` (float).
- ``"feature_names_in"``: list of ``d`` strings, or ``null`` when the model was
  not fitted on data with column names.
- ``"arrays"``: sorted list of the array keys present besides ``metadata``.

Floats are written with Python's shortest round-trip representation, so they
are exact. Non-finite floats, which plain JSON cannot hold, are written as the
strings ``"inf"``, ``"-inf"`` and ``"nan"``.

Versioning policy
-----------------
``format_version`` is an integer bumped only on an incompatible change (a key
renamed or removed, a meaning or shape changed). Adding optional archive members
or metadata keys does not bump it; readers must ignore what they do not know.
:func:`load_model` reads every version up to :data:`FORMAT_VERSION` and refuses
newer files with a :class:`ModelFileError` that says to upgrade gaussmix.

Reading without gaussmix
------------------------
>>> import json, numpy as np                              # doctest: +SKIP
>>> with np.load("model.npz", allow_pickle=False) as f:    # doctest: +SKIP
...     meta = json.loads(f["metadata"].tobytes().decode("utf-8"))
...     means = f["means_"]
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError

from gaussmix._version import __version__

from .atomic import atomic_output

if TYPE_CHECKING:  # pragma: no cover
    from gaussmix.mixture import GaussianMixture

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "load_model",
    "model_file_path",
    "save_model",
]

FORMAT_NAME = "gaussmix-model"
FORMAT_VERSION = 1
SUFFIX = ".npz"

_METADATA_KEY = "metadata"
_PARAM_PREFIX = "param_"
_FITTED_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_SAVE_HINT = "Save models with GaussianMixture.save() or gaussmix.files.model.save_model()."
# Errors numpy/zipfile raise on files that are not valid .npz archives.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    EOFError,
    struct.error,
    NotImplementedError,
    KeyError,
)


class ModelFileError(ValueError):
    """A file is not a readable gaussmix model file.

    Raised by :func:`load_model` for files that are not zip archives, are
    truncated or corrupt, are not in the gaussmix format, were written by a
    newer gaussmix, or hold missing, mis-shaped or non-finite arrays.

    Attributes
    ----------
    path : pathlib.Path
        The offending file.
    """

    def __init__(
        self, path: str | os.PathLike[str], problem: str, advice: str = ""
    ) -> None:
        self.path = Path(path)
        message = f"{os.fspath(path)!r} {problem}"
        super().__init__(f"{message}. {advice}".strip() if advice else message + ".")


# --------------------------------------------------------------------------- save


def save_model(model: GaussianMixture, path: str | os.PathLike[str]) -> Path:
    """Save a fitted Gaussian mixture to a portable ``.npz`` model file.

    The file is first written to a temporary file in the same directory, then
    renamed into place, so a failed save never leaves a partial file behind
    and an existing file is replaced atomically.

    Parameters
    ----------
    model : GaussianMixture
        A fitted model (one that has ``means_``). A fitted
        ``sklearn.mixture.GaussianMixture`` works too.
    path : str or os.PathLike
        Destination. ``".npz"`` is appended if the name does not end with it,
        as :func:`numpy.savez` does. The recommended name is ``"model.npz"``.

    Returns
    -------
    pathlib.Path
        The path actually written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``model`` has not been fitted.

    See Also
    --------
    load_model : Read the file back.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture
    >>> from gaussmix.files.model import save_model, load_model
    >>> X = np.random.RandomState(0).normal(size=(100, 2))
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> path = save_model(gm, "model")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'model.npz'
    """
    _check_fitted(model)
    target = model_file_path(path)
    metadata, arrays = _serialise(model)
    arrays[_METADATA_KEY] = _encode_metadata(metadata)
    _write_atomically(target, arrays)
    return target


def _check_fitted(model: Any) -> None:
    if not hasattr(model, "means_"):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet, so there is "
            "nothing to save. Call 'fit' with appropriate data before save_model()."
        )


def model_file_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``.npz`` appended unless it already ends so (as numpy.savez does)."""
    target = Path(os.fspath(path))
    if not target.name.endswith(SUFFIX):
        target = target.with_name(target.name + SUFFIX)
    return target


def _serialise(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    params, param_arrays, unserialised = _split_params(model.get_params(deep=False))
    arrays = {
        name: np.asarray(getattr(model, name), dtype=np.float64)
        for name in _FITTED_ARRAYS
    }
    if getattr(model, "lower_bounds_", None) is not None:
        arrays["lower_bounds_"] = np.asarray(
            model.lower_bounds_, dtype=np.float64
        ).reshape(-1)
    arrays.update({_PARAM_PREFIX + name: value for name, value in param_arrays.items()})
    names = getattr(model, "feature_names_in_", None)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        "estimator": "GaussianMixture",
        "params": params,
        "unserialised_params": unserialised,
        "fitted": {
            "n_features_in_": int(model.n_features_in_),
            "n_iter_": int(model.n_iter_),
            "converged_": bool(model.converged_),
            "lower_bound_": _float_to_json(model.lower_bound_),
        },
        "feature_names_in": None if names is None else [str(n) for n in names],
        "arrays": sorted(arrays),
    }
    return metadata, arrays


def _split_params(
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """Split constructor params into JSON scalars, float arrays and unstorable ones."""
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    unserialised: list[str] = []
    for name, value in sorted(params.items()):
        scalars[name] = None
        if isinstance(value, (np.ndarray, list, tuple)):
            arrays[name] = np.asarray(value, dtype=np.float64)
        elif _is_json_scalar(value):
            scalars[name] = _scalar_to_json(value)
        else:  # RandomState, Generator, callables, ...
            unserialised.append(name)
    return scalars, arrays, unserialised


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, np.bool_, str, numbers.Real))


def _scalar_to_json(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return _float_to_json(value)


def _float_to_json(value: Any) -> float | str:
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _encode_metadata(metadata: dict[str, Any]) -> np.ndarray:
    text = json.dumps(metadata, allow_nan=False, ensure_ascii=False, indent=1)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write_atomically(target: Path, arrays: dict[str, np.ndarray]) -> None:
    if not target.parent.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, "Directory for the model file does not exist", str(target)
        )
    with atomic_output(target) as tmp, open(tmp, "xb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stub quirk
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- load


def load_model(path: str | os.PathLike[str]) -> GaussianMixture:
    """Load a Gaussian mixture saved by :func:`save_model`.

    The file is read with ``numpy.load(path, allow_pickle=False)``: no code in
    the file is ever executed. Array shapes are checked against
    ``n_components``, ``n_features_in_`` and ``covariance_type``, and fitted
    parameters must be finite.

    Parameters
    ----------
    path : str or os.PathLike
        A model file, normally named ``*.npz``.

    Returns
    -------
    GaussianMixture
        A fitted :class:`gaussmix.mixture.GaussianMixture` whose parameters
        and fitted attributes equal, bit for bit, those of the saved model.
        Parameters that could not be saved (``random_state`` given as a numpy
        random generator, ``callback``) are ``None``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a zip/npz archive, is truncated or corrupt, is not
        a gaussmix model file, was written by a newer format version, or
        holds missing, mis-shaped or non-finite arrays.

    See Also
    --------
    save_model : Write a model file.

    Examples
    --------
    >>> from gaussmix.files.model import load_model
    >>> gm = load_model("model.npz")  # doctest: +SKIP
    >>> gm.predict(X)  # doctest: +SKIP
    """
    from gaussmix.mixture import GaussianMixture

    arrays = _read_npz(path)
    metadata = _decode_metadata(path, arrays.pop(_METADATA_KEY, None))
    params, fitted = _read_params(path, metadata), _read_fitted(path, metadata)
    _check_listed_arrays(path, metadata, arrays)
    _validate_arrays(path, arrays, params, fitted["n_features_in_"])
    names = _read_feature_names(path, metadata, fitted["n_features_in_"])
    for name, value in arrays.items():
        if name.startswith(_PARAM_PREFIX):
            params[name[len(_PARAM_PREFIX) :]] = value
    model = GaussianMixture(**_known_params(path, params, GaussianMixture))
    _set_fitted(model, arrays, fitted, names)
    return model


def _read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every member of the archive into memory, closing the file."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such gaussmix model file", os.fspath(path))
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(
                path,
                "is a single .npy array, not a gaussmix model file (an .npz archive)",
                _SAVE_HINT,
            )
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except _READ_ERRORS as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            path,
            f"is not a readable gaussmix model file: it is not a valid .npz (zip) "
            f"archive, or it is truncated or corrupt ({type(exc).__name__}: {exc})",
            "Re-save the model with gaussmix.files.model.save_model() or restore the file "
            "from a good copy.",
        ) from exc


def _decode_metadata(
    path: str | os.PathLike[str], raw: np.ndarray | None
) -> dict[str, Any]:
    if raw is None:
        raise ModelFileError(
            path,
            "is not a gaussmix model file (no metadata entry); it may be another "
            "program's .npz",
            _SAVE_HINT,
        )
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected a 1-D uint8 array, got {raw.dtype} {raw.shape}")
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            path, f"has an unreadable metadata entry ({exc})", _SAVE_HINT
        ) from exc
    _check_format(path, metadata)
    return metadata


def _check_format(path: str | os.PathLike[str], metadata: Any) -> None:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        found = (
            metadata.get("format")
            if isinstance(metadata, dict)
            else type(metadata).__name__
        )
        raise ModelFileError(
            path,
            f"is not a gaussmix model file (metadata format is {found!r}, "
            f"expected {FORMAT_NAME!r}); it may be another program's .npz",
            _SAVE_HINT,
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(
            path, f"has an invalid format_version {version!r}", _SAVE_HINT
        )
    if version > FORMAT_VERSION:
        writer = metadata.get("gaussmix_version", "unknown")
        raise ModelFileError(
            path,
            f"uses model format version {version} (written by gaussmix {writer}), "
            f"newer than the version {FORMAT_VERSION} that gaussmix {__version__} "
            "supports",
            "Upgrade gaussmix to load it.",
        )


def _read_params(
    path: str | os.PathLike[str], metadata: dict[str, Any]
) -> dict[str, Any]:
    params = metadata.get("params")
    if not isinstance(params, dict):
        raise ModelFileError(path, "has no 'params' object in its metadata", _SAVE_HINT)
    params = dict(params)
    for name in ("tol", "reg_covar"):
        if isinstance(params.get(name), str):
            params[name] = float(params[name])
    n_components: Any = params.get("n_components")
    if not _is_int(n_components) or n_components < 1:
        raise ModelFileError(
            path, f"has an invalid n_components {n_components!r}", _SAVE_HINT
        )
    if params.get("covariance_type") not in _COVARIANCE_TYPES:
        raise ModelFileError(
            path,
            f"has an invalid covariance_type {params.get('covariance_type')!r}",
            _SAVE_HINT,
        )
    return params


def _read_fitted(
    path: str | os.PathLike[str], metadata: dict[str, Any]
) -> dict[str, Any]:
    fitted: Any = metadata.get("fitted")
    try:
        out = {
            "n_features_in_": int(fitted["n_features_in_"]),
            "n_iter_": int(fitted["n_iter_"]),
            "converged_": bool(fitted["converged_"]),
            "lower_bound_": float(fitted["lower_bound_"]),
        }
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelFileError(
            path,
            f"has missing or invalid fitted attributes in its metadata ({exc!r})",
            _SAVE_HINT,
        ) from exc
    if out["n_features_in_"] < 1:
        raise ModelFileError(path, "has n_features_in_ < 1", _SAVE_HINT)
    return out


def _check_listed_arrays(
    path: str | os.PathLike[str],
    metadata: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:
    listed = metadata.get("arrays", [])
    if not (isinstance(listed, list) and all(isinstance(k, str) for k in listed)):
        raise ModelFileError(
            path, "has an invalid 'arrays' list in its metadata", _SAVE_HINT
        )
    missing = sorted((set(_FITTED_ARRAYS) | set(listed)) - set(arrays))
    if missing:
        raise ModelFileError(
            path,
            f"is missing the array(s) {', '.join(missing)}; it is truncated or "
            "was not written by save_model()",
            "Re-save the model with gaussmix.files.model.save_model().",
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _expected_shapes(n_components: int, n_features: int, covariance_type: str) -> dict:
    k, d = n_components, n_features
    cov = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[
        covariance_type
    ]
    return {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": cov,
        "precisions_": cov,
        "precisions_cholesky_": cov,
        "param_weights_init": (k,),
        "param_means_init": (k, d),
        "param_precisions_init": cov,
    }


def _validate_arrays(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    params: dict[str, Any],
    n_features: int,
) -> None:
    """Check dtype, shape and finiteness of known arrays; convert to float64."""
    shapes = _expected_shapes(
        params["n_components"], n_features, params["covariance_type"]
    )
    shapes["lower_bounds_"] = None  # any 1-D length, may hold -inf
    context = (
        f"n_components={params['n_components']}, n_features={n_features}, "
        f"covariance_type={params['covariance_type']!r}"
    )
    for name in sorted(set(arrays) & set(shapes)):
        arrays[name] = _checked_array(path, name, arrays[name], shapes[name], context)


def _checked_array(
    path: str | os.PathLike[str],
    name: str,
    value: np.ndarray,
    expected: tuple[int, ...] | None,
    context: str,
) -> np.ndarray:
    if value.dtype.kind not in "fiu":
        raise ModelFileError(
            path, f"has array {name!r} of non-numeric dtype {value.dtype}", _SAVE_HINT
        )
    if (value.ndim != 1) if expected is None else (value.shape != expected):
        want = "1-D" if expected is None else str(expected)
        raise ModelFileError(
            path,
            f"has array {name!r} of shape {value.shape}, expected {want} for "
            f"{context}; the file is corrupt or was edited",
            "Re-save the model with gaussmix.files.model.save_model().",
        )
    if expected is not None and not np.all(np.isfinite(value)):
        raise ModelFileError(
            path,
            f"has non-finite values (nan or inf) in array {name!r}",
            "The file is corrupt; re-save the model with gaussmix.files.model.save_model().",
        )
    return value.astype(np.float64, copy=False)


def _read_feature_names(
    path: str | os.PathLike[str], metadata: dict[str, Any], n_features: int
) -> np.ndarray | None:
    names = metadata.get("feature_names_in")
    if names is None:
        return None
    if not (
        isinstance(names, list)
        and len(names) == n_features
        and all(isinstance(n, str) for n in names)
    ):
        raise ModelFileError(
            path,
            f"has invalid feature_names_in (expected a list of {n_features} strings)",
            _SAVE_HINT,
        )
    return np.asarray(names, dtype=object)


def _known_params(
    path: str | os.PathLike[str], params: dict[str, Any], cls: type
) -> dict:
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - known)
    if unknown:
        warnings.warn(
            f"{os.fspath(path)!r}: ignoring parameter(s) unknown to this gaussmix "
            f"version: {', '.join(unknown)}",
            UserWarning,
            stacklevel=3,
        )
    return {name: value for name, value in params.items() if name in known}


def _set_fitted(
    model: Any,
    arrays: dict[str, np.ndarray],
    fitted: dict[str, Any],
    names: np.ndarray | None,
) -> None:
    for name in _FITTED_ARRAYS:
        setattr(model, name, arrays[name])
    if "lower_bounds_" in arrays:
        model.lower_bounds_ = arrays["lower_bounds_"].tolist()
    for name, value in fitted.items():
        setattr(model, name, value)
    if names is not None:
        model.feature_names_in_ = names
