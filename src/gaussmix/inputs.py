"""What the estimator accepts as data: array-likes (validated as scikit-learn
validates them) or data sources (:mod:`gaussmix.engine.sources`), turned into
the source the engine folds over."""

from __future__ import annotations

import copy
from typing import Any

from .engine.sources import ArraySource, DataSource, scale_weights
from .validation import check_data, check_sample_weight


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
    chunk_size = est._chunk_size
    if is_data_source(X):
        if sample_weight is not None:
            raise ValueError("Pass sample weights through the data source (as "
                             "(rows, weights) chunks or NpySource(weights=...)), "
                             "not as sample_weight, when X is a data source.")
        check_source(est, X, reset=reset)
        return sized(X, chunk_size(X.n_features))
    X = check_data(est, X, reset=reset, min_samples=2)
    n_samples, n_features = X.shape
    if n_samples < est.n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = "
            f"{est.n_components}, n_samples = {n_samples}: a mixture needs at "
            "least one sample per component. Lower n_components or add data."
        )
    weights = scale_weights(check_sample_weight(sample_weight, n_samples))
    return ArraySource(X, weights, chunk_size(n_features))


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


def sized(source: DataSource, chunk_size: int) -> DataSource:
    """The source with ``chunk_size`` rows per chunk where it has none of its own."""
    if getattr(source, "chunk_size", 0) is None:
        source = copy.copy(source)
        source.chunk_size = chunk_size  # type: ignore[attr-defined]
    return source
