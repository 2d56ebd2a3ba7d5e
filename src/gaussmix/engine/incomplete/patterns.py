"""Rows grouped by missingness pattern, in blocks of bounded size.

A *pattern* is the set of a row's missing coordinates. Rows are sorted by the
number of missing coordinates ``q`` and then by pattern, so that every block
holds rows with the same ``q`` (their per-pattern matrices stack into one
(P, q, q) array) and each pattern's rows are contiguous. A block holds at most
``budget // (K q^2)`` patterns and ``MAX_ROWS`` rows, which bounds the per-pattern work arrays
whatever the number of distinct patterns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Numbers in a block's per-pattern arrays (K, P, q, q), and rows per block:
# small enough that a block's (K, rows, d) work arrays stay in cache.
PATTERN_BUDGET = 1 << 18
MAX_ROWS = 1024


@dataclass(frozen=True)
class Block:
    """Incomplete rows that share the number ``q`` of missing coordinates.

    ``rows`` (n_b,) are positions in the chunk; ``missing`` (n_b, q) each
    row's missing columns (ascending); ``pattern`` (n_b,) each row's index
    into ``patterns`` (P, q), the block's distinct sets of missing columns.
    """

    rows: np.ndarray
    missing: np.ndarray
    pattern: np.ndarray
    patterns: np.ndarray


def pattern_blocks(mask: np.ndarray, n_components: int,
                   budget: int = PATTERN_BUDGET) -> Iterator[Block]:
    """Blocks of the rows of ``mask`` (n, d; True where missing) that have a
    missing coordinate; complete rows are left out.

    Examples
    --------
    >>> mask = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0]], bool)
    >>> [(b.rows.tolist(), b.patterns.tolist()) for b in pattern_blocks(mask, 2)]
    [([0, 3], [[1]]), ([2], [[0, 1]])]
    """
    count = mask.sum(axis=1)
    incomplete = np.flatnonzero(count)
    if not incomplete.size:
        return
    key = _pattern_keys(mask[incomplete])
    order = np.lexsort((key, count[incomplete]))
    rows, key, count = incomplete[order], key[order], count[incomplete][order]
    for q in np.unique(count):
        at = slice(*np.searchsorted(count, [q, q + 1]))
        yield from _split(mask, rows[at], key[at], int(q),
                          max(1, budget // (n_components * int(q) ** 2)))


def _pattern_keys(mask: np.ndarray) -> np.ndarray:
    """An integer per row, equal for equal rows of ``mask``: the bits
    themselves for up to 62 columns, else the rank among the packed rows."""
    if mask.shape[1] <= 62:
        return mask @ (np.int64(1) << np.arange(mask.shape[1], dtype=np.int64))
    packed = np.ascontiguousarray(np.packbits(mask, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    return np.unique(keys, return_inverse=True)[1].ravel()


def _split(mask: np.ndarray, rows: np.ndarray, key: np.ndarray, q: int,
           max_patterns: int) -> Iterator[Block]:
    """Rows of one ``q`` (sorted by pattern) in blocks of at most ``MAX_ROWS``
    rows and ``max_patterns`` patterns (a pattern may span blocks)."""
    number = np.cumsum(np.r_[False, key[1:] != key[:-1]])  # pattern of each row
    lo = 0
    while lo < len(rows):
        hi = min(lo + MAX_ROWS, len(rows),
                 int(np.searchsorted(number, number[lo] + max_patterns)))
        block_rows = rows[lo:hi]
        missing = np.nonzero(mask[block_rows])[1].reshape(len(block_rows), q)
        pattern = number[lo:hi] - number[lo]
        heads = np.flatnonzero(np.r_[True, pattern[1:] != pattern[:-1]])
        yield Block(block_rows, missing, pattern, missing[heads])
        lo = hi
