"""Regression tests from probing the model files and the command line with
damaged files and awkward inputs: each case once gave a traceback, an unclear
message, a wrong number or lost data."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gaussmix import GaussianMixture
from gaussmix.cli import main
from gaussmix.files.model import ModelFileError, load_model, save_model


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-2.0, 1.0, size=(40, 3)),
                      rng.normal(2.0, 0.5, size=(40, 3))])


@pytest.fixture
def saved(X, tmp_path) -> Path:
    model = GaussianMixture(n_components=2, random_state=0).fit(X)
    return save_model(model, tmp_path / "model.npz")


def refused(path: Path, pattern: str) -> None:
    with pytest.raises(ModelFileError, match=pattern) as info:
        load_model(path)
    assert path.name in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------ model files


def test_save_onto_a_directory_names_it_not_the_temporary_file(X, tmp_path):
    (tmp_path / "model.npz").mkdir()
    model = GaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(IsADirectoryError, match=r"choose another name") as info:
        save_model(model, tmp_path / "model.npz")
    assert ".tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_save_of_a_hand_built_model_names_the_missing_attributes(X, tmp_path):
    # means_ alone passed the fitted check; save then failed inside with
    # "AttributeError: 'GaussianMixture' object has no attribute 'weights_'".
    model = GaussianMixture(n_components=2).fit(X)
    del model.weights_, model.lower_bound_
    with pytest.raises(ValueError, match=r"lacks the fitted attribute\(s\) weights_, "
                                         r"lower_bound_; fit it, or set"):
        save_model(model, tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_without_the_suffix_save_appended_says_so(X, tmp_path):
    model = GaussianMixture(n_components=2, random_state=0).fit(X)
    written = save_model(model, tmp_path / "model")
    with pytest.raises(FileNotFoundError, match=r"appended \.npz: load '.*model\.npz'"):
        load_model(tmp_path / "model")
    assert load_model(written).n_components == 2


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_sklearn_model_fitted_on_float32_saves_and_loads_exactly(X, tmp_path,
                                                                 covariance_type):
    # scikit-learn keeps float32 attributes after a float32 fit; save_model
    # refused them ("weights_ that sum to 1.0000000596, not 1"): its checks
    # allowed only for float64 rounding.
    from sklearn.mixture import GaussianMixture as SklearnMixture

    X32 = (X * [1.0, 10.0, 100.0]).astype(np.float32)
    model = SklearnMixture(n_components=3, covariance_type=covariance_type,
                           random_state=0).fit(X32)
    assert model.weights_.dtype == np.float32
    loaded = load_model(save_model(model, tmp_path / "model.npz"))
    for name in ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_"):
        assert getattr(loaded, name).dtype == np.float64
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.predict(X32), model.predict(X32))
    np.testing.assert_allclose(loaded.score_samples(X32), model.score_samples(X32),
                               rtol=1e-5)


def test_float32_edit_beyond_its_rounding_is_still_refused(X, tmp_path):
    from sklearn.mixture import GaussianMixture as SklearnMixture

    model = SklearnMixture(n_components=2, random_state=0).fit(X.astype(np.float32))
    model.weights_ = (model.weights_ * np.float32(1.001)).astype(np.float32)
    with pytest.raises(ValueError, match=r"weights_ that sum to 1\.00"):
        save_model(model, tmp_path / "model.npz")


def _end_of_directory(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


def test_zip_directory_pointing_past_its_start_is_refused(saved):
    # The zip's end record says where the central directory starts; moved
    # back, zipfile seeks before the file's start (OSError EINVAL, whose
    # message names no file: "[Errno 22] Invalid argument").
    data = bytearray(saved.read_bytes())
    end = _end_of_directory(data)
    (offset,) = struct.unpack_from("<I", data, end + 16)
    struct.pack_into("<I", data, end + 16, offset + 128)
    saved.write_bytes(bytes(data))
    refused(saved, r"truncated or corrupt")


def test_zip_member_flagged_as_encrypted_is_refused(saved):
    # A flipped bit in the central directory marks members as encrypted:
    # zipfile raised a bare RuntimeError (a traceback on the command line).
    data = bytearray(saved.read_bytes())
    start = data.index(b"PK\x01\x02")
    data[start + 8] |= 0x01  # general-purpose flag bit 0: encrypted
    saved.write_bytes(bytes(data))
    refused(saved, r"truncated or corrupt .*encrypted")


@pytest.mark.parametrize("shape", [(10**12,), (2**40, 3)])
def test_member_declaring_a_huge_shape_is_refused_before_allocating(saved, shape):
    # numpy allocates the declared shape before it reads the member's bytes:
    # a corrupt header asked for terabytes (MemoryError).
    import io
    import zipfile

    with zipfile.ZipFile(saved) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    members["means_.npy"] = header.getvalue() + np.zeros(6).tobytes()
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    refused(saved, r"truncated or corrupt \(its member 'means_\.npy' declares an array "
                   r"of shape .* but holds 176 bytes\)")


def test_metadata_nested_too_deeply_is_refused(saved):
    with np.load(saved, allow_pickle=False) as f:
        members = {key: f[key] for key in f.files}
    text = '{"format": "gaussmix-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    members["metadata"] = np.frombuffer(text.encode("utf-8"), np.uint8)
    np.savez(saved, **members)
    refused(saved, r"unreadable metadata entry")


# ------------------------------------------------------------ command line


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, command: str, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gaussmix {command}: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("command", ["predict", "score"])
@pytest.mark.parametrize("suffix, extra", [(".csv", []), (".npy", ["--chunk-size", "7"])])
def test_output_that_is_the_data_file_is_refused(saved, X, tmp_path, command, suffix,
                                                 extra):
    # 'gaussmix predict model.npz data.csv -o data.csv' replaced the data
    # with the labels, silently.
    data = tmp_path / f"data{suffix}"
    if suffix == ".npy":
        np.save(data, X)
    else:
        data.write_text("\n".join(",".join(map(repr, row)) for row in X.tolist()) + "\n")
    before = data.read_bytes()
    same = tmp_path / "." / data.name  # another spelling of the same file
    result = invoke(command, saved, data, "-o", same, *extra)
    assert_one_line_error(result, command, r"is the data file .*choose another file")
    assert data.read_bytes() == before


@pytest.mark.parametrize("extra", [[], ["--chunk-size", "5"]])
def test_parquet_integers_beyond_2_53_are_read_as_floats(saved, X, tmp_path, extra):
    # pyarrow's safe cast refused int64 values that float64 cannot hold
    # exactly ("Integer value ... not in range"), a message naming no file or
    # column; .npy files of such integers were read (rounded) all along.
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    big = np.arange(len(X), dtype=np.int64) + 2**62 + 1
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"a": big, "b": X[:, 1], "c": X[:, 2]}), path,
                   row_group_size=16)
    result = invoke("score", saved, path, "-o", tmp_path / "s.npy", *extra)
    assert result.exit_code == 0, result.output
    expected = load_model(saved).score_samples(np.column_stack([big.astype(np.float64),
                                                                X[:, 1:]]))
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), expected, rtol=1e-12)


def test_row_of_empty_fields_is_a_row_of_missing_values(X, tmp_path):
    # ",," (what pandas writes for a row of NaN) was skipped like a blank
    # line: labels and log densities came out one row short, each written
    # against the wrong row of the file.
    model = GaussianMixture(n_components=2, random_state=0,
                            missing="marginalize").fit(X)
    path = save_model(model, tmp_path / "model.npz")
    data = tmp_path / "data.csv"
    rows = [",".join(map(repr, row)) for row in X[:6].tolist()]
    rows[2] = ",,"
    data.write_text("a,b,c\n" + "\n".join(rows) + "\n\n")  # a blank line at the end
    result = invoke("score", path, data, "-o", tmp_path / "s.npy")
    assert result.exit_code == 0, result.output
    expected = X[:6].copy()
    expected[2] = np.nan
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), model.score_samples(expected),
                               rtol=1e-12, atol=1e-12)
    assert "(6 rows)" in result.stdout
    fit = invoke("fit", data, "-k", 2, "-q", "-o", tmp_path / "m2.npz")
    assert_one_line_error(fit, "fit", r"line 4 of .*data\.csv', column 'a', is missing")


@pytest.mark.parametrize("command", ["predict", "score", "sample"])
def test_model_saved_for_a_gpu_is_applied_with_numpy(X, tmp_path, command):
    # A model saved from Python with device="cuda" failed on a machine without
    # a GPU with advice to pass device=None, which the command line cannot.
    model = GaussianMixture(n_components=2, random_state=0).fit(X)
    model.set_params(device="cuda")
    path = save_model(model, tmp_path / "model.npz")
    np.save(tmp_path / "x.npy", X)
    args = ["-n", 5] if command == "sample" else [tmp_path / "x.npy"]
    result = invoke(command, path, *args, "-o", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    if command == "score":
        model.set_params(device=None)
        np.testing.assert_array_equal(np.load(tmp_path / "out.npy"),
                                      model.score_samples(X))


@pytest.mark.parametrize("command", ["fit", "select", "sample"])
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_out_of_range_is_a_usage_error(saved, X, tmp_path, command, seed):
    # numpy refused it after the data was read: "Seed must be between 0 and
    # 2**32 - 1" (sample), naming no option.
    np.save(tmp_path / "x.npy", X)
    first = [saved, "-n", 5] if command == "sample" else [tmp_path / "x.npy", "-k", 2]
    out = tmp_path / ("s.csv" if command == "sample" else "m.npz")
    result = invoke(command, *first, "--seed", seed, "-o", out)
    assert result.exit_code == 2
    assert "Invalid value for '--seed'" in result.stderr
    assert not out.exists()


def test_tol_is_named_as_its_option(X, tmp_path):
    np.save(tmp_path / "x.npy", X)
    result = invoke("fit", tmp_path / "x.npy", "-k", 2, "--tol", "inf", "-o",
                    tmp_path / "m.npz")
    assert_one_line_error(result, "fit", r"The --tol parameter")


def test_option_names_already_in_a_message_are_kept():
    from gaussmix.cli.errors import translate

    assert translate("raise --tol or the 'tol' parameter") == (
        "raise --tol or the --tol parameter")


@pytest.mark.parametrize("header", [True, False])
def test_delimiter_ending_every_line_adds_no_column(X, tmp_path, header):
    # "a,b,c," / "1,2,3,": the empty last field made a column 'unnamed_3' of
    # NaN, and fit failed ("is missing (NaN); 80 such values").
    from gaussmix.files.tables import read_data

    rows = [",".join(map(repr, row)) + "," for row in X.tolist()]
    path = tmp_path / "data.csv"
    path.write_text(("a,b,c,\n" if header else "") + "\n".join(rows) + "\n")
    values, names, _ = read_data(path)
    np.testing.assert_array_equal(values, X)
    assert names == (["a", "b", "c"] if header else ["x0", "x1", "x2"])
    result = invoke("fit", path, "-k", 2, "--seed", 0, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    expected = GaussianMixture(n_components=2, random_state=0).fit(X)
    np.testing.assert_allclose(load_model(tmp_path / "m.npz").means_, expected.means_,
                               rtol=1e-12)


def test_skipped_column_warning_says_where_its_text_is(X, tmp_path):
    # One typo turned a numeric column into text, and the warning named only
    # the column: the model silently had one feature fewer.
    rows = [",".join(map(repr, row)) for row in X.tolist()]
    rows[6] = "1.5.2," + rows[6].split(",", 1)[1]
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n" + "\n".join(rows) + "\n")
    result = invoke("fit", path, "-k", 2, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    assert ("warning: ignoring non-numeric column(s) a (line 8 holds '1.5.2')"
            in result.stderr)


@pytest.mark.parametrize("extra", [[], ["--chunk-size", "7"]])
def test_model_columns_with_commas_or_spaces_in_their_names(X, tmp_path, extra):
    # The model's column names were joined with commas and split again: a
    # name holding a comma was not found, and one with a space (' a') was
    # stripped and matched another column ('a'), which was used silently.
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x,y": X[:, 0], " a": X[:, 1], "a": X[:, 2] * 100}), path)
    model = GaussianMixture(n_components=2, random_state=0).fit(X[:, :2])
    model.feature_names_in_ = np.asarray(["x,y", " a"], dtype=object)
    saved = save_model(model, tmp_path / "model.npz")
    result = invoke("score", saved, path, "-o", tmp_path / "s.npy", *extra)
    assert result.exit_code == 0, result.output
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        expected = model.score_samples(X[:, :2])
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), expected, rtol=1e-12)


def test_columns_option_takes_a_name_with_spaces_exactly(X, tmp_path):
    from gaussmix.files.tables import read_data

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({" a": X[:, 0], "a": X[:, 1]}), path)
    assert read_data(path, columns=" a")[1] == [" a"]
    assert read_data(path, columns=[" a"])[1] == [" a"]
    assert read_data(path, columns="a")[1] == ["a"]


def test_csv_with_carriage_return_line_ends(X, tmp_path):
    # Lines ended by a lone '\r' (classic Mac / "CSV (Macintosh)" exports)
    # failed: "new-line character seen in unquoted field - do you need to
    # open the file in universal-newline mode?"
    from gaussmix.files.tables import read_table

    rows = [";".join(map(repr, row)) for row in X[:5].tolist()]
    path = tmp_path / "mac.csv"
    path.write_bytes(("a;b;c\r" + "\r".join(rows) + "\r").encode())
    table = read_table(path)
    assert table.names == ["a", "b", "c"]
    np.testing.assert_array_equal(np.column_stack(table.columns), X[:5])
    assert table.lines.tolist() == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("extra", [[], ["--chunk-size", "10"]])
def test_parquet_with_duplicate_column_names(X, tmp_path, extra):
    # Read whole: "is not a readable Parquet file (Multiple matches for
    # FieldRef...); check that it was written completely"; streamed: a
    # KeyError traceback.
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "dupe.parquet"
    pq.write_table(pa.table([X[:, 0], X[:, 1], X[:, 2]], names=["a", "a", "b"]), path)
    result = invoke("fit", path, "-k", 2, "-q", "-o", tmp_path / "m.npz", *extra)
    assert_one_line_error(result, "fit", r"'.*dupe\.parquet' has duplicate column "
                                         r"name\(s\) a; rename them$")


def test_parquet_source_with_duplicate_column_names(X, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from gaussmix import ParquetSource

    path = tmp_path / "dupe.parquet"
    pq.write_table(pa.table([X[:, 0], X[:, 1]], names=["a", "a"]), path)
    with pytest.raises(ValueError, match=r"duplicate column name\(s\) a; rename them"):
        ParquetSource(path)
