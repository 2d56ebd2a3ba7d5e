"""How an input shorter than a few chunks is cut, so that threads share it."""

from __future__ import annotations

#: Most pieces a short input is cut into (a power of two: even work for 2 or
#: 4 threads) and the smallest piece, as a share of an ordinary chunk: below
#: a quarter of a chunk, a piece's fixed cost (a task, a kernel call) outweighs
#: the gain of a second thread (measured with ``partial_fit`` batches of
#: 2,000 rows, d=16, K=8: two pieces were slower than one).
MOST_PIECES = 4
SMALLEST_SHARE = 4


def short_input_chunk(chunk_rows: int, n_rows: int) -> int:
    """Rows per chunk for an input of ``n_rows`` rows, given the ordinary
    ``chunk_rows``: an input of fewer than ``MOST_PIECES`` chunks is cut into
    2 or 4 equal pieces (the most that keep each at least a quarter of a
    chunk), so that a ``partial_fit`` batch or a short fit runs on two or
    four threads instead of one; longer inputs keep ``chunk_rows``.

    The cut depends on the rows only, not on the number of threads, so that
    results do not change with ``n_threads``.

    Examples
    --------
    >>> short_input_chunk(16000, 10_000)   # two pieces of 5,000 rows
    5000
    >>> short_input_chunk(16000, 30_000)   # four of 7,500
    7500
    >>> short_input_chunk(16000, 3_000)    # too short to cut
    16000
    >>> short_input_chunk(16000, 1_000_000)
    16000
    """
    smallest = max(1, chunk_rows // SMALLEST_SHARE)
    pieces = MOST_PIECES
    while pieces > 1 and n_rows < pieces * smallest:
        pieces //= 2
    if pieces == 1:
        return chunk_rows
    return min(chunk_rows, -(-n_rows // pieces))
