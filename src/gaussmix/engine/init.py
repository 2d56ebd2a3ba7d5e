"""Initial parameters: responsibilities from k-means, k-means++, random rows or
random soft assignments (as scikit-learn draws them), then one exact M-step.

From an in-memory source the draws consume the random state exactly as
scikit-learn's GaussianMixture does, so the same ``random_state`` gives the
same starting point. From any other source (a memory-mapped file, a stream of
chunks) initialisation runs on a uniform random sample of at most
:data:`INIT_SAMPLE_ROWS` rows, drawn in one pass (reservoir sampling), so
all rows are never in memory at once.

The M-step from responsibilities takes two passes: the first finds each
component's mean from plain first moments, the second takes every
component's second moments about its own mean from each row's residual, so
no digits are lost to an outlier or a distant component.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .chunk_checks import check_enough_rows, check_weighted_rows
from .covariance import CovarianceType
from .mstep import NK_FLOOR, m_step
from .params import MixtureParams
from .reducers import Reducer, fold
from .sampling import sample_rows
from .sources import ArraySource, Chunk, DataSource, auto_chunk_size
from .stats import SuffStats
from .xp import array_namespace, from_host, to_host

# Rows that initialisation from a source not in memory works on.
INIT_SAMPLE_ROWS = 50_000

RespFn = Callable[[int, int], np.ndarray]


def initial_params(
    source: DataSource, piece: CovarianceType, n_components: int, method: str,
    rng: np.random.RandomState, reg_covar: float, reducer: Reducer,
    precisions_cholesky: np.ndarray | None = None,
) -> MixtureParams:
    """Starting parameters by ``method`` (see scikit-learn's ``init_params``);
    given ``precisions_cholesky`` (from ``precisions_init``) are kept as they
    are, and only weights and means come from the drawn responsibilities."""
    rows, resp = drawn_responsibilities(source, n_components, method, rng, piece)
    return params_from_responsibilities(rows, resp, piece, reg_covar, reducer,
                                        precisions_cholesky)


def drawn_responsibilities(
    source: DataSource, n_components: int, method: str, rng: np.random.RandomState,
    piece: CovarianceType | None = None,
) -> tuple[ArraySource, RespFn]:
    """The rows initialisation works on (all of an in-memory source, else a
    sample of at most :data:`INIT_SAMPLE_ROWS`, see
    :func:`~gaussmix.engine.sampling.sample_rows`; NaN of a source with
    missing values filled by :func:`mean_filled`) and their initial
    responsibilities by ``method``; model selection shares one draw among
    covariance types (``piece`` only sizes the sample's chunks)."""
    X, w = sample_rows(source, INIT_SAMPLE_ROWS, rng)
    if not source.in_memory:  # (arrays are checked as they are validated)
        check_enough_rows(len(X), n_components)  # a stream of unknown length
        if w is not None:  # rows of weight zero count as absent, as in arrays
            of = (f" of the {len(X)} initialisation samples" if len(X) >= INIT_SAMPLE_ROWS
                  else "")  # (fewer rows: it read them all)
            check_weighted_rows(int(np.count_nonzero(to_host(w))), n_components, of=of)
    chunk = (source.chunk_size if isinstance(source, ArraySource)
             else auto_chunk_size(n_components, X.shape[1], piece))
    if getattr(source, "missing", False):  # rows with NaN: see mean_filled
        whole = source.in_memory or len(X) < INIT_SAMPLE_ROWS
        X = mean_filled(to_host(X, X.dtype), None if w is None else to_host(w),
                        source=None if whole else source)
        rows = ArraySource(X, w, chunk)
    else:
        rows = source if isinstance(source, ArraySource) else ArraySource(X, w, chunk)
    resp = initial_responsibilities(to_host(X, X.dtype), None if w is None else to_host(w),
                                    n_components, method, rng)
    return rows, resp


def mean_filled(X: np.ndarray, w: np.ndarray | None, *,
                source: DataSource | None = None) -> np.ndarray:
    """X with each NaN (a missing value) replaced by its column's weighted
    mean: where EM with missing values starts (its first E-step already uses
    only the observed values, which undoes the shrinkage the filled rows put
    into the start's covariances). A column with no observed value in a row
    of positive weight raises (estimators check the columns of arrays before
    this). ``source``: X is a sample of its rows; a column the sample never
    observes takes its mean over every row of the source (one more pass)."""
    observed = ~np.isnan(X)
    w = np.ones(len(X)) if w is None else w
    seen = observed.T @ w
    means = (np.where(observed, X, 0.0).T @ w) / np.where(seen > 0, seen, 1.0)
    empty = np.flatnonzero(~(seen > 0))
    if empty.size and source is not None:
        means[empty], seen[empty] = _column_means(source, empty)
        empty = np.flatnonzero(~(seen > 0))
    if empty.size:
        raise ValueError(
            f"{empty.size} column(s) of the data have no observed value (NaN only) in "
            "its rows of positive sample_weight; the first is column "
            f"{empty[0]}. Nothing can be learnt about such a column: drop it before "
            "fitting.")
    return np.where(observed, X, means[None, :]).astype(X.dtype, copy=False)


def _column_means(source: DataSource, columns: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The weighted means of ``columns`` over the observed values of every row
    of ``source``, and the weight observed in each."""
    total, seen = np.zeros(len(columns)), np.zeros(len(columns))
    for chunk in source.chunks():
        X = to_host(chunk.X, chunk.X.dtype)[:, columns].astype(np.float64)
        w = (np.ones(len(X)) if chunk.sample_weight is None
             else to_host(chunk.sample_weight).astype(np.float64))
        observed = ~np.isnan(X)
        seen += observed.T @ w
        total += np.where(observed, X, 0.0).T @ w
    return total / np.where(seen > 0, seen, 1.0), seen


def initial_responsibilities(
    X: np.ndarray, sample_weight: np.ndarray | None, n_components: int,
    method: str, rng: np.random.RandomState,
) -> RespFn:
    """A function ``(start, stop) -> resp`` (rows x K) giving initial
    responsibilities."""
    n_samples = len(X)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=n_components, n_init=1, random_state=rng)
        return _one_hot(km.fit(X, sample_weight=sample_weight).labels_, n_components)
    if method == "k-means++":
        from sklearn.cluster import kmeans_plusplus

        _, idx = kmeans_plusplus(X, n_components, random_state=rng,
                                 sample_weight=sample_weight)
        return _seeded_rows(idx, n_samples)
    if method == "random_from_data":
        p = None if sample_weight is None else sample_weight / sample_weight.sum()
        idx = rng.choice(n_samples, size=n_components, replace=False, p=p)
        return _seeded_rows(idx, n_samples)
    if method == "random":
        resp = rng.uniform(size=(n_samples, n_components)).astype(X.dtype)
        resp /= resp.sum(axis=1)[:, None]
        return lambda start, stop: resp[start:stop]
    raise ValueError(f"Unknown init_params {method!r}.")


def _one_hot(labels: np.ndarray, n_components: int) -> RespFn:
    def resp(start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, n_components))
        out[np.arange(stop - start), labels[start:stop]] = 1.0
        return out

    return resp


def _seeded_rows(indices: np.ndarray, n_samples: int) -> RespFn:
    # Component k starts as the single row indices[k].
    labels = np.full(n_samples, -1)
    labels[indices] = np.arange(len(indices))
    n_components = len(indices)

    def resp(start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, n_components))
        rows = np.flatnonzero(labels[start:stop] >= 0)
        out[rows, labels[start:stop][rows]] = 1.0
        return out

    return resp


def params_from_responsibilities(
    source: ArraySource, resp_fn: RespFn, piece: CovarianceType, reg_covar: float,
    reducer: Reducer, precisions_cholesky: np.ndarray | None = None,
) -> MixtureParams:
    """One M-step from given responsibilities, in two passes (see above);
    ``precisions_cholesky``, if given, replace its covariances."""
    with_resp = _WithResponsibilities(source, resp_fn)
    first = fold(_first_moments, with_resp, reducer)
    means = first.means()
    stats = fold(lambda c: _moments_about(piece, means, c), with_resp, reducer)
    return m_step(stats, piece, reg_covar, precisions_cholesky=precisions_cholesky)


class _WithResponsibilities:
    """An in-memory source whose chunks carry responsibilities as weights
    (K, n), the sample weights already folded in."""

    def __init__(self, source: ArraySource, resp_fn: RespFn) -> None:
        self.source, self.resp_fn = source, resp_fn
        self.n_chunks = source.n_chunks

    def chunks(self):  # noqa: ANN201 - an iterator of (X, (resp, w))
        w = self.source.sample_weight
        for a, b in self.source.ranges():
            X = self.source.X[a:b]
            resp = self.resp_fn(a, b)
            if w is not None:
                resp = resp * to_host(w[a:b])[:, None]
            xp = array_namespace(X)
            yield Chunk(X, (from_host(resp.T, xp, X.dtype, self.source.spec.device),
                            None if w is None else w[a:b]))


class _FirstMoments:
    """Per-component weight and plain first moment, plus the data's."""

    def __init__(self, nk, s1, total_w, total_x, min_weight):  # noqa: ANN001
        self.nk, self.s1 = nk, s1
        self.total_w, self.total_x, self.min_weight = total_w, total_x, min_weight

    def __add__(self, other: _FirstMoments) -> _FirstMoments:
        return _FirstMoments(self.nk + other.nk, self.s1 + other.s1,
                             self.total_w + other.total_w, self.total_x + other.total_x,
                             min(self.min_weight, other.min_weight))

    def means(self) -> np.ndarray:
        """Component means; an empty component sits at the data's mean.

        No floor is added to the divisor: a component of one row far away
        (an outlier) then has that row as its mean exactly.
        """
        scale = self.min_weight if np.isfinite(self.min_weight) else 1.0
        empty = self.nk <= NK_FLOOR * scale
        data_mean = self.total_x / self.total_w
        divisor = np.where(empty, 1.0, self.nk)[:, None]
        return np.where(empty[:, None], data_mean, self.s1 / divisor)


def _first_moments(chunk: Chunk) -> _FirstMoments:
    X, (resp, w) = chunk
    xp = array_namespace(X)
    X64 = xp.astype(X, xp.float64, copy=False)
    weights = xp.ones_like(X64[:, 0]) if w is None else xp.astype(w, xp.float64, copy=False)
    return _FirstMoments(
        nk=to_host(xp.sum(xp.astype(resp, xp.float64, copy=False), axis=1)),
        s1=to_host(xp.astype(resp, xp.float64, copy=False) @ X64),
        total_w=float(to_host(xp.sum(weights))),
        total_x=to_host(weights @ X64),
        min_weight=_min_positive(w),
    )


def _moments_about(piece: CovarianceType, means: np.ndarray, chunk: Chunk) -> SuffStats:
    X, (resp, w) = chunk
    xp = array_namespace(X)
    s1, s2 = piece.direct_moments(X, resp, means)
    return SuffStats(
        covariance_type=piece.name,
        nk=to_host(xp.sum(xp.astype(resp, xp.float64, copy=False), axis=1)), s1=s1, s2=s2,
        shift=means, loglik=0.0,
        weight=float(X.shape[0]) if w is None else float(to_host(xp.sum(w))),
        min_weight=_min_positive(w),
    )


def _min_positive(w: Any) -> float:
    if w is None:
        return 1.0
    host = to_host(w)
    positive = host[host > 0]
    return float(positive.min()) if positive.size else float("inf")
