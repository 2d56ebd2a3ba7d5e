"""Plots of fitted Gaussian mixtures, returning matplotlib objects.

matplotlib is an optional dependency (``pip install 'gaussmix[plot]'``),
imported when a function here is first called.

- :func:`plot_mixture`: the data coloured by most probable component, each
  component's 1- and 2-sigma ellipses and mean, and contours of the mixture
  density. Two features are drawn as they are; with more, a chosen pair of
  columns (``x``, ``y``) or, by default, the first two principal components of
  the data, with the means and covariances projected the same way (a linear
  projection of a Gaussian mixture is again a Gaussian mixture, so the
  ellipses and contours are exact for the projected data). One feature gives
  a histogram with the mixture density and its weighted components.
- :func:`plot_convergence`: the mean log-likelihood after each EM iteration
  (``model.lower_bounds_``) and, on a log axis, its change against ``tol``.
- :func:`plot_model`: both side by side in a new figure, and
  :func:`save_figure` to write it (PNG, SVG or PDF) without touching pyplot.

Examples
--------
>>> import numpy as np
>>> from gaussmix import GaussianMixture
>>> from gaussmix.plotting import plot_mixture, plot_convergence
>>> X = np.random.RandomState(0).normal(size=(200, 3))
>>> gm = GaussianMixture(2, random_state=0).fit(X)
>>> ax = plot_mixture(gm, X)                  # doctest: +SKIP
>>> ax = plot_mixture(gm, X, x=0, y=2)        # doctest: +SKIP
>>> ax = plot_convergence(gm)                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from ._optional import require
from .files.atomic import atomic_output
from .files.tables import check_output_path

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Projection",
    "full_covariances",
    "plot_convergence",
    "plot_mixture",
    "plot_model",
    "projection",
    "save_figure",
]

FIGURE_FORMATS = ("png", "svg", "pdf")
_NAMES_WARNING = "X does not have valid feature names"


def _matplotlib() -> Any:
    return require("matplotlib", "plot", "plotting")


def _pyplot_axes() -> Axes:
    plt = require("matplotlib.pyplot", "plot", "plotting")
    return plt.gca()


# ------------------------------------------------------------- geometry


def full_covariances(model: Any) -> np.ndarray:
    """Covariance matrices of shape (n_components, d, d) for any covariance type."""
    from .engine.covariance import get_covariance_type

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
        return (np.asarray(X, dtype=np.float64) - self.offset) @ self.basis

    def covariances(self, covariances: np.ndarray) -> np.ndarray:
        return np.einsum("di,kde,ej->kij", self.basis, covariances, self.basis)


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


def projection(
    X: np.ndarray,
    names: Sequence[str],
    x: str | int | None = None,
    y: str | int | None = None,
) -> Projection:
    """Columns ``x`` and ``y`` (names or positions), the only two features, or
    else the first two principal components of ``X``."""
    d = X.shape[1]
    if (x is None) != (y is None):
        raise ValueError("give both x and y (two feature columns), or neither")
    if x is not None and y is not None:
        i, j = _column(x, names), _column(y, names)
    elif d == 2:
        i, j = 0, 1
    else:
        return _pca(X)
    basis = np.zeros((d, 2))
    basis[i, 0] = basis[j, 1] = 1.0
    return Projection(np.zeros(d), basis, (names[i], names[j]))


def _pca(X: np.ndarray) -> Projection:
    offset = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - offset, full_matrices=False)
    basis = vt[:2].T.copy()
    basis *= np.sign(basis[np.argmax(np.abs(basis), axis=0), [0, 1]])  # fix signs
    share = s**2 / max(float(np.sum(s**2)), np.finfo(float).tiny)
    labels = (f"PC1 ({100 * share[0]:.0f}% of variance)",
              f"PC2 ({100 * share[1]:.0f}% of variance)")
    return Projection(offset, basis, labels)


def _log_density(
    Z: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> np.ndarray:
    """log of the mixture density at the rows of Z (n, p), by Cholesky factors."""
    p = Z.shape[1]
    parts = []
    for w, mean, cov in zip(weights, means, covariances, strict=True):
        lower = np.linalg.cholesky(cov)
        y = solve_triangular(lower, (Z - mean).T, lower=True)
        log_det = 2.0 * np.sum(np.log(np.diag(lower)))
        parts.append(np.log(w) - 0.5 * (p * np.log(2 * np.pi) + log_det
                                        + np.sum(y**2, axis=0)))
    return logsumexp(np.stack(parts), axis=0)


def _colors(n: int) -> list[Any]:
    mpl = _matplotlib()
    if n <= 10:
        return [mpl.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [mpl.colormaps["tab20"](i) for i in range(n)]
    return [mpl.colormaps["turbo"](i / (n - 1)) for i in range(n)]


def _checked_data(model: Any, X: Any) -> np.ndarray:
    check_is_fitted(model)
    data = np.asarray(X, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != model.n_features_in_:
        raise ValueError(
            f"X has shape {data.shape} but the model was fitted on "
            f"{model.n_features_in_} features; pass X with those columns"
        )
    if len(data) == 0:
        raise ValueError("X has no rows to plot")
    return data


def _feature_names(model: Any, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is not None:
        return [str(n) for n in feature_names]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(model.n_features_in_)]


def _predict(model: Any, X: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NAMES_WARNING)
        return np.asarray(model.predict(X))


# ------------------------------------------------------------- plots


def plot_mixture(
    model: Any,
    X: Any,
    ax: Axes | None = None,
    *,
    x: str | int | None = None,
    y: str | int | None = None,
    feature_names: Sequence[str] | None = None,
    sigmas: Sequence[float] = (1.0, 2.0),
    contours: bool = True,
    max_points: int = 5000,
    point_size: float | None = None,
    legend: bool = True,
    title: str | None = None,
) -> Axes:
    """Scatter of X coloured by component, with ellipses and density contours.

    Parameters
    ----------
    model : fitted GaussianMixture
        A gaussmix (or scikit-learn) Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
        Data to draw, with the model's features in order.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default the current pyplot axes.
    x, y : str or int, optional
        Two features to plot, by name or 0-based position. Default: the only
        two features, or the first two principal components of X when the
        model has more than two. Ignored with one feature.
    feature_names : sequence of str, optional
        Names of the features; default ``model.feature_names_in_`` or
        ``x0, x1, ...``.
    sigmas : sequence of float, default=(1, 2)
        Mahalanobis radii of the ellipses drawn for each component (solid for
        the first, dashed for the others).
    contours : bool, default=True
        Draw contours of the (projected) mixture density at the levels that
        enclose about 95%, 75%, 50% and 25% of the points.
    max_points : int, default=5000
        At most this many points are drawn (a fixed random subset).
    point_size : float, optional
        Marker area; default chosen from the number of points.
    legend : bool, default=True
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = _checked_data(model, X)
    names = _feature_names(model, feature_names)
    labels = _predict(model, X)
    if ax is None:
        ax = _pyplot_axes()
    colors = _colors(model.n_components)
    if data.shape[1] == 1:
        _draw_1d(ax, model, data, labels, colors, names[0])
    else:
        proj = projection(data, names, x, y)
        _draw_2d(ax, model, data, labels, colors, proj, sigmas, contours,
                 max_points, point_size)
    if legend and model.n_components <= 12:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.11),
                  ncol=3, frameon=False)
    ax.set_title(title if title is not None else
                 f"{model.n_components} components, {model.covariance_type} "
                 "covariance")
    return ax


def _subset(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.RandomState(0).choice(n, max_points, replace=False))


def _draw_2d(
    ax: Axes, model: Any, data: np.ndarray, labels: np.ndarray, colors: list[Any],
    proj: Projection, sigmas: Sequence[float], contours: bool, max_points: int,
    point_size: float | None,
) -> None:
    Z = proj.points(data)
    means = proj.points(model.means_)
    covs = proj.covariances(full_covariances(model))
    lo, hi = _limits(Z, means, covs, max(sigmas, default=0.0))
    if contours:
        _draw_contours(ax, Z, np.asarray(model.weights_), means, covs, lo, hi)
    shown = _subset(len(Z), max_points)
    size = point_size if point_size is not None else float(
        np.clip(4000 / max(len(shown), 1), 4, 30))
    for k, color in enumerate(colors):
        rows = shown[labels[shown] == k]
        ax.scatter(Z[rows, 0], Z[rows, 1], s=size, color=color, alpha=0.6,
                   linewidths=0, label=f"component {k} (weight "
                   f"{model.weights_[k]:.2f})")
    for k, color in enumerate(colors):
        _draw_ellipses(ax, means[k], covs[k], color, sigmas)
    ax.scatter(means[:, 0], means[:, 1], marker="X", s=90, c=colors,
               edgecolors="black", linewidths=1.0, zorder=5)
    _style_legend_extras(ax, sigmas, contours)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(proj.labels[0])
    ax.set_ylabel(proj.labels[1])


def _limits(Z: np.ndarray, means: np.ndarray, covs: np.ndarray, radius: float
            ) -> tuple[np.ndarray, np.ndarray]:
    spread = radius * np.sqrt(np.einsum("kii->ki", covs))
    lo = np.minimum(Z.min(axis=0), (means - spread).min(axis=0))
    hi = np.maximum(Z.max(axis=0), (means + spread).max(axis=0))
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    return lo - pad, hi + pad


def _draw_contours(ax: Axes, Z: np.ndarray, weights: np.ndarray, means: np.ndarray,
                   covs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 160), np.linspace(lo[1], hi[1], 160))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    log_dens = _log_density(grid, weights, means, covs).reshape(gx.shape)
    at_points = _log_density(Z, weights, means, covs)
    levels = np.unique(np.quantile(at_points, [0.05, 0.25, 0.5, 0.75]))
    if len(levels) >= 1 and np.all(np.isfinite(levels)):
        ax.contour(gx, gy, log_dens, levels=levels, colors="0.35", linewidths=0.7,
                   alpha=0.8, zorder=1)


def _draw_ellipses(ax: Axes, mean: np.ndarray, cov: np.ndarray, color: Any,
                   sigmas: Sequence[float]) -> None:
    Ellipse = require("matplotlib.patches", "plot", "plotting").Ellipse
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, 0.0)
    angle = float(np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])))
    for i, radius in enumerate(sigmas):
        ax.add_patch(Ellipse(
            xy=(float(mean[0]), float(mean[1])),
            width=2 * radius * float(np.sqrt(values[1])),
            height=2 * radius * float(np.sqrt(values[0])), angle=angle,
            fill=False, edgecolor=color, linewidth=2.0 if i == 0 else 1.3,
            linestyle="-" if i == 0 else "--", zorder=4,
        ))


def _style_legend_extras(ax: Axes, sigmas: Sequence[float], contours: bool) -> None:
    """Invisible proxy lines so that the legend explains ellipses and contours."""
    ax.plot([], [], linestyle="none", marker="X", markersize=8, color="0.6",
            markeredgecolor="black", label="component mean")
    for i, radius in enumerate(sigmas):
        ax.plot([], [], color="0.2", linestyle="-" if i == 0 else "--",
                label=f"{radius:g}-sigma ellipse")
    if contours:
        ax.plot([], [], color="0.35", linewidth=0.7, label="density contours")


def _draw_1d(ax: Axes, model: Any, data: np.ndarray, labels: np.ndarray,
             colors: list[Any], name: str) -> None:
    values = data[:, 0]
    sd = np.sqrt(full_covariances(model)[:, 0, 0])
    means = model.means_[:, 0]
    lo = min(values.min(), float(np.min(means - 3 * sd)))
    hi = max(values.max(), float(np.max(means + 3 * sd)))
    grid = np.linspace(lo, hi, 400)
    ax.hist(values, bins="auto", density=True, color="0.8", label="data")
    parts = np.stack([
        w * np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        for w, m, s in zip(model.weights_, means, sd, strict=True)
    ])
    for k, color in enumerate(colors):
        ax.plot(grid, parts[k], color=color,
                label=f"component {k} (weight {model.weights_[k]:.2f})")
    ax.plot(grid, parts.sum(axis=0), color="black", linewidth=1.5, label="mixture")
    ax.scatter(values, np.zeros_like(values), marker="|", s=40,
               c=[colors[k] for k in labels], alpha=0.5)
    ax.set_xlabel(name)
    ax.set_ylabel("density")


def plot_convergence(
    model: Any, ax: Axes | None = None, *, title: str | None = "EM convergence",
    show_change: bool = False,
) -> Axes:
    """The mean log-likelihood after each EM iteration of the best run.

    Parameters
    ----------
    model : fitted GaussianMixture
        Needs ``lower_bounds_`` (gaussmix models have it; a model file written
        by gaussmix stores it).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default the current pyplot axes.
    title : str or None, default="EM convergence"
    show_change : bool, default=False
        Also draw ``|change|`` per iteration on a log-scaled right axis, with
        the convergence threshold ``tol``.

    Returns
    -------
    matplotlib.axes.Axes
        The left (log-likelihood) axes.
    """
    mpl = _matplotlib()
    check_is_fitted(model)
    if ax is None:
        ax = _pyplot_axes()
    stored = getattr(model, "lower_bounds_", None)
    history = np.asarray([] if stored is None else stored, dtype=float).reshape(-1)
    if title:
        ax.set_title(title)
    if history.size == 0:
        ax.text(0.5, 0.5, "no per-iteration history in this model",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    steps = np.arange(1, history.size + 1)
    ax.plot(steps, history, "o-", color="C0", markersize=3,
            label="mean log-likelihood")
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood per row")
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if show_change and history.size >= 2:
        handles, labels = _draw_change(ax, model, steps, history)
    tol = getattr(model, "tol", None)
    status = (f"converged after {model.n_iter_} iterations" if model.converged_
              else f"not converged after {model.n_iter_} iterations")
    if tol is not None:
        status += f" (tol {tol:g})"
    ax.legend(handles, labels, fontsize="small", loc="lower right",
              title=status, title_fontsize="small", framealpha=0.85)
    return ax


def _draw_change(ax: Axes, model: Any, steps: np.ndarray, history: np.ndarray
                 ) -> tuple[list[Any], list[str]]:
    change = np.abs(np.diff(history))
    change = np.maximum(change, np.finfo(float).tiny)
    twin = ax.twinx()
    twin.semilogy(steps[1:], change, linestyle="--", marker=".", color="0.5",
                  label="|change| (right axis)")
    tol = float(getattr(model, "tol", 0.0) or 0.0)
    if tol > 0:
        twin.axhline(tol, color="C3", linestyle=":", label=f"tol = {tol:g}")
    twin.set_ylabel("|change| per iteration")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    return h1 + h2, l1 + l2


# ------------------------------------------------------------- figures


def plot_model(
    model: Any,
    X: Any,
    *,
    x: str | int | None = None,
    y: str | int | None = None,
    feature_names: Sequence[str] | None = None,
    figsize: tuple[float, float] = (12.0, 5.0),
    dpi: float = 100.0,
    title: str | None = None,
) -> Figure:
    """A new figure: :func:`plot_mixture` on the left, :func:`plot_convergence`
    on the right.

    The figure is made without pyplot (it is not registered with any GUI and
    is drawn with the Agg renderer), so it is safe in scripts and servers; in
    a notebook, a returned figure displays itself.

    Parameters
    ----------
    model, X, x, y, feature_names
        As in :func:`plot_mixture`.
    figsize : (float, float), default=(12, 5)
        Width and height in inches; the image is ``figsize * dpi`` pixels.
    dpi : float, default=100
    title : str, optional
        Figure title; default describes the model.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_exact_inches(figsize, dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 2, width_ratios=[1.45, 1.0])
    left, right = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    plot_mixture(model, X, left, x=x, y=y, feature_names=feature_names,
                 title="data by most probable component")
    plot_convergence(model, right)
    fig.suptitle(title if title is not None else
                 f"Gaussian mixture: {model.n_components} components, "
                 f"{model.covariance_type} covariance, "
                 f"{len(np.asarray(X))} rows x {model.n_features_in_} features")
    return fig


def _exact_inches(figsize: tuple[float, float], dpi: float) -> tuple[float, float]:
    """Sizes whose product with dpi does not truncate one pixel short."""
    out = []
    for inches in figsize:
        target = round(inches * dpi)
        while abs(inches * dpi - target) < 1e-6 and int(inches * dpi) < target:
            inches = float(np.nextafter(inches, np.inf))
        out.append(inches)
    return out[0], out[1]


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a figure to ``.png``, ``.svg`` or ``.pdf`` (by suffix), atomically.

    The image has the figure's size (``figsize * dpi`` pixels for PNG); it is
    written to a temporary file and renamed, so a failure leaves no file.
    """
    target = check_output_path(path, FIGURE_FORMATS)
    fmt = target.suffix.lower().lstrip(".")
    with atomic_output(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi)
    return target
