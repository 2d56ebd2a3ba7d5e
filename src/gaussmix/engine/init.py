"""Initial parameters: responsibilities from k-means, k-means++, random rows or
random soft assignments (as scikit-learn draws them), then one M-step.

The draws consume the random state exactly as scikit-learn's GaussianMixture
does, so the same ``random_state`` gives the same starting point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .covariance import CovarianceType
from .estep import resp_statistics
from .mstep import m_step
from .params import MixtureParams
from .sources import ArraySource, fold

RespFn = Callable[[int, int], np.ndarray]


def initial_responsibilities(
    X: np.ndarray, sample_weight: np.ndarray | None, n_components: int,
    method: str, rng: np.random.RandomState,
) -> RespFn:
    """A function ``(start, stop) -> resp`` giving rows' initial responsibilities."""
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
    n_threads: int = 1,
) -> MixtureParams:
    """One M-step from given responsibilities, in two passes.

    The first pass finds the means (moments about the data mean), the second
    takes the moments about those means so that no digits are lost.
    """
    dtype = source.X.dtype
    n_features = source.X.shape[1]
    n_components = resp_fn(0, 1).shape[1]
    center = np.average(source.X, axis=0, weights=source.sample_weight)
    shift = np.broadcast_to(center, (n_components, n_features)).astype(np.float64)
    X, w = source.X, source.sample_weight
    for _ in range(2):
        state = piece.moment_state(shift, dtype)
        chunks = (
            (X[a:b], resp_fn(a, b), None if w is None else w[a:b])
            for a, b in source.ranges()
        )
        stats = fold(
            lambda Xc, resp, wc, state=state: resp_statistics(piece, state, Xc, resp, wc),
            chunks, n_threads,
        )
        params = m_step(stats, piece, reg_covar)
        shift = piece.shift(params.means, params.weights)
    return params
