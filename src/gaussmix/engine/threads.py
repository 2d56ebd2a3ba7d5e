"""Threads: how many to use, and BLAS held to one thread while chunks run in parallel."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any


def resolve_threads(n_threads: int | None) -> int:
    """Number of worker threads: by default the cores this process may use.

    Those are the cores of its CPU affinity mask (``taskset``, ``cpuset``),
    capped by a cgroup CPU quota (``docker --cpus``, Kubernetes limits), not
    every core of the machine: threads beyond them only queue for the same
    cores. In a joblib worker (``GridSearchCV(..., n_jobs=k)``) they are also
    capped by ``OMP_NUM_THREADS``, which joblib sets in its worker processes
    to their share of the cores (scikit-learn's threaded code follows it), so
    that k workers do not each run a thread per core.
    """
    if n_threads is None:
        cores = available_cores()
        share = _joblib_worker_share()
        return cores if share is None else min(cores, share)
    return max(1, int(n_threads))


def _joblib_worker_share() -> int | None:
    """``OMP_NUM_THREADS`` (its first level, as in ``"4,2"``) while running as
    a joblib task, else None. Read only there: outside, the variable may be
    one that does not concern this process's threads (Dask's local cluster
    sets it to 1 in the process that starts its worker processes)."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if not (value.isdigit() and int(value) > 0):
        return None
    parallel = sys.modules.get("joblib.parallel")  # never imports joblib
    if parallel is None:
        return None
    backend, _ = parallel.get_active_backend()  # ~10 us: asked only when set
    return int(value) if getattr(backend, "nesting_level", 0) >= 1 else None


def available_cores() -> int:
    """Cores this process may run on: the affinity mask and cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = _process_cgroup_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


@functools.cache
def _process_cgroup_limit() -> float | None:
    # Read once per process: a container's quota does not change under a
    # running process, and reading the files cost about 50 us per fit or
    # partial_fit call (the affinity mask, a cheap call, is asked each time).
    return cgroup_cpu_limit()


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup quota (``quota / period``), or None.

    Reads cgroup v2's ``cpu.max`` (``"max 100000"`` means no limit) or cgroup
    v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (``-1``: no limit).
    """
    v2 = _read(os.path.join(root, "cpu.max"))
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            return _ratio(parts[0], parts[1])
        return None
    quota = _read(os.path.join(root, "cpu", "cpu.cfs_quota_us"))
    period = _read(os.path.join(root, "cpu", "cpu.cfs_period_us"))
    if quota is None or period is None:
        return None
    return _ratio(quota, period)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


_held = threading.local()  # which limits this thread is inside, and how deep

# The limits are process-wide, so holds in several threads are counted
# process-wide too: the first hold of a library saves its thread count and
# sets one thread, the last release restores it. (Each thread saving and
# restoring what it saw let thread A's exit give BLAS back its threads while
# thread B still ran chunks, and B's exit then restore A's "1" for good: two
# fits in threads, e.g. GridSearchCV with joblib's threading backend, left
# BLAS at one thread for the rest of the process.)
_holds: dict[str, int] = {}  # library path -> holds in the process (> 0)
# library path -> (its controller, its thread count before the first hold)
_saved: dict[str, tuple[Any, int]] = {}
_holds_lock = threading.Lock()


@contextlib.contextmanager
def single_threaded(user_api: str | None = "blas") -> Iterator[None]:
    """Context in which BLAS (``user_api="blas"``) or every thread pool
    (``user_api=None``: BLAS and OpenMP, as k-means uses) runs one thread.

    Parallelism comes from chunk threads (or candidate threads in model
    selection) instead: the per-chunk products are too small for threaded
    BLAS, and idle BLAS threads spin on the cores the chunk threads need. Hold
    it around a whole fit, not just the E-steps. The libraries are looked up
    on first use and again after new imports (see :func:`_libraries`).
    Entered again inside a limit at least as wide, in the same thread (a pass
    inside a fit), it does nothing: setting the limits costs 30-80 us a time, which
    ``partial_fit`` on small batches paid twice per call. Held in several
    threads at once, the limit lasts until the last of them leaves, which
    restores the thread counts from before the first.
    """
    depth: dict[str | None, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(None) or depth.get(user_api):
        yield
        return
    libraries = _libraries(user_api)
    _hold(libraries)
    depth[user_api] = depth.get(user_api, 0) + 1
    try:
        yield
    finally:
        depth[user_api] -= 1
        _release(libraries)


def _hold(libraries: tuple) -> None:  # type: ignore[type-arg]
    # the libraries' own setters, not threadpoolctl's limit() (which looks
    # them up again: 20-55 us a call, paid by every partial_fit call)
    with _holds_lock:
        for lib in libraries:
            held = _holds.get(lib.filepath, 0)
            if not held:
                _saved[lib.filepath] = (lib, lib.get_num_threads())
                _set_threads(lib, 1)
            _holds[lib.filepath] = held + 1


def _release(libraries: tuple) -> None:  # type: ignore[type-arg]
    with _holds_lock:
        for lib in libraries:
            left = _holds.pop(lib.filepath) - 1
            if left:
                _holds[lib.filepath] = left
            else:
                _set_threads(lib, _saved.pop(lib.filepath)[1])


def _set_threads(lib: Any, n: int) -> None:
    """``lib.set_num_threads(n)``, whichever thread calls.

    threadpoolctl (3.8 on) lets one "controlling" thread set a process-wide
    pool (OpenBLAS on pthreads) and silently ignores the others, until that
    thread ends or gives control back: a limit set from a fit in a worker
    thread did nothing once the main thread had fitted, and the last release
    in another thread than the first hold's left BLAS at one thread. The
    counting above already keeps threads from fighting over the limit, so
    this thread takes control for the call and gives it back.
    """
    # threadpoolctl's own setter behind that check, where it has one: the
    # checks and the two clears cost 4 of the 5 us of each call, and a
    # partial_fit call makes four
    real = getattr(lib, "_real_set_num_threads", None)
    if callable(real):
        real(n)
        return
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n)
    if clear is not None:
        clear(force=True)


def _keep_own_holds_after_fork() -> None:
    """In a child made by ``fork``, only the forking thread exists: the holds
    of the parent's other threads would never be released (BLAS one thread
    for the child's life), and their lock could be left locked."""
    global _holds_lock
    _holds_lock = threading.Lock()
    own: dict[str, int] = {}
    for user_api, depth in getattr(_held, "depth", {}).items():
        if depth:
            for lib in _libraries(user_api, refresh=False):  # as held
                own[lib.filepath] = own.get(lib.filepath, 0) + 1
    for path in list(_holds):
        if own.get(path):
            _holds[path] = own[path]
        else:
            del _holds[path]
            lib, threads = _saved.pop(path)
            _set_threads(lib, threads)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_keep_own_holds_after_fork)


# user_api -> (len(sys.modules) at the lookup, threadpoolctl's controllers)
_found: dict[str | None, tuple[int, tuple]] = {}  # type: ignore[type-arg]


def _libraries(user_api: str | None, *, refresh: bool = True) -> tuple:  # type: ignore[type-arg]
    """threadpoolctl's controllers of the libraries of ``user_api`` (None:
    all). Looked up again only when modules were imported since the last
    lookup (a library with its own pool, such as torch's OpenMP, may have come
    with them; the lookup costs about a millisecond, and a stream of
    ``partial_fit`` calls imports nothing); ``refresh=False`` takes the last
    lookup as it is."""
    modules = len(sys.modules)
    found = _found.get(user_api)
    if found is not None and (found[0] == modules or not refresh):
        return found[1]
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    if user_api is not None:
        controller = controller.select(user_api=user_api)
    libraries = tuple(controller.lib_controllers)
    _found[user_api] = (modules, libraries)
    return libraries


class WorkCounter:
    """A process-wide tally that threads add to (the ``auto`` kernel mode's
    work seen so far, one per set of compiled loops). Its lock is made anew
    in a child made by ``fork``: one held by another thread at that instant
    would stay held there, and the child's next count hang.

    >>> work = WorkCounter()
    >>> work.add(2.0), work.add(3.0), work.total
    (2.0, 5.0, 5.0)
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._lock = threading.Lock()
        _counters.add(self)

    def add(self, amount: float) -> float:
        """Add ``amount``; returns the new total."""
        with self._lock:
            self.total += amount
            return self.total


_counters: weakref.WeakSet[WorkCounter] = weakref.WeakSet()


def _new_counter_locks() -> None:
    for counter in _counters:
        counter._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_counter_locks)


#: The engine's name for :func:`single_threaded` with BLAS only (the default).
single_threaded_blas = single_threaded
