"""Reducers: how a chunk function is mapped over a source and its results added.

The EM loop, initialisation and prediction take a reducer as a parameter, so
running chunks in turn, in a thread pool, or as a Dask tree reduction on a
cluster (:class:`gaussmix.backends.dask.DaskTree`, whose ``map`` yields one
already-added value) is a choice of object, not a branch in the fold. Streaming
(``partial_fit``) folds each batch with one of these and blends the result into
running statistics (:mod:`gaussmix.engine.streaming`).

Results are always combined in chunk order, so a fit does not depend on the
number of threads.

A source whose chunks cost work to produce (decoding a Parquet row group) may
also offer ``chunk_reads()``: independent reads, each a function that returns
a list of chunks. A thread pool then runs each read followed by the chunk
function on its chunks as one task, in whichever of its threads takes it,
instead of reading every chunk in the calling thread while the workers wait
(on many cores, decoding alone would bound the pass).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .sources import ChunkSource
from .threads import single_threaded_blas

T = TypeVar("T")


class Reducer(Protocol):
    """Maps a function over the chunks of a source."""

    def map(self, func: Callable[[Any], T], source: ChunkSource) -> Iterator[T]:
        """``func(chunk)`` for every chunk, in chunk order."""


@dataclass(frozen=True)
class Sequential:
    """Chunks one after another in the calling thread."""

    def map(self, func: Callable[[Any], T], source: ChunkSource) -> Iterator[T]:
        with single_threaded_blas():
            yield from map(func, source.chunks())


@dataclass(frozen=True)
class ThreadPool:
    """Chunks on ``n_threads`` threads, BLAS held to one thread each: the
    calling thread and ``n_threads - 1`` workers (at least one).

    The workers are the process's :func:`shared_pool`, started once, not per
    pass. The calling thread, instead of waiting for the next result in
    order, runs a queued chunk that no worker has started: a pass of two
    chunks (a ``partial_fit`` batch of 10,000 rows) then hands one chunk to a
    worker instead of two: the pool's own cost of such a pass fell from about
    100 to about 50 us on 2 cores (thread wake-ups). At most ``2 * n_threads``
    chunks are read ahead, so memory stays bounded for sources read from files
    or streams.
    """

    n_threads: int

    def map(self, func: Callable[[Any], T], source: ChunkSource) -> Iterator[T]:
        with single_threaded_blas():
            workers = shared_pool(max(1, self.n_threads - 1))
            # chunks of an in-memory source are views: nothing for a worker to
            # overlap with the reading of the next ones
            for results in _ordered_map(workers, _tasks(func, source), 2 * self.n_threads,
                                        keep_first=getattr(source, "in_memory", False)):
                yield from results


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def shared_pool(n_threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``n_threads`` worker threads, started on first use.

    Why not a pool per pass: a thread's first call into the compiled loops
    (numba) costs about 2 ms (measured, 2026-11-28), which a pool started for
    each pass paid at every EM iteration and every ``partial_fit`` call. Chunk
    functions never wait on the pool themselves, so callers in several
    threads may share it. A child process made by ``fork`` starts new pools
    (the parent's threads do not exist there).
    """
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = _pools[n_threads] = ThreadPoolExecutor(
                n_threads, thread_name_prefix="gaussmix-chunks")
        return pool


def _forget_pools() -> None:
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def reducer_for(n_threads: int, source: ChunkSource | None = None) -> Reducer:
    """A thread pool for several threads and several chunks, else sequential.

    A source with a ``reducer(local)`` method brings its own (a Dask array's
    tree reduction on the cluster); ``local`` then serves in-memory work such
    as the initialisation sample.
    """
    own = getattr(source, "reducer", None)
    if callable(own):
        return own(reducer_for(n_threads))  # type: ignore[no-any-return]
    n_chunks = source.n_chunks if source is not None else None
    if n_threads <= 1 or n_chunks == 1:
        return Sequential()
    return ThreadPool(n_threads)


def fold(func: Callable[[Any], T], source: ChunkSource, reducer: Reducer) -> T:
    """Sum of ``func(chunk)`` over the source's chunks, in chunk order."""
    iterator = reducer.map(func, source)
    # closed here, not when the iterator is collected: after an error (or
    # KeyboardInterrupt) between two chunks, a traceback kept by the caller
    # (an interactive session keeps the last one) would otherwise keep the
    # pass open, with BLAS held to one thread and its queued chunks running
    with contextlib.closing(iterator):  # type: ignore[type-var]
        try:
            total = next(iterator)
        except StopIteration:
            raise ValueError("The data source yielded no rows.") from None
        for value in iterator:
            total = total + value  # type: ignore[operator]
        return total


def _tasks(func: Callable[[Any], T], source: ChunkSource
           ) -> Iterator[Callable[[], list[T]]]:
    """Work for the pool: the source's reads followed by ``func`` on their
    chunks, or ``func`` on each chunk read here."""
    reads = getattr(source, "chunk_reads", None)
    reads = reads() if callable(reads) else None
    if reads is None:
        for chunk in source.chunks():
            yield functools.partial(_one, func, chunk)
    else:
        for read in reads:
            yield functools.partial(_read_then, func, read)


def _one(func: Callable[[Any], T], chunk: Any) -> list[T]:
    return [func(chunk)]


def _read_then(func: Callable[[Any], T], read: Callable[[], Iterable[Any]]) -> list[T]:
    return [func(chunk) for chunk in read()]


class _Queued:
    """A task submitted to the pool, which the calling thread may still take
    over: cancelling its future succeeds only if no worker has started it."""

    __slots__ = ("task", "future", "outcome")

    def __init__(self, task: Callable[[], Any], future: Future[Any] | None) -> None:
        self.task = task
        self.future = future  # None: kept for the calling thread, never submitted
        self.outcome: tuple[bool, Any] | None = None  # (raised, value) when run here

    def run_here(self) -> bool:
        """Run the task in this thread unless a worker has started it."""
        if self.outcome is not None or not (self.future is None or self.future.cancel()):
            return False
        try:
            self.outcome = (False, self.task())
        except Exception as error:  # raised at its turn, as a worker's would be
            self.outcome = (True, error)
        return True  # KeyboardInterrupt and SystemExit: at once, not at its turn

    def result(self) -> Any:
        if self.outcome is None:
            assert self.future is not None  # (a kept task runs before its result)
            return self.future.result()
        raised, value = self.outcome
        if raised:
            raise value
        return value


def _ordered_map(pool: ThreadPoolExecutor, tasks: Iterable[Callable[[], T]],
                 ahead: int, *, keep_first: bool = False) -> Iterator[T]:
    """The tasks' results in order, at most ``ahead`` of them queued.

    Left early (a task or the source raised, the consumer stopped), it
    cancels the tasks no thread has started and waits for the started ones,
    so that no work of the pass runs on after it: the workers are idle for
    the next pass, and a source is not read after its caller moved on.

    With ``keep_first`` (tasks that come at no cost, such as views of an
    array) the first task is not submitted: the calling thread takes it in
    any case once it has queued the others, so a pass of two chunks (a
    ``partial_fit`` batch of 10,000 rows) submits one task and wakes one
    worker, which starts on its own chunk at once instead of finding the
    first taken. Otherwise a worker may start on the first task while this
    thread reads the next (file sources).
    """
    pending: deque[_Queued] = deque()
    try:
        for task in tasks:
            kept = keep_first and not pending
            pending.append(_Queued(task, None if kept else pool.submit(task)))
            if len(pending) >= ahead:
                yield _first_result(pending)
        while pending:
            yield _first_result(pending)
    finally:
        started = [queued.future for queued in pending if queued.future is not None]
        if started:  # none after a complete pass: no cost then
            for future in started:
                future.cancel()
            wait(started)


def _first_result(pending: deque[_Queued]) -> Any:
    """The first task's result; while a worker still runs it, this thread
    runs later tasks that no worker has started."""
    head = pending[0]  # left in ``pending`` until it has given its result
    if not head.run_here():
        assert head.future is not None  # (a kept task is run here)
        while not head.future.done() and any(
                q.run_here() for q in itertools.islice(pending, 1, None)):
            pass
    value = head.result()
    pending.popleft()
    return value
