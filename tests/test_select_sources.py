"""Model selection over rows not in memory: Dask arrays and DataFrames, files
(.npy, Parquet, Zarr) and streams give the in-memory selection from the same
starts; large sources are seeded from the bounded sample single fits use, and
Dask passes stay on the blocks; ``gaussmix select`` streams large files."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose

from gaussmix import GaussianMixture, IterableSource, NpySource, select
from gaussmix.selection import GaussianMixtureSearch

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed")

KS = (1, 2, 3)
TYPES = ("full", "tied", "diag", "spherical")
SETTINGS = {"random_state": 0, "max_iter": 20}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, 0.0], [0.0, 7.0, 3.0]])
    X = centres[rng.integers(0, 3, 900)] + rng.normal(size=(900, 3)) * [1, 0.6, 1.4]
    w = rng.uniform(0.2, 3.0, len(X))
    return X, w


@pytest.fixture(scope="module")
def in_memory(data):
    X, w = data
    return {weighted: select(X, KS, TYPES, sample_weight=w if weighted else None,
                             **SETTINGS) for weighted in (False, True)}


def assert_same_selection(got, expected, rtol=1e-10):
    assert [(c.n_components, c.covariance_type) for c in got.table] == \
        [(c.n_components, c.covariance_type) for c in expected.table]
    for a, b in zip(got.table, expected.table, strict=True):
        assert_allclose([a.log_likelihood, a.bic, a.aic, a.icl],
                        [b.log_likelihood, b.bic, b.aic, b.icl], rtol=rtol)
        assert (a.n_iter, a.converged, a.n_parameters) == (b.n_iter, b.converged,
                                                          b.n_parameters)
    assert got.best_.n_components == expected.best_.n_components
    assert got.best_.covariance_type == expected.best_.covariance_type
    assert_allclose(got.n_samples, expected.n_samples, rtol=1e-12)
    for name in ("weights_", "means_", "covariances_"):
        assert_allclose(getattr(got.best_estimator_, name),
                        getattr(expected.best_estimator_, name), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_dask_array_equals_in_memory(data, in_memory, weighted):
    X, w = data
    dX = da.from_array(X, chunks=(250, 2))
    dw = da.from_array(w, chunks=300) if weighted else None
    with dask.config.set(scheduler="threads"):
        got = select(dX, KS, TYPES, sample_weight=dw, **SETTINGS)
        assert isinstance(got.best_estimator_.labels_, da.Array)  # lazy, as fit's
        labels = got.best_estimator_.labels_.compute()
    assert_same_selection(got, in_memory[weighted])
    np.testing.assert_array_equal(labels, in_memory[weighted].best_estimator_.labels_)


@pytest.mark.parametrize("weighted", [False, True])
def test_npy_source_equals_in_memory(data, in_memory, weighted, tmp_path):
    X, w = data
    np.save(tmp_path / "rows.npy", X)
    source = NpySource(tmp_path / "rows.npy", chunk_size=128,
                       sample_weight=w if weighted else None)
    got = select(source, KS, TYPES, **SETTINGS)
    assert_same_selection(got, in_memory[weighted])
    assert not hasattr(got.best_estimator_, "labels_")  # n numbers: predict streams


def test_parquet_and_zarr_equal_in_memory(data, in_memory, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    zarr = pytest.importorskip("zarr")
    from gaussmix.files.sources import ParquetSource, ZarrSource

    X, w = data
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "w": w}),
                   tmp_path / "rows.parquet", row_group_size=200)
    z = zarr.open_array(str(tmp_path / "rows.zarr"), mode="w", shape=X.shape,
                        chunks=(100, 3), dtype="f8")
    z[:] = X
    for source in (ParquetSource(tmp_path / "rows.parquet", weights="w"),
                   ZarrSource(str(tmp_path / "rows.zarr"), sample_weight=w)):
        assert_same_selection(select(source, KS, ("full", "spherical"), **SETTINGS),
                              _subset(in_memory[True], ("full", "spherical")))


def _subset(result, types):
    from gaussmix.selection import SelectionResult

    table = [c for c in result.table if c.covariance_type in types]
    best = min(table, key=lambda c: (c.bic, c.n_parameters))
    return SelectionResult(table=table, criterion="bic",
                           best_estimator_=result.estimators_[(best.n_components,
                                                                best.covariance_type)],
                           estimators_=result.estimators_, n_samples=result.n_samples,
                           seeding_time={}, total_time=0.0)


@pytest.mark.parametrize("kind", ["npy", "stream"])
def test_large_source_is_seeded_from_the_sample_a_single_fit_uses(data, tmp_path,
                                                                  monkeypatch, kind):
    # More rows than the initialisation sample (or a stream, whose rows are
    # not known in advance): each K's k-means runs on the sample a single fit
    # with the same seed draws, so every candidate equals
    # GaussianMixture(K, covariance_type=t, random_state=seed).fit(source).
    X, w = data
    monkeypatch.setattr("gaussmix.engine.init.INIT_SAMPLE_ROWS", 200)
    np.save(tmp_path / "rows.npy", X)
    parts = [(X[i:i + 333], w[i:i + 333]) for i in range(0, len(X), 333)]
    source = (NpySource(tmp_path / "rows.npy", chunk_size=128, sample_weight=w)
              if kind == "npy" else IterableSource(parts, chunk_size=128))
    result = select(source, (2, 3), ("full", "diag"), **SETTINGS)
    for (k, cov), model in result.estimators_.items():
        single = GaussianMixture(k, covariance_type=cov, chunk_size=128,
                                 **SETTINGS).fit(source)
        assert_allclose(model.means_, single.means_, rtol=1e-10, atol=1e-12)
        assert model.n_iter_ == single.n_iter_
    # ... and not the in-memory start: the sample differs from all rows.
    whole = select(X, (3,), ("full",), sample_weight=w, **SETTINGS)
    assert not np.allclose(whole.best_estimator_.lower_bounds_[0],
                           result.estimators_[(3, "full")].lower_bounds_[0])


def test_dask_passes_stay_on_the_blocks(data, monkeypatch):
    # Seeding samples on the blocks and every pass is a tree reduction: no
    # block is ever sent to the client as a chunk.
    from gaussmix.backends.dask import DaskSource

    def no_client_pass(self):
        raise AssertionError("a pass pulled the blocks to the client")

    monkeypatch.setattr(DaskSource, "chunks", no_client_pass)
    monkeypatch.setattr("gaussmix.engine.init.INIT_SAMPLE_ROWS", 300)
    X, w = data
    with dask.config.set(scheduler="threads"):
        result = select(da.from_array(X, chunks=200), (2, 3), ("full", "spherical"),
                        sample_weight=da.from_array(w, chunks=200), **SETTINGS)
    assert (result.best_.n_components, result.best_.error) == (3, None)
    # the BIC's n is the weights' total, not the power-of-two-scaled total
    assert_allclose(result.n_samples, w.sum(), rtol=1e-12)


def test_criteria_pass_over_a_dask_array_stays_on_the_blocks(data, monkeypatch):
    from gaussmix.backends.dask import DaskSource
    from gaussmix.selection import log_likelihood_and_entropy

    X, w = data
    model = GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    expected = log_likelihood_and_entropy(model, X, w)
    monkeypatch.setattr(DaskSource, "chunks", lambda self: pytest.fail("pulled"))
    with dask.config.set(scheduler="threads"):
        got = log_likelihood_and_entropy(model, da.from_array(X, chunks=200),
                                         da.from_array(w, chunks=200))
    assert_allclose(got, expected, rtol=1e-12)


def test_dask_dataframe_keeps_column_names(data):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, _ = data
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=3)
    with dask.config.set(scheduler="threads"):
        search = GaussianMixtureSearch(n_components=(2, 3),
                                       covariance_types=("diag",), **SETTINGS)
        search.fit(frame)
        assert list(search.feature_names_in_) == ["a", "b", "c"]
        assert all(list(m.feature_names_in_) == ["a", "b", "c"]
                   for m in search.result_.estimators_.values())
        with pytest.raises(ValueError, match="same order"):
            search.predict(frame[["b", "a", "c"]])
    expected = select(pd.DataFrame(X, columns=["a", "b", "c"]), (2, 3), ("diag",),
                      **SETTINGS)
    assert_allclose(search.result_.best_.bic, expected.best_.bic, rtol=1e-10)


def test_search_estimator_over_a_file(data, tmp_path):
    X, _ = data
    np.save(tmp_path / "rows.npy", X)
    search = GaussianMixtureSearch(n_components=(2, 3), covariance_types=("full",),
                                   **SETTINGS).fit(NpySource(tmp_path / "rows.npy"))
    assert not hasattr(search, "labels_")
    assert search.best_params_ == {"n_components": 3, "covariance_type": "full"}
    assert search.predict(X).shape == (len(X),)


def test_sources_bring_their_own_weights(data, tmp_path):
    X, w = data
    np.save(tmp_path / "rows.npy", X)
    with pytest.raises(ValueError, match="through the data source"):
        select(NpySource(tmp_path / "rows.npy"), KS, sample_weight=w)
    np.save(tmp_path / "four.npy", X[:4])
    with pytest.raises(ValueError, match="goes up to 5 but X has only 4"):
        select(NpySource(tmp_path / "four.npy"), (5,))


# ------------------------------------------------------------------- CLI
def _table(output: str) -> list[list[str]]:
    rows = [line.split() for line in output.splitlines()]
    return [r[:-1] for r in rows if len(r) >= 10 and re.fullmatch(r"[\d.]+", r[-1])]


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_cli_select_streams_large_files(data, tmp_path, monkeypatch, fmt):
    from gaussmix.cli import inputs as cli_inputs
    from gaussmix.cli import main
    from gaussmix.files import streams

    X, w = data
    if fmt == "npy":
        path, extra = tmp_path / "rows.npy", ["--weights", "3"]
        np.save(path, np.column_stack([X, w]))
    else:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path, extra = tmp_path / "rows.parquet", ["--weights", "w"]
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "w": w}),
                       path, row_group_size=256)
    args = ["select", str(path), "-k", "1..3", "--seed", "0", "--max-iter", "20",
            "-q", *extra]
    whole = CliRunner().invoke(main, args)
    assert whole.exit_code == 0, whole.output
    monkeypatch.setattr(streams, "STREAM_BYTES", 1000)  # the file is now "large"

    def no_whole_reads(path):
        raise AssertionError(f"{path} was read whole")

    monkeypatch.setattr(cli_inputs, "read_table", no_whole_reads)
    for more in ([], ["--chunk-size", "100"]):
        streamed = CliRunner().invoke(main, [*args, *more, "-o",
                                             str(tmp_path / "best.npz")])
        assert streamed.exit_code == 0, streamed.output
        assert _table(streamed.output) == _table(whole.output)
        assert "900 rows x 3 features" in " ".join(streamed.output.split())  # (wrapped)
    from gaussmix import load

    best = load(tmp_path / "best.npz")
    expected = select(X, KS, sample_weight=w, **SETTINGS).best_estimator_
    assert_allclose(best.means_, expected.means_, rtol=1e-10)


def test_readme_example_runs(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"### What `select` takes and returns\n.*?```python\n(.*?)```",
                     text, re.S).group(1)
    namespace: dict = {}
    with dask.config.set(scheduler="threads"):
        exec(compile(code, "README select example", "exec"), namespace)
    result = namespace["result"]
    assert capsys.readouterr().out.split() == [str(result.best_n_components_),
                                               result.best_covariance_type_]
    assert result.best_n_components_ == 2
