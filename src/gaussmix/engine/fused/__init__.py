"""A CPU-specialised, compiled E-step: one more implementation of the kernel.

The array-API kernel (:class:`gaussmix.engine.estep.EStepKernel`) stays the
reference; this package adds :class:`~.kernel.FusedEStepKernel`, which gives
the same statistics (to rounding, checked to 1e-12 in float64 by the tests)
for NumPy chunks from numba-compiled tile loops that hold no GIL. Why it is
faster: the reference forms (n, K*d) intermediates per chunk and streams them
through memory with a dozen NumPy calls; the loops form them one L2-sized tile
of rows at a time, with the same small products, and return only the
statistics, so threads scale and small ``d`` stops being memory-bound.

numba is a core dependency (wheels for every main platform), but the engine
does not need it: when it cannot be imported the reference kernel is used.
The environment variable ``GAUSSMIX_KERNEL`` chooses: ``auto`` (default: the
fused kernel where it applies, once the process has done enough E-step work
to repay loading it, see :mod:`.kernel`), ``reference`` (always the
reference, as the tests use to compare), ``fused`` (the fused kernel from the
first chunk; fail if numba is missing).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import TYPE_CHECKING

from ..deferred import deferred
from ..estep import EStepKernel

if TYPE_CHECKING:
    from ..covariance import ComputeSpec

__all__ = ["ENVIRONMENT_VARIABLE", "available", "specialised"]

ENVIRONMENT_VARIABLE = "GAUSSMIX_KERNEL"
_MODES = ("auto", "reference", "fused")


@functools.cache
def available() -> bool:
    """Whether numba is installed (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def mode() -> str:
    """The kernel choice from ``GAUSSMIX_KERNEL`` (``auto`` if unset)."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if value not in _MODES:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={value!r} is not a kernel choice; use one of "
            f"{', '.join(_MODES)}."
        )
    return value


def specialised(kernel: EStepKernel, spec: ComputeSpec | None = None) -> EStepKernel:
    """The fused version of ``kernel`` where it applies, else ``kernel``.

    In ``auto`` mode, a kernel whose chunks run in other processes (``spec``'s
    ``rows_elsewhere``: a pass over a Dask array on a cluster) counts the work
    of its pass here, where the next kernels are built: the workers' own counts
    never reach this process, so their kernels would stay the reference's.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
    >>> from gaussmix.engine.params import MixtureParams
    >>> piece = get_covariance_type("diag")
    >>> params = MixtureParams(np.array([1.0]), np.zeros((1, 2)), np.ones((1, 2)),
    ...                        np.ones((1, 2)))
    >>> kernel = EStepKernel.build(piece, params, ComputeSpec(np, np.float64))
    >>> type(kernel).__name__ in ("FusedEStepKernel", "EStepKernel")
    True
    """
    choice = mode()
    if choice == "reference":
        return kernel
    if not available():
        if choice == "fused":
            raise ImportError(f"{ENVIRONMENT_VARIABLE}=fused requires numba: "
                              "pip install numba")
        return kernel
    fused = deferred("gaussmix.engine.fused.kernel")
    arrays = fused.loop_arrays(kernel)
    if arrays is None:
        return kernel
    compiled = fused.load_loops_if_worth_it() if choice == "auto" else True
    if choice == "auto" and spec is not None and spec.rows_elsewhere:
        # counted after the choice, as a local pass's chunks count for the next
        fused.count_rows(kernel, spec.rows_elsewhere)
    K, d = kernel.state.shift.shape
    return fused.FusedEStepKernel(kernel.piece, kernel.state, kernel.log_weights,
                                  kernel.covariance_type, fused=arrays,
                                  tile=fused.tile_rows(kernel.covariance_type, K, d),
                                  compiled=compiled)

