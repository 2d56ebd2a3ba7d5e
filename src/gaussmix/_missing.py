"""Missing values for :class:`gaussmix.GaussianMixture`: ``missing="marginalize"``
and :meth:`~MissingValuesMixin.impute`.

The estimator side of :mod:`gaussmix.engine.incomplete`: which sources hold
rows with NaN (NumPy arrays, file or chunk sources, Dask arrays), and imputation
under the fitted mixture. Kept out of :mod:`gaussmix.mixture` so
that module stays short.

Initialisation with missing values (:func:`gaussmix.engine.init.mean_filled`):
the starting point is the ordinary one (``init_params``, e.g. k-means, then one
M-step) computed on a copy of the rows it draws from (X, or a source's sample)
whose NaN are replaced by their column's (weighted) mean; EM with exact
marginalisation starts from there, and its first E-step already uses only the
observed coordinates, which undoes the shrinkage the filled copy puts into the
starting covariances. Without NaN in X the start is the ordinary one exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .engine.incomplete import MarginalKernel
from .engine.incomplete.draws import RowDraws, row_draws
from .engine.sources import ArraySource, DataSource
from .engine.xp import array_namespace, from_host, to_host
from .engine.xp import is_torch_array as is_torch
from .inputs import dask_source, is_dask
from .validation import check_data


class MissingValuesMixin:
    """Adds missing-value handling and :meth:`impute` to GaussianMixture."""

    def impute(self, X: Any, *, n_draws: int | None = None,
               random_state: Any = None) -> np.ndarray:
        """Fill the NaN entries of X from the fitted mixture.

        With ``n_draws=None``, each missing entry becomes its conditional
        expectation given the row's observed entries,
        ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]`` (the best
        imputation in squared error under the model). With an int, returns
        that many multiple imputations: each row's component is drawn from
        ``p(k | x_o)`` and its missing entries from that component's
        conditional Gaussian. Works on any fitted model, whatever ``missing``
        was at fit; a row with nothing observed gets the mixture's mean (or a
        draw from the mixture).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with NaN where values are missing (inf is an error).
        n_draws : int or None, default=None
            Number of multiple imputations to draw; None gives the conditional
            expectation.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws. An int gives the same draws on any machine,
            whatever the chunk size or the number of threads (and the same as
            ``gaussmix impute --draw --seed`` on a file of these rows).

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features), or
            (n_draws, n_samples, n_features) when ``n_draws`` is an int.
            Observed entries are returned unchanged. A torch tensor gives a
            tensor on its device (imputed on the host); a Dask array gives a
            lazy Dask array of the conditional expectations (imputed on the
            workers, block by block), or with ``n_draws`` is computed (NumPy
            result).

        Raises
        ------
        ValueError
            For an incomplete row so far from every component that its
            density underflows to 0 (from about 1e154 standard deviations;
            ``predict_proba`` then gives it wholly to the nearest
            component, but impute does not extrapolate from it).

        Examples
        --------
        >>> import numpy as np
        >>> from gaussmix import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 2000)
        >>> gm = GaussianMixture(1, random_state=0).fit(X)
        >>> filled = gm.impute([[2.0, np.nan]])
        >>> bool(abs(filled[0, 1] - 0.9 * 2.0) < 0.15)
        True
        >>> gm.impute([[2.0, np.nan]], n_draws=3, random_state=0).shape
        (3, 1, 2)
        """
        est: Any = self
        check_is_fitted(est)
        if is_torch(X):  # imputed on the host, returned as a tensor where X is
            filled = self.impute(to_host(X, None), n_draws=n_draws,
                                 random_state=random_state)
            return from_host(filled, array_namespace(X), X.dtype, X.device)
        if is_dask(X) and n_draws is None:
            return self._lazy_imputation(X)
        X = check_data(est, X, reset=False, allow_nan=True)
        if n_draws is not None and not (isinstance(n_draws, (int, np.integer))
                                        and not isinstance(n_draws, bool) and n_draws >= 1):
            raise ValueError(f"n_draws must be None or an int >= 1, got {n_draws!r}.")
        source, kernel = self._imputing(X)
        if n_draws is None:
            parts = est._reducer(source).map(
                lambda c: kernel.impute(c.X, check_density=True), source)
            return np.concatenate(list(parts)).astype(X.dtype, copy=False)
        return np.stack([_drawn_rows(source, kernel, draws) for draws in
                         row_draws(random_state, n_draws, X.shape[1] + 1)])

    def _drawn(self, X: Any, draws: RowDraws, first_row: int = 0) -> np.ndarray:
        """One multiple imputation of X, whose rows are rows ``first_row`` on
        of the draws' (:mod:`gaussmix.engine.incomplete.draws`: the draws do
        not depend on how the rows are cut into chunks, so a file imputed
        chunk by chunk gets the draws of its rows in memory)."""
        X = check_data(self, X, reset=False, allow_nan=True)
        return _drawn_rows(*self._imputing(X), draws, first_row)

    def _imputing(self, X: np.ndarray) -> tuple[ArraySource, MarginalKernel]:
        """Checked rows X as a source, and the kernel that imputes them."""
        est: Any = self
        source = ArraySource(X, None, est._chunk_size(X.shape[1], X.shape[0]))
        return source, MarginalKernel.build(est._piece, est._params, source.spec)

    def _lazy_imputation(self, X: Any) -> Any:
        """:meth:`impute`'s conditional expectations of a Dask array, lazily."""
        est: Any = self
        source: Any = dask_source(est, X, None, reset=False)
        source = source.reading_missing(fitting=False)  # NaN read as missing values
        kernel = MarginalKernel.build(est._piece, est._params, source.spec)
        return source.map_rows(
            lambda c: kernel.impute(c.X, check_density=True).astype(c.X.dtype, copy=False),
            source.n_features, source.spec.dtype)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        # NaN are marginalised only by the NumPy kernels: with a device, torch
        # computes and fit refuses them (inputs.TORCH_NAN_ADVICE).
        tags.input_tags.allow_nan = (getattr(self, "missing", "raise") == "marginalize"
                                     and getattr(self, "device", None) is None)
        return tags

    # -- hooks for GaussianMixture --------------------------------------------
    def _marked(self, source: DataSource, *, fitting: bool,
                columns_needed: bool = True) -> DataSource:
        """The source, marked as holding missing values when ``missing`` is
        'marginalize': an in-memory array with NaN, or a file or chunk source
        (a copy that reads NaN as missing, see
        :meth:`~gaussmix.engine.sources.ReadsMissing.reading_missing`, Dask
        arrays too; tensors keep rejecting NaN). Fitting rejects rows with
        nothing observed, and columns with nothing observed in a row of
        positive weight unless ``columns_needed`` is False (a later batch of
        :meth:`partial_fit`: the running statistics already hold those
        columns, so a batch of one row may have a NaN). A file or chunk source
        has its rows checked as they are read, its columns in the rows
        initialisation draws (see :func:`gaussmix.engine.init.mean_filled`)."""
        est: Any = self
        if getattr(est, "missing", "raise") != "marginalize" or getattr(
                source, "missing", False):
            return source
        if not isinstance(source, ArraySource):
            marking = getattr(source, "reading_missing", None)
            return source if marking is None else marking(fitting=fitting)
        mask = np.isnan(to_host(source.X, source.X.dtype))
        if not mask.any():
            return source
        if fitting:
            weights = source.sample_weight
            _check_observed(mask, None if weights is None else to_host(weights),
                            columns=columns_needed)
        return dataclasses.replace(source, missing=True)


def _drawn_rows(source: ArraySource, kernel: MarginalKernel, draws: RowDraws,
                first_row: int = 0) -> np.ndarray:
    """One multiple imputation of the source's rows, chunk by chunk, row i
    taking the draws' row ``first_row + i``."""
    X = source.X
    parts = [kernel.impute(X[start:stop], draws.rows(first_row + start, first_row + stop),
                           check_density=True)
             for start, stop in source.ranges()]
    return np.concatenate(parts).astype(X.dtype, copy=False)


def _check_observed(mask: np.ndarray, weights: np.ndarray | None = None, *,
                    columns: bool = True) -> None:
    """Raise for rows (and, with ``columns``, columns) of ``mask`` (True where
    missing) that are missing throughout. A row of weight 0 counts for
    nothing, so a column observed only in such rows (``weights``) is as
    empty as one of NaN only: EM could not leave its starting values there."""
    if columns:
        seen = ~mask if weights is None else ~mask & (weights > 0)[:, None]
        empty = np.flatnonzero(~seen.any(axis=0))
        _raise_for_empty_columns(empty, weighted=bool(empty.size)
                                 and not mask[:, empty[0]].all())
    _raise_for_empty_rows(np.flatnonzero(mask.all(axis=1)))


def _raise_for_empty_columns(columns: np.ndarray, *, weighted: bool = False) -> None:
    """``weighted``: the first is observed, in rows of sample_weight 0 only."""
    if columns.size:
        where = " in the rows of positive sample_weight" if weighted else " (all NaN)"
        raise ValueError(
            f"{columns.size} column(s) of X have no observed value{where}; the "
            f"first is column {columns[0]}. Nothing can be learnt about them: drop "
            "them before fitting."
        )


def _raise_for_empty_rows(empty: np.ndarray) -> None:
    if empty.size:
        raise ValueError(
            f"{empty.size} row(s) of X have every feature missing (NaN); the first "
            f"is row {empty[0]}. Such rows carry no information about the mixture: "
            "drop them before fitting, e.g. X[~np.isnan(X).all(axis=1)] (predict, "
            "score_samples and impute accept them)."
        )
