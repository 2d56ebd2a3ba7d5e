"""GaussianMixtureImputer: fill missing values from a Gaussian mixture fitted
to the incomplete data by exact EM (a scikit-learn transformer)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from .mixture import GaussianMixture
from .validation import (
    check_data,
    check_parameters,
    check_sample_weight,
    features_kept_on_failure,
)

#: Mixture parameters passed through to :class:`~gaussmix.GaussianMixture`.
MIXTURE_PARAMETERS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter",
                      "n_init", "init_params", "random_state", "n_threads")


class GaussianMixtureImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing values (NaN) with a Gaussian mixture fitted by exact EM.

    ``fit`` fits ``GaussianMixture(missing="marginalize")`` to the incomplete
    rows (rows with nothing observed are skipped: they carry no information
    about the mixture; a column with nothing observed, or observed only in
    rows of sample_weight 0, is an error);
    ``transform`` replaces each NaN by its conditional expectation given the
    row's observed values,
    ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]``, or, with
    ``sample_posterior=True``, by a draw from the conditional mixture (for
    multiple imputation, as :class:`sklearn.impute.IterativeImputer` offers).
    Usable wherever scikit-learn's imputers are, e.g. first in a Pipeline.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, \
init_params, random_state, n_threads
        As in :class:`~gaussmix.GaussianMixture` (passed through).
        ``random_state`` also seeds the draws of ``sample_posterior``.
    sample_posterior : bool, default=False
        Draw each missing value from the conditional mixture instead of
        taking its conditional expectation.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture.
    n_iter_ : int
        EM iterations of the fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 1000)
    >>> X[:5, 1] = np.nan
    >>> imputer = GaussianMixtureImputer(random_state=0).fit(X)
    >>> filled = imputer.transform(X)
    >>> bool(np.all(np.abs(filled[:5, 1] - 0.9 * X[:5, 0]) < 0.1))
    True
    """

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", random_state: Any = None,
                 n_threads: int | None = None, sample_posterior: bool = False) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_threads = n_threads
        self.sample_posterior = sample_posterior

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixtureImputer:
        """Fit the mixture to the rows of X (NaN where missing).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixtureImputer
        """
        check_parameters(self, MIXTURE_PARAMETERS)  # messages name this class
        validate_parameter_constraints({"sample_posterior": ["boolean"]},
                                       {"sample_posterior": self.sample_posterior},
                                       caller_name=type(self).__name__)
        with features_kept_on_failure(self):
            X = check_data(self, X, reset=True, min_samples=2, allow_nan=True)
            X, sample_weight = _observed_rows(
                X, check_sample_weight(sample_weight, len(X)), self.n_components)
            self.mixture_ = GaussianMixture(
                **{name: getattr(self, name) for name in MIXTURE_PARAMETERS},
                missing="marginalize").fit(X, sample_weight=sample_weight)
        self.n_iter_ = self.mixture_.n_iter_
        self._rng = check_random_state(self.random_state)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """X with its NaN entries imputed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = check_data(self, X, reset=False, allow_nan=True)
        if not self.sample_posterior:
            return self.mixture_.impute(X)
        return self.mixture_.impute(X, n_draws=1, random_state=self._rng)[0]

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once a fit has produced ``mixture_`` (not when a first fit
        failed after validating X)."""
        return hasattr(self, "mixture_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # transform returns float32 rows for float32 input (impute keeps X's dtype)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _observed_rows(X: np.ndarray, sample_weight: np.ndarray | None, n_components: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """X and its weights without the rows that have nothing observed: their
    likelihood under any mixture is 1, so they do not change the fit (as
    scikit-learn's imputers, fit accepts them; transform fills them with the
    mixture's mean). Too few rows left is an error that says why."""
    keep = ~np.isnan(X).all(axis=1)
    if keep.all():
        return X, sample_weight
    needed = max(2, n_components)
    if keep.sum() < needed:
        raise ValueError(
            f"{len(X) - keep.sum()} of the {len(X)} rows of X are missing throughout "
            f"(all NaN), which leaves {keep.sum()} row(s) to fit the mixture to; at "
            f"least {needed} are needed"
            + (" (one per component)." if n_components > 2 else "."))
    return X[keep], None if sample_weight is None else sample_weight[keep]
