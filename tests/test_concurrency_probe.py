"""Threads, re-entrancy and interruption: BLAS limits held from several
threads, passes left early, fits in threads and inside pool workers.

Every wait has a timeout and every thread is joined with one, so a deadlock
fails a test instead of hanging the suite. The BLAS-limit tests run on
stand-in libraries: real OpenBLAS builds can drop a thread-count change made
from a thread while another thread changes it too, which is theirs, not the
counting tested here.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.engine import threads
from gaussmix.engine.reducers import Sequential, _ordered_map, fold, shared_pool
from gaussmix.engine.sources import ArraySource

TIMEOUT = 30


def _in_threads(*funcs: Callable[[], Any]) -> list[Any]:
    """Run each function in its own thread; their results, once all ended."""
    out: list[Any] = [None] * len(funcs)
    errors: list[BaseException] = []

    def run(i: int, func: Callable[[], Any]) -> None:
        try:
            out[i] = func()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(funcs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    assert not any(w.is_alive() for w in workers), "a thread did not finish (deadlock?)"
    if errors:
        raise errors[0]
    return out


# ------------------------------------------------------------ BLAS limits
class _FakeBlas:
    """A BLAS library as threadpoolctl's controllers show it: one
    process-wide thread count."""

    def __init__(self, path: str, n: int) -> None:
        self.filepath, self.n = path, n

    def get_num_threads(self) -> int:
        return self.n

    def set_num_threads(self, n: int) -> None:
        self.n = n


@pytest.fixture
def fake_blas(monkeypatch: pytest.MonkeyPatch) -> _FakeBlas:
    lib = _FakeBlas("/fake/libblas.so", 4)
    monkeypatch.setattr(threads, "_libraries", lambda user_api: (lib,))
    monkeypatch.setattr(threads, "_holds", {}, raising=False)
    monkeypatch.setattr(threads, "_saved", {}, raising=False)
    return lib


def test_blas_stays_limited_until_the_last_thread_leaves(fake_blas):
    # A enters, B enters, A leaves, B leaves: thread A must not give BLAS its
    # threads back while B still runs chunks, and B must not restore A's 1.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a() -> None:
        with threads.single_threaded():
            a_in.set()
            assert b_in.wait(TIMEOUT)
        a_out.set()

    def b() -> None:
        assert a_in.wait(TIMEOUT)
        with threads.single_threaded():
            b_in.set()
            assert a_out.wait(TIMEOUT)
            seen["B, after A left"] = fake_blas.n

    _in_threads(a, b)
    assert seen["B, after A left"] == 1
    assert fake_blas.n == 4  # was left at 1 for good


def _real_blas() -> list[int]:
    return [lib.get_num_threads() for lib in threads._libraries("blas")]


def test_any_thread_sets_the_real_blas_limit():
    # threadpoolctl >= 3.8 ignores all but one "controlling" thread's changes
    # to OpenBLAS (pthreads): the limit must hold in a thread after the main
    # thread set it once, and the last release (in another thread than the
    # first hold's) must restore it
    before = _real_blas()  # looked up here, not at import: the engine's
    # libraries are looked up once, so as late as the other tests expect
    if max(before, default=1) < 2:
        pytest.skip("needs a BLAS with several threads")
    with threads.single_threaded():
        pass
    assert _real_blas() == before
    a_in, b_in, a_out, a_end = (threading.Event() for _ in range(4))
    seen = {}

    def a() -> None:
        with threads.single_threaded():
            seen["A"] = _real_blas()
            a_in.set()
            assert b_in.wait(TIMEOUT)
        a_out.set()
        assert a_end.wait(TIMEOUT)  # alive while B leaves

    def b() -> None:
        assert a_in.wait(TIMEOUT)
        with threads.single_threaded():
            b_in.set()
            assert a_out.wait(TIMEOUT)
        seen["after B"] = _real_blas()
        a_end.set()

    _in_threads(a, b)
    assert set(seen["A"]) == {1}
    assert seen["after B"] == before
    assert _real_blas() == before


def test_a_forked_child_keeps_only_its_own_blas_limit(fake_blas):
    # another thread holds the limit when this one forks: in the child that
    # thread does not exist, so its hold must not keep BLAS at one thread
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with threads.single_threaded():
            held.set()
            assert done.wait(TIMEOUT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(TIMEOUT) and fake_blas.n == 1
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 if its limits are right
            ok = fake_blas.n == 4 and not threads._holds
            with threads.single_threaded():
                ok = ok and fake_blas.n == 1
            os._exit(0 if ok and fake_blas.n == 4 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert fake_blas.n == 1  # the parent's holder still holds
    finally:
        done.set()
        holder.join(TIMEOUT)
    assert fake_blas.n == 4


def test_an_error_between_chunks_closes_the_pass_at_once(fake_blas):
    class Bad:
        def __add__(self, other: object) -> Any:
            raise ArithmeticError("cannot add")

    source = ArraySource(np.zeros((6, 2)), None, 2)
    with pytest.raises(ArithmeticError) as caught:
        fold(lambda chunk: Bad(), source, Sequential())
    # the traceback (kept here, as an interactive session keeps the last one)
    # holds fold's frame: the pass must not wait for it to be collected
    assert caught.value is not None
    assert fake_blas.n == 4 and not threads._holds


# ------------------------------------------------------ passes left early
def test_a_failing_source_cancels_the_queued_chunks():
    ran: list[int] = []
    started, go = threading.Event(), threading.Event()

    def first() -> None:
        started.set()
        assert go.wait(TIMEOUT)
        ran.append(0)

    def tasks():  # the source fails while chunk 0 runs and chunk 1 waits
        yield first
        assert started.wait(TIMEOUT)
        yield lambda: ran.append(1)
        go.set()
        raise OSError("the file went away")

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(OSError):
            list(_ordered_map(pool, tasks(), 8))
        assert ran == [0]  # chunk 0 ended before the error came out
        pool.submit(lambda: None).result(timeout=TIMEOUT)  # the pool's queue is empty
        assert ran == [0]  # chunk 1 never ran


def test_keyboard_interrupt_in_a_chunk_is_raised_at_once():
    ran: list[int] = []
    started, go = threading.Event(), threading.Event()

    def first() -> None:  # runs on the worker
        started.set()
        assert go.wait(TIMEOUT)
        ran.append(0)

    def interrupted() -> None:  # taken over by the calling thread
        go.set()
        raise KeyboardInterrupt

    def tasks():
        yield first
        assert started.wait(TIMEOUT)
        yield interrupted
        yield lambda: ran.append(2)

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(KeyboardInterrupt):
            list(_ordered_map(pool, tasks(), 3))
        pool.submit(lambda: None).result(timeout=TIMEOUT)
    assert ran == [0]  # not the chunk queued after the interrupted one


# ------------------------------------------------ fits in several threads
@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(600, 3)), rng.normal(size=(600, 3)) + 4])


def _fit(X: np.ndarray, n_threads: int, **kw: Any) -> GaussianMixture:
    return GaussianMixture(3, random_state=0, n_threads=n_threads, chunk_size=100,
                           init_params="k-means++", **kw).fit(X)


def _same(a: GaussianMixture, b: GaussianMixture) -> bool:
    return (np.array_equal(a.means_, b.means_) and np.array_equal(a.covariances_,
            b.covariances_) and a.lower_bound_ == b.lower_bound_)


def test_concurrent_fits_equal_serial_ones_bit_for_bit(X):
    alone = _fit(X, 1)
    fits = _in_threads(*(lambda n=n: _fit(X, n) for n in (1, 2, 3, 2)))
    assert all(_same(alone, f) for f in fits)


def test_one_model_predicts_from_four_threads_as_from_one(X):
    model = _fit(X, 2)
    serial = (model.score_samples(X), model.predict_proba(X), model.predict(X))
    results = _in_threads(*[lambda: (model.score_samples(X), model.predict_proba(X),
                                     model.predict(X))] * 4)
    for result in results:
        assert all(np.array_equal(a, b) for a, b in zip(serial, result, strict=True))


def test_fits_inside_pool_workers_and_callbacks_do_not_deadlock(X):
    # every worker of the pool runs a fit whose chunks queue on that same pool
    alone = _fit(X, 1)
    pool = shared_pool(2)
    nested = _in_threads(lambda: [f.result(TIMEOUT) for f in
                                  [pool.submit(_fit, X, 3) for _ in range(4)]])[0]
    assert all(_same(alone, f) for f in nested)
    inner: list[GaussianMixture] = []

    def callback(*args: Any, **kwargs: Any) -> None:
        if not inner:
            inner.append(_fit(X, 3))

    outer = _in_threads(lambda: _fit(X, 3, callback=callback))[0]
    assert _same(alone, inner[0]) and _same(alone, outer)


def test_libraries_loaded_after_the_first_lookup_are_limited_from_the_next_fit(
        monkeypatch):
    # The libraries were looked up once per process: a pool loaded later (torch's
    # OpenMP, imported after a first fit) ran its own threads beside the chunk
    # threads (seen: select's every-pool check failed after the doctests had
    # imported torch). They are looked up again after new imports, and only then.
    import types

    import threadpoolctl

    from gaussmix.engine import threads

    scans = []
    real = threadpoolctl.ThreadpoolController

    def counting():
        scans.append(1)
        return real()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", counting)
    first = threads._libraries(None)
    before = len(scans)
    assert threads._libraries(None) == first and len(scans) == before  # no import
    monkeypatch.setitem(sys.modules, "_gaussmix_probe_module", types.ModuleType("m"))
    threads._libraries(None)
    assert len(scans) == before + 1  # an import since: looked up again
    threads._libraries(None)
    assert len(scans) == before + 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_work_counter_locks_are_new_in_a_forked_child():
    # The auto mode's work counters are guarded by locks; one held by another
    # thread at the instant of a fork stayed held in the child, whose next
    # count (its first E-step) then hung. Held here by the forking thread.
    from gaussmix.engine.fused import kernel
    from gaussmix.engine.incomplete import compiled

    with kernel._work._lock, compiled._work._lock:
        pid = os.fork()
        if pid == 0:  # the child: both locks free
            free = (kernel._work._lock.acquire(timeout=2)
                    and compiled._work._lock.acquire(timeout=2))
            os._exit(0 if free else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
