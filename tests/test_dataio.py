"""Tests for gaussmix.files.tables (reading and writing tables) and gaussmix._optional."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gaussmix._optional import require
from gaussmix.files import writers
from gaussmix.files.tables import (
    DataError,
    DataFileNotFoundError,
    check_numbers,
    open_table_writer,
    read_data,
    read_dataset,
    read_table,
    write_table,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ CSV


def test_csv_with_header_selects_numeric_columns_and_weights(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,name,w\n1,2,x,1\n3,4.5,y,2\n-5,6e1,z,0.5\n")
    X, names, w = read_data(path, weights="w")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, [[1, 2], [3, 4.5], [-5, 60]])
    np.testing.assert_array_equal(w, [1, 2, 0.5])
    assert X.dtype == np.float64 and X.flags.c_contiguous
    data = read_dataset(path, weights="w")
    assert data.named and data.skipped == ["name"]


def test_csv_without_header_names_columns_by_position(tmp_path):
    path = write(tmp_path / "d.csv", "1,2,3\n4,5,6\n")
    X, names, w = read_data(path)
    assert names == ["x0", "x1", "x2"] and w is None
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])
    assert not read_dataset(path).named


def test_csv_text_column_without_header_is_data_not_header(tmp_path):
    # like UCI iris.data: the first row holds a label but is not a header
    path = write(tmp_path / "iris.csv", "5.1,3.5,setosa\n4.9,3.0,setosa\n")
    data = read_dataset(path)
    assert not data.named
    assert data.names == ["x0", "x1"] and data.skipped == ["x2"]
    assert data.X.shape == (2, 2)


def test_csv_header_with_unnamed_index_column(tmp_path):
    # what pandas' to_csv writes with its index
    path = write(tmp_path / "d.csv", ",a,b\n0,1.5,2\n1,3,4\n")
    X, names, _ = read_data(path)
    assert names == ["unnamed_0", "a", "b"]
    assert X.shape == (2, 3)


def test_csv_columns_by_name_and_position_in_given_order(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,c\n1,2,3\n4,5,6\n")
    X, names, _ = read_data(path, columns="c,0")
    assert names == ["c", "a"]
    np.testing.assert_array_equal(X, [[3, 1], [6, 4]])
    X2, names2, _ = read_data(path, columns=["b"])
    assert names2 == ["b"] and X2.shape == (2, 1)


def test_csv_missing_values_become_nan(tmp_path):
    path = write(tmp_path / "d.csv", "a,b\n1,\n NA ,2\nnull,3\n")
    X, _, _ = read_data(path)
    assert np.isnan(X[0, 1]) and np.isnan(X[1, 0]) and np.isnan(X[2, 0])
    assert X[2, 1] == 3


@pytest.mark.parametrize("suffix, text", [
    (".tsv", "a\tb\n1\t2\n3\t4\n"),
    (".csv", "a;b\n1;2\n3;4\n"),
    (".csv", "\ufeffa,b\r\n1,2\r\n3,4\r\n"),  # BOM and CRLF, as Excel writes
])
def test_csv_dialects(tmp_path, suffix, text):
    X, names, _ = read_data(write(tmp_path / f"d{suffix}", text))
    assert names == ["a", "b"]
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])


# ------------------------------------------------------------------ NPY / Parquet


def test_npy_2d_1d_and_structured(tmp_path):
    np.save(tmp_path / "m.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    X, names, w = read_data(tmp_path / "m.npy", weights=1)
    assert names == ["x0"] and X.dtype == np.float64
    np.testing.assert_array_equal(X[:, 0], [0, 2, 4])
    np.testing.assert_array_equal(w, [1, 3, 5])

    np.save(tmp_path / "v.npy", np.array([1, 2, 3]))
    X, names, _ = read_data(tmp_path / "v.npy")
    assert X.shape == (3, 1) and names == ["x0"]

    rec = np.zeros(2, dtype=[("u", "f8"), ("n", "i4"), ("s", "U3")])
    rec["u"], rec["n"], rec["s"] = [1.5, 2.5], [3, 4], ["a", "b"]
    np.save(tmp_path / "r.npy", rec)
    data = read_dataset(tmp_path / "r.npy")
    assert data.named and data.names == ["u", "n"] and data.skipped == ["s"]
    np.testing.assert_array_equal(data.X, [[1.5, 3], [2.5, 4]])


def test_parquet_numeric_types_nulls_and_text(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "i": pa.array([1, None, 3], pa.int64()),
        "f": pa.array([0.5, 1.5, None], pa.float32()),
        "s": pa.array(["x", "y", "z"]),
        "w": pa.array([1.0, 2.0, 3.0]),
    })
    pq.write_table(table, tmp_path / "t.parquet")
    data = read_dataset(tmp_path / "t.parquet", weights="w")
    assert data.names == ["i", "f"] and data.skipped == ["s"]
    np.testing.assert_array_equal(data.X[[0, 2], 0], [1, 3])
    assert np.isnan(data.X[1, 0]) and np.isnan(data.X[2, 1])
    np.testing.assert_array_equal(data.weights, [1, 2, 3])
    with pytest.raises(DataError, match=r"column 's' .* not numeric .*type is string"):
        read_data(tmp_path / "t.parquet", columns="s")


# ------------------------------------------------------------------ errors


def test_missing_file_is_both_data_error_and_file_not_found(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="does not exist") as info:
        read_data(tmp_path / "nope.csv")
    assert isinstance(info.value, DataError)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", b"", "is empty"),
    ("blank.csv", b"\n\n  \n", "is empty"),
    ("header.csv", b"a,b\n", r"no data rows \(only a header\)"),
    ("ragged.csv", b"a,b\n1,2\n3\n", "line 3 .* has 1 field but the first row has 2"),
    ("dup.csv", b"a,a\n1,2\n", "duplicate column name"),
    ("binary.csv", b"\xff\xfe\x00\x01\x02garbage", "not a UTF-8 text CSV"),
    ("nul.csv", b"a,b\n1,\x002\n", "binary file"),
    ("text.csv", b"name,city\nann,rome\nbob,oslo\n", "no numeric column"),
    ("notnpy.npy", b"hello, world", "not a NumPy .npy file"),
    ("bad.parquet", b"PAR1 but not really", "not a readable Parquet file"),
    ("data.xlsx", b"whatever", r"suffix '.xlsx'.*\.csv, \.tsv, \.npy or \.parquet"),
])
def test_bad_files_raise_data_error_saying_what_is_wrong(tmp_path, name, content,
                                                         message):
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_data(path)
    assert "\n" not in str(info.value)
    assert name in str(info.value)  # says which file


def test_bad_npy_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object),
            allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        read_data(tmp_path / "obj.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match="3-D array"):
        read_data(tmp_path / "cube.npy")
    np.save(tmp_path / "full.npy", np.zeros((50, 4)))
    raw = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-40])
    with pytest.raises(DataError, match="cut.npy"):
        read_data(tmp_path / "cut.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(DataError, match="no data rows"):
        read_data(tmp_path / "empty.npy")


def test_bad_columns(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,name,w\n1,2,x,1\n3,4,y,2\n")
    with pytest.raises(DataError, match=r"'name' .* not numeric \(line 2 holds 'x'\)"):
        read_data(path, columns="a,name")
    with pytest.raises(DataError, match=r"'zz' not found .* columns are a, b, name, w"):
        read_data(path, columns="a,zz")
    with pytest.raises(DataError, match="weights column 'name' .* not numeric"):
        read_data(path, weights="name")
    with pytest.raises(DataError, match="weights column 'q' not found"):
        read_data(path, weights="q")
    with pytest.raises(DataError, match="'w' is the weights column"):
        read_data(path, columns="a,w", weights="w")
    with pytest.raises(DataError, match="'a' is listed twice"):
        read_data(path, columns="a,0")
    with pytest.raises(DataError, match="'7' not found"):
        read_data(path, columns="7")


# ------------------------------------------------------------------ positions


def test_csv_rows_remember_their_file_lines(tmp_path):
    path = write(tmp_path / "d.csv", "a,b\n1,2\n\n3,4\n\n\n5,\"6\"\n")  # blank lines
    table = read_table(path)
    assert table.lines.tolist() == [2, 4, 7]
    assert table.where(2) == f"line 7 of {str(path)!r}"
    np.save(tmp_path / "d.npy", np.zeros((3, 2)))
    assert read_table(tmp_path / "d.npy").where(0) == (
        f"data row 1 (counting from 1) of {str(tmp_path / 'd.npy')!r}")


def test_check_numbers_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,w\n1,2,1\n\n3,nan,1\n4,inf,1\n")
    data = read_dataset(path, weights="w")
    with pytest.raises(DataError) as info:
        check_numbers(data)
    assert str(info.value) == (
        f"line 4 of {str(path)!r}, column 'b', is missing (NaN); 2 such values in "
        "all; fill in or remove those rows in the file, or leave the column out "
        "with --columns (or treat them as missing at random with --missing "
        "marginalize)")
    with pytest.raises(DataError, match=r"column 'b', is infinite"):
        check_numbers(data, allow_missing=True)  # NaN pass, inf does not
    check_numbers(read_dataset(path, columns="a", weights="w"))  # b not used
    np.save(tmp_path / "d.npy", np.array([[1.0, 2.0], [-np.inf, 3.0]]))
    with pytest.raises(DataError, match=r"^data row 2 \(counting from 1\) of "
                                        r"'.*d\.npy', column 'x0', is infinite "
                                        r"\(-inf\); fill in"):
        check_numbers(read_dataset(tmp_path / "d.npy"))


def test_check_numbers_weights(tmp_path):
    path = write(tmp_path / "d.csv", "a,w\n1,1\n2,-0.5\n3,\n")
    with pytest.raises(DataError, match=r"^line 4 of .*, weights column 'w', is "
                                        r"missing \(NaN\)"):
        check_numbers(read_dataset(path, weights="w"))
    path.write_text("a,w\n1,1\n2,-0.5\n3,2\n")
    with pytest.raises(DataError, match=r"weights column 'w' has 1 negative value\(s\); "
                                        r"the first is -0\.5 at line 3 of"):
        check_numbers(read_dataset(path, weights="w"))
    path.write_text("a,w\n1,0\n2,0\n")
    with pytest.raises(DataError, match=r"weights column 'w' of .* is all zeros"):
        check_numbers(read_dataset(path, weights="w"))


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".npy", ".parquet"])
def test_write_then_read_round_trips_exactly(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20), rng.normal(size=20) * 1e-12 + 1e6
    path = write_table(tmp_path / f"out{suffix}", {"a": a, "b": b})
    X, names, _ = read_data(path)
    np.testing.assert_array_equal(X, np.column_stack([a, b]))  # bit for bit
    if suffix != ".npy":
        assert names == ["a", "b"]


def test_write_npy_single_column_is_1d_and_keeps_integers(tmp_path):
    write_table(tmp_path / "labels.npy", {"label": np.array([2, 0, 1])})
    loaded = np.load(tmp_path / "labels.npy")
    assert loaded.shape == (3,) and loaded.dtype.kind == "i"
    write_table(tmp_path / "labels.csv", {"label": np.array([2, 0, 1])})
    assert (tmp_path / "labels.csv").read_text() == "label\n2\n0\n1\n"


def test_write_failure_leaves_no_partial_file_and_keeps_old_one(tmp_path, monkeypatch):
    target = tmp_path / "out.npy"
    target.write_bytes(b"old contents")

    def broken(self, arrays):
        self._fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers._NpyWriter, "_write", broken)
    with pytest.raises(OSError, match="No space left") as info:
        write_table(target, {"a": np.arange(3)})
    assert info.value.filename == str(target)  # not the hidden temporary file
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".npy", ".parquet"])
def test_chunked_writer_equals_writing_at_once(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=1000), rng.integers(0, 3, size=1000)
    whole = write_table(tmp_path / f"whole{suffix}", {"x": x, "k": k})
    with open_table_writer(tmp_path / f"parts{suffix}", ["x", "k"], n_rows=1000) as out:
        for start in range(0, 1000, 300):
            out.write({"x": x[start:start + 300], "k": k[start:start + 300]})
    got, names, _ = read_data(tmp_path / f"parts{suffix}")
    np.testing.assert_array_equal(got, read_data(whole)[0])
    np.testing.assert_array_equal(got, np.column_stack([x, k]))
    if suffix != ".parquet":  # Parquet: one row group per chunk
        assert (tmp_path / f"parts{suffix}").read_bytes() == whole.read_bytes()


def test_chunked_writer_checks_the_announced_rows(tmp_path):
    for n_rows in (3, 5):
        with pytest.raises(ValueError, match="announced"):
            with open_table_writer(tmp_path / "o.npy", ["a"], n_rows=n_rows) as out:
                out.write({"a": np.arange(4)})
    with pytest.raises(ValueError, match="columns"):
        with open_table_writer(tmp_path / "o.csv", ["a", "b"]) as out:
            out.write({"b": np.arange(2), "a": np.arange(2)})
    assert list(tmp_path.iterdir()) == []


def test_size_estimates_and_free_space(tmp_path, monkeypatch):
    assert writers.estimated_size(tmp_path / "s.npy", 10**12, 3, 1) > 3.2e13
    assert writers.estimated_size(tmp_path / "s.csv", 100, 3, 1) == 100 * (51 + 2)
    writers.check_free_space(tmp_path / "s.csv", 1000, "lower -n")
    with pytest.raises(DataError, match=r"'.*s\.csv' would take about 32 TB but "
                                         r"only .* are free in .*; lower -n$"):
        writers.check_free_space(tmp_path / "s.csv", 32 * 10**12, "lower -n")


def test_write_table_checks_path_and_columns(tmp_path):
    with pytest.raises(DataError, match="directory .* does not exist"):
        write_table(tmp_path / "no" / "such" / "out.csv", {"a": np.arange(2)})
    with pytest.raises(DataError, match="suffix '.txt'"):
        write_table(tmp_path / "out.txt", {"a": np.arange(2)})
    with pytest.raises(ValueError, match="equal length"):
        write_table(tmp_path / "out.csv", {"a": np.arange(2), "b": np.arange(3)})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ optional imports


def test_require_returns_module_or_explains_extra(monkeypatch):
    assert require("numpy", "core") is np
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError) as info:
        require("pyarrow.parquet", "io", "reading Parquet files")
    assert str(info.value) == (
        "reading Parquet files requires pyarrow: pip install 'gaussmix[io]'"
    )


def test_parquet_without_pyarrow_says_which_extra(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install 'gaussmix\[io\]'"):
        read_data(path)
    with pytest.raises(ImportError, match=r"pip install 'gaussmix\[io\]'"):
        write_table(tmp_path / "o.parquet", {"a": np.arange(2)})
    assert not os.path.exists(tmp_path / "o.parquet")
