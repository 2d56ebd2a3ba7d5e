"""Spilling a file source's rows to a scratch file (``cache=``): the first full
pass writes them, later passes map them; results equal reading the file each
time; nothing is left in the folder; lack of room or a failed write falls back
to reading the file, with a warning; an interrupted pass spills nothing."""

from __future__ import annotations

import os
import shutil

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
