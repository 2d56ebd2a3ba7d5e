"""Peak private memory of this process: RssAnon sampled from /proc/self/status.

A memory map's pages are shared file cache (they show in plain RSS, and the OS
may drop them); RssAnon counts only the process's own memory, which is what
out-of-core fitting bounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def rss_anon() -> int:
    """Private resident memory of this process in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def peak_private_memory(interval: float = 0.005) -> Iterator[list[float]]:
    """Yield a one-item list that holds, on exit, the peak RssAnon (MiB) above
    the value at entry, sampled every ``interval`` seconds."""
    base, peak, stop = rss_anon(), [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_anon())
            time.sleep(interval)

    result = [0.0]
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield result
    finally:
        stop.set()
        watcher.join()
        result[0] = (max(peak[0], rss_anon()) - base) / 2**20
