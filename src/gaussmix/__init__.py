"""gaussmix: Gaussian mixture models fitted by EM.

A faster, drop-in replacement for scikit-learn's ``GaussianMixture``, built on
one chunked EM over additive sufficient statistics.

>>> from gaussmix import GaussianMixture, load

Data that is not one in-memory array is fitted through a data source:
``GaussianMixture(3).fit(NpySource("big.npy"))`` reads a memory-mapped file
chunk by chunk; ``IterableSource(lambda: read_chunks())`` takes any re-iterable
of chunks (a generator factory, a database cursor).
"""

from ._version import __version__
from .engine.sources import IterableSource, NpySource
from .imputer import GaussianMixtureImputer
from .mixture import GaussianMixture
from .selection import GaussianMixtureSearch, SelectionResult, select

_FILE_SOURCES = ("ParquetSource", "ZarrSource")


def load(path):  # noqa: ANN001, ANN201 - documented in gaussmix.files.model.load_model
    """Load a model written by :meth:`GaussianMixture.save` (every field is
    checked; no code in the file runs: see
    :func:`gaussmix.files.model.load_model`).

    >>> import os, tempfile
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture, load
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     same = load(gm.save(os.path.join(folder, "model.npz")))
    >>> bool((same.predict(X) == gm.predict(X)).all())
    True
    """
    from .files.model import load_model

    return load_model(path)


def __getattr__(name: str):  # noqa: ANN202
    # ``gaussmix.plot`` is the plotting module, imported on first use only.
    if name in _FILE_SOURCES:  # Parquet/Zarr sources; pyarrow/zarr on first use
        from .files import sources

        return getattr(sources, name)
    if name == "plot":
        from . import plotting

        return plotting
    raise AttributeError(f"module 'gaussmix' has no attribute {name!r}")


__all__ = [
    "GaussianMixture",
    "GaussianMixtureImputer",
    "GaussianMixtureSearch",
    "IterableSource",
    "NpySource",
    "SelectionResult",
    "__version__",
    "load",
    "select",
]
