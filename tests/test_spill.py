"""Spilling a file source's rows to a scratch file (``cache=``): the first full
pass writes them, later passes map them; results equal reading the file each
time; nothing is left in the folder; lack of room or a failed write falls back
to reading the file, with a warning; an interrupted pass spills nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gaussmix
from gaussmix import GaussianMixture
from gaussmix.files import spill as spill_module

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
# fits of a fixed number of iterations (tol=0) do not converge, by design
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture()
def parquet(tmp_path):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (700, 3)), rng.normal(5, 0.5, (500, 3))])
    w = rng.uniform(0.5, 2.0, len(X))
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "w": w}), path,
                   row_group_size=400)
    return path, X, w


def _rows(source):
    chunks = list(source.chunks())
    return (np.vstack([c.X for c in chunks]),
            None if chunks[0].sample_weight is None
            else np.concatenate([c.sample_weight for c in chunks]), [len(c.X) for c in chunks])


@pytest.mark.parametrize("weighted", [False, True])
def test_later_passes_map_the_spilled_rows_and_leave_no_file(parquet, tmp_path, weighted):
    path, X, w = parquet
    folder = tmp_path / "scratch"
    folder.mkdir()
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"],
                                    weights="w" if weighted else None,
                                    chunk_size=300, cache=folder)
    first, first_w, _ = _rows(source)
    assert source._spill.ready and os.listdir(folder) == []  # names gone at once
    source.batches = None  # later passes never read the file
    source.chunk_size = 500
    later, later_w, later_sizes = _rows(source)
    assert later_sizes == [500, 500, 200]  # the scratch file's chunks
    np.testing.assert_array_equal(first, X)
    np.testing.assert_array_equal(later, X)
    if weighted:
        np.testing.assert_array_equal(later_w, w)
        np.testing.assert_array_equal(first_w, w)
    else:
        assert later_w is None
    del source.batches
    source._spill.release()
    assert not source._spill.ready
    np.testing.assert_array_equal(_rows(source)[0], X)  # read and spilled again


def test_a_fit_from_spilled_rows_equals_the_in_memory_fit(parquet):
    path, X, w = parquet
    start = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_, tol=0, max_iter=5)
    reference = GaussianMixture(2, **init).fit(X, sample_weight=w)
    source = gaussmix.ParquetSource(path, weights="w", cache=True)
    fitted = GaussianMixture(2, **init).fit(source)
    assert source._spill.ready
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(fitted.covariances_, reference.covariances_, rtol=1e-10)
    np.testing.assert_allclose(fitted.score_samples(source), reference.score_samples(X),
                               rtol=1e-10)


def test_an_interrupted_pass_spills_nothing(parquet, tmp_path):
    path, X, _ = parquet
    folder = tmp_path / "scratch"
    folder.mkdir()
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"], chunk_size=300,
                                    cache=folder)
    chunks = source.chunks()
    next(chunks)
    assert len(os.listdir(folder)) == 1  # being written
    chunks.close()
    assert os.listdir(folder) == [] and not source._spill.ready
    np.testing.assert_array_equal(_rows(source)[0], X)
    assert source._spill.ready


def test_nan_in_the_file_raises_and_leaves_nothing(tmp_path):
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"a": pa.array([1.0, None, 3.0] * 100), "b": np.ones(300)}),
                   path)
    folder = tmp_path / "scratch"
    folder.mkdir()
    with pytest.raises(ValueError, match="NaN"):
        list(gaussmix.ParquetSource(path, cache=folder).chunks())
    assert os.listdir(folder) == []


def test_no_room_falls_back_with_a_warning(parquet, monkeypatch):
    path, X, _ = parquet
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(spill_module.shutil, "disk_usage",
                        lambda folder: usage._replace(free=10))
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"], cache=True)
    with pytest.warns(RuntimeWarning, match="GiB free"):
        rows = _rows(source)[0]
    np.testing.assert_array_equal(rows, X)
    assert not source._spill.ready
    np.testing.assert_array_equal(_rows(source)[0], X)  # no second warning needed


def test_a_failed_write_falls_back_with_a_warning(parquet, monkeypatch, tmp_path):
    path, X, _ = parquet
    folder = tmp_path / "scratch"
    folder.mkdir()
    calls = []

    def failing(self, X, w):
        calls.append(1)
        return "" if len(calls) < 2 else "writing the scratch file failed (disk full)"

    monkeypatch.setattr(spill_module._Scratch, "write", failing)
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"], chunk_size=300,
                                    cache=folder)
    with pytest.warns(RuntimeWarning, match="disk full"):
        rows = _rows(source)[0]
    np.testing.assert_array_equal(rows, X)
    assert not source._spill.ready and os.listdir(folder) == []


def test_zarr_spills_too_and_bad_folders_are_refused(tmp_path, parquet):
    zarr = pytest.importorskip("zarr")
    _, X, _ = parquet
    z = zarr.open_array(str(tmp_path / "z"), mode="w", shape=X.shape, chunks=(250, 3),
                        dtype="f8")
    z[:] = X
    source = gaussmix.ZarrSource(str(tmp_path / "z"), chunk_size=500, cache=True)
    assert _rows(source)[2] == [500, 500, 200]
    assert source._spill.ready
    np.testing.assert_array_equal(_rows(source)[0], X)
    with pytest.raises(ValueError, match="not an existing folder"):
        gaussmix.ParquetSource(parquet[0], cache=tmp_path / "nowhere")


def test_mapped_passes_hold_no_copy_of_the_rows(tmp_path):
    """Later passes hand out views of the mapped scratch file: a whole pass
    allocates next to nothing (the first pass holds one batch at a time)."""
    import tracemalloc

    X = np.random.default_rng(0).normal(size=(200_000, 4))
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({f"x{j}": X[:, j] for j in range(4)}), path,
                   row_group_size=50_000)
    source = gaussmix.ParquetSource(path, chunk_size=10_000, cache=tmp_path)
    for _ in source.chunks():
        pass
    assert source._spill.ready
    tracemalloc.start()
    total = sum(float(c.X[:, 0].sum()) for c in source.chunks())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == pytest.approx(X[:, 0].sum())
    assert peak < 64 * 1024  # the rows are 6.4 MB; one chunk would be 320 kB


# -- cache="auto", the default: fits spill, predictions do not ---------------
def _decoded_row_groups(monkeypatch):
    """The row groups every pass decodes from the Parquet file, in order."""
    decoded = []
    original = gaussmix.ParquetSource._read_group

    def counting(self, index, start):
        decoded.append(index)
        return original(self, index, start)

    monkeypatch.setattr(gaussmix.ParquetSource, "_read_group", counting)
    return decoded


def _mapped_scratch_files(folder):
    """Scratch files in ``folder`` this process still maps (Linux)."""
    with open("/proc/self/maps") as maps:
        return [line for line in maps if f"{folder}{os.sep}gaussmix-spill" in line]


def _spying(made):
    """RowSpill._spilling that records the folder of each spill that writes."""
    original = spill_module.RowSpill._spilling

    def spilling(self, chunks):
        made.append(self.folder)
        return original(self, chunks)

    return spilling


def _drain_pool():
    """Wait until the chunk threads have dequeued every task submitted so far."""
    from concurrent.futures import wait

    from gaussmix.engine.reducers import shared_pool
    from gaussmix.engine.threads import available_cores

    workers = max(1, available_cores() - 1)
    pool = shared_pool(workers)
    wait([pool.submit(lambda: None) for _ in range(workers)])


def _fixed_start(X, **more):
    start = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_, tol=0, max_iter=5, **more)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_a_fit_spills_by_default_and_drops_the_scratch_file_when_it_ends(
        parquet, monkeypatch, tmp_path):
    path, X, w = parquet
    decoded = _decoded_row_groups(monkeypatch)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the scratch files' folder
    source = gaussmix.ParquetSource(path, weights="w")
    made = []
    monkeypatch.setattr(spill_module.RowSpill, "_spilling", _spying(made))
    fitted = GaussianMixture(2, **_fixed_start(X)).fit(source)
    assert sorted(decoded) == [0, 1, 2]  # 5 passes, 1 decoded: 4 mapped the rows
    assert made == [str(tmp_path)]
    _drain_pool()  # a chunk a worker has yet to drop (a task the caller took over)
    assert source._spill is None and not _mapped_scratch_files(tmp_path)
    reference = GaussianMixture(2, **_fixed_start(X)).fit(X, sample_weight=w)
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(fitted.covariances_, reference.covariances_, rtol=1e-10)
    decoded.clear()
    fitted.score_samples(source)
    fitted.predict(source)  # single passes read the file: nothing spilled
    assert sorted(decoded) == [0, 0, 1, 1, 2, 2] and source._spill is None


def test_a_fit_without_cache_decodes_every_pass(parquet, monkeypatch):
    path, X, _ = parquet
    decoded = _decoded_row_groups(monkeypatch)
    GaussianMixture(2, **_fixed_start(X)).fit(
        gaussmix.ParquetSource(path, columns=["a", "b", "c"], cache=False))
    assert len(decoded) == 3 * 5  # a pass per iteration


def test_a_fit_without_room_warns_and_reads_the_file(parquet, monkeypatch):
    path, X, _ = parquet
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(spill_module.shutil, "disk_usage",
                        lambda folder: usage._replace(free=10))
    decoded = _decoded_row_groups(monkeypatch)
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"])
    with pytest.warns(RuntimeWarning, match="GiB free.*cache=False to silence"):
        fitted = GaussianMixture(2, **_fixed_start(X)).fit(source)
    assert len(decoded) == 3 * 5
    reference = GaussianMixture(2, **_fixed_start(X)).fit(X)
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10)


def test_a_selection_over_a_parquet_file_spills_by_default(parquet, monkeypatch):
    path, X, _ = parquet
    decoded = _decoded_row_groups(monkeypatch)
    settings = dict(n_init=1, max_iter=4, tol=0, random_state=0)
    spilled = gaussmix.select(gaussmix.ParquetSource(path, columns=["a", "b", "c"]),
                              (1, 2), ("full", "diag"), **settings)
    auto_passes = len(decoded) / 3
    decoded.clear()
    decoding = gaussmix.select(gaussmix.ParquetSource(path, columns=["a", "b", "c"],
                                                      cache=False),
                               (1, 2), ("full", "diag"), **settings)
    assert len(decoded) / 3 == auto_passes + 3  # 4 EM passes: 3 of them mapped
    for a, b in zip(spilled.table, decoding.table, strict=True):
        assert (a.n_components, a.covariance_type) == (b.n_components, b.covariance_type)
        assert a.bic == pytest.approx(b.bic, rel=1e-10)


def test_a_zarr_fit_spills_by_default(tmp_path, parquet, monkeypatch):
    zarr = pytest.importorskip("zarr")
    _, X, _ = parquet
    z = zarr.open_array(str(tmp_path / "z"), mode="w", shape=X.shape, chunks=(250, 3),
                        dtype="f8")
    z[:] = X
    reads = []
    original = gaussmix.ZarrSource._read_rows
    monkeypatch.setattr(gaussmix.ZarrSource, "_read_rows",
                        lambda self, a, b: reads.append(a) or original(self, a, b))
    source = gaussmix.ZarrSource(str(tmp_path / "z"), chunk_size=500)
    fitted = GaussianMixture(2, **_fixed_start(X)).fit(source)
    assert reads == [0, 500, 1000] and source._spill is None
    reference = GaussianMixture(2, **_fixed_start(X)).fit(X)
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10)


def test_a_folder_named_auto_is_a_folder(parquet, tmp_path, monkeypatch):
    path, _, _ = parquet
    (tmp_path / "auto").mkdir()
    monkeypatch.chdir(tmp_path)
    source = gaussmix.ParquetSource(path, cache=Path("auto"))
    assert source._spill is not None and source._spill.folder == "auto"
    assert gaussmix.ParquetSource(path)._spill is None  # the string: fits spill


def test_a_folder_without_write_access_falls_back_with_a_warning(parquet, monkeypatch):
    path, X, _ = parquet

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(spill_module.tempfile, "mkstemp", refused)
    source = gaussmix.ParquetSource(path, columns=["a", "b", "c"])
    with pytest.warns(RuntimeWarning, match="scratch file in .* failed .*Permission"):
        fitted = GaussianMixture(2, **_fixed_start(X)).fit(source)
    reference = GaussianMixture(2, **_fixed_start(X)).fit(X)
    np.testing.assert_allclose(fitted.means_, reference.means_, rtol=1e-10)
