"""The data by most probable component: :func:`plot_mixture` draws the points,
each component's sigma ellipses and mean, and density contours (or, with one
feature, a histogram with the mixture's and components' densities)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._optional import require
from .geometry import Projection, full_covariances, log_density, projection
from .mpl import component_colors, pyplot_axes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

_NAMES_WARNING = "X does not have valid feature names"


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
        enclose about 95%, 75%, 50% and 25% of the points (on a 160 x 160
        grid, which does not resolve a component thinner than its spacing).
    max_points : int, default=5000
        At most this many points are drawn (a fixed random subset, the same
        on every call); a note on the plot says so. Rows with a missing value
        (NaN, ``missing='marginalize'``) in a plotted feature (any feature,
        for principal components) are not drawn, also with a note.
    point_size : float, optional
        Marker area; default chosen from the number of points.
    legend : bool, default=True
        Drawn below the axes for at most 12 components (more would not be
        readable); the colours stay distinct up to 20 components.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = _checked_data(model, X)
    _check_options(sigmas, max_points)
    names = _feature_names(model, feature_names)
    labels = _quietly(model.predict, X)
    if ax is None:
        ax = pyplot_axes()
    colors = component_colors(model.n_components)
    if data.shape[1] == 1:
        _draw_1d(ax, model, data, labels, colors, names[0], max_points)
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


def _subset(rows: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` of ``rows``, the same ones on every call."""
    if len(rows) <= max_points:
        return rows
    pick = np.random.RandomState(0).choice(len(rows), max_points, replace=False)
    return rows[np.sort(pick)]


def _draw_2d(
    ax: Axes, model: Any, data: np.ndarray, labels: np.ndarray, colors: list[Any],
    proj: Projection, sigmas: Sequence[float], contours: bool, max_points: int,
    point_size: float | None,
) -> None:
    Z = proj.points(data)
    drawable = np.flatnonzero(np.isfinite(Z).all(axis=1))  # NaN: missing values
    means = proj.points(model.means_)
    covs = proj.covariances(full_covariances(model))
    lo, hi = _limits(Z[drawable], means, covs, max(sigmas, default=0.0))
    if contours:
        _draw_contours(ax, Z[drawable], np.asarray(model.weights_), means, covs,
                       lo, hi)
    shown = _subset(drawable, max_points)
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
    _note_rows(ax, len(Z), len(drawable), len(shown))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(proj.labels[0])
    ax.set_ylabel(proj.labels[1])


def _note_rows(ax: Axes, n: int, drawable: int, shown: int) -> None:
    """Say on the plot when rows are left out (missing values, or max_points)."""
    notes = []
    if drawable < n:
        notes.append(f"{n - drawable:,} of {n:,} rows not drawn: missing values "
                     "in the plotted features")
    if shown < drawable:
        notes.append(f"{shown:,} of {drawable:,} rows drawn (a fixed random "
                     "subset; max_points)")
    if notes:
        ax.text(0.01, 0.99, "\n".join(notes), transform=ax.transAxes, ha="left",
                va="top", fontsize="x-small", color="0.25", zorder=6,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})


def _limits(Z: np.ndarray, means: np.ndarray, covs: np.ndarray, radius: float
            ) -> tuple[np.ndarray, np.ndarray]:
    spread = radius * np.sqrt(np.einsum("kii->ki", covs))
    lo = np.minimum(Z.min(axis=0, initial=np.inf), (means - spread).min(axis=0))
    hi = np.maximum(Z.max(axis=0, initial=-np.inf), (means + spread).max(axis=0))
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    return lo - pad, hi + pad


def _draw_contours(ax: Axes, Z: np.ndarray, weights: np.ndarray, means: np.ndarray,
                   covs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    if len(Z) == 0:  # the levels are quantiles of the density at the points
        return
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 160), np.linspace(lo[1], hi[1], 160))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    log_dens = log_density(grid, weights, means, covs).reshape(gx.shape)
    at_points = log_density(Z, weights, means, covs)
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
             colors: list[Any], name: str, max_points: int) -> None:
    drawable = np.flatnonzero(np.isfinite(data[:, 0]))  # NaN: missing values
    values = data[drawable, 0]
    sd = np.sqrt(full_covariances(model)[:, 0, 0])
    means = model.means_[:, 0]
    lo = min(values.min(initial=np.inf), float(np.min(means - 3 * sd)))
    hi = max(values.max(initial=-np.inf), float(np.max(means + 3 * sd)))
    grid = np.linspace(lo, hi, 400)
    if len(values):
        ax.hist(values, bins="auto", density=True, color="0.8", label="data")
    # The model's own densities: p(x), and w_k N(x | k) = p(x) r_k(x).
    density = np.exp(_quietly(model.score_samples, grid[:, None]))
    parts = _quietly(model.predict_proba, grid[:, None]).T * density
    for k, color in enumerate(colors):
        ax.plot(grid, parts[k], color=color,
                label=f"component {k} (weight {model.weights_[k]:.2f})")
    ax.plot(grid, density, color="black", linewidth=1.5, label="mixture")
    shown = _subset(drawable, max_points)
    ax.scatter(data[shown, 0], np.zeros(len(shown)), marker="|", s=40,
               c=[colors[k] for k in labels[shown]], alpha=0.5)
    _note_rows(ax, len(data), len(drawable), len(shown))
    ax.set_xlabel(name)
    ax.set_ylabel("density")


def _checked_data(model: Any, X: Any) -> np.ndarray:
    check_is_fitted(model)
    try:
        data = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"X must be numbers with its rows in memory (an array, DataFrame or "
            f"tensor), not {type(X).__name__} ({exc}); for a data source, plot "
            "an array of (a sample of) its rows"
        ) from exc
    if data.ndim != 2 or data.shape[1] != model.n_features_in_:
        d = model.n_features_in_
        raise ValueError(
            f"X has shape {data.shape} but the model was fitted on {d} "
            f"feature{'s' if d != 1 else ''}; pass X with those columns"
            + (" (X.reshape(-1, 1) for one feature)" if data.ndim == 1 else "")
        )
    if len(data) == 0:
        raise ValueError("X has no rows to plot")
    return data


def _check_options(sigmas: Sequence[float], max_points: int) -> None:
    radii = np.asarray(sigmas, dtype=float).reshape(-1)
    if not np.all(np.isfinite(radii) & (radii > 0)):
        raise ValueError(f"sigmas must be positive numbers (ellipse radii), got "
                         f"{list(sigmas)}")
    if not max_points >= 0:
        raise ValueError(f"max_points must be 0 or more, got {max_points}")


def _feature_names(model: Any, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != model.n_features_in_:
            raise ValueError(
                f"feature_names has {len(names)} names but the model has "
                f"{model.n_features_in_} features; give one name per feature"
            )
        return names
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        return [str(n) for n in fitted]
    return [f"x{i}" for i in range(model.n_features_in_)]


def _quietly(method: Callable[[Any], Any], X: Any) -> np.ndarray:
    """``method(X)`` without scikit-learn's warning that X has no feature names."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NAMES_WARNING)
        return np.asarray(method(X))
