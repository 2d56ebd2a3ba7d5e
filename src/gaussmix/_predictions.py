"""Per-row results of a fitted mixture: ``score_samples``, ``score``,
``predict`` and ``predict_proba`` of :class:`gaussmix.GaussianMixture`.

Each is one pass of the fitted parameters' E-step kernel over the rows (an
array, a data source, a Dask array: then a lazy Dask array) in chunks, on the
estimator's threads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .engine.incomplete import kernel_type
from .engine.sources import ArraySource, scale_weights
from .engine.xp import to_host
from .inputs import exp, is_data_source, log_likelihood_totals, prediction_input
from .validation import check_sample_weight


class PredictionsMixin:
    """Adds the per-row results to GaussianMixture."""

    def _validated(self, X: Any) -> Any:
        check_is_fitted(self)
        return prediction_input(self, X)

    def _per_row(self, X: Any, what: str) -> np.ndarray:
        """Per-row results on validated data (an array or a data source):
        log_prob (n,), log_resp (n, K) or label (n,), as NumPy arrays."""
        est: Any = self
        source = est._marked(X if is_data_source(X) else ArraySource(
            X, None, est._chunk_size(X.shape[1], X.shape[0])), fitting=False)
        kernel = kernel_type(source).build(est._piece, est._params, source.spec)
        out = getattr(source, "result", to_host)  # torch: tensors for tensor input
        func = _RowResult(kernel, what, out)
        if hasattr(source, "map_rows"):  # a Dask array: a lazy Dask array
            fitted = len(est.weights_)  # not n_components, which set_params may change
            return source.map_rows(func, fitted if what == "log_resp" else None,
                                   np.int64 if what == "label" else np.float64)
        parts = list(est._reducer(source).map(func, source))
        return np.concatenate(parts)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood ``log p(x)`` of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> near, far = gm.score_samples(np.array([[0.0, 0.0], [30.0, 30.0]]))
        >>> bool(near > far)
        True
        """
        return self._per_row(self._validated(X), "log_prob")

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Weighted mean log-likelihood of X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or data source
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights; None for a data source scores it with the weights it
            carries (as :meth:`fit` uses them).

        Returns
        -------
        log_likelihood : float

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> bool(np.isclose(gm.score(X), gm.score_samples(X).mean()))
        True
        """
        est: Any = self
        if sample_weight is None and is_data_source(X):  # its own weights, if any
            return float(np.divide(*est._log_likelihood(X, None)))
        log_prob = self.score_samples(X)
        if not isinstance(log_prob, np.ndarray):  # Dask (on its scheduler), torch
            return float(np.divide(*log_likelihood_totals(log_prob, sample_weight,
                                                          scaled=True)))
        weights = scale_weights(check_sample_weight(sample_weight, len(log_prob)))
        return float(np.average(log_prob, weights=weights))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> a, b = gm.predict(np.array([[0.0, 0.0], [6.0, 6.0]]))
        >>> bool(a != b)
        True
        """
        return self._per_row(self._validated(X), "label")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities: posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> resp = gm.predict_proba(np.array([[0.0, 0.0], [3.0, 3.0]]))
        >>> resp.sum(axis=1).round(12).tolist(), float(resp[0].max().round(3))
        ([1.0, 1.0], 1.0)
        """
        return exp(self._per_row(self._validated(X), "log_resp"))


@dataclasses.dataclass(frozen=True)
class _RowResult:
    """A chunk's per-row result (``what``: 'log_prob', 'log_resp' transposed to
    rows x K, or 'label'), passed through ``out``. A module-level class, not a
    closure, so that a lazy Dask result holding it in its graph (``labels_``
    after a Dask fit) pickles with the model."""

    kernel: Any
    what: str
    out: Any

    def __call__(self, chunk: Any) -> Any:
        if self.what == "log_prob":
            return self.out(self.kernel.log_likelihood(chunk.X))
        if self.what == "log_resp":
            return self.out(self.kernel.log_resp(chunk.X)).T
        return self.out(self.kernel.labels(chunk.X), np.int64)
