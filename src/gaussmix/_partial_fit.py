"""``partial_fit``: stepwise EM on batches, for :class:`gaussmix.GaussianMixture`.

The estimator side of :mod:`gaussmix.engine.streaming`: batch validation,
initialisation from the first batch, and the fitted attributes after each
step. Kept out of :mod:`gaussmix.mixture` so that module stays short.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from .engine.loop import EMRun, EMSettings
from .engine.sources import ArraySource, scale_weights
from .engine.streaming import StepSize, StreamState, stream_step
from .engine.threads import single_threaded_blas
from .engine.xp import to_host
from .inputs import is_data_source, is_torch
from .validation import (
    STEP_PARAMETERS,
    check_data,
    check_initial_parameters,
    check_parameters,
    check_sample_weight,
    check_weighted_rows,
)


class PartialFitMixin:
    """Adds :meth:`partial_fit` to :class:`gaussmix.GaussianMixture`."""

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Update the model with one batch of rows (stepwise EM).

        Online EM in the manner of Cappé & Moulines (2009): the batch's
        statistics at the current parameters (one E-step, chunked as in
        :meth:`fit`) are blended into running statistics with the step size
        ``rho_t = (learning_offset + t)^(-learning_decay)``, ``t`` the number of
        steps taken so far, then one M-step runs on the running statistics.
        Running statistics are per row, so batches may differ in size; each
        batch counts as much as any other.

        The first call (on a model that is not fitted) initialises from its
        batch as :meth:`fit` does (``init_params``, ``weights_init``,
        ``means_init``, ``precisions_init``, ``random_state``) and takes the
        batch's statistics as the running statistics. On a model fitted by
        :meth:`fit` or loaded from a file, a new stream starts from its
        parameters: running statistics are neither kept by :meth:`fit` nor
        saved in model files, so the first batch's step has step size 1 (the
        model becomes one EM iteration on that batch alone) and ``n_iter_``
        counts from 1 again. ``n_components`` and ``covariance_type`` cannot
        change once fitted (ValueError); the other parameters a step reads
        (``reg_covar``, the step size's, ``missing``, ``chunk_size``,
        ``n_threads``) may change between calls. ``n_init``, ``tol``,
        ``max_iter``, ``warm_start``, ``verbose``, ``callback`` and
        ``device`` are not used (one start, one step per call, on the host).

        Prefer it to :meth:`fit` for data that arrive over time or that can be
        read only once; when the data can be read again, :meth:`fit` over a
        data source (:class:`~gaussmix.IterableSource`, :class:`~gaussmix.NpySource`)
        gives the exact maximum-likelihood answer in bounded memory.

        A call has a fixed cost of about 0.2-0.6 ms, and a batch of a few
        thousand rows runs its E-step on one thread: batches of 10,000-50,000
        rows cost per row about what an iteration of :meth:`fit` does
        (1.1-2x on 2 cores, where 1,000-row batches cost 5-8x; see the
        README).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch of rows (a torch tensor is copied to the host; a data
            source is refused with TypeError: fit it instead). The first
            batch needs at least ``max(2, n_components)`` rows, later batches
            at least one.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row of the batch; an integer weight
            counts the row that many times within its batch.

        Returns
        -------
        self : GaussianMixture
            With the fitted attributes of :meth:`fit`: ``lower_bound_`` is the
            batch's weighted mean log-likelihood before the update,
            ``lower_bounds_`` holds it alone, ``n_iter_`` counts the steps of
            the stream and ``converged_`` is always False (a stream has no
            end to converge at).

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> gm = GaussianMixture(2, random_state=0)
        >>> for _ in range(20):
        ...     batch = np.concatenate([rng.normal(0, 1, (50, 2)),
        ...                             rng.normal(8, 1, (50, 2))])
        ...     gm = gm.partial_fit(batch)
        >>> np.sort(gm.means_[:, 0]).round().tolist() == [0.0, 8.0]
        True
        >>> gm.n_iter_, gm.converged_
        (20, False)
        """
        est: Any = self
        if is_torch(X):  # steps run on the host (NumPy): one copy of the batch
            X = to_host(X, None)
        if is_torch(sample_weight):
            sample_weight = to_host(sample_weight)
        fitted = hasattr(est, "means_")
        state: StreamState | None = getattr(est, "_stream_", None)
        rate = StepSize(est.learning_offset, est.learning_decay)
        step_settings = _step_settings(est)
        # All parameters on the first call; later, those a step reads, and only
        # when they differ from the last step's (validation is a good part of
        # a small batch's fixed cost).
        if not fitted or state is None or state.settings != step_settings:
            check_parameters(est, None if not fitted else STEP_PARAMETERS)
            if fitted:  # a stream continues from the fitted parameters
                est._check_continuable(
                    "partial_fit",
                    "Call fit, or partial_fit on clone(estimator), to start afresh")
        piece = est._piece
        batch, unchecked = self._batch_source(X, sample_weight, first=not fitted)
        reducer = est._reducer(batch)
        with single_threaded_blas():
            if fitted:
                params = _fitted_params(est, state)
            else:
                init = check_initial_parameters(est, piece, batch.n_features)
                settings = EMSettings(tol=est.tol, max_iter=1,
                                      reg_covar=est.reg_covar, reducer=reducer)
                params = est._initial_params(batch, piece, init,
                                             check_random_state(est.random_state),
                                             settings)
            # NaN or inf in an unchecked batch flow into its statistics (no
            # warnings on the way) and the pass raises.
            quiet = (np.errstate(invalid="ignore", over="ignore") if unchecked
                     else contextlib.nullcontext())
            try:
                with quiet:
                    params, state, lower_bound = stream_step(
                        batch, piece, params, state, rate, est.reg_covar, reducer,
                        step_settings)
            except (ValueError, ArithmeticError):
                if unchecked:  # NaN or inf in the batch: the validation's message
                    check_data(est, X, reset=False, min_samples=1)
                raise
        est._set_fitted(EMRun(params, lower_bound, [lower_bound], state.n_steps),
                        piece)
        est._stream_ = state
        est.__dict__.pop("labels_", None)  # labels of an earlier fit's rows
        return est

    def _batch_source(self, X: Any, sample_weight: Any, *, first: bool
                      ) -> tuple[ArraySource, bool]:
        """The batch as a source, and whether its values are still to be
        checked for NaN and inf (a plain batch: see :func:`_plain_batch`)."""
        est: Any = self
        if is_data_source(X):
            raise TypeError(
                f"partial_fit takes one batch of rows as an array-like, not a "
                f"{type(X).__name__}. Pass each batch as an array; for rows that "
                "can be read again, fit(source) gives the exact maximum-likelihood "
                "answer."
            )
        plain = None if first else _plain_batch(est, X)
        X = (plain if plain is not None
             else check_data(est, X, reset=first, min_samples=2 if first else 1))
        if first and len(X) < est.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{est.n_components}, n_samples = {len(X)}: the first batch of "
                "partial_fit initialises the mixture and needs at least one row "
                "per component. Pass a larger first batch or lower n_components."
            )
        weights = scale_weights(check_sample_weight(sample_weight, len(X)))
        if first and weights is not None:
            check_weighted_rows(int(np.count_nonzero(weights)), est.n_components)
        source = ArraySource(X, weights, est._chunk_size(X.shape[1], len(X)))
        # Only the first batch needs every column observed (it initialises).
        return (est._marked(source, fitting=True, columns_needed=first),
                plain is not None)


def _fitted_params(est: Any, state: StreamState | None) -> Any:
    """The fitted parameters: the last step's own while the attributes still
    hold them (the usual case: no conversions), else from the attributes."""
    last = None if state is None else state.params
    if last is not None and (est.weights_ is last.weights and est.means_ is last.means
                             and est.covariances_ is last.covariances
                             and est.precisions_cholesky_ is last.precisions_cholesky):
        return last
    return est._params


def _step_settings(est: Any) -> tuple[Any, ...]:
    """The parameters a later step reads, with their types (so that a value
    of another type, ``True`` for ``1``, does not skip the check)."""
    return tuple((type(v), v) for v in (getattr(est, name) for name in STEP_PARAMETERS))


def _plain_batch(est: Any, X: Any) -> np.ndarray | None:
    """A later batch that scikit-learn's validation would return as it is, if
    finite: a 2-D float32/float64 NumPy array of the fitted width, for a model
    fitted without feature names. None for anything else, which goes through
    :func:`~gaussmix.validation.check_data` (conversions, feature names, and
    the messages for a wrong width or NaN). That validation is most of a
    small batch's fixed cost, and reading a large batch once more only to
    find NaN or inf costs a sixth of its E-step: a plain batch's values are
    checked by the pass itself instead (a NaN or inf gives a log-likelihood
    that is not finite, the pass raises, and :meth:`partial_fit` then runs
    the validation for its message). With ``missing='marginalize'`` NaN are
    data: such batches are checked here as before.
    """
    if not (type(X) is np.ndarray and X.dtype in (np.float32, np.float64)
            and X.ndim == 2 and X.shape[0] >= 1
            and X.shape[1] == getattr(est, "n_features_in_", None)
            and not hasattr(est, "feature_names_in_")):
        return None
    if getattr(est, "missing", "raise") != "marginalize":
        return X
    with np.errstate(over="ignore", invalid="ignore"):
        return X if np.isfinite(np.sum(X)) else None
