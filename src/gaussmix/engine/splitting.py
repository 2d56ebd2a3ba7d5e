"""How the rows of an input are cut into chunks so that threads share them evenly."""

from __future__ import annotations

#: Fewer chunks than this are rounded up to a multiple of ``EVEN_PIECES``
#: (equal work for 2 or 4 threads: 3 chunks on 2 threads leave one idle for a
#: third of the pass); from this many on, the last round's imbalance is small.
ROUND_BELOW = 16
EVEN_PIECES = 4
#: Smallest piece: a quarter of an ordinary chunk, at most this many rows.
#: Below it a piece's fixed cost (a task, a kernel call: ~0.1 ms) outweighs
#: the gain of a second thread (measured with ``partial_fit`` batches of
#: 2,000 rows, d=16, K=8, full: two pieces were slower than one).
SMALLEST_PIECE_ROWS = 4096


def even_chunk_rows(chunk_rows: int, n_rows: int) -> int:
    """Rows per chunk for an input of ``n_rows`` rows, given the ordinary
    ``chunk_rows``: chunks of equal size, and for an input of fewer than
    ``ROUND_BELOW`` chunks a multiple of four of them (halved while a piece
    would be smaller than ``min(chunk_rows // 4, SMALLEST_PIECE_ROWS)``), so
    that a ``partial_fit`` batch or a short fit runs on two or four threads
    instead of one, and the last chunks of a pass do not leave threads idle.

    The cut depends on the rows only, not on the number of threads, so that
    results do not change with ``n_threads``.

    Examples
    --------
    >>> even_chunk_rows(16000, 10_000)     # two pieces of 5,000 rows
    5000
    >>> even_chunk_rows(16000, 30_000)     # four of 7,500
    7500
    >>> even_chunk_rows(16000, 3_000)      # too short to cut
    3000
    >>> even_chunk_rows(65536, 200_000)    # 4 equal chunks, not 3 full and a tail
    50000
    >>> even_chunk_rows(16000, 1_000_000)  # 63 chunks of 15,873 or 15,874 rows
    15874
    """
    pieces = -(-n_rows // chunk_rows)
    if pieces < ROUND_BELOW:
        pieces = -(-pieces // EVEN_PIECES) * EVEN_PIECES
        smallest = max(1, min(chunk_rows // 4, SMALLEST_PIECE_ROWS))
        while pieces > 1 and n_rows < pieces * smallest:
            pieces //= 2
    return max(1, min(chunk_rows, -(-n_rows // pieces)))
