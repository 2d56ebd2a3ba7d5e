"""GaussianMixture: a scikit-learn estimator over the chunked EM of this package."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._information_criteria import InformationCriteriaMixin
from ._missing import MissingValuesMixin
from ._partial_fit import PartialFitMixin
from ._predictions import PredictionsMixin
from ._sampling import SamplingMixin
from .engine.covariance import CovarianceType, get_covariance_type
from .engine.init import initial_params
from .engine.loop import Callback, EMRun, EMSettings, best_of_restarts
from .engine.params import MixtureParams
from .engine.reducers import Reducer, reducer_for
from .engine.sources import DataSource, auto_chunk_size, worker_chunk_size
from .engine.threads import resolve_threads, single_threaded_blas
from .engine.xp import to_host
from .inputs import (
    on_host,
    place_attributes,
    training_source,
)
from .validation import (
    check_initial_parameters,
    check_parameters,
    features_kept_on_failure,
)


class GaussianMixture(MissingValuesMixin, PartialFitMixin, PredictionsMixin,
                      InformationCriteriaMixin, SamplingMixin, DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by expectation-maximisation.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the
    same parameters, defaults, attributes and results, computed by a chunked
    single pass per iteration (bounded memory, multi-threaded), with
    ``sample_weight`` support and ``save``/``load``.

    Like scikit-learn's, it is a density estimator (``DensityMixin``), not a
    clusterer, with the same estimator tags except ``array_api_support``
    (always False here); ``labels_``, the labels ``fit_predict`` returns, is an
    extra.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own covariance matrix; 'tied': all share
        one; 'diag': each has a diagonal matrix; 'spherical': each has a
        single variance.
    tol : float, default=1e-3
        Convergence threshold: EM stops when the (weighted) mean log-likelihood
        changes by less than ``tol`` (in absolute value) in one iteration.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        Number of EM iterations to perform.
    n_init : int, default=1
        Number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        How initial responsibilities are drawn (as in scikit-learn).
    weights_init : array-like of shape (n_components,), default=None
        Initial weights; must be in [0, 1] and sum to 1.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped by covariance_type:
        (n_components,) spherical, (n_features, n_features) tied,
        (n_components, n_features) diag, (n_components, n_features, n_features)
        full.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        Reuse the last fit's parameters as the starting point of the next
        fit (which then ignores n_init; the first fit uses it).
    verbose : int, default=0
        1 prints the current initialisation and iteration; 2 adds timings and
        the change in log-likelihood.
    verbose_interval : int, default=10
        Iterations between two progress lines.
    chunk_size : int or None, default=None
        Keyword-only (gaussmix). Rows per E-step chunk. Each thread's working
        memory is about ``chunk_size * (K * (d + 3) + d)`` numbers for full
        covariances (measured with tracemalloc), ``chunk_size * (4 d + K)`` for
        diag and ``chunk_size * 3 (d + K)`` for tied and spherical. None picks
        about 2^20 numbers per chunk (on a Dask cluster's workers, where
        chunks of a block run one after another, up to 2^22: see
        :func:`gaussmix.engine.sources.worker_chunk_size`).
    n_threads : int or None, default=None
        Keyword-only (gaussmix). Threads that process chunks in parallel; None
        uses the cores available to the process (affinity, cgroup quota),
        in a joblib worker at most the ``OMP_NUM_THREADS`` joblib sets there.
        Results do not depend on it.
    callback : callable or None, default=None
        Keyword-only (gaussmix). Called after every EM iteration with a dict
        ``{'init', 'iteration', 'lower_bound', 'change', 'elapsed',
        'max_iter'}`` (``init``: the restart, 0 to ``n_init - 1``; ``change``:
        inf on a fresh start's first iteration; ``elapsed``: seconds since the
        restart's EM began); use it for progress bars or early
        inspection. Its return value is ignored; an exception it raises
        stops the fit and propagates (the fitted parameters are not replaced).
    learning_offset : float, default=10.0
        Keyword-only (gaussmix), :meth:`partial_fit` only: ``t0 >= 0`` in the
        step size ``(t0 + t)^(-learning_decay)``; larger values damp early steps.
    learning_decay : float, default=0.7
        Keyword-only (gaussmix), :meth:`partial_fit` only: ``alpha`` in (0.5, 1],
        how fast older batches are forgotten (smaller: faster).
    device : str, torch.device or None, default=None
        Keyword-only (gaussmix). Where torch computes the E-step ('cuda',
        'cuda:1', 'cpu'); None: NumPy, or a tensor's own device. Host data on
        a GPU runs in float32 (pass a float64 tensor for float64). Rules for
        dtypes, attributes and memory: :mod:`gaussmix.backends.torch`.
    matmul_precision : {'highest', 'tf32'}, default='highest'
        Keyword-only (gaussmix). float32 products on CUDA in strict float32, or
        TF32 (several times faster, about 3 significant digits per product).
    missing : {'raise', 'marginalize'}, default='raise'
        Keyword-only (gaussmix). 'marginalize': NaN in X (a NumPy array, a
        file or chunk source, or a Dask array) are missing at random, handled
        by exact EM (see :mod:`gaussmix._missing`, :meth:`impute`); tensors
        reject NaN whatever this is.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shaped by covariance_type as ``precisions_init``.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Weighted mean log-likelihood of the training data at the last
        iteration's E-step (as in scikit-learn).
    lower_bounds_ : list of float
        ``lower_bound_`` at every iteration of the best run.
    labels_ : ndarray of shape (n_samples,)
        Component of highest responsibility for each training row.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names (a DataFrame, a Dask
        DataFrame or a ``ParquetSource``, whose columns are checked at predict).

    Fitted arrays are NumPy float64 arrays, except after fitting a torch
    tensor: then float64 tensors on its device (``labels_`` int64), and
    predictions on tensors are tensors (see :mod:`gaussmix.backends.torch`).

    Notes
    -----
    Differences from scikit-learn: fitted arrays are always float64 (float32
    input runs its E-step in float32); empty components are reseeded at the
    worst-explained rows; ``max_iter=0`` reports the start's log-likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    >>> gm.predict([[0, 0], [12, 3]]).tolist() == [gm.predict([[1, 2]])[0],
    ...                                             gm.predict([[10, 2]])[0]]
    True
    >>> gm.fit(X, sample_weight=[1, 1, 1, 3, 3, 3]).weights_.round(2).tolist() in (
    ...     [0.25, 0.75], [0.75, 0.25])
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_threads: int | None = None,
        callback: Callback | None = None,
        learning_offset: float = 10.0,
        learning_decay: float = 0.7,
        device: Any = None,
        matmul_precision: str = "highest",
        missing: str = "raise",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_threads = n_threads
        self.callback = callback
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.device = device
        self.matmul_precision = matmul_precision
        self.missing = missing

    # -- fitting -------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Estimate the parameters with EM (``n_init`` starts, best kept).

        A fit that raises (bad data, an exception of ``callback``) leaves the
        estimator as it was: the earlier fit's model with the features it
        checks X against, or not fitted.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), data source, Dask array \
or torch tensor
            Training data, one row per sample; a data source
            (:class:`~gaussmix.NpySource`, ``ParquetSource``, ``ZarrSource``,
            :class:`~gaussmix.IterableSource`; weights come with its chunks); a
            Dask array / DataFrame, fitted on the cluster (persist it first, see
            :mod:`gaussmix.backends.dask`); or a torch tensor, fitted on its
            device (:mod:`gaussmix.backends.torch`). Initialisation from rows not in
            memory works on a uniform sample of at most 50,000 rows.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row (a Dask array for Dask X); an
            integer weight counts the row that many times.

        Returns
        -------
        self : GaussianMixture (``labels_`` only for arrays: not for files or streams)

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> np.sort(gm.means_[:, 0]).round().tolist() == [0, 6], gm.converged_
        (True, True)
        """
        source = self._fit_parameters(X, sample_weight)
        if source.in_memory or hasattr(source, "map_rows"):  # arrays; lazy on Dask
            self.labels_ = self._per_row(source, "label")
        elif hasattr(self, "labels_"):
            del self.labels_  # n numbers in memory: predict() streams them instead
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of each row of X.

        Equal to ``fit(X).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> labels = GaussianMixture(2, random_state=0).fit_predict(X)
        >>> np.bincount(labels).tolist()
        [100, 100]
        """
        X = self._fit_parameters(X, sample_weight)
        # Final E-step, so that fit_predict(X) == fit(X).predict(X).
        self.labels_ = self._per_row(X, "label")
        return self.labels_

    def _fit_parameters(self, X: Any, sample_weight: Any) -> Any:
        """Everything of fit but ``labels_``; returns the validated data.

        Model selection uses it to skip the labels of candidates it discards.
        """
        check_parameters(self)
        with features_kept_on_failure(self):
            source = self._marked(training_source(self, X, sample_weight), fitting=True)
            piece = self._piece
            init = check_initial_parameters(self, piece, source.n_features)
            settings = EMSettings(
                tol=self.tol, max_iter=self.max_iter, reg_covar=self.reg_covar,
                reducer=self._reducer(source), verbose=self.verbose,
                verbose_interval=self.verbose_interval, callback=self.callback,
            )
            with single_threaded_blas():
                run = self._run(source, piece, init, settings)
        self._set_fitted(run, piece)
        place_attributes(self, source)  # tensors for tensor input
        if not run.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different "
                "init parameters, or increase max_iter, tol, or check for "
                "degenerate data.", ConvergenceWarning, stacklevel=3,
            )
        return source

    def _reducer(self, source: DataSource) -> Reducer:
        return reducer_for(resolve_threads(self.n_threads), source)

    def _run(
        self, source: DataSource, piece: CovarianceType,
        init: dict[str, np.ndarray | None], settings: EMSettings,
    ) -> EMRun:
        """EM from the last fit (warm start) or from ``n_init`` fresh starts."""
        if self._continues():
            self._check_continuable()
            # The first change is measured from the last fit's bound, which is
            # that of the parameters before its last M-step; after max_iter=0
            # it is the current parameters' own (scikit-learn's is -inf there),
            # so the first iteration would repeat it and "converge" at once.
            previous = self.lower_bound_ if self.n_iter_ else -np.inf
            return best_of_restarts(lambda _: self._params, 1, source, piece,
                                    settings, lower_bound=previous)
        rng = check_random_state(self.random_state)
        return best_of_restarts(
            lambda _: self._initial_params(source, piece, init, rng, settings),
            self.n_init, source, piece, settings,
        )

    def _continues(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "converged_")

    def _check_continuable(self, what: str = "warm_start=True",
                           afresh: str = "Set warm_start=False to start afresh"
                           ) -> None:
        """A warm start (or partial_fit) continues from the fitted parameters:
        they must be of the estimator's current n_components and covariance_type."""
        self._check_fitted_type(f"{what} continues from", f"{afresh}, or restore "
                                "those parameters.", components=True)

    def _check_fitted_type(self, what: str, remedy: str, *, components: bool) -> None:
        """Raise if the fitted parameters are not of ``covariance_type`` (and,
        with ``components``, of ``n_components``) as set now: changed by
        set_params since the fit, or attributes set for another type, they
        would mislead the kernels. Fitted and loaded models know their type
        (diag and tied factors have the same shape when K == d); for
        hand-set attributes the factors' shape tells."""
        k = len(self.weights_)
        shape = tuple(np.shape(self.precisions_cholesky_))
        fitted_type = self.__dict__.get("_fitted_covariance_type")
        if (shape == self._piece.param_shape(k, len(self.means_[0]))
                and fitted_type in (None, self.covariance_type)
                and not (components and k != self.n_components)):
            return
        fitted = "" if fitted_type is None else f"covariance_type={fitted_type!r}, "
        asked = f"n_components={self.n_components}, " if components else ""
        raise ValueError(
            f"{what} the fitted model ({k} components, {fitted}covariances of shape "
            f"{shape}), which does not fit {asked}covariance_type="
            f"{self.covariance_type!r} set since (or the attributes were set for "
            f"another type). {remedy}"
        )

    def _chunk_size(self, n_features: int, n_rows: int | None = None) -> int:
        """Rows per chunk in this process."""
        return self._rows_per_chunk(auto_chunk_size, n_features, n_rows=n_rows)

    def _worker_chunk_size(self, n_features: int) -> int:
        """Rows per chunk of a Dask array's blocks, on the workers."""
        return self._rows_per_chunk(worker_chunk_size, n_features)

    def _rows_per_chunk(self, automatic: Callable[..., int], n_features: int,
                        **problem: Any) -> int:
        """The user's ``chunk_size`` where set, else ``automatic``'s rows for
        this problem (``problem``: its further keywords)."""
        if self.chunk_size is not None:
            return int(self.chunk_size)
        return automatic(self.n_components, n_features, self._piece, **problem)

    def _initial_params(
        self, source: DataSource, piece: CovarianceType,
        init: dict[str, np.ndarray | None], rng: np.random.RandomState,
        settings: EMSettings,
    ) -> MixtureParams:
        weights, means, precisions = init["weights"], init["means"], init["precisions"]
        chol = (None if precisions is None else
                piece.precisions_cholesky_from_precisions(precisions))
        if weights is not None and means is not None and chol is not None:
            return MixtureParams(weights, means, piece.covariances_from_cholesky(chol),
                                 chol)  # nothing to draw
        # Given precisions replace the drawn start's covariances, which are then
        # never factored (as in scikit-learn: they may be singular); the start's
        # covariances and factors are then those of the given precisions.
        params = initial_params(source, piece, self.n_components,
                                self.init_params, rng, self.reg_covar, settings.reducer,
                                precisions_cholesky=chol)
        return MixtureParams(params.weights if weights is None else weights,
                             params.means if means is None else means,
                             params.covariances, params.precisions_cholesky)

    def _set_fitted(self, run: EMRun, piece: CovarianceType) -> None:
        p = run.params
        self.weights_ = p.weights
        self.means_ = p.means
        self.covariances_ = p.covariances
        self.precisions_cholesky_ = p.precisions_cholesky
        self.precisions_ = piece.precisions(p.precisions_cholesky)
        self._fitted_covariance_type = piece.name
        self.converged_ = bool(run.converged)
        self.n_iter_ = int(run.n_iter)
        # NumPy floats, as scikit-learn's (code may call their NumPy methods)
        self.lower_bound_ = np.float64(run.lower_bound)
        self.lower_bounds_ = [np.float64(b) for b in run.lower_bounds]
        self.__dict__.pop("_stream_", None)  # partial_fit's running statistics

    # -- fitted model --------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        """Fitted when the parameters predictions read are set (by a fit,
        :meth:`partial_fit`, :func:`gaussmix.load` or by hand): so that
        ``check_is_fitted`` raises NotFittedError, not a later AttributeError,
        on a model whose first fit failed."""
        return all(hasattr(self, name)
                   for name in ("weights_", "means_", "precisions_cholesky_"))

    @property
    def _piece(self) -> CovarianceType:
        return get_covariance_type(self.covariance_type)

    @property
    def _params(self) -> MixtureParams:
        """The fitted (or hand-set) parameters as host arrays. A model given
        only ``weights_``, ``means_`` and ``precisions_cholesky_`` predicts, as
        scikit-learn's does (predictions read only those); its covariances
        here come from the factors, exactly for upper factors as fits store."""
        self._check_fitted_type("predictions read", "Set covariance_type back to "
                                "the fitted type, or refit.", components=False)
        chol = to_host(self.precisions_cholesky_)
        covariances = getattr(self, "covariances_", None)
        covariances = (self._piece.covariances_from_cholesky(np.asarray(chol, np.float64))
                       if covariances is None else to_host(covariances))
        return MixtureParams(to_host(self.weights_), to_host(self.means_), covariances, chol)

    # -- persistence ---------------------------------------------------------
    def save(self, path: Any) -> Any:
        """Write the fitted model to ``path`` (see :mod:`gaussmix.files.model`).

        Returns the path written (``.npz`` appended unless there);
        :func:`gaussmix.load` reads it back.

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> import os, tempfile, gaussmix
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = gm.save(os.path.join(folder, "model"))
        ...     same = gaussmix.load(path)
        >>> path.name, bool((same.means_ == gm.means_).all())
        ('model.npz', True)
        """
        from .files.model import save_model

        return save_model(on_host(self), path)  # NumPy arrays, whatever was fitted


def _register_with_model_files() -> None:
    # gaussmix.files.model reads and writes plain records and never imports this
    # module (no import cycle); load_model builds estimators with what is
    # registered here, which ``import gaussmix`` always runs first.
    from .files.model import register_estimator
    from .files.model_record import estimator_from_record

    def build(record: Any) -> GaussianMixture:
        model = estimator_from_record(GaussianMixture, record)
        # the record's shapes were checked against its covariance_type
        model._fitted_covariance_type = model.covariance_type
        return model

    register_estimator("GaussianMixture", build)


_register_with_model_files()
