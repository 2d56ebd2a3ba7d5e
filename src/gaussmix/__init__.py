"""gaussmix: Gaussian mixture models fitted by EM.

A faster, drop-in replacement for scikit-learn's ``GaussianMixture``, built on
one chunked EM over additive sufficient statistics.

>>> from gaussmix import GaussianMixture, load
"""

from ._version import __version__
from .mixture import GaussianMixture


def load(path):  # noqa: ANN001, ANN201 - documented in gaussmix.io.load_model
    """Load a model written by :meth:`GaussianMixture.save`."""
    from .io import load_model

    return load_model(path)


__all__ = ["GaussianMixture", "__version__", "load"]
