"""Covariance types as interchangeable pieces, looked up by name."""

from __future__ import annotations

from .base import ComputeSpec, CovarianceType, KernelState
from .diag import Diag
from .full import Full
from .spherical import Spherical
from .tied import Tied

COVARIANCE_TYPES: dict[str, CovarianceType] = {
    piece.name: piece for piece in (Full(), Tied(), Diag(), Spherical())
}


def get_covariance_type(name: str) -> CovarianceType:
    """The covariance type registered under ``name``."""
    try:
        return COVARIANCE_TYPES[name]
    except KeyError:
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {name!r}."
        ) from None


__all__ = ["COVARIANCE_TYPES", "ComputeSpec", "CovarianceType", "KernelState",
           "get_covariance_type"]
