"""Arrays as the compiled (numba) loops take them.

Shared by the fused kernels of complete rows (:mod:`.fused`) and the loops of
incomplete rows (:mod:`.incomplete`); imports nothing compiled.
"""

from __future__ import annotations

import numpy as np

__all__ = ["read_only"]


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``, for the arrays the compiled loops only read.

    numba compiles a loop once per combination of its arrays' writeable
    flags: a memory-mapped file's rows (read-only) and the same rows in
    memory would each cost a compilation of tens of seconds. Passed
    read-only always, they share one.

    >>> read_only(np.zeros(3)).flags.writeable
    False
    """
    view = a.view()
    view.setflags(write=False)  # (half the time of setting view.flags.writeable)
    return view
