"""Modules imported on their first use, once.

For imports that cannot sit at the top of a module (a cycle: the fused
kernels import the E-step that builds them) and that run at every kernel
build or partial_fit call, where an import statement inside a function costs
about 4 us a call and this cached lookup a tenth of that.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

__all__ = ["deferred"]


@functools.cache
def deferred(name: str) -> ModuleType:
    """The module ``name`` (absolute, dotted), imported on the first call.

    >>> deferred("gaussmix.engine.fused").__name__
    'gaussmix.engine.fused'
    >>> deferred("gaussmix.engine.fused") is deferred("gaussmix.engine.fused")
    True
    """
    return importlib.import_module(name)
