"""How the rows of an input are cut into chunks so that threads share them evenly."""

from __future__ import annotations

#: Fewer chunks than this are rounded up to a multiple of ``EVEN_PIECES``
#: (equal work for 2 or 4 threads: 3 chunks on 2 threads leave one idle for a
#: third of the pass); from this many on, the last round's imbalance is small.
ROUND_BELOW = 16
EVEN_PIECES = 4
#: Smallest piece: an eighth of an ordinary chunk for an input cut in two, a
#: quarter for one cut in four (see :func:`_smallest_piece`), at most this many
#: rows. Below it a piece's fixed cost (a task, a kernel call, a thread's
#: wake-up: ~0.1 ms) outweighs the gain of another thread (``partial_fit``
#: batches, d=16, K=8, per call, two pieces against one: 2,000 rows 6% faster
#: for full and 14% slower for spherical; 5,000 rows 26% faster for full and
#: 7% for spherical; AMD EPYC VM, 2026-11-29).
SMALLEST_PIECE_ROWS = 4096


def even_chunk_rows(chunk_rows: int, n_rows: int) -> int:
    """Rows per chunk for an input of ``n_rows`` rows, given the ordinary
    ``chunk_rows``: chunks of equal size, and for an input of fewer than
    ``ROUND_BELOW`` chunks a multiple of four of them (halved while a piece
    would be smaller than :func:`_smallest_piece`), so
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
    >>> even_chunk_rows(12500, 5_000)      # two of 2,500 (d=16, K=8, full)
    2500
    >>> even_chunk_rows(65536, 200_000)    # 4 equal chunks, not 3 full and a tail
    50000
    >>> even_chunk_rows(16000, 1_000_000)  # 63 chunks of 15,873 or 15,874 rows
    15874
    """
    pieces = -(-n_rows // chunk_rows)
    if pieces < ROUND_BELOW:
        pieces = -(-pieces // EVEN_PIECES) * EVEN_PIECES
        while pieces > 1 and n_rows < pieces * _smallest_piece(chunk_rows, pieces):
            pieces //= 2
    return max(1, min(chunk_rows, -(-n_rows // pieces)))


def _smallest_piece(chunk_rows: int, pieces: int) -> int:
    """Fewest rows per piece for which cutting an input into ``pieces`` pays.

    Two pieces instead of one halve the work's time for one more hand-off;
    four instead of two gain a quarter (on four cores or more) for two more:
    a piece of four must carry twice the work of a piece of two.
    """
    share = 8 if pieces <= 2 else 4
    return max(1, min(chunk_rows // share, SMALLEST_PIECE_ROWS))
