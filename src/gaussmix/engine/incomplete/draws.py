"""Random numbers for multiple imputation that do not depend on the chunks.

A draw of a row's missing values takes ``d + 1`` uniform numbers: the first
picks the component, the others (at the row's missing coordinates) give the
standard normal deviates by the inverse normal CDF. Row ``i`` of X always
takes the numbers ``i (d + 1)`` to ``i (d + 1) + d`` of one PCG64 stream,
which a chunk reaches by jumping ahead (``PCG64.advance``, logarithmic in the
distance). So a seed gives the same draws however the rows are cut into
chunks: on a machine with more cores (more chunks), in a file read chunk by
chunk (``gaussmix impute --draw``), or in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

# A 64-bit word's top 53 bits, plus a half, times 2^-53: a uniform number in
# (0, 1), never 0 or 1, whose inverse normal CDF is finite.
_UNIT = 2.0 ** -53


@dataclass(frozen=True)
class RowDraws:
    """The uniform numbers of one multiple imputation, by row.

    Examples
    --------
    >>> draws = row_draws(0, 1, width=3)[0]
    >>> bool(np.array_equal(draws.rows(0, 5)[2:], draws.rows(2, 5)))
    True
    """

    seed: np.random.SeedSequence
    width: int  # numbers per row: d + 1

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The (stop - start, width) numbers of rows ``start`` to ``stop - 1``."""
        bits = np.random.PCG64(self.seed)
        bits.advance(start * self.width)
        raw = bits.random_raw((stop - start) * self.width)
        unit = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT
        return unit.reshape(stop - start, self.width)


def row_draws(random_state: Any, n_draws: int, width: int) -> list[RowDraws]:
    """One :class:`RowDraws` per imputation, seeded from ``random_state``
    (None, an int or a ``RandomState``, as scikit-learn takes it): an int
    gives the same draws on every machine and for every chunking."""
    entropy = check_random_state(random_state).randint(2**32, size=4, dtype=np.uint64)
    streams = np.random.SeedSequence([int(e) for e in entropy]).spawn(n_draws)
    return [RowDraws(stream, width) for stream in streams]
