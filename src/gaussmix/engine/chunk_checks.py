"""Checks of the rows a data source reads, and of their number.

Every source (:mod:`gaussmix.engine.sources`, the file sources, the Dask
backend) checks each chunk as it reads it with :func:`check_chunk`: float
values of the source's width, finite, or with NaN as missing values where the
estimator reads them so (:class:`~gaussmix.engine.sources.ReadsMissing`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .xp import array_namespace


def check_enough_rows(n_rows: int, n_components: int) -> None:
    """Raise, as for an array, when a data source's ``n_rows`` rows are too
    few to fit ``n_components``: at least one per component, and 2."""
    if n_rows < max(2, n_components):
        raise ValueError(
            f"The data source holds {n_rows} row(s); fitting {n_components} "
            f"component(s) needs at least {max(2, n_components)} (one per component, "
            "and 2). Lower n_components or add data."
        )


def check_weighted_rows(n_weighted: int, n_components: int, of: str = "") -> None:
    """Raise ValueError unless at least ``n_components`` rows (``of`` says
    which) have a positive weight: rows of weight zero count as absent (an
    integer weight counts a row that many times), so fewer weighted rows are
    fewer samples than components, which scikit-learn refuses for its
    unweighted rows too.

    >>> check_weighted_rows(3, 2)
    >>> check_weighted_rows(1, 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Expected n_samples >= n_components but only 1 row(s) have a ...
    """
    if n_weighted < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but only {n_weighted} row(s){of} have "
            f"a positive sample_weight for n_components = {n_components}: rows of "
            "weight zero count as absent. Give more rows a positive weight or lower "
            "n_components."
        )


def check_chunk(X: Any, n_features: int, where: str, missing: str | None = None) -> Any:
    """A float32/float64 chunk with ``n_features`` columns and finite values;
    with ``missing`` ('allow' or 'fit', see
    :class:`~gaussmix.engine.sources.ReadsMissing`) NaN pass as
    missing values, but not infinity, nor at 'fit' a row of NaN only."""
    if isinstance(X, np.ndarray) and X.dtype not in (np.float32, np.float64):
        X = _as_float64(X, where)
    if X.shape[1] != n_features:
        raise ValueError(f"{where} has {X.shape[1]} features, but the source has "
                         f"{n_features}; every chunk needs the same columns.")
    xp = array_namespace(X)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = bool(xp.all(xp.isfinite(X)))
    if finite:
        return X
    if missing is None:
        raise ValueError(f"{where} contains NaN or infinity; remove or impute "
                         "those values, or fit with missing='marginalize', which "
                         "treats NaN as missing at random (in NumPy arrays, file "
                         "or chunk sources and Dask arrays; tensors reject them).")
    if bool(xp.any(xp.isinf(X))):
        raise ValueError(f"{where} contains infinity; NaN are missing values under "
                         "missing='marginalize', infinity is not: remove or replace "
                         "those values.")
    if missing == "fit":
        check_rows_observed(X, where)
    return X


def check_rows_observed(X: Any, where: str,
                        name: Callable[[int], str] | None = None) -> None:
    """Raise for a row of ``X`` with every value NaN (nothing to fit);
    ``name(i)`` says where row ``i`` of X is (default: its position in X)."""
    xp = array_namespace(X)
    empty = np.flatnonzero(np.asarray(xp.all(xp.isnan(X), axis=1)))
    if empty.size:
        first = f"position {empty[0]} there" if name is None else name(int(empty[0]))
        raise ValueError(
            f"{where}: {empty.size} row(s) have every feature missing (NaN), the "
            f"first at {first}. Such rows carry no "
            "information about the mixture: drop them before fitting (predict, "
            "score_samples and impute accept them).")


def _as_float64(X: np.ndarray, where: str) -> np.ndarray:
    """A NumPy chunk of numbers as float64; complex or non-numeric values raise."""
    if X.dtype.kind == "c":
        raise ValueError(f"{where} holds complex numbers ({X.dtype}); rows must be real.")
    try:
        return X.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} holds values that are not numbers ({error}); "
                         "convert or drop the non-numeric columns.") from error


def check_chunk_weights(w: Any, n_rows: int, where: str = "a chunk") -> Any:
    """Non-negative finite weights, one per row of the chunk (``where``
    names it in errors)."""
    w = np.asarray(w, dtype=np.float64) if not hasattr(w, "__array_namespace__") else w
    xp = array_namespace(w)
    if tuple(w.shape) != (n_rows,):
        raise ValueError(f"The weights of {where} have shape {tuple(w.shape)}, "
                         f"expected ({n_rows},): one weight per row.")
    if not bool(xp.all(xp.isfinite(w) & (w >= 0))):
        raise ValueError(f"The sample weights of {where} must be finite and "
                         "non-negative (a null weight is NaN).")
    return w
