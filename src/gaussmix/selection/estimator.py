"""The scikit-learn estimator over :func:`~gaussmix.select`: selects and fits the
best mixture in ``fit``, then predicts and scores with it."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.utils.validation import check_is_fitted

from .search import ALL_COVARIANCE_TYPES, select


class GaussianMixtureSearch(ClusterMixin, DensityMixin, BaseEstimator):
    """A scikit-learn estimator that selects and fits the best Gaussian mixture.

    ``fit`` runs :func:`~gaussmix.select`; prediction and scoring delegate to
    ``best_estimator_``. Use it where an estimator is expected (pipelines,
    ``clone``); use :func:`~gaussmix.select` for the full table and plot.

    Parameters
    ----------
    n_components : int, iterable of int or None, default=None
        Numbers of components to try; None means ``range(1, 10)``.
    covariance_types : str, sequence of str or None, default=None
        Covariance types to try; None means all four.
    criterion, n_init, init_params, random_state, tol, reg_covar, max_iter, \
n_jobs, verbose, missing, shared_passes
        As in :func:`~gaussmix.select` (``missing='marginalize'``: NaN in X are
        missing values, for fitting and for prediction by the chosen model).

    Attributes
    ----------
    result_ : SelectionResult
    best_estimator_ : GaussianMixture
    best_params_ : dict
        ``{'n_components': K, 'covariance_type': t}`` of the chosen model.
    labels_ : ndarray of shape (n_samples,)
        As ``GaussianMixture.fit`` sets it: lazy for a Dask array, absent for
        a file or stream.
    n_iter_ : int
        EM iterations of the chosen model.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names (a DataFrame).

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix.selection import GaussianMixtureSearch
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> search = GaussianMixtureSearch(n_components=range(1, 4), random_state=0)
    >>> search.fit(X).best_params_["n_components"]
    2
    """

    def __init__(
        self,
        n_components: Any = None,
        *,
        covariance_types: Any = None,
        criterion: str = "bic",
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_jobs: int | None = None,
        verbose: int = 0,
        missing: str = "raise",
        shared_passes: bool | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.missing = missing
        self.shared_passes = shared_passes

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None
            ) -> GaussianMixtureSearch:
        """Select and fit the best mixture on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), data source or Dask array
            As in :func:`~gaussmix.select`.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixtureSearch
        """
        self.result_ = select(
            X,
            range(1, 10) if self.n_components is None else self.n_components,
            ALL_COVARIANCE_TYPES if self.covariance_types is None
            else self.covariance_types,
            self.criterion,
            n_init=self.n_init, init_params=self.init_params,
            random_state=self.random_state, tol=self.tol, reg_covar=self.reg_covar,
            max_iter=self.max_iter, sample_weight=sample_weight, n_jobs=self.n_jobs,
            verbose=self.verbose, missing=self.missing,
            shared_passes=self.shared_passes,
        )
        for name in ("feature_names_in_", "labels_"):  # a refit's may not have them
            self.__dict__.pop(name, None)
        self.best_estimator_ = self.result_.best_estimator_
        self.best_params_ = {"n_components": self.best_estimator_.n_components,
                             "covariance_type": self.best_estimator_.covariance_type}
        self.n_features_in_ = self.best_estimator_.n_features_in_
        self.n_iter_ = self.best_estimator_.n_iter_
        if hasattr(self.best_estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.best_estimator_.feature_names_in_
        if hasattr(self.best_estimator_, "labels_"):  # not for files and streams
            self.labels_ = self.best_estimator_.labels_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row (of the chosen model)."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-row log-likelihood under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.score_samples(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood under the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.score(X, sample_weight=sample_weight)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the chosen model."""
        check_is_fitted(self)
        return self.best_estimator_.sample(n_samples)

    def bic(self, X: Any, *, sample_weight: Any = None) -> float:
        """BIC of the chosen model on X (lower is better; weights as in
        :meth:`gaussmix.GaussianMixture.bic`)."""
        check_is_fitted(self)
        return self.best_estimator_.bic(X, sample_weight=sample_weight)

    def aic(self, X: Any, *, sample_weight: Any = None) -> float:
        """AIC of the chosen model on X (lower is better; weights as in
        :meth:`gaussmix.GaussianMixture.aic`)."""
        check_is_fitted(self)
        return self.best_estimator_.aic(X, sample_weight=sample_weight)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "marginalize"
        return tags
