"""The command line streams large .npy and Parquet files (or any, with
--chunk-size): fit, predict and score read them chunk by chunk and give what
the whole file in memory gives; predict writes its output chunk by chunk."""

from __future__ import annotations

import io
import re
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner, Result
from pool_threads import only_caller_and_workers, recording_threads

from gaussmix import load
from gaussmix.cli import inputs as cli_inputs
from gaussmix.cli import main
from gaussmix.files import streams

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FIT = ["-k", "3", "--seed", "0", "--max-iter", "30"]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 6.0, -2.0]])
    X = centres[rng.integers(0, 3, 300)] + rng.normal(size=(300, 3))
    w = rng.integers(0, 4, 300).astype(float)
    root = tmp_path_factory.mktemp("stream")
    out = {"npy": root / "d.npy", "parquet": root / "d.parquet",
           "npyw": root / "w.npy"}
    np.save(out["npy"], X)
    np.save(out["npyw"], np.column_stack([X, w]))
    pq.write_table(pa.table({"a": X[:, 0], "site": ["n", "s"] * 150, "b": X[:, 1],
                             "c": X[:, 2], "w": w}), out["parquet"],
                   row_group_size=128)
    return out


def _same_model(a, b):
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10,
                                   atol=1e-12)
    assert a.n_iter_ == b.n_iter_


def _read(path):
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".csv":
        return _parse(path.read_text())
    return np.column_stack([c.to_numpy() for c in pq.read_table(path).columns])


def _parse(text):
    return np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, ndmin=2)


@pytest.mark.parametrize(("fmt", "extra"), [("npy", []), ("parquet", []),
                                            ("parquet", ["--weights", "w"]),
                                            ("parquet", ["--weights", "w", "--spill"]),
                                            ("npyw", ["--weights", "3"])])
def test_streamed_fit_predict_score_equal_in_memory(fmt, extra, files, tmp_path):
    data = files[fmt]
    ok(invoke("fit", data, *FIT, *extra, "-o", tmp_path / "whole.npz"))
    streamed = ok(invoke("fit", data, *FIT, *extra, "--chunk-size", 64,
                         "-o", tmp_path / "streamed.npz"))
    a, b = load(tmp_path / "whole.npz"), load(tmp_path / "streamed.npz")
    _same_model(a, b)
    assert re.search("300[\\s│]*rows", streamed.stdout)  # (a long path wraps the cell)
    if fmt == "parquet":
        assert list(b.feature_names_in_) == ["a", "b", "c"] + ([] if extra else ["w"])
        assert "ignoring non-numeric column(s) site" in streamed.stderr

    model = tmp_path / "whole.npz"
    data = [data, *(["--columns", "0,1,2"] if fmt == "npyw" else [])]
    for args in ([], ["--proba"]):
        for suffix in ("csv", "npy", "parquet"):
            one, two = tmp_path / f"one.{suffix}", tmp_path / f"two.{suffix}"
            ok(invoke("predict", model, *data, *args, "-o", one))
            ok(invoke("predict", model, *data, *args, "--chunk-size", 50, "-o", two))
            if not args:  # labels: the same bytes
                assert one.read_bytes() == two.read_bytes() or suffix == "parquet"
            # Probabilities: equal to rounding (a matrix product's last digits
            # may depend on how many rows it has).
            np.testing.assert_allclose(_read(one), _read(two), rtol=1e-12, atol=0)
            if suffix == "parquet":
                assert pq.read_table(one).schema.equals(pq.read_table(two).schema)
        printed = ok(invoke("predict", model, *data, *args, "--chunk-size", 50)).stdout
        whole = ok(invoke("predict", model, *data, *args)).stdout
        assert printed.splitlines()[0] == whole.splitlines()[0]
        np.testing.assert_allclose(_parse(printed), _parse(whole), rtol=1e-12, atol=0)

    weighted = ["--weights", extra[1]] if extra else []
    scores = []
    for i, chunk in enumerate(([], ["--chunk-size", 40])):
        scores.append(ok(invoke("score", model, *data, *weighted, *chunk, "-o",
                                tmp_path / f"s{i}.npy")).stdout)
    numbers = [[float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", s)]
               for s in scores]
    np.testing.assert_allclose(numbers[0], numbers[1], rtol=1e-9)
    np.testing.assert_allclose(np.load(tmp_path / "s1.npy"),
                               np.load(tmp_path / "s0.npy"), rtol=1e-12)


def test_spill_maps_the_rows_after_the_first_pass_and_leaves_nothing(
        files, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made = []

    from gaussmix.files import spill as spill_module

    class Spy(spill_module.RowSpill):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(spill_module, "RowSpill", Spy)
    ok(invoke("fit", files["parquet"], *FIT, "--chunk-size", 64, "--spill",
              "-o", tmp_path / "s.npz"))
    ok(invoke("select", files["parquet"], "-k", "2-3", "--seed", "0", "--chunk-size",
              64, "--spill", "-q"))
    assert len(made) == 2 and all(spill.ready for spill in made)
    assert list(scratch.iterdir()) == []
    made.clear()  # spilling is the default; --no-spill decodes every pass
    ok(invoke("fit", files["parquet"], *FIT, "--chunk-size", 64, "-o", tmp_path / "d.npz"))
    assert len(made) == 1 and made[0].ready
    made.clear()
    ok(invoke("fit", files["parquet"], *FIT, "--chunk-size", 64, "--no-spill",
              "-o", tmp_path / "n.npz"))
    assert made == []
    np.testing.assert_allclose(load(tmp_path / "n.npz").means_,
                               load(tmp_path / "d.npz").means_, rtol=1e-10)


def test_files_over_the_threshold_stream_without_reading_whole(files, tmp_path,
                                                               monkeypatch):
    ok(invoke("fit", files["parquet"], *FIT, "--weights", "w", "-o", tmp_path / "m.npz"))
    monkeypatch.setattr(streams, "STREAM_BYTES", 1000)

    def no_whole_reads(path):
        raise AssertionError(f"{path} was read whole")

    monkeypatch.setattr(cli_inputs, "read_table", no_whole_reads)
    for fmt in ("npy", "parquet"):
        ok(invoke("fit", files[fmt], *FIT, "-o", tmp_path / "s.npz"))
        ok(invoke("predict", tmp_path / "m.npz", files[fmt], "-o", tmp_path / "l.csv"))
        ok(invoke("score", tmp_path / "m.npz", files[fmt]))


def test_streamed_values_are_checked_with_file_positions(tmp_path):
    bad = np.ones((10, 2))
    bad[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    result = invoke("fit", tmp_path / "nan.npy", "-k", 2, "--chunk-size", 4,
                    "-o", tmp_path / "m.npz")
    assert result.exit_code == 2
    assert re.search(r"gaussmix fit: error: data row 8 \(counting from 1\) of "
                     r"'.*nan\.npy', column 'x1', is missing \(NaN\)", result.stderr)
    pq.write_table(pa.table({"a": np.arange(6.0), "w": [1.0, 1, 1, 1, -2, 1]}),
                   tmp_path / "w.parquet")
    result = invoke("fit", tmp_path / "w.parquet", "-k", 1, "--weights", "w",
                    "--chunk-size", 4, "-o", tmp_path / "m.npz")
    assert result.exit_code == 2
    assert re.search(r"weights column 'w' has a negative value -2\.0 at data row 5",
                     result.stderr)
    result = invoke("fit", tmp_path / "w.parquet", "-k", 1, "--columns", "a,a",
                    "--chunk-size", 4, "-o", tmp_path / "m.npz")
    assert "column 'a' is listed twice" in result.stderr


def test_streamed_predict_holds_a_chunk_not_the_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 4))  # 6.4 MB
    np.save(tmp_path / "big.npy", X)
    ok(invoke("fit", tmp_path / "big.npy", "-k", 2, "--max-iter", 2, "--chunk-size",
              20_000, "-o", tmp_path / "m.npz"))
    tracemalloc.start()
    try:
        ok(invoke("predict", tmp_path / "m.npz", tmp_path / "big.npy", "--chunk-size",
                  10_000, "-o", tmp_path / "labels.npy"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak  # the rows alone are 6.4 MB, the labels 1.6 MB
    labels = np.load(tmp_path / "labels.npy")
    np.testing.assert_array_equal(labels, load(tmp_path / "m.npz").predict(X))


def test_streamed_parquet_row_groups_are_read_in_the_workers(files, tmp_path):

    from gaussmix.engine.reducers import ThreadPool

    rows = streams.open_rows(files["parquet"], ["a", "b", "c"], chunk_size=50).X
    reads = rows.chunk_reads()
    assert len(reads) == 3  # row groups of 128 rows
    look, seen = recording_threads()
    pooled = np.vstack([c.X for c in ThreadPool(2).map(look, rows)])
    assert only_caller_and_workers(seen)
    np.testing.assert_array_equal(pooled, np.vstack([c.X for c in rows.chunks()]))
    assert streams.open_rows(files["parquet"], ["a", "b"], "w").X.chunk_reads() is None
    X = _read(files["npy"]).copy()
    X[200, 2] = np.inf
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}),
                   tmp_path / "inf.parquet", row_group_size=128)
    bad = streams.open_rows(tmp_path / "inf.parquet", chunk_size=50).X
    with pytest.raises(streams.DataError, match=r"data row 201 .*column 'c', is inf"):
        list(ThreadPool(2).map(len, bad))
