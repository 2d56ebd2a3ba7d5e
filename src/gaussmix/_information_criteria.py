"""bic, aic and the weighted log-likelihood they use, for GaussianMixture."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import criteria
from .engine.incomplete import kernel_type
from .engine.sources import Chunk, is_data_source
from .engine.xp import to_host
from .inputs import log_likelihood_totals


class InformationCriteriaMixin:
    """:meth:`bic` and :meth:`aic` of a fitted mixture (needs ``score_samples``,
    ``_piece``, ``n_components`` and ``means_``)."""

    n_components: int
    means_: Any
    _piece: Any

    if TYPE_CHECKING:
        def score_samples(self, X: Any) -> Any: ...
        def _validated(self, X: Any) -> Any: ...
        def _reducer(self, source: Any) -> Any: ...
        def _marked(self, source: Any, *, fitting: bool) -> Any: ...
        _params: Any

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        return criteria.n_parameters(self._piece, self.n_components, self.means_.shape[1])

    def _log_likelihood(self, X: Any, sample_weight: Any) -> tuple[float, float]:
        """Total (weighted) log-likelihood of X and the number (weight) of rows.

        A data source (not Dask) without ``sample_weight`` is scored with the
        weights it carries, as :meth:`fit` uses them."""
        if sample_weight is None and _streamed(X):
            return self._source_totals(self._marked(self._validated(X), fitting=False))
        return log_likelihood_totals(self.score_samples(X), sample_weight)

    def _source_totals(self, source: Any) -> tuple[float, float]:
        """``(sum_i w_i log p(x_i), sum_i w_i)`` over a source's chunks, with
        the weights of its chunks (1 for a chunk without), in one pass."""
        kernel = kernel_type(source).build(self._piece, self._params, source.spec)

        def totals(chunk: Chunk) -> np.ndarray:
            return np.array(log_likelihood_totals(
                to_host(kernel.log_likelihood(chunk.X)), chunk.sample_weight))

        total = sum(self._reducer(source).map(totals, source))
        return float(total[0]), float(total[1])

    def bic(self, X: Any, *, sample_weight: Any = None) -> float:
        """Bayesian information criterion on X (lower is better).

        ``-2 log L + n_parameters * log(n)`` as in scikit-learn; with
        ``sample_weight`` (a gaussmix extension) ``log L`` is weighted and ``n``
        is the total weight, so integer weights equal repeated rows. A data
        source without ``sample_weight`` is scored with the weights it carries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        bic : float
        """
        log_l, n = self._log_likelihood(X, sample_weight)
        return criteria.bic(log_l, n, self._n_parameters())

    def aic(self, X: Any, *, sample_weight: Any = None) -> float:
        """Akaike information criterion on X (lower is better).

        ``-2 log L + 2 n_parameters`` as in scikit-learn; ``sample_weight`` as in
        :meth:`bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        aic : float
        """
        log_l, _ = self._log_likelihood(X, sample_weight)
        return criteria.aic(log_l, self._n_parameters())


def _streamed(X: Any) -> bool:
    """Whether X is a data source read chunk by chunk here (a Dask array's
    rows are scored on its scheduler instead)."""
    return is_data_source(X) and not hasattr(X, "map_rows")
