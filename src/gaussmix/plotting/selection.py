"""Model selection: :func:`plot_selection` draws a criterion against the number
of components, one line per covariance type (``SelectionResult.plot``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..engine.covariance import COVARIANCE_TYPES
from ..selection.result import check_criterion
from .mpl import require_pyplot

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ..selection.result import SelectionResult

# One marker per registered covariance type, in the registry's order.
_MARKERS = ("o", "s", "^", "D", "v", "P")


def plot_selection(result: SelectionResult, ax: Axes | None = None, *,
                   criterion: str | None = None) -> Axes:
    """Criterion against the number of components, one line per covariance type.

    Like mclust's BIC plot, but in gaussmix's sign (lower is better); the
    chosen model is circled. A candidate whose fit failed is a gap in its
    line, named in the legend (``diag (failed: K=8)``).

    Parameters
    ----------
    result : SelectionResult
        What :func:`gaussmix.select` returned.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new pyplot figure is made when None.
    criterion : {'bic', 'aic', 'icl'}, optional
        Which criterion to draw; the one used for the selection if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = require_pyplot()
    name = check_criterion(criterion or result.criterion)
    label = name.upper()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.4))
    ks = np.asarray(result.n_components)
    for cov, vals in result.values(name).items():
        ax.plot(ks, vals, marker=_marker(cov), markersize=5,
                label=_label(cov, ks, vals))
    best = result.best_
    ax.plot([best.n_components], [best.criterion(name)], linestyle="none",
            marker="o", markersize=14, markerfacecolor="none",
            markeredgecolor="black", markeredgewidth=1.5,
            label=f"chosen by {result.criterion.upper()}: "
                  f"K={best.n_components}, {best.covariance_type}")
    ax.set_xticks(ks)
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{label} (lower is better)")
    ax.set_title(f"{label} by number of components and covariance type")
    ax.grid(True, alpha=0.3)
    ax.legend(title="covariance type", fontsize="small")
    return ax


def _label(covariance_type: str, ks: np.ndarray, values: np.ndarray) -> str:
    """The type, and the K whose fit failed (NaN: a gap in its line)."""
    failed = ks[np.isnan(np.asarray(values, dtype=float))]
    if failed.size == 0:
        return covariance_type
    return f"{covariance_type} (failed: K={', '.join(map(str, failed.tolist()))})"


def _marker(covariance_type: str) -> str:
    order = list(COVARIANCE_TYPES)
    if covariance_type not in order:
        return _MARKERS[0]
    return _MARKERS[order.index(covariance_type) % len(_MARKERS)]
