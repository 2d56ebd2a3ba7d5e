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
platforms), stored bit for bit, so a round trip is exact. The five fitted
parameter arrays are ``float32`` instead when the saved model held them in
float32 (a scikit-learn model fitted on float32 data); they load as float64,
exactly, and the checks below allow for float32 rounding.

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
- ``"estimator"``: ``"GaussianMixture"``, the class :func:`load_model` builds.
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

Validity
--------
:func:`load_model` refuses (with :class:`ModelFileError`) any file that a fit
could not have produced, and :func:`save_model` refuses to write one:

- every array and every float in ``"fitted"`` is finite; ``n_features_in_``
  is an integer >= 1, ``n_iter_`` an integer >= 0 and ``converged_`` a JSON
  boolean;
- ``weights_`` are >= 0 and sum to one (to ``1e-8`` plus rounding);
- ``precisions_cholesky_`` are upper-triangular with a strictly positive
  diagonal (``"diag"`` and ``"spherical"``: strictly positive values);
- ``precisions_cholesky_`` is the reference: ``precisions_`` and
  ``covariances_`` must equal the values derived from it (``U @ U.T`` and its
  inverse) to a relative ``1e-8`` (plus rounding in the arrays' precision),
  measured in units of each entry's scale
  ``sqrt(a_ii * a_jj)`` and widened by rounding for nearly singular
  covariances. They are stored too, so that readers need no linear algebra;
- every constructor parameter passes the validation that ``fit`` runs
  (:func:`gaussmix.validation.check_parameters`, ``random_state``, and
  ``weights_init``/``means_init``/``precisions_init`` against the shapes).

Versioning policy
-----------------
``format_version`` is an integer bumped only on an incompatible change (a key
renamed or removed, a meaning or shape changed). Adding optional archive members
or metadata keys does not bump it; readers must ignore what they do not know.
:func:`load_model` reads every version up to :data:`FORMAT_VERSION` and refuses
newer files with a :class:`ModelFileError` that says to upgrade gaussmix.

Code layout
-----------
This module reads and writes files; :mod:`gaussmix.files.model_record`
converts between a plain :class:`ModelRecord` and the archive's members;
:mod:`gaussmix.files.model_checks` checks the record. None of them imports
the estimator: :mod:`gaussmix.mixture` registers how a record becomes a
``GaussianMixture`` (:func:`register_estimator`), and
:func:`read_model_record` gives the checked contents without an estimator.

Reading without gaussmix
------------------------
>>> import json, numpy as np                              # doctest: +SKIP
>>> with np.load("model.npz", allow_pickle=False) as f:    # doctest: +SKIP
...     meta = json.loads(f["metadata"].tobytes().decode("utf-8"))
...     means = f["means_"]
"""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError  # type: ignore[import-untyped]

from . import model_checks as checks
from .atomic import atomic_output
from .model_checks import SAVE_HINT, RecordError
from .model_record import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelRecord,
    from_members,
    record_from_estimator,
    to_members,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "ModelRecord",
    "load_model",
    "model_file_path",
    "read_model_record",
    "save_model",
    "write_model_record",
]

SUFFIX = ".npz"
# First bytes of a zip archive (an .npz; the second is an empty archive) and
# of a single .npy array, as numpy.load tells them apart.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
RESAVE_ADVICE = ("Re-save the model with gaussmix.files.model.save_model() or restore "
                 "the file from a good copy.")
# Errors numpy/zipfile raise on archives that are truncated or corrupt: a
# corrupt directory can also set the encryption flag (RuntimeError) or point
# a seek before the start of the file (OSError EINVAL).
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    EOFError,
    struct.error,
    NotImplementedError,
    KeyError,
    RuntimeError,
    OSError,
)


class ModelFileError(ValueError):
    """A file is not a readable gaussmix model file.

    Raised by :func:`load_model` for files that are not zip archives, are
    truncated or corrupt, are not in the gaussmix format, were written by a
    newer gaussmix, or hold values that no fit could have produced (see
    "Validity" in :mod:`gaussmix.files.model`). The message is one line that
    names the file and the problem.

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


# Builders of estimators from records, by the metadata's "estimator" name.
# gaussmix.mixture registers GaussianMixture's when it is imported (always,
# by ``import gaussmix``), so this module never imports the estimator.
_BUILDERS: dict[str, Callable[[ModelRecord], Any]] = {}


def register_estimator(name: str, build: Callable[[ModelRecord], Any]) -> None:
    """Let :func:`load_model` turn records of estimator ``name`` into objects."""
    _BUILDERS[name] = build


def model_file_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``.npz`` appended unless it already ends so (as numpy.savez does).

    Examples
    --------
    >>> model_file_path("model.gmm").name
    'model.gmm.npz'
    """
    target = Path(os.fspath(path))
    if not target.name.endswith(SUFFIX):
        target = target.with_name(target.name + SUFFIX)
    return target


# --------------------------------------------------------------------------- save


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
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
    ValueError
        If the fitted attributes break an invariant that :func:`load_model`
        checks (for example a non-finite ``lower_bound_``); nothing is written.

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
    return write_model_record(record_from_estimator(model), path)


def _check_fitted(model: Any) -> None:
    if not hasattr(model, "means_"):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet, so there is "
            "nothing to save. Call 'fit' with appropriate data before save_model()."
        )
    required = (*checks.FITTED_ARRAYS, *checks.FITTED_SCALARS)
    missing = [name for name in required if not hasattr(model, name)]
    if missing:  # a model built by hand
        raise ValueError(
            f"Cannot save this {type(model).__name__}: it lacks the fitted "
            f"attribute(s) {', '.join(missing)}; fit it, or set every one of "
            f"{', '.join(required)}."
        )


def write_model_record(record: ModelRecord, path: str | os.PathLike[str]) -> Path:
    """Check ``record`` as :func:`load_model` would, then write it atomically.

    Returns the path written (``path`` with ``.npz`` appended if needed).
    """
    target = model_file_path(path)
    try:
        checks.check_record(record)
    except RecordError as exc:
        raise ValueError(
            f"Cannot save the model to {os.fspath(target)!r}: it {exc.problem}, so "
            "load_model() would refuse the file."
        ) from exc
    _write_atomically(target, to_members(record))
    return target


def _write_atomically(target: Path, arrays: dict[str, np.ndarray]) -> None:
    if not target.parent.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, "Directory for the model file does not exist", str(target)
        )
    if target.is_dir():  # else the rename fails, naming the temporary file
        raise IsADirectoryError(
            errno.EISDIR, "A directory has the model file's name; choose another name",
            str(target),
        )
    with atomic_output(target) as tmp, open(tmp, "xb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stub quirk
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- load


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a Gaussian mixture saved by :func:`save_model`.

    The file is read with ``numpy.load(path, allow_pickle=False)``: no code in
    the file is ever executed. Every field is checked (see "Validity" in
    :mod:`gaussmix.files.model`): array shapes against ``n_components``,
    ``n_features_in_`` and ``covariance_type``, finiteness, weights, Cholesky
    factors and their agreement with the stored precisions and covariances,
    and the constructor parameters with the validation ``fit`` runs.

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
        holds values that break the format's invariants.

    See Also
    --------
    save_model : Write a model file.
    read_model_record : The checked contents without building an estimator.

    Examples
    --------
    >>> from gaussmix.files.model import load_model
    >>> gm = load_model("model.npz")  # doctest: +SKIP
    >>> gm.predict(X)  # doctest: +SKIP
    """
    record = read_model_record(path)
    build = _BUILDERS.get(record.estimator)
    if build is None:
        raise ModelFileError(
            path, f"holds a {record.estimator!r}, which this gaussmix cannot load "
            f"(it loads {', '.join(sorted(_BUILDERS))})", "Upgrade gaussmix."
        )
    model = build(record)
    _warn_unknown_params(path, record.params, model.get_params(deep=False))
    try:
        checks.check_estimator(model, record.fitted["n_features_in_"])
    except RecordError as exc:
        raise ModelFileError(path, exc.problem, exc.advice) from exc
    return model


def _warn_unknown_params(
    path: str | os.PathLike[str], stored: dict[str, Any], known: dict[str, Any]
) -> None:
    unknown = sorted(set(stored) - set(known))
    if unknown:
        warnings.warn(
            f"{os.fspath(path)!r}: ignoring parameter(s) unknown to this gaussmix "
            f"version: {', '.join(unknown)}",
            UserWarning,
            stacklevel=3,
        )


def read_model_record(path: str | os.PathLike[str]) -> ModelRecord:
    """Read and check a model file, without building an estimator.

    Raises the same errors as :func:`load_model`, except for the checks of
    the constructor parameters, which need the estimator.
    """
    arrays = _read_npz(path)
    try:
        record = from_members(arrays)
        checks.check_record(record)
    except RecordError as exc:
        raise ModelFileError(path, exc.problem, exc.advice) from exc
    return record


def _read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every member of the archive into memory, closing the file."""
    if not os.path.exists(path):
        hint = ""
        if model_file_path(path).exists():  # save_model("m") wrote "m.npz"
            hint = f" (save_model appended .npz: load {os.fspath(model_file_path(path))!r})"
        raise FileNotFoundError(2, "No such gaussmix model file" + hint, os.fspath(path))
    _check_magic(path)
    try:
        with np.load(path, allow_pickle=False) as loaded:
            members = {key: _member(path, loaded, key) for key in loaded.files}
    except _READ_ERRORS as exc:
        if isinstance(exc, ModelFileError):
            raise
        detail = " ".join(str(exc).split())  # one line, whatever zipfile says
        raise ModelFileError(
            path,
            f"is not a readable gaussmix model file: it is truncated or corrupt "
            f"({type(exc).__name__}: {detail})", RESAVE_ADVICE,
        ) from exc
    # Members that are not .npy files come from a later minor version: ignored.
    return {key: value for key, value in members.items() if value is not None}


def _check_magic(path: str | os.PathLike[str]) -> None:
    """Refuse anything that is not a zip archive before numpy sees it, so that
    a pickle or text file never gets numpy's advice to load it unsafely."""
    with open(path, "rb") as fh:
        magic = fh.read(len(_NPY_MAGIC))
    if magic.startswith(_NPY_MAGIC):
        raise ModelFileError(
            path, "is a single .npy array, not a gaussmix model file (an .npz archive)",
            SAVE_HINT,
        )
    if not magic.startswith(_ZIP_MAGIC):
        raise ModelFileError(
            path, "is not a readable gaussmix model file: it is not an .npz (zip) archive",
            SAVE_HINT,
        )


def _check_declared_size(path: str | os.PathLike[str], archive: zipfile.ZipFile,
                         name: str) -> None:
    """Refuse a ``.npy`` member whose header declares more bytes than the member
    holds, before numpy allocates them (a corrupt shape asked for terabytes:
    MemoryError)."""
    if name not in archive.namelist():
        return  # not a .npy member
    size = archive.getinfo(name).file_size
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    with archive.open(name) as fh:
        read = readers.get(np.lib.format.read_magic(fh))
        if read is None:
            return  # a version numpy reads (or refuses) itself
        shape, _, dtype = read(fh)
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared > size:
            raise ModelFileError(
                path, f"is not a readable gaussmix model file: it is truncated or "
                f"corrupt (its member {name!r} declares an array of shape {shape}, "
                f"{declared} bytes, but holds {size} bytes)", RESAVE_ADVICE,
            )


def _member(path: str | os.PathLike[str], loaded: Any, key: str) -> np.ndarray | None:
    """The array ``key``; None for a member that is not a ``.npy`` file."""
    _check_declared_size(path, loaded.zip, key + ".npy")
    try:
        value = loaded[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise  # a truncated or corrupt member: reported by the caller
        value = np.empty(0, dtype=object)  # numpy refuses object arrays unpickled
    if isinstance(value, bytes):  # numpy returns other members' raw bytes
        return None
    if value.dtype.hasobject:
        raise ModelFileError(
            path, f"is not a gaussmix model file: its member {key!r} is not a plain "
            "numeric .npy array (model files never hold pickled objects)", SAVE_HINT,
        ) from None
    return value
