"""EM convergence: :func:`plot_convergence` draws the mean log-likelihood after
each iteration (``model.lower_bounds_``) and, optionally, its change against
``tol`` on a log axis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .mpl import pyplot_axes, require_matplotlib

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


def plot_convergence(
    model: Any, ax: Axes | None = None, *, title: str | None = "EM convergence",
    show_change: bool = False,
) -> Axes:
    """The mean log-likelihood after each EM iteration of the best run.

    Parameters
    ----------
    model : fitted GaussianMixture
        Needs ``lower_bounds_`` (gaussmix models have it; a model file written
        by gaussmix stores it). After :meth:`partial_fit` it holds the last
        step alone, drawn at step ``n_iter_`` with a note saying so.
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
    mpl = require_matplotlib()
    check_is_fitted(model)
    if ax is None:
        ax = pyplot_axes()
    stored = getattr(model, "lower_bounds_", None)
    history = np.asarray([] if stored is None else stored, dtype=float).reshape(-1)
    if title:
        ax.set_title(title)
    if history.size == 0:
        ax.text(0.5, 0.5, "no per-iteration history in this model",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    n_iter = int(getattr(model, "n_iter_", history.size))
    # partial_fit keeps only its last step: number the points by their step
    first = max(n_iter - history.size, 0) + 1
    steps = np.arange(first, first + history.size)
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
    iterations = f"{n_iter} iteration{'s' if n_iter != 1 else ''}"
    status = (f"converged after {iterations}" if model.converged_
              else f"not converged after {iterations}")
    if tol is not None:
        status += f" (tol {tol:g})"
    if first > 1:
        status += ("\n" + (f"only iteration {n_iter}" if history.size == 1 else
                            f"only the last {history.size}")
                   + " recorded (lower_bounds_)")
    ax.legend(handles, labels, fontsize="small", loc="lower right",
              title=status, title_fontsize="small", framealpha=0.85)
    return ax


def _draw_change(ax: Axes, model: Any, steps: np.ndarray, history: np.ndarray
                 ) -> tuple[list[Any], list[str]]:
    change = np.abs(np.diff(history))
    moved = change > 0  # a change of 0 has no place on a log axis
    twin = ax.twinx()
    twin.semilogy(steps[1:][moved], change[moved], linestyle="--", marker=".",
                  color="0.5", label="|change| (right axis)" + (
                      "" if moved.all() else "; 0 not drawn"))
    tol = float(getattr(model, "tol", 0.0) or 0.0)
    if not moved.any():  # nothing to scale the log axis by but tol
        twin.set_ylim(*(tol * np.array([1e-2, 1e2]) if tol > 0 else (1e-6, 1.0)))
    if tol > 0:
        twin.axhline(tol, color="C3", linestyle=":", label=f"tol = {tol:g}")
    twin.set_ylabel("|change| per iteration")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    return h1 + h2, l1 + l2
