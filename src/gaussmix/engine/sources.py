"""Where chunks of rows come from, and the fold that reduces them.

A source yields ``(X_chunk, sample_weight_chunk)`` pairs; :func:`fold` maps a
function over them (in a thread pool when asked) and adds the results in
chunk order, so the answer does not depend on the number of threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .covariance import CovarianceType
from .threads import single_threaded_blas

T = TypeVar("T")

# Rows per chunk are chosen so that a chunk's largest work array holds about
# this many numbers (8 MiB in float64): large enough for efficient products and
# few Python calls per row, small enough to bound memory whatever n is.
# Measured on 2 cores (benchmarks/bench_em.py): 2^20 beat 2^18 by 10-30%.
TARGET_CHUNK_ELEMENTS = 1 << 20


def auto_chunk_size(
    n_components: int, n_features: int, piece: CovarianceType | None = None
) -> int:
    """Rows per chunk for the given problem size and covariance type."""
    per_row = (piece.numbers_per_row(n_components, n_features) if piece is not None
               else n_components * (n_features + 1))
    return int(np.clip(TARGET_CHUNK_ELEMENTS // max(1, per_row), 4096, 65536))


@dataclass(frozen=True)
class ArraySource:
    """Chunks of an in-memory (or memory-mapped) array, as views."""

    X: np.ndarray
    sample_weight: np.ndarray | None
    chunk_size: int

    def ranges(self) -> Iterator[tuple[int, int]]:
        """(start, stop) row ranges of the chunks."""
        for start in range(0, len(self.X), self.chunk_size):
            yield start, min(start + self.chunk_size, len(self.X))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        w = self.sample_weight
        for start, stop in self.ranges():
            yield self.X[start:stop], None if w is None else w[start:stop]

    def __len__(self) -> int:
        return -(-len(self.X) // self.chunk_size)


@contextmanager
def _chunk_mapper(n_threads: int, n_chunks: int) -> Iterator[Callable[..., Iterator]]:
    """``map`` or a thread pool's ordered ``map``, with BLAS single-threaded."""
    with single_threaded_blas():
        if n_threads <= 1 or n_chunks <= 1:  # a pool would only add overhead
            yield map
        else:
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                yield pool.map


def fold(
    func: Callable[..., T], chunks: Iterable[tuple], n_threads: int = 1
) -> T:
    """Sum of ``func(*chunk)`` over ``chunks`` (e.g. an :class:`ArraySource`)."""
    n_chunks = len(chunks) if isinstance(chunks, ArraySource) else n_threads
    with _chunk_mapper(n_threads, n_chunks) as mapper:
        return _sum(mapper(lambda c: func(*c), chunks))


def map_chunks(
    func: Callable[[np.ndarray], np.ndarray], X: np.ndarray, chunk_size: int,
    n_threads: int = 1,
) -> np.ndarray:
    """Concatenate ``func(chunk)`` over row chunks of ``X`` (predictions)."""
    source = ArraySource(X, None, chunk_size)
    with _chunk_mapper(n_threads, len(source)) as mapper:
        return np.concatenate(list(mapper(lambda c: func(c[0]), source)))


def _sum(values):
    iterator = iter(values)
    total = next(iterator)
    for value in iterator:
        total = total + value
    return total
