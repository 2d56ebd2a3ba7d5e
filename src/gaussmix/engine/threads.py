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
def _controller():  # noqa: ANN202 - a threadpoolctl.ThreadpoolController
    from threadpoolctl import ThreadpoolController

    # Finds the thread-pool libraries (BLAS, OpenMP) loaded so far, once.
    return ThreadpoolController()


def single_threaded(user_api: str | None = "blas"):  # noqa: ANN201 - a context
    """Context in which BLAS (``user_api="blas"``) or every thread pool
    (``user_api=None``: BLAS and OpenMP, as k-means uses) runs one thread.

    Parallelism comes from chunk threads (or candidate threads in model
    selection) instead: the per-chunk products are too small for threaded
    BLAS, and idle BLAS threads spin on the cores the chunk threads need. Hold
    it around a whole fit, not just the E-steps. The libraries are looked up
    once, on first use; any loaded after that are not limited.
    """
    return _controller().limit(limits=1, user_api=user_api)


#: The engine's name for :func:`single_threaded` with BLAS only (the default).
single_threaded_blas = single_threaded
