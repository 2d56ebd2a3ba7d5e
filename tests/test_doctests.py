"""The examples in the docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gaussmix

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(gaussmix.__path__, "gaussmix.")
    if not info.name.endswith("__main__")
)

# Modules whose examples need an optional dependency.
OPTIONAL = {"gaussmix.backends.dask": ("dask.array", "distributed"),
            "gaussmix.backends.torch": ("torch",)}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    for needed in OPTIONAL.get(name, ()):
        pytest.importorskip(needed)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
