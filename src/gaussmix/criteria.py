"""Information criteria from a total log-likelihood (lower is better).

Conventions are scikit-learn's: ``BIC = -2 log L + p log n`` and
``AIC = -2 log L + 2 p``, with ``n`` the number of rows (or the total sample
weight). mclust reports ``2 log L - p log n``, which is ``-BIC`` here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .engine.covariance import CovarianceType


def bic(log_likelihood: float, n_samples: float, n_parameters: int) -> float:
    """Bayesian information criterion."""
    return -2.0 * log_likelihood + n_parameters * math.log(n_samples)


def aic(log_likelihood: float, n_parameters: int) -> float:
    """Akaike information criterion."""
    return -2.0 * log_likelihood + 2.0 * n_parameters


def n_parameters(piece: CovarianceType, n_components: int, n_features: int) -> int:
    """Free parameters of a mixture: covariances, means and K - 1 weights."""
    covariance = piece.n_covariance_parameters(n_components, n_features)
    return int(covariance + n_components * n_features + n_components - 1)
