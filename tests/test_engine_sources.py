"""Data sources: a memory-mapped file and a re-iterable of chunks fit exactly as
the same rows in memory; initialisation from them works on a bounded sample."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, assert_same_fit, draw_mixture

from gaussmix import GaussianMixture, IterableSource, NpySource
from gaussmix.engine import init as init_module
from gaussmix.engine.reducers import Sequential, ThreadPool, fold
from gaussmix.engine.sampling import sample_rows
from gaussmix.engine.sources import ArraySource


@pytest.fixture
def data():
    X, _ = draw_mixture(3000, [[0, 0, 0], [6, 0, 1], [0, 7, -2]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]], [0.3, 0.3, 0.4])
    return X


def _start(X, ct, seed=0):
    gm = GaussianMixture(3, covariance_type=ct, max_iter=0, random_state=seed).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_,
                precisions_init=gm.precisions_)


def _chunks(X, sizes=(700, 1, 999, 1300), weights=None):
    bounds = np.cumsum((0,) + sizes)
    assert bounds[-1] == len(X)
    return [X[a:b] if weights is None else (X[a:b], weights[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_memmap_and_chunks_fit_as_in_memory_from_the_same_start(data, ct, tmp_path):
    start = _start(data, ct)
    path = tmp_path / "rows.npy"
    np.save(path, data)
    reference = GaussianMixture(3, covariance_type=ct, **start).fit(data)
    from_file = GaussianMixture(3, covariance_type=ct, chunk_size=512, **start).fit(
        NpySource(path))
    from_chunks = GaussianMixture(3, covariance_type=ct, **start).fit(
        IterableSource(_chunks(data), chunk_size=400))
    assert_same_fit(from_file, reference)
    assert_same_fit(from_chunks, reference)
    np.testing.assert_array_equal(from_file.predict(NpySource(path)),
                                  reference.predict(data))
    np.testing.assert_allclose(from_chunks.score_samples(IterableSource(_chunks(data))),
                               reference.score_samples(data), rtol=1e-12)


def test_weighted_chunks_fit_as_weighted_rows(data):
    w = np.random.default_rng(3).uniform(0.1, 3.0, len(data))
    start = _start(data, "full")
    reference = GaussianMixture(3, **start).fit(data, sample_weight=w)
    chunked = GaussianMixture(3, **start).fit(IterableSource(_chunks(data, weights=w)))
    assert_same_fit(chunked, reference)
    path_weights = GaussianMixture(3, **start)
    with pytest.raises(ValueError, match="through the data source"):
        path_weights.fit(IterableSource(_chunks(data)), sample_weight=w)


def test_small_file_starts_where_the_same_rows_in_memory_start(data, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, data)
    a = GaussianMixture(3, random_state=0).fit(data)
    b = GaussianMixture(3, random_state=0).fit(NpySource(path))
    assert_same_fit(a, b, rtol=1e-12)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_default_init_from_a_sample_is_as_good_on_separated_data(data, ct, monkeypatch):
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 500)
    in_memory = GaussianMixture(3, covariance_type=ct, random_state=0).fit(data)
    streamed = GaussianMixture(3, covariance_type=ct, random_state=0).fit(
        IterableSource(lambda: iter(_chunks(data))))
    assert streamed.score(data) == pytest.approx(in_memory.score(data), abs=1e-3)


def test_reservoir_sample_is_bounded_uniform_and_in_order():
    X = np.arange(20000.0)[:, None]
    source = IterableSource(lambda: (X[i:i + 3000] for i in range(0, len(X), 3000)))
    sample, weights = sample_rows(source, 1000, np.random.RandomState(0))
    assert sample.shape == (1000, 1) and weights is None
    assert np.all(np.diff(sample[:, 0]) > 0)  # original order, no repeats
    # a uniform sample of 1000 from 0..19999: mean 9999.5, sd of the mean ~ 180
    assert abs(sample.mean() - 9999.5) < 5 * 5773 / np.sqrt(1000)
    again, _ = sample_rows(source, 1000, np.random.RandomState(0))
    np.testing.assert_array_equal(sample, again)


def test_sources_say_what_they_know(data, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, data.astype(np.float32))
    npy = NpySource(path, chunk_size=1000)
    assert (npy.n_rows, npy.n_features, npy.n_chunks) == (3000, 3, 3)
    assert npy.reiterable and not npy.in_memory and npy.spec.dtype == np.float32
    chunks = IterableSource(_chunks(data))
    assert chunks.n_rows is None and chunks.n_features == 3 and not chunks.in_memory
    array = ArraySource(data, None, 1024)
    assert array.in_memory and array.n_chunks == 3


def test_bad_sources_are_refused_with_advice(data, tmp_path):
    with pytest.raises(TypeError, match="more than once"):
        IterableSource(iter(_chunks(data)))
    bad = data.copy()
    bad[2000, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        GaussianMixture(2).fit(IterableSource(_chunks(bad)))
    with pytest.raises(ValueError, match="same columns"):
        GaussianMixture(2).fit(IterableSource([data[:100], data[100:200, :2]]))
    path = tmp_path / "three.npy"
    np.save(path, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-D numeric"):
        NpySource(path)
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(2).fit(IterableSource([(data, -np.ones(len(data)))]))


def test_a_thread_pool_reads_a_bounded_number_of_chunks_ahead(data):
    lock, state = threading.Lock(), {"open": 0, "most": 0}

    class Counting:
        n_chunks = None

        def chunks(self):
            for i in range(0, len(data), 100):
                with lock:
                    state["open"] += 1
                    state["most"] = max(state["most"], state["open"])
                yield data[i:i + 100], None

    def work(chunk):
        with lock:
            state["open"] -= 1
        return 1

    assert fold(work, Counting(), ThreadPool(2)) == 30
    assert state["most"] <= 4 + 1
    assert fold(work, Counting(), Sequential()) == 30


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_the_fit(data, threads):
    start = _start(data, "diag")
    one = GaussianMixture(3, covariance_type="diag", n_threads=1, chunk_size=300,
                          **start).fit(data)
    many = GaussianMixture(3, covariance_type="diag", n_threads=threads, chunk_size=300,
                           **start).fit(data)
    np.testing.assert_array_equal(one.means_, many.means_)
    assert one.lower_bound_ == many.lower_bound_


def test_integer_and_list_chunks_are_read_as_float64(data, tmp_path):
    ints = np.rint(data * 10).astype(np.int64)
    source = IterableSource([ints[:1500].tolist(), ints[1500:]])
    assert source.spec.dtype == np.float64
    path = tmp_path / "ints.npy"
    np.save(path, ints.astype(np.int16))
    assert NpySource(path).spec.dtype == np.float64
    start = _start(ints.astype(float), "diag")
    a = GaussianMixture(3, covariance_type="diag", **start).fit(ints.astype(float))
    assert_same_fit(GaussianMixture(3, covariance_type="diag", **start).fit(source), a)
    assert_same_fit(GaussianMixture(3, covariance_type="diag", **start).fit(NpySource(path)),
                     a)


def test_fitting_a_file_keeps_no_per_row_labels(data, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, data)
    gm = GaussianMixture(3, random_state=0).fit(data)
    assert len(gm.labels_) == len(data)
    gm.fit(NpySource(path))
    assert not hasattr(gm, "labels_")
    np.testing.assert_array_equal(gm.fit_predict(NpySource(path)), gm.predict(data))


@pytest.mark.parametrize("cores", [2, 16])
def test_inputs_are_cut_into_enough_chunks_for_the_cores(cores, monkeypatch):
    """Chunks are cut for many cores: at least about two per core while a
    chunk keeps a quarter of its work; a 2-core machine keeps them."""
    from gaussmix.engine import sources
    from gaussmix.engine.covariance import get_covariance_type

    monkeypatch.setattr(sources, "available_cores", lambda: cores)
    tied = get_covariance_type("tied")
    ordinary = sources.auto_chunk_size(8, 16, tied)
    rows = sources.auto_chunk_size(8, 16, tied, n_rows=500_000)
    chunks = -(-500_000 // rows)
    if cores == 2:
        assert rows == 62_500 and ordinary == 65_536  # 8 even chunks, as before
    else:
        assert 2 * cores - 1 <= chunks <= 2 * cores  # evened out: 32 of 15,625
    # a partial_fit batch keeps two pieces of 5,000 rows, any cores
    full = get_covariance_type("full")
    assert sources.auto_chunk_size(8, 16, full, n_rows=10_000) == 5_000
    # full covariances' chunks of 1M rows are small already: the cores change nothing
    assert sources.auto_chunk_size(8, 16, full, n_rows=1_000_000) == \
        sources.even_chunk_rows(sources.auto_chunk_size(8, 16, full), 1_000_000)


def test_a_file_is_checked_in_its_first_complete_pass_only(tmp_path, monkeypatch):
    from gaussmix.engine import sources

    rows = np.arange(40.0).reshape(20, 2)
    rows[13, 1] = np.nan
    path = tmp_path / "rows.npy"
    np.save(path, rows)
    checked = []
    real = sources.check_chunk
    monkeypatch.setattr(sources, "check_chunk",
                        lambda X, *a: checked.append(len(X)) or real(X, *a))
    source = NpySource(path, chunk_size=6)
    for _ in range(2):  # a pass that raised checks again next time
        with pytest.raises(ValueError, match="NaN"):
            list(source.chunks())
    reading = source.reading_missing(fitting=True)  # NaN as missing values
    assert [len(c.X) for c in reading.chunks()] == [6, 6, 6, 2]
    assert sum(checked) == 18 + 18 + 20  # the raising passes end at chunk 12..17
    checked.clear()
    assert np.isnan(np.concatenate([c.X for c in reading.chunks()])[13, 1])
    assert checked == []  # checked already, as this copy reads NaN
    with pytest.raises(ValueError, match="NaN"):  # the original: NaN still refused
        list(source.chunks())
