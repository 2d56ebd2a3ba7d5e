"""Which threads a thread-pool pass runs its chunk function in (test helper)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def recording_threads() -> tuple[Callable[[Any], Any], list[str]]:
    """A chunk function that returns its chunk and records its thread's name.

    The pool's calling thread also runs chunks that no worker has started;
    this function holds the caller (up to 10 s) until a worker has run a
    chunk, so that a pass of a few chunks always shows a worker reading and
    computing, however the threads are scheduled.
    """
    names: list[str] = []
    worker_ran = threading.Event()

    def look(chunk: Any) -> Any:
        name = threading.current_thread().name
        if name.startswith("gaussmix-chunks"):
            worker_ran.set()
        else:
            assert worker_ran.wait(10)
        names.append(name)
        return chunk

    return look, names


def only_caller_and_workers(names: list[str]) -> bool:
    """Whether the chunks ran in the calling thread or the pool's workers,
    at least one in a worker (the reads are not all made by the caller)."""
    workers = [n for n in names if n.startswith("gaussmix-chunks")]
    caller = threading.current_thread().name
    return bool(workers) and all(n in workers or n == caller for n in names)
