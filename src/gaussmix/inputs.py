"""What the estimator accepts as data: array-likes (validated as scikit-learn
validates them), data sources (:mod:`gaussmix.engine.sources`), Dask arrays
and DataFrames (:mod:`gaussmix.backends.dask`) or torch tensors and any data
on a ``device`` (:mod:`gaussmix.backends.torch`; backends are imported only
when used), turned into the source the engine folds over."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .engine.chunk_checks import check_enough_rows
from .engine.sources import ArraySource, DataSource, is_data_source, scale_weights
from .engine.xp import is_torch_array as is_torch  # never imports torch
from .engine.xp import to_host
from .validation import check_data, check_finite, check_sample_weight, check_weighted_rows


def is_dask(X: Any) -> bool:
    """Whether ``X`` is a Dask collection (checked without importing Dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "__dask_keys__")


def dask_source(est: Any, X: Any, sample_weight: Any, *, reset: bool) -> DataSource:
    """A Dask array or DataFrame as a :class:`~gaussmix.backends.dask.DaskSource`,
    its features recorded (``reset``) or checked on ``est``: the number, and
    a DataFrame's column names exactly as scikit-learn treats a pandas
    DataFrame's (names recorded only when all are strings; at predict, other
    names or another order raise ValueError, names missing on one side warn)."""
    from .backends.dask import DaskSource

    source = DaskSource(X, sample_weight)
    source.chunk_size = est._worker_chunk_size(source.n_features)
    if not reset:  # scikit-learn's order: names first, then their number
        _check_column_names(est, X, source.n_features, reset=False)
    source = adopted(est, source, reset=reset)
    if reset:
        _check_column_names(est, X, source.n_features, reset=True)
    return source


def _check_column_names(est: Any, X: Any, n_features: int, *, reset: bool) -> None:
    """scikit-learn's feature-name check on an empty stand-in with X's columns
    (a pandas DataFrame for a Dask DataFrame, else an array): no data read."""
    from sklearn.utils.validation import validate_data

    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        import pandas as pd

        stand_in: Any = pd.DataFrame(columns=X.columns)
    else:
        stand_in = np.empty((0, n_features))
    validate_data(est, stand_in, reset=reset, skip_check_array=True)


#: Why torch refuses NaN under ``missing="marginalize"``.
TORCH_NAN_ADVICE = ("missing='marginalize' handles NaN only in NumPy arrays computed "
                    "with device=None: torch (a tensor, or device=...) does not "
                    "marginalise them. Impute them first, or pass NumPy rows with "
                    "device=None.")


def uses_torch(est: Any, X: Any) -> bool:
    """Whether ``est`` computes on ``X`` with torch: X is a tensor, or the
    estimator has a ``device``."""
    return is_torch(X) or getattr(est, "device", None) is not None


def torch_source(est: Any, X: Any, sample_weight: Any, *, reset: bool,
                 min_samples: int = 1) -> DataSource:
    """X (a tensor, host rows or a data source) as a
    :class:`~gaussmix.backends.torch.TorchSource` on ``est.device``, checked,
    its features recorded (``reset``) or checked on ``est``."""
    from .backends import torch as backend
    from .backends.torch_checks import checked_rows, checked_weights

    if is_dask(X):
        raise ValueError("device= does not apply to Dask collections (they are "
                         "fitted on the Dask workers); leave device=None.")
    if is_data_source(X):
        if sample_weight is not None:
            raise ValueError("Pass sample weights through the data source, not as "
                             "sample_weight, when X is a data source.")
        check_source(est, X, reset=reset)
        rows, weights = X, None
    elif is_torch(X):
        marginalize = getattr(est, "missing", "raise") == "marginalize"
        rows = (checked_rows(X, min_samples, TORCH_NAN_ADVICE) if marginalize
                else checked_rows(X, min_samples))
        check_source(est, _Features(int(X.shape[1])), reset=reset)
        weights = (None if sample_weight is None else
                   checked_weights(sample_weight, int(X.shape[0]), X.device))
    else:
        rows = check_data(est, X, reset=reset, min_samples=min_samples)
        if getattr(est, "missing", "raise") == "marginalize":  # NaN passed check_data
            check_finite(rows, "X", estimator_name=type(est).__name__,
                         advice=TORCH_NAN_ADVICE)
        weights = check_sample_weight(
            to_host(sample_weight) if is_torch(sample_weight) else sample_weight,
            len(rows))
    return backend.TorchSource(
        rows, scale_weights(weights), device=est.device, chunk_size=est.chunk_size,
        matmul_precision=est.matmul_precision, n_components=est.n_components,
        piece=est._piece)


class _Features:
    """What :func:`check_source` reads of a source: its number of features."""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features


def training_source(est: Any, X: Any, sample_weight: Any) -> DataSource:
    """The training rows as a data source, validated; ``n_features_in_`` (and
    feature names) recorded on ``est`` unless it continues a warm start.

    In-memory weights are scaled by a power of two (exact; see
    :func:`~gaussmix.engine.sources.scale_weights`).
    """
    reset = not est._continues()
    if uses_torch(est, X):
        source = torch_source(est, X, sample_weight, reset=reset, min_samples=2)
        if source.n_rows is not None and source.n_rows < est.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got "
                             f"{source.n_rows} rows for {est.n_components} components.")
        weights = getattr(source, "sample_weight", None)
        if weights is not None:
            check_weighted_rows(int((weights > 0).sum()), est.n_components)
        return source
    if is_dask(X):
        source = dask_source(est, X, sample_weight, reset=reset)
        if source.n_rows is not None and source.n_rows < max(2, est.n_components):
            raise ValueError(f"Expected n_samples >= max(2, n_components) but got "
                             f"{source.n_rows} rows for {est.n_components} components.")
        check_weighted_rows(source.n_weighted, est.n_components)  # type: ignore[attr-defined]
        return source
    if is_data_source(X):
        if sample_weight is not None:
            raise ValueError("Pass sample weights through the data source (as "
                             "(rows, weights) chunks or NpySource(sample_weight=...)), "
                             "not as sample_weight, when X is a data source.")
        if X.n_rows is not None:  # an empty file, a file of one row
            check_enough_rows(X.n_rows, est.n_components)
        return adopted(est, fit_reading(X), reset=reset)
    X = check_data(est, X, reset=reset, min_samples=2)
    n_samples, n_features = X.shape
    if n_samples < est.n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = "
            f"{est.n_components}, n_samples = {n_samples}: a mixture needs at "
            "least one sample per component. Lower n_components or add data."
        )
    weights = scale_weights(check_sample_weight(sample_weight, n_samples))
    if weights is not None:
        check_weighted_rows(int(np.count_nonzero(weights)), est.n_components)
    return ArraySource(X, weights, est._chunk_size(n_features, n_samples))


def fit_reading(source: Any) -> Any:
    """The data source as a fit reads it: a file source's ``for_fit()`` copy,
    which spills the rows for the fit's later passes when its ``cache`` is
    ``"auto"`` (see :mod:`gaussmix.files.spill`); other sources as they are."""
    for_fit = getattr(source, "for_fit", None)
    return for_fit() if callable(for_fit) else source


def check_source(est: Any, source: Any, *, reset: bool) -> None:
    """Record (``reset``) or check the source's number of features on ``est``."""
    if reset:
        est.n_features_in_ = source.n_features
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif source.n_features != est.n_features_in_:
        raise ValueError(
            f"X has {source.n_features} features, but {type(est).__name__} is "
            f"expecting {est.n_features_in_} features as input."
        )


def adopted(est: Any, source: Any, *, reset: bool) -> Any:
    """``source`` with its features recorded or checked on ``est`` (see
    :func:`check_source`) and ``est``'s chunk size where it has none.

    A source with column names (a :class:`~gaussmix.ParquetSource`) has them
    recorded at fit, and checked against names recorded at fit as a
    DataFrame's are, so that reordered columns raise instead of being scored
    in the wrong places."""
    names = _column_names(source)
    # at prediction, names are compared when the fit had them (no warning
    # when it had none: a source is not a DataFrame the user built)
    if names is not None and not reset and hasattr(est, "feature_names_in_"):
        _check_source_names(est, names, reset=False)  # scikit-learn: names first
    check_source(est, source, reset=reset)
    if names is not None and reset:
        _check_source_names(est, names, reset=True)
    return sized(source, est._chunk_size(source.n_features))


def _column_names(source: Any) -> list[str] | None:
    """The feature column names of a source that has them (Parquet), else None."""
    names = getattr(source, "columns", None)
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return names
    return None


def _check_source_names(est: Any, names: list[str], *, reset: bool) -> None:
    """scikit-learn's feature-name check on an empty Arrow table with these
    column names (scikit-learn reads names through the dataframe protocol)."""
    from sklearn.utils.validation import validate_data

    from ._optional import require

    pa = require("pyarrow", "io", "checking a Parquet source's column names")
    stand_in = pa.table({name: pa.array([], pa.float64()) for name in names})
    validate_data(est, stand_in, reset=reset, skip_check_array=True)


def sized(source: DataSource, chunk_size: int) -> DataSource:
    """The source with ``chunk_size`` rows per chunk where it has none of its own."""
    if getattr(source, "chunk_size", 0) is None:
        source = copy.copy(source)
        source.chunk_size = chunk_size  # type: ignore[attr-defined]
    return source


def prediction_input(est: Any, X: Any) -> Any:
    """X checked against the fitted ``est``: a data source (Dask collections
    and torch tensors become one) or a validated array."""
    if uses_torch(est, X):
        return torch_source(est, X, None, reset=False)
    if is_dask(X):
        return dask_source(est, X, None, reset=False)
    if is_data_source(X):
        return adopted(est, X, reset=False)
    return check_data(est, X, reset=False)


def log_likelihood_totals(log_prob: Any, sample_weight: Any, *, scaled: bool = False
                          ) -> tuple[float, float]:
    """``(sum_i w_i log p_i, sum_i w_i)``, ``w_i = 1`` without weights; a lazy
    (Dask) ``log_prob`` is computed on its scheduler. ``scaled``: the weights
    times a power of two (exact; their ratio, the mean, neither overflows nor
    loses digits to subnormal weights)."""
    if is_dask(log_prob):
        from .backends.dask import weighted_totals

        return weighted_totals(log_prob, sample_weight, scaled=scaled)
    if is_torch(log_prob) or is_torch(sample_weight):  # one copy to the host
        log_prob = to_host(log_prob)
        sample_weight = None if sample_weight is None else to_host(sample_weight)
    weights = check_sample_weight(sample_weight, len(log_prob))
    weights = scale_weights(weights) if scaled else weights
    if weights is None:
        return float(log_prob.sum()), float(len(log_prob))
    return float(weights @ log_prob), float(weights.sum())


# ------------------------------------------------- fitted arrays (torch rule)
def place_attributes(est: Any, source: DataSource) -> None:
    """Fitted arrays as tensors on the device when the training rows were a
    tensor (:mod:`gaussmix.backends.torch`); NumPy otherwise (unchanged)."""
    place = getattr(source, "place_attributes", None)
    if callable(place):
        place(est)


def on_host(est: Any) -> Any:
    """``est``, or a shallow copy with NumPy fitted arrays if they are tensors."""
    if not is_torch(getattr(est, "means_", None)):
        return est
    from .backends.torch import as_numpy

    return as_numpy(est)


def like_fitted(est: Any, a: np.ndarray) -> Any:
    """``a`` as a tensor on the fitted arrays' device when they are tensors."""
    if not is_torch(getattr(est, "means_", None)):
        return a
    from .backends.torch import like_fitted as to_device

    return to_device(est, a)


def exp(a: Any) -> Any:
    """``exp(a)`` for NumPy, Dask and torch results alike."""
    return a.exp() if is_torch(a) else np.exp(a)


# ------------------------------------------------------------ model selection
def selection_data(est: Any, X: Any, sample_weight: Any) -> tuple[Any, np.ndarray | None]:
    """:func:`gaussmix.select`'s rows and weights: a tensor stays where it is
    (checked there), other data is validated as ``fit`` validates it; weights
    are host NumPy arrays."""
    if is_torch(X):
        from .backends.torch_checks import checked_rows

        X = (checked_rows(X, 2, TORCH_NAN_ADVICE) if est.missing == "marginalize"
             else checked_rows(X, 2))
    else:
        X = check_data(est, X, reset=True, min_samples=2)
    if is_torch(sample_weight):
        sample_weight = to_host(sample_weight)
    return X, check_sample_weight(sample_weight, len(X))

