"""``gaussmix sample``: draw rows from a saved mixture, streamed to the output file.

Rows are drawn as :meth:`GaussianMixture.sample` draws them (the number of
rows of each component from one multinomial draw, then each component's rows
in turn, from one random stream), but a component's rows are drawn and written
a chunk at a time, so memory stays bounded whatever ``-n`` is and, with a
seed, the file holds the same rows as ``model.sample(n)``. Before anything is
drawn, ``-n`` is checked: a whole number from 1 to the int64 maximum, whose
output fits in the free space of the output's disk.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import Any

import click
import numpy as np
from sklearn.utils import check_random_state

from ..engine.covariance import COVARIANCE_TYPES
from ..files.tables import (
    DataError,
    check_output_path,
    open_table_writer,
)
from ..files.writers import check_free_space, estimated_size
from .inputs import load_model
from .options import SEED, TABLE_FORMATS

__all__ = ["draw_chunks", "parse_count", "sample_command"]

#: Numbers (rows x columns) drawn and written at a time.
CHUNK_NUMBERS = 1 << 21
#: Fewest rows drawn at a time (small blocks can round differently).
MIN_CHUNK_ROWS = 256
_INT64_MAX = int(np.iinfo(np.int64).max)


def parse_count(text: str, option: str) -> int:
    """A whole number of rows from ``'1000'``, ``'1e6'`` or ``'10_000'``.

    Raises
    ------
    DataError
        Not a whole number, below 1, or above the int64 maximum.

    Examples
    --------
    >>> parse_count("2.5e3", "-n"), parse_count("10_000", "-n")
    (2500, 10000)
    """
    try:
        value = decimal.Decimal(text.strip().replace("_", ""))
    except decimal.InvalidOperation:
        value = decimal.Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value() or value < 1:
        raise DataError(f"{option} {text!r} is not a whole number of rows >= 1, "
                        "e.g. 1000 or 1e6")
    if value > _INT64_MAX:
        raise DataError(f"{option} {text} is more rows than can be counted (at most "
                        f"{_INT64_MAX:.3g}); lower {option}")
    return int(value)


def draw_chunks(
    model: Any, n_samples: int, chunk_rows: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``model.sample(n_samples)``, as ``(X, component)`` chunks in order.

    Each chunk holds rows of one component; a component's rows come in chunks
    of ``chunk_rows`` (the last one up to twice that), so that no chunk is a
    lone row, whose draw BLAS may round differently.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture
    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + np.arange(40)[:, None] / 80
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> parts = list(draw_chunks(gm, 1000, chunk_rows=64))
    >>> drawn, whole = np.vstack([x for x, _ in parts]), gm.sample(1000)[0]
    >>> bool((drawn == whole).all())
    True
    """
    d = model.means_.shape[1]
    rows = chunk_rows or max(MIN_CHUNK_ROWS, CHUNK_NUMBERS // (d + 1))
    piece = COVARIANCE_TYPES[model.covariance_type]
    rng = check_random_state(model.random_state)
    counts = rng.multinomial(n_samples, model.weights_)
    for k, count in enumerate(counts.tolist()):
        while count > 0:
            take = rows if count >= 2 * rows else count
            only_k = np.zeros_like(counts)
            only_k[k] = take
            X = piece.sample(rng, model.means_, model.covariances_, only_k)
            yield X, np.full(take, k, dtype=np.int64)
            count -= take


@click.command("sample", epilog="""\b
Examples:
  gaussmix sample model.npz -n 1000 -o synthetic.csv
  gaussmix sample model.npz -n 1e6 --seed 1 -o synthetic.parquet
  gaussmix sample model.npz -n 1e9 -o big.npy        (streamed, bounded memory)""")
@click.argument("model_path", metavar="MODEL")
@click.option("-n", "--n-samples", "n_samples", required=True, metavar="N",
              help="Number of rows to draw (1000, 1e6, 10_000).")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="File to write (.csv, .tsv, .npy or .parquet).")
@click.option("--seed", type=SEED, default=None,
              help="Random seed (default: the model's stored seed, so repeated "
                   "calls give the same rows).")
def sample_command(model_path: str, n_samples: str, output: str,
                   seed: int | None) -> None:
    """Draw N rows from the mixture in MODEL.

    Writes the model's feature columns and a last column 'component' with the
    component each row was drawn from (also in .npy files, as the last column).
    Rows are drawn and written in chunks, so N may exceed memory; N whose file
    would not fit on the disk is refused before anything is drawn.
    """
    n = parse_count(n_samples, "-n")
    target = check_output_path(output, TABLE_FORMATS)
    model = load_model(model_path)
    if seed is not None:
        model.set_params(random_state=seed)
    d = int(model.means_.shape[1])
    names = [str(name) for name in getattr(model, "feature_names_in_",
                                           [f"x{i}" for i in range(d)])]
    label = "component" if "component" not in names else "_component"
    check_free_space(target, estimated_size(target, n, d, 1),
                     "lower -n or write to a disk with more room")
    with open_table_writer(target, [*names, label], n_rows=n) as out:
        for X, y in draw_chunks(model, n):
            out.write({**{name: X[:, i] for i, name in enumerate(names)}, label: y})
    click.echo(f"wrote {n} samples to {output}")
