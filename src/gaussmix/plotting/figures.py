"""Whole figures: :func:`plot_model` (the data and the convergence side by side,
without pyplot) and :func:`save_figure` (PNG, SVG or PDF, written atomically)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..files.atomic import atomic_output
from ..files.tables import check_output_path
from .convergence import plot_convergence
from .mixture import plot_mixture
from .mpl import require_matplotlib

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

FIGURE_FORMATS = ("png", "svg", "pdf")


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
    require_matplotlib()
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
                 f"{len(np.asarray(X))} rows x {model.n_features_in_} feature"
                 f"{'s' if model.n_features_in_ != 1 else ''}")
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
