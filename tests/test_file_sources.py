"""Files larger than memory: fits from a memory-mapped .npy file, a Parquet file
and a Zarr array equal the in-memory fit from the same start, with and without
sample weights; default initialisation from a file (a bounded sample) is as good
on well-separated data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from pool_threads import only_caller_and_workers, recording_threads

import gaussmix
from gaussmix import GaussianMixture, NpySource, _optional
from gaussmix.engine import init as init_module

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zarr = pytest.importorskip("zarr")

ParquetSource, ZarrSource = gaussmix.ParquetSource, gaussmix.ZarrSource


@pytest.fixture(scope="module")
def data():
    X, _ = draw_mixture(2000, [[0, 0, 0], [6, 0, 1], [0, 7, -2]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]], [0.3, 0.3, 0.4])
    w = np.random.default_rng(5).uniform(0.1, 3.0, len(X))
    return X, w


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    X, w = data
    folder = tmp_path_factory.mktemp("files")
    npy, parquet, store = folder / "rows.npy", folder / "rows.parquet", folder / "z"
    np.save(npy, X)
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "w": w})
    pq.write_table(table, parquet, row_group_size=700)  # 3 row groups
    z = zarr.open_array(str(store), mode="w", shape=X.shape, chunks=(300, 3),
                        dtype="f8")
    z[:] = X
    return {"npy": npy, "parquet": parquet, "zarr": store}


def _source(kind, files, data, weighted, chunk_size=256):
    _, w = data
    weights = w if weighted else None
    # "-spilled": rows spilled to a scratch file on the first pass, mapped after
    kind, cache = kind.removesuffix("-spilled"), kind.endswith("-spilled")
    if kind == "npy":
        return NpySource(files["npy"], chunk_size=chunk_size, sample_weight=weights)
    if kind == "parquet":
        return ParquetSource(files["parquet"], columns=["a", "b", "c"],
                             weights="w" if weighted else None, chunk_size=chunk_size,
                             cache=cache)
    return ZarrSource(files["zarr"], chunk_size=chunk_size, sample_weight=weights,
                      cache=cache)


def _start(X, ct):
    gm = GaussianMixture(3, covariance_type=ct, max_iter=0, random_state=0).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_,
                precisions_init=gm.precisions_)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("kind", ["npy", "parquet", "zarr", "parquet-spilled",
                                  "zarr-spilled"])
def test_file_fits_equal_the_in_memory_fit(kind, ct, weighted, data, files):
    X, w = data
    start = _start(X, ct)
    reference = GaussianMixture(3, covariance_type=ct, **start).fit(
        X, sample_weight=w if weighted else None)
    fitted = GaussianMixture(3, covariance_type=ct, **start).fit(
        _source(kind, files, data, weighted))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(fitted, name), getattr(reference, name),
                                   rtol=1e-10, atol=1e-12)
    assert fitted.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-10)
    assert fitted.n_iter_ == reference.n_iter_
    source = _source(kind, files, data, weighted=False, chunk_size=333)
    np.testing.assert_array_equal(fitted.predict(source), reference.predict(X))
    np.testing.assert_allclose(fitted.score_samples(source), reference.score_samples(X),
                               rtol=1e-10)
    np.testing.assert_allclose(fitted.predict_proba(source), reference.predict_proba(X),
                               rtol=1e-8, atol=1e-12)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # Parquet's
@pytest.mark.parametrize("kind", ["npy", "parquet", "zarr"])
def test_default_init_from_a_file_is_as_good_on_separated_data(kind, data, files,
                                                               monkeypatch):
    X, _ = data
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 500)  # a true sample
    in_memory = GaussianMixture(3, random_state=0).fit(X)
    from_file = GaussianMixture(3, random_state=0).fit(
        _source(kind, files, data, weighted=False))
    assert from_file.score(X) == pytest.approx(in_memory.score(X), abs=1e-3)


def test_chunks_are_bounded_and_follow_the_file(data, files):
    X, w = data
    parquet = ParquetSource(files["parquet"], weights="w", chunk_size=256)
    assert (parquet.columns, parquet.n_rows, parquet.n_features) == (["a", "b", "c"],
                                                                     2000, 3)
    chunks = list(parquet.chunks())
    assert max(len(c.X) for c in chunks) <= 256
    np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), X)
    np.testing.assert_array_equal(np.concatenate([c.sample_weight for c in chunks]), w)
    # Zarr: whole Zarr chunks (300 rows) per read, as many as fit in chunk_size
    z = ZarrSource(files["zarr"], chunk_size=700)
    assert [len(c.X) for c in z.chunks()] == [600, 600, 600, 200] and z.n_chunks == 4
    assert [len(c.X) for c in ZarrSource(files["zarr"], chunk_size=10).chunks()][0] == 300
    opened = ZarrSource(zarr.open_array(str(files["zarr"]), mode="r"))
    np.testing.assert_array_equal(np.vstack([c.X for c in opened.chunks()]), X)
    assert not parquet.in_memory and parquet.reiterable and not z.in_memory


def test_float32_integer_and_null_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"f": np.arange(4, dtype=np.float32),
                             "g": np.ones(4, dtype=np.float32),
                             "i": np.arange(4), "s": ["a", "b", "c", "d"]}), path)
    assert ParquetSource(path, columns=["f", "g"]).dtype == np.float32
    mixed = ParquetSource(path)  # numeric columns only, as float64
    assert mixed.columns == ["f", "g", "i"] and mixed.dtype == np.float64
    with pytest.raises(ValueError, match="not numeric"):
        ParquetSource(path, columns=["f", "s"])
    with pytest.raises(ValueError, match="no column 'x'"):
        ParquetSource(path, columns=["x"])
    with pytest.raises(ValueError, match="weights column"):
        ParquetSource(path, columns=["f", "g"], weights="g")
    nulls = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": pa.array([1.0, None, 3.0]), "b": [1.0, 2.0, 3.0]}),
                   nulls)
    with pytest.raises(ValueError, match=r"rows 0\.\.2 of .* NaN"):
        list(ParquetSource(nulls).chunks())


def test_bad_zarr_arrays_are_refused(tmp_path):
    z = zarr.open_array(str(tmp_path / "z"), mode="w", shape=(4,), dtype="f8")
    with pytest.raises(ValueError, match="2-D numeric"):
        ZarrSource(z)
    ok = zarr.open_array(str(tmp_path / "ok"), mode="w", shape=(4, 2), dtype="i4")
    ok[:] = 1
    source = ZarrSource(ok, sample_weight=np.ones(4))
    assert source.dtype == np.float64
    with pytest.raises(ValueError, match="one weight per row"):
        ZarrSource(ok, sample_weight=np.ones(3))


@pytest.mark.parametrize(("name", "package", "extra"),
                         [("ParquetSource", "pyarrow", "io"),
                          ("ZarrSource", "zarr", "zarr")])
def test_a_missing_package_names_the_extra(name, package, extra, monkeypatch, tmp_path):
    real_import = _optional.importlib.import_module

    def without_package(module, *args, **kwargs):
        if module.split(".")[0] == package:
            raise ModuleNotFoundError(f"No module named {package!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(_optional.importlib, "import_module", without_package)
    with pytest.raises(ImportError, match=rf"gaussmix\[{extra}\]"):
        getattr(gaussmix, name)(str(tmp_path / "x"))


def test_readme_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    code = re.search(r"## From files larger than memory\n.*?```python\n(.*?)```", text,
                     re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README files larger than memory", "exec"), namespace)
    assert namespace["labels"].shape == (20_000,)


def test_parquet_row_groups_are_read_in_the_worker_threads(data, files, tmp_path):
    """A thread pool reads each row group in a worker thread (decoding does
    not wait on the calling thread), in order, with the rows of a sequential
    pass; a bad value is reported with its rows."""
    from gaussmix.engine.reducers import Sequential, ThreadPool

    X, w = data
    source = _source("parquet", files, data, weighted=True, chunk_size=256)
    reads = source.chunk_reads()
    assert len(reads) == 3  # row groups of 700 rows
    look, threads = recording_threads()
    pooled = list(ThreadPool(2).map(look, source))
    assert only_caller_and_workers(threads)
    sizes = [len(c.X) for c in pooled]
    assert sorted(sizes) == sorted([256, 256, 188] * 2 + [256, 256, 88])
    sequential = list(Sequential().map(lambda c: c, source))
    np.testing.assert_array_equal(np.vstack([c.X for c in pooled]), X)
    np.testing.assert_array_equal(np.concatenate([c.sample_weight for c in pooled]), w)
    np.testing.assert_array_equal(np.vstack([c.X for c in sequential]), X)

    bad = X.copy()
    bad[1500, 1] = np.nan
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"a": bad[:, 0], "b": bad[:, 1], "c": bad[:, 2]}), path,
                   row_group_size=700)
    with pytest.raises(ValueError, match=r"rows 1400\.\.1655 of .* NaN"):
        list(ThreadPool(2).map(len, ParquetSource(path, chunk_size=256)))
    spilled = ParquetSource(path, cache=True)
    assert spilled.chunk_reads() is None  # the spilling pass writes rows in order


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_parquet_fits_do_not_depend_on_the_threads(data, files):
    X, _ = data
    start = _start(X, "full")
    fits = [GaussianMixture(3, n_threads=t, max_iter=5, tol=0, **start).fit(
        _source("parquet", files, data, weighted=True)) for t in (1, 2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


def test_zarr_chunks_are_read_in_the_worker_threads(data, files):
    from gaussmix.engine.reducers import ThreadPool

    X, w = data
    source = _source("zarr", files, data, weighted=True, chunk_size=700)
    assert len(source.chunk_reads()) == source.n_chunks == 4  # 600-row reads
    look, seen = recording_threads()
    chunks = list(ThreadPool(2).map(look, source))
    assert only_caller_and_workers(seen)
    np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), X)
    np.testing.assert_array_equal(np.concatenate([c.sample_weight for c in chunks]), w)
    assert _source("zarr-spilled", files, data, weighted=False).chunk_reads() is None
