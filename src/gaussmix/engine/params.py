"""The parameters of a Gaussian mixture, as one immutable value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MixtureParams:
    """Weights, means, covariances and precision Cholesky factors (float64).

    Shapes of ``covariances`` and ``precisions_cholesky`` depend on the
    covariance type (see :mod:`gaussmix.engine.covariance`).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def n_features(self) -> int:
        return self.means.shape[1]
