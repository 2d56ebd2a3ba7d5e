"""matplotlib, imported on first use, and what every plot shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


def require_matplotlib() -> Any:
    """The matplotlib module, or ImportError naming the ``plot`` extra."""
    return require("matplotlib", "plot", "plotting")


def require_pyplot() -> Any:
    """matplotlib.pyplot, or ImportError naming the ``plot`` extra."""
    return require("matplotlib.pyplot", "plot", "plotting")


def pyplot_axes() -> Axes:
    """The current pyplot axes (made if there are none)."""
    return require_pyplot().gca()


def component_colors(n: int) -> list[Any]:
    """One colour per component: tab10, tab20, then a continuous colormap."""
    mpl = require_matplotlib()
    if n <= 10:
        return [mpl.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [mpl.colormaps["tab20"](i) for i in range(n)]
    return [mpl.colormaps["turbo"](i / (n - 1)) for i in range(n)]
