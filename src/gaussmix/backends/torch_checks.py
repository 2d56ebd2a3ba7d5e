"""Checks of torch inputs, made where the tensors are (on their device).

The estimator's side (:mod:`gaussmix.inputs`) calls them for tensor rows and
weights, as it calls :mod:`gaussmix.validation` for array-likes; only the
position of a first bad value is copied to the host, and only on failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.xp import is_torch_array
from .torch import _torch

__all__ = ["checked_rows", "checked_weights"]


def checked_rows(X: Any, min_samples: int = 1,
                 advice: str = "Remove or impute them first.") -> Any:
    """A 2-D real tensor with at least ``min_samples`` rows, all finite (checked
    on its device; the position of the first bad value only on failure, with
    ``advice``)."""
    torch = _torch()
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D tensor (rows x features), got shape "
                         f"{tuple(X.shape)}; reshape a single feature with "
                         "X.reshape(-1, 1).")
    if X.is_complex() or X.dtype == torch.bool:
        raise ValueError(f"Expected a real-valued tensor, got dtype {X.dtype}.")
    if X.shape[0] < min_samples or X.shape[1] < 1:
        raise ValueError(f"Found a tensor of shape {tuple(X.shape)} while at least "
                         f"{min_samples} sample(s) and 1 feature are required.")
    if X.dtype.is_floating_point:
        bad = ~torch.isfinite(X)
        if bool(bad.any()):
            row, col = (int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(
                f"Input X contains NaN or infinity: {int(bad.sum())} non-finite "
                f"value(s) ({int(torch.isnan(X).sum())} NaN); the first is at row "
                f"{row}, column {col}. {advice}")
    return X


def checked_weights(sample_weight: Any, n_rows: int, device: Any = None) -> Any:
    """Weights of a tensor input (a tensor, checked where it is, or an
    array-like, moved to ``device``) as float64: one per row, finite,
    non-negative, with a positive sum."""
    torch = _torch()
    if is_torch_array(sample_weight):
        w = sample_weight.detach().to(torch.float64)
    else:
        try:
            host = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"sample_weight must be numeric: {err}") from err
        w = torch.as_tensor(host, device=device)
    if w.ndim == 0:
        w = w.expand(n_rows)
    if tuple(w.shape) != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), one weight per "
                         f"row of X, but got shape {tuple(w.shape)}.")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("sample_weight contains NaN or infinity: give every row a "
                         "finite weight.")
    if bool((w < 0).any()):
        raise ValueError("sample_weight must be non-negative, but "
                         f"{int((w < 0).sum())} weight(s) are negative.")
    if not bool((w > 0).any()):
        raise ValueError("sample_weight sums to zero: at least one row needs a "
                         "positive weight.")
    return w
