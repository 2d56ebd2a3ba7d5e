"""Command-line options shared by ``gaussmix fit`` and ``gaussmix select``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..engine.covariance import COVARIANCE_TYPES as _REGISTRY
from ..validation import INIT_METHODS

COVARIANCE_TYPES = tuple(_REGISTRY)

__all__ = ["COVARIANCE_TYPES", "INIT_METHODS", "em_options"]


def em_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--max-iter, --tol and --reg-covar, with GaussianMixture's defaults."""
    f = click.option("--reg-covar", type=click.FloatRange(min=0), default=1e-6,
                     show_default=True, help="Added to covariance diagonals.")(f)
    f = click.option("--tol", type=click.FloatRange(min=0), default=1e-3,
                     show_default=True,
                     help="Stop when the mean log-likelihood gains less than this.")(f)
    return click.option("--max-iter", type=click.IntRange(min=1), default=100,
                        show_default=True,
                        help="Most EM iterations per initialisation.")(f)
