"""The EM loop: the reducer is a parameter, and a non-finite likelihood stops
with advice."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.loop import EMSettings, run_em
from gaussmix.engine.reducers import Sequential
from gaussmix.engine.sources import ArraySource


class CountingReducer:
    """Sequential, counting the chunks it maps: a reducer from outside."""

    def __init__(self) -> None:
        self.chunks = 0

    def map(self, func, source):
        for chunk in source.chunks():
            self.chunks += 1
            yield func(chunk)


def test_the_loop_takes_any_reducer(blobs):
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    source = ArraySource(blobs, None, 100)
    counting = CountingReducer()
    run = run_em(source, get_covariance_type("full"), gm._params,
                 EMSettings(tol=0.0, max_iter=4, reg_covar=1e-6, reducer=counting))
    plain = run_em(source, get_covariance_type("full"), gm._params,
                   EMSettings(tol=0.0, max_iter=4, reg_covar=1e-6, reducer=Sequential()))
    assert counting.chunks == 4 * source.n_chunks
    np.testing.assert_array_equal(run.params.means, plain.params.means)


def test_a_likelihood_that_overflows_stops_with_advice(blobs):
    X = np.vstack([blobs, [[1e160, 0.0]]])
    start = GaussianMixture(3, max_iter=0, random_state=0).fit(blobs)
    gm = GaussianMixture(3, weights_init=start.weights_, means_init=start.means_,
                         precisions_init=start.precisions_)
    with pytest.raises(ValueError, match="Scale the data"):
        gm.fit(X)
