"""Threads: how many to use, and BLAS held to one thread while chunks run in parallel."""

from __future__ import annotations

import functools
import os


def resolve_threads(n_threads: int | None) -> int:
    """Number of worker threads: all cores by default."""
    if n_threads is None:
        return os.cpu_count() or 1
    return max(1, int(n_threads))


@functools.cache
def _blas_controller():  # noqa: ANN202 - a threadpoolctl.ThreadpoolController
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once


def single_threaded_blas():  # noqa: ANN201 - a context manager
    """Context in which BLAS uses one thread.

    Parallelism comes from chunk threads instead: the per-chunk products are
    too small for threaded BLAS, and idle BLAS threads spin on the cores the
    chunk threads need. Hold it around a whole fit, not just the E-steps.
    """
    return _blas_controller().limit(limits=1, user_api="blas")
