"""Geometry of a plot: full covariance matrices of any covariance type, the
projection of data and components to the plane, and the projected density."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from ..engine.covariance import get_covariance_type
from ..engine.logspace import logsumexp


def full_covariances(model: Any) -> np.ndarray:
    """Covariance matrices of shape (n_components, d, d) for any covariance type."""
    k, d = model.means_.shape
    piece = get_covariance_type(model.covariance_type)
    return piece.to_full(np.asarray(model.covariances_, dtype=np.float64), k, d)


@dataclass(frozen=True)
class Projection:
    """An affine map to the plane: ``z = (x - offset) @ basis``."""

    offset: np.ndarray
    basis: np.ndarray
    labels: tuple[str, str]

    def points(self, X: np.ndarray) -> np.ndarray:
        """Projected rows; NaN only where a feature the projection uses is NaN."""
        used = np.any(self.basis != 0, axis=1)  # a missing other column is no NaN
        X = np.asarray(X, dtype=np.float64)
        return (X[:, used] - self.offset[used]) @ self.basis[used]

    def covariances(self, covariances: np.ndarray) -> np.ndarray:
        return np.einsum("di,kde,ej->kij", self.basis, covariances, self.basis)


def projection(
    X: np.ndarray,
    names: Sequence[str],
    x: str | int | None = None,
    y: str | int | None = None,
) -> Projection:
    """Columns ``x`` and ``y`` (names or positions), the only two features, or
    else the first two principal components of ``X`` (of its rows without
    missing values, NaN)."""
    d = X.shape[1]
    if (x is None) != (y is None):
        raise ValueError("give both x and y (two feature columns), or neither")
    if x is not None and y is not None:
        i, j = _column(x, names), _column(y, names)
        if i == j:
            raise ValueError(
                f"x and y are the same feature ({names[i]}); choose two different "
                "columns"
            )
    elif d == 2:
        i, j = 0, 1
    else:
        return _pca(X)
    basis = np.zeros((d, 2))
    basis[i, 0] = basis[j, 1] = 1.0
    return Projection(np.zeros(d), basis, (names[i], names[j]))


def _column(ref: str | int, names: Sequence[str]) -> int:
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        position = int(ref)
    elif str(ref) in names:
        return list(names).index(str(ref))
    elif str(ref).strip().isdigit():
        position = int(str(ref))
    else:
        position = -1
    if not 0 <= position < len(names):
        raise ValueError(
            f"column {ref!r} is not a feature of the model; its features are "
            f"{', '.join(names)} (give a name or a 0-based position)"
        )
    return position


def _pca(X: np.ndarray) -> Projection:
    X = X[np.isfinite(X).all(axis=1)]
    if len(X) < 2:
        raise ValueError(
            f"the plane of the first two principal components needs at least 2 "
            f"rows without missing values, X has {len(X)}; choose two columns "
            "with x and y instead"
        )
    offset = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - offset, full_matrices=False)
    basis = vt[:2].T.copy()
    basis *= np.sign(basis[np.argmax(np.abs(basis), axis=0), [0, 1]])  # fix signs
    share = s**2 / max(float(np.sum(s**2)), np.finfo(float).tiny)
    labels = (f"PC1 ({100 * share[0]:.0f}% of variance)",
              f"PC2 ({100 * share[1]:.0f}% of variance)")
    return Projection(offset, basis, labels)


def log_density(
    Z: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> np.ndarray:
    """log of the density at the rows of Z (n, p) of the mixture with these
    (projected) weights, means and full covariances, by Cholesky factors.

    A projected mixture is not a fitted model, so this is the one density
    plotting computes itself; the model's own densities come from its
    ``score_samples`` and ``predict_proba``.
    """
    p = Z.shape[1]
    parts = []
    for w, mean, cov in zip(weights, means, covariances, strict=True):
        lower = np.linalg.cholesky(cov)
        y = solve_triangular(lower, (Z - mean).T, lower=True)
        log_det = 2.0 * np.sum(np.log(np.diag(lower)))
        with np.errstate(divide="ignore"):  # a weight of 0 adds nothing: log 0
            log_w = np.log(w)
        parts.append(log_w - 0.5 * (p * np.log(2 * np.pi) + log_det
                                    + np.sum(y**2, axis=0)))
    return logsumexp(np.stack(parts), axis=0)
