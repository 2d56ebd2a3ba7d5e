"""Drawing rows from a fitted :class:`gaussmix.GaussianMixture` (:meth:`~SamplingMixin.sample`).

Kept out of :mod:`gaussmix.mixture` so that module stays short.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .inputs import like_fitted
from .validation import check_sample_count


class SamplingMixin:
    """Adds :meth:`sample` to GaussianMixture (needs ``random_state``,
    ``_params`` and ``_piece``)."""

    random_state: Any
    _params: Any
    _piece: Any

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples; a whole float (``1e4``) is taken as an int.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        check_is_fitted(self)
        if not hasattr(self, "covariances_"):  # a model set up by hand
            raise AttributeError("sample() draws from covariances_: set them as well "
                                 "as precisions_cholesky_.")
        n_samples = check_sample_count(n_samples)
        rng, p = check_random_state(self.random_state), self._params
        counts = rng.multinomial(n_samples, p.weights)
        X = self._piece.sample(rng, p.means, p.covariances, counts)
        y = np.repeat(np.arange(len(counts)), counts)  # the fitted weights_' count
        return like_fitted(self, X), like_fitted(self, y)  # tensors if fitted on them
