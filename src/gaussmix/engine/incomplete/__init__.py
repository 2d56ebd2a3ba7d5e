"""Exact EM for rows with missing coordinates (NaN, missing at random).

Missing values change only the E-step: :class:`MarginalKernel` sends a
chunk's complete rows through the ordinary kernel and its incomplete rows,
grouped by missingness pattern, through the observed-coordinate marginals and
conditional moments of :mod:`.conditional` (NumPy, the reference) or
:mod:`.loops` (compiled with numba; chosen by :mod:`.compiled`). The
statistics value, the M-step and the EM loop are the ordinary ones.
"""

from typing import Any

from ..estep import EStepKernel
from .kernel import MarginalKernel

__all__ = ["Kernel", "MarginalKernel", "kernel_type"]

Kernel = EStepKernel | MarginalKernel


def kernel_type(source: Any) -> type[EStepKernel] | type[MarginalKernel]:
    """The chunk kernel for a source: :class:`MarginalKernel` where its rows may
    hold missing values (``source.missing``), else the ordinary one."""
    return MarginalKernel if getattr(source, "missing", False) else EStepKernel
