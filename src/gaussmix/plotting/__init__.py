"""Plots of fitted Gaussian mixtures, returning matplotlib objects.

matplotlib is an optional dependency (``pip install 'gaussmix[plot]'``),
imported when a function here is first called.

- :func:`plot_mixture`: the data coloured by most probable component, each
  component's 1- and 2-sigma ellipses and mean, and contours of the mixture
  density. Two features are drawn as they are; with more, a chosen pair of
  columns (``x``, ``y``) or, by default, the first two principal components of
  the data, with the means and covariances projected the same way (a linear
  projection of a Gaussian mixture is again a Gaussian mixture, so the
  ellipses and contours are exact for the projected data). One feature gives
  a histogram with the mixture density and its weighted components.
- :func:`plot_convergence`: the mean log-likelihood after each EM iteration
  (``model.lower_bounds_``) and, on a log axis, its change against ``tol``.
- :func:`plot_model`: both side by side in a new figure, and
  :func:`save_figure` to write it (PNG, SVG or PDF) without touching pyplot.
- :func:`plot_selection`: a criterion of a model selection against the
  number of components, one line per covariance type
  (:meth:`SelectionResult.plot <gaussmix.SelectionResult.plot>`).

The modules: :mod:`.mixture`, :mod:`.convergence`, :mod:`.figures` and
:mod:`.selection` hold those plots, :mod:`.geometry` the projection to the
plane and the projected density, :mod:`.mpl` the import of matplotlib.

Examples
--------
>>> import numpy as np
>>> from gaussmix import GaussianMixture
>>> from gaussmix.plotting import plot_mixture, plot_convergence
>>> X = np.random.RandomState(0).normal(size=(200, 3))
>>> gm = GaussianMixture(2, random_state=0).fit(X)
>>> ax = plot_mixture(gm, X)                  # doctest: +SKIP
>>> ax = plot_mixture(gm, X, x=0, y=2)        # doctest: +SKIP
>>> ax = plot_convergence(gm)                 # doctest: +SKIP
"""

from .convergence import plot_convergence
from .figures import FIGURE_FORMATS, plot_model, save_figure
from .geometry import Projection, full_covariances, projection
from .geometry import log_density as _log_density  # noqa: F401 - for callers
from .mixture import plot_mixture
from .mpl import require_matplotlib as _matplotlib  # noqa: F401 - for the CLI
from .selection import plot_selection

__all__ = [
    "FIGURE_FORMATS",
    "Projection",
    "full_covariances",
    "plot_convergence",
    "plot_mixture",
    "plot_model",
    "plot_selection",
    "projection",
    "save_figure",
]
