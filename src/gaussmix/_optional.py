"""Optional dependencies, imported inside the functions that need them.

Every optional import in gaussmix goes through :func:`require`, so that a
missing package always gives the same kind of message: what needs it and the
``pip install 'gaussmix[extra]'`` command that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import and return ``module``, or explain which extra installs it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"matplotlib.pyplot"`` or ``"pyarrow.parquet"``.
    extra : str
        The gaussmix extra that provides it, e.g. ``"plot"`` or ``"io"``.
    feature : str, optional
        What needs the module, for the message ("plotting", "reading Parquet
        files"). Defaults to the module's top-level package name.

    Returns
    -------
    module : types.ModuleType

    Raises
    ------
    ImportError
        ``"<feature> requires <package>: pip install 'gaussmix[<extra>]'"``,
        chained to the original import error.

    Examples
    --------
    >>> np = require("numpy", "core")
    >>> np.__name__
    'numpy'
    >>> require("no_such_package_xyz", "plot", "plotting")
    Traceback (most recent call last):
    ...
    ImportError: plotting requires no_such_package_xyz: pip install 'gaussmix[plot]'
    """
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or package
        raise ImportError(
            f"{what} requires {package}: pip install 'gaussmix[{extra}]'",
            name=package,
        ) from exc
