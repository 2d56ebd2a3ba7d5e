"""When incomplete rows go through the compiled loops of :mod:`.loops`.

The NumPy code of :mod:`.conditional` is the reference and the fallback. It
is used when numba cannot be imported, when ``GAUSSMIX_KERNEL=reference``,
and, in ``auto`` mode (the default), until the process has done enough
incomplete-row work in it to repay loading the loops, so that small fits with
NaN never pay for them: loading takes about 0.2 s from numba's cache (plus
importing numba), and compiling them the first time about 10 s on 2 cores.
``GAUSSMIX_KERNEL=fused`` uses the loops from the first row (an error if
numba is missing). The same variable (read by :func:`gaussmix.engine.fused.mode`)
chooses the kernel of complete rows; each set of loops keeps its own work count,
since each is loaded (or compiled) on its own.
"""

from __future__ import annotations

import functools
from types import ModuleType

from ..fused import ENVIRONMENT_VARIABLE, available, mode
from ..threads import WorkCounter

# Reference work (incomplete rows x K x d^2) after which ``auto`` loads the
# loops: some 2-3 s in the reference (about 260k row passes at K = 8, d = 16:
# a bit more than one iteration of n = 200k, a dozen of n = 20k; a fit of
# n = 1000 never gets there), so a process never spends much more than twice
# the best time, and a cold compile is paid only by long fits.
LOAD_AFTER_WORK = 1 << 29

_work = WorkCounter()


def loops_for(n_rows: int, n_components: int, n_features: int) -> ModuleType | None:
    """The compiled loops for ``n_rows`` incomplete rows, or None for the
    NumPy reference (whose work is then counted towards the switch).

    Examples
    --------
    >>> loops = loops_for(0, 2, 3)
    >>> loops is None or loops.__name__.endswith("loops")
    True
    """
    choice = mode()
    if choice == "reference":
        return None
    if choice == "fused":
        loops = _import()
        if loops is None:
            raise ImportError(f"{ENVIRONMENT_VARIABLE}=fused requires numba: "
                              "pip install numba")
        return loops
    due = _work.add(n_rows * n_components * n_features**2) >= LOAD_AFTER_WORK
    return _import() if due or _import.cache_info().currsize else None


def loaded() -> ModuleType | None:
    """The compiled loops where they are in use already (``fused``, or
    ``auto`` once they were loaded), without counting work; else None."""
    choice = mode()
    if choice == "reference" or (choice == "auto" and not _import.cache_info().currsize):
        return None
    return loops_for(0, 1, 1)


@functools.cache
def _import() -> ModuleType | None:
    """The loops module, None where numba is missing or fails to import."""
    if not available():
        return None
    try:
        from . import loops
    except ImportError:
        return None
    return loops
