"""Rows for initialisation from any data source: all of them, or a uniform
random sample drawn in one pass (:func:`sample_rows`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .sources import DataSource
from .xp import to_host


def sample_rows(source: DataSource, size: int, rng: np.random.RandomState
                ) -> tuple[Any, Any]:
    """Rows for initialisation: all of an in-memory source, else a uniform
    random sample of at most ``size`` rows (reservoir sampling in one pass,
    rows kept in their original order, with their weights; rows of weight
    zero, absent from the fit, only if too few others). A source of at most
    ``size`` rows gives all of them and leaves ``rng`` as it was (a stream of
    unknown length is read, then its draws are undone), so it starts where
    the same rows in memory start.

    A source with a ``sample(size, rng)`` method draws the sample itself (a
    Dask array draws it on the cluster, so rows never all reach the caller)."""
    if source.in_memory:
        return source.X, source.sample_weight  # type: ignore[attr-defined]
    if callable(getattr(source, "sample", None)):
        return source.sample(size, rng)  # type: ignore[attr-defined]
    if source.n_rows is not None and source.n_rows <= size:
        return _all_rows(source)
    state = rng.get_state()
    rows, weights, positions, n_read = _reservoir(source, size, rng)
    if n_read <= size:  # every row kept: as from a source known to be that small,
        rng.set_state(state)  # no random numbers drawn
    order = np.argsort(positions, kind="stable")
    w = None if weights is None else weights[order]
    return rows[order], w


def _all_rows(source: DataSource) -> tuple[np.ndarray, np.ndarray | None]:
    chunks = list(source.chunks())
    X = np.concatenate([to_host(c.X, c.X.dtype) for c in chunks])
    if all(c.sample_weight is None for c in chunks):
        return X, None
    return X, np.concatenate([np.ones(c.X.shape[0]) if c.sample_weight is None
                              else to_host(c.sample_weight) for c in chunks])


def _reservoir(source: DataSource, size: int, rng: np.random.RandomState):
    keys = np.empty(0)
    rows = np.empty((0, source.n_features), dtype=np.dtype(source.spec.dtype))
    weights: np.ndarray | None = None
    positions = np.empty(0, dtype=np.int64)
    offset = 0
    for X, w in source.chunks():
        X, n = to_host(X, X.dtype), X.shape[0]
        new_w = None if w is None else to_host(w)
        if new_w is not None or weights is not None:
            weights = np.concatenate([
                np.ones(len(keys)) if weights is None else weights,
                np.ones(n) if new_w is None else new_w])
        new_keys = np.asarray(rng.random_sample(n))
        if new_w is not None:  # rows of weight zero (absent) only if too few others
            new_keys = np.where(new_w > 0, new_keys, new_keys + 1.0)
        keys = np.concatenate([keys, new_keys])
        rows = np.concatenate([rows, X])
        positions = np.concatenate([positions, offset + np.arange(n)])
        offset += n
        if len(keys) > size:
            keep = np.argpartition(keys, size - 1)[:size]
            keys, rows, positions = keys[keep], rows[keep], positions[keep]
            weights = None if weights is None else weights[keep]
    return rows, weights, positions, offset
