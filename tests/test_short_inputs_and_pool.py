"""Short inputs are cut so that threads share them; chunk threads are started once."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.engine import reducers
from gaussmix.engine.sources import ArraySource
from gaussmix.engine.splitting import even_chunk_rows


@pytest.mark.parametrize("n_rows", [1, 249, 250, 999, 1000, 1999, 2000, 3999, 4000, 4001,
                                    5000, 12_345, 15_999, 16_001, 1_000_000])
def test_pieces_are_even_and_not_too_small(n_rows):
    chunk = even_chunk_rows(1000, n_rows)
    pieces = -(-n_rows // chunk)
    sizes = [min(chunk, n_rows - i * chunk) for i in range(pieces)]
    assert 1 <= chunk <= 1000 and sum(sizes) == n_rows
    assert max(sizes) - min(sizes) < pieces  # equal but for the rounding
    if pieces < 16:
        assert pieces in (1, 2) or pieces % 4 == 0  # even work for 2 or 4 threads
    if pieces == 2:
        assert min(sizes) >= 125  # halves of at least an eighth of a chunk
    if pieces > 2:
        assert min(sizes) >= 250 - pieces  # at least about a quarter of a chunk
    # cut no finer than that: the next larger cut would have had smaller pieces
    assert pieces == 1 or n_rows >= pieces * (125 if pieces == 2 else 250) - pieces
    assert (n_rows < 250) == (pieces == 1)  # two pieces from 2 x 125 rows on


def _blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 7.0, -3.0]])
    return centres[rng.integers(3, size=n)] + rng.standard_normal((n, 3))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_a_cut_batch_streams_as_one_chunk_does(covariance_type):
    X = _blobs(40_000)
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                            max_iter=2).fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)
    cut = GaussianMixture(3, covariance_type=covariance_type, n_threads=2, **init)
    whole = GaussianMixture(3, covariance_type=covariance_type, chunk_size=len(X),
                            n_threads=1, **init)
    assert cut._chunk_size(X.shape[1], len(X)) < len(X)  # the batch is cut
    for part in np.array_split(X, 3):
        cut.partial_fit(part)
        whole.partial_fit(part)
    np.testing.assert_allclose(cut.means_, whole.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cut.covariances_, whole.covariances_, rtol=1e-12)
    np.testing.assert_allclose(cut.weights_, whole.weights_, rtol=1e-12)


def test_fit_on_short_input_does_not_depend_on_threads():
    X = _blobs(40_000, seed=1)
    one = GaussianMixture(3, random_state=0, n_threads=1).fit(X)
    two = GaussianMixture(3, random_state=0, n_threads=2).fit(X)
    source = ArraySource(X, None, one._chunk_size(X.shape[1], len(X)))
    assert source.n_chunks > 1  # cut, the same way for both
    np.testing.assert_array_equal(one.means_, two.means_)
    np.testing.assert_array_equal(one.covariances_, two.covariances_)


def _names_of_threads_used(func):
    seen = set()

    def record(chunk):
        seen.add(threading.current_thread().name)
        return 0

    source = ArraySource(np.zeros((40, 2)), None, 5)
    for _ in range(3):
        assert sum(reducers.ThreadPool(2).map(record, source)) == 0
    return seen


def test_chunk_threads_are_started_once_and_shared():
    seen = _names_of_threads_used(None)
    # three passes on two threads: the caller and the one worker of the
    # shared pool (the same worker every pass)
    workers = {name for name in seen if name.startswith("gaussmix-chunks")}
    assert len(workers) <= 1
    assert seen - workers <= {threading.current_thread().name}
    assert reducers.shared_pool(1) is reducers.shared_pool(1)


class _HeldFirstChunk:
    """Four chunks of 5 rows; the first is handed to a worker and held there
    until ``release`` is set, the others are read only once it started."""

    n_chunks = 4

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def chunks(self):
        rows = ArraySource(np.arange(20.0)[:, None], None, 5)
        for i, chunk in enumerate(rows.chunks()):
            if i == 1:
                assert self.started.wait(10)
            yield chunk

    def hold(self, chunk) -> None:
        if chunk.X[0, 0] == 0:
            self.started.set()
            assert self.release.wait(10)


def test_caller_takes_over_queued_chunks_in_order():
    # While the worker holds the first chunk, the caller runs the three
    # others queued after it; the results still come in chunk order.
    source, ran_by = _HeldFirstChunk(), {}

    def work(chunk):
        source.hold(chunk)
        ran_by[int(chunk.X[0, 0])] = threading.current_thread().name
        if len(ran_by) == 3:
            source.release.set()
        return int(chunk.X[0, 0])

    assert list(reducers.ThreadPool(2).map(work, source)) == [0, 5, 10, 15]
    caller = threading.current_thread().name
    assert ran_by[0] != caller
    assert [ran_by[start] for start in (5, 10, 15)] == [caller] * 3


def test_an_error_in_a_chunk_run_by_the_caller_comes_at_its_turn():
    source = _HeldFirstChunk()

    def work(chunk):
        source.hold(chunk)
        if chunk.X[0, 0] == 5:  # run by the caller while the worker holds chunk 0
            source.release.set()
            raise ArithmeticError("chunk 5")
        return int(chunk.X[0, 0])

    results = reducers.ThreadPool(2).map(work, source)
    assert next(results) == 0  # the first chunk's result before the error
    with pytest.raises(ArithmeticError, match="chunk 5"):
        next(results)

def _threaded_fit():
    # No k-means start: GNU OpenMP, which k-means uses, hangs in a forked child
    # of a process that used it (scikit-learn's own GaussianMixture too).
    return GaussianMixture(3, random_state=0, n_threads=2, chunk_size=500,
                           init_params="random_from_data").fit(_blobs(3000, seed=2))


def _fit_in_child(queue):
    queue.put(float(_threaded_fit().lower_bound_))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs the fork start method")
def test_a_forked_child_starts_its_own_threads():
    here = _threaded_fit()  # the parent's chunk threads exist
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_fit_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0  # no hang on the parent's (absent) threads
    assert queue.get(timeout=5) == pytest.approx(here.lower_bound_, rel=1e-12)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_nested_blas_limits_keep_the_outer_one_until_it_ends():
    from gaussmix.engine.threads import single_threaded

    outside = _blas_threads()
    with single_threaded(user_api=None):
        with single_threaded():  # a pass inside a fit: nothing to do
            assert all(n == 1 for n in _blas_threads())
        assert all(n == 1 for n in _blas_threads())  # not undone by the inner exit
    assert _blas_threads() == outside
    with single_threaded():
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == outside
