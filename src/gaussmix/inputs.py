"""What the estimator accepts as data: array-likes (validated as scikit-learn
validates them), data sources (:mod:`gaussmix.engine.sources`) or Dask arrays
and DataFrames (:mod:`gaussmix.backends.dask`, imported only when one is
given), turned into the source the engine folds over."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .engine.sources import ArraySource, DataSource, scale_weights
from .validation import check_data, check_sample_weight


def is_dask(X: Any) -> bool:
    """Whether ``X`` is a Dask collection (checked without importing Dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "__dask_keys__")


def dask_source(est: Any, X: Any, sample_weight: Any, *, reset: bool) -> DataSource:
    """A Dask array or DataFrame as a :class:`~gaussmix.backends.dask.DaskSource`,
    its features recorded (``reset``) or checked on ``est``."""
    from .backends.dask import DaskSource

    source = adopted(est, DaskSource(X, sample_weight), reset=reset)
    if reset and source.feature_names is not None and all(
            not name.isdigit() for name in source.feature_names):
        est.feature_names_in_ = np.asarray(source.feature_names, dtype=object)
    return source


def is_data_source(X: Any) -> bool:
    """Whether ``X`` is a data source rather than an array-like."""
    return hasattr(X, "chunks") and hasattr(X, "n_features") and hasattr(X, "spec")


def training_source(est: Any, X: Any, sample_weight: Any) -> DataSource:
    """The training rows as a data source, validated; ``n_features_in_`` (and
    feature names) recorded on ``est`` unless it continues a warm start.

    In-memory weights are scaled by a power of two (exact; see
    :func:`~gaussmix.engine.sources.scale_weights`).
    """
    reset = not est._continues()
    if is_dask(X):
        source = dask_source(est, X, sample_weight, reset=reset)
        if source.n_rows is not None and source.n_rows < max(2, est.n_components):
            raise ValueError(f"Expected n_samples >= max(2, n_components) but got "
                             f"{source.n_rows} rows for {est.n_components} components.")
        return source
    if is_data_source(X):
        if sample_weight is not None:
            raise ValueError("Pass sample weights through the data source (as "
                             "(rows, weights) chunks or NpySource(weights=...)), "
                             "not as sample_weight, when X is a data source.")
        return adopted(est, X, reset=reset)
    X = check_data(est, X, reset=reset, min_samples=2)
    n_samples, n_features = X.shape
    if n_samples < est.n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = "
            f"{est.n_components}, n_samples = {n_samples}: a mixture needs at "
            "least one sample per component. Lower n_components or add data."
        )
    weights = scale_weights(check_sample_weight(sample_weight, n_samples))
    return ArraySource(X, weights, est._chunk_size(n_features))


def check_source(est: Any, source: DataSource, *, reset: bool) -> None:
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
    :func:`check_source`) and ``est``'s chunk size where it has none."""
    check_source(est, source, reset=reset)
    return sized(source, est._chunk_size(source.n_features))


def sized(source: DataSource, chunk_size: int) -> DataSource:
    """The source with ``chunk_size`` rows per chunk where it has none of its own."""
    if getattr(source, "chunk_size", 0) is None:
        source = copy.copy(source)
        source.chunk_size = chunk_size  # type: ignore[attr-defined]
    return source


def prediction_input(est: Any, X: Any) -> Any:
    """X checked against the fitted ``est``: a data source (Dask collections
    become one) or a validated array."""
    if is_dask(X):
        return dask_source(est, X, None, reset=False)
    if is_data_source(X):
        return adopted(est, X, reset=False)
    return check_data(est, X, reset=False)


def log_likelihood_totals(log_prob: Any, sample_weight: Any) -> tuple[float, float]:
    """``(sum_i w_i log p_i, sum_i w_i)``, ``w_i = 1`` without weights; a lazy
    (Dask) ``log_prob`` is computed on its scheduler."""
    if is_dask(log_prob):
        from .backends.dask import weighted_totals

        return weighted_totals(log_prob, sample_weight)
    weights = check_sample_weight(sample_weight, len(log_prob))
    if weights is None:
        return float(log_prob.sum()), float(len(log_prob))
    return float(weights @ log_prob), float(weights.sum())
