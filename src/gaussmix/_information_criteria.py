"""bic, aic and the weighted log-likelihood they use, for GaussianMixture."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import criteria
from .inputs import log_likelihood_totals


class InformationCriteriaMixin:
    """:meth:`bic` and :meth:`aic` of a fitted mixture (needs ``score_samples``,
    ``_piece``, ``n_components`` and ``means_``)."""

    n_components: int
    means_: Any
    _piece: Any

    if TYPE_CHECKING:
        def score_samples(self, X: Any) -> Any: ...

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        return criteria.n_parameters(self._piece, self.n_components, self.means_.shape[1])

    def _log_likelihood(self, X: Any, sample_weight: Any) -> tuple[float, float]:
        """Total (weighted) log-likelihood of X and the number (weight) of rows."""
        return log_likelihood_totals(self.score_samples(X), sample_weight)

    def bic(self, X: Any, *, sample_weight: Any = None) -> float:
        """Bayesian information criterion on X (lower is better).

        ``-2 log L + n_parameters * log(n)`` as in scikit-learn; with
        ``sample_weight`` (a gaussmix extension) ``log L`` is weighted and ``n``
        is the total weight, so integer weights equal repeated rows.

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
