"""Tests for the gaussmix command line, driven through click's CliRunner and,
for the installed entry points, through subprocesses."""

from __future__ import annotations

import errno
import importlib
import importlib.abc
import io
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import gaussmix
from gaussmix import GaussianMixture
from gaussmix import __main__ as gaussmix_main
from gaussmix.cli import main
from gaussmix.cli import sample as sample_module
from gaussmix.cli.errors import error_message
from gaussmix.cli.progress import EMProgress
from gaussmix.files.tables import read_data, write_table


def installed(*modules: str) -> bool:
    """Whether the optional modules import (tests of the rest run without them)."""
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


needs_pyarrow = pytest.mark.skipif(not installed("pyarrow"),
                                   reason="Parquet needs pip install 'gaussmix[io]'")
needs_plot = pytest.mark.skipif(not installed("matplotlib", "PIL.Image"),
                                reason="figures need matplotlib and pillow")
PARQUET = pytest.param("parquet", marks=needs_pyarrow)
FORMATS = ["csv", "npy", PARQUET]
FIT = ["--seed", "0", "--max-iter", "30"]  # small and reproducible
SUBCOMMANDS = ["fit", "predict", "score", "sample", "plot", "example"]


def invoke(*args: object, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def assert_one_line_error(result: Result, command: str, match: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gaussmix {command}: error: "), lines[0]
    assert re.search(match, lines[0]), lines[0]
    assert "Traceback" not in result.output


def quietly(func, *args, **kwargs):
    """Call a model method with a plain array (no feature-name warning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature")
        return func(*args, **kwargs)


# ------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 6.0, -2.0]])
    labels = rng.integers(0, 3, size=240)
    return centres[labels] + rng.normal(size=(240, 3)) * [1.0, 0.6, 1.3]


@pytest.fixture(scope="module")
def files(tmp_path_factory, X) -> dict[str, Path]:
    """The same data in each format; CSV and Parquet also carry a text column."""
    root = tmp_path_factory.mktemp("data")
    columns = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}
    site = np.array(["north", "south"] * (len(X) // 2))
    out = {"npy": root / "data.npy"}
    np.save(out["npy"], X)
    out["csv"] = root / "data.csv"
    lines = ["a,site,b,c"] + [f"{a!r},{s},{b!r},{c!r}"
                              for (a, b, c), s in zip(X.tolist(), site, strict=True)]
    out["csv"].write_text("\n".join(lines) + "\n")
    if installed("pyarrow"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        out["parquet"] = root / "data.parquet"
        pq.write_table(pa.table({**columns, "site": site}), out["parquet"])
    out["shuffled"] = write_table(root / "shuffled.csv",
                                  {"c": X[:, 2], "b": X[:, 1], "a": X[:, 0]})
    weights = np.arange(len(X)) % 3
    out["weighted"] = write_table(root / "weighted.csv", {**columns, "w": weights})
    out["two"] = write_table(root / "two.csv", {"a": X[:, 0], "b": X[:, 1]})
    out["tiny"] = write_table(root / "tiny.csv", {"a": X[:5, 0], "b": X[:5, 1]})
    out["empty"] = root / "empty.csv"
    out["empty"].write_text("")
    out["garbage"] = root / "garbage.csv"
    out["garbage"].write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    out["nan"] = root / "nan.csv"
    out["nan"].write_text("a,b\n1,2\n3,\n5,6\n7,8\n")
    out["nanabc"] = root / "nanabc.csv"  # a blank line: line 5 is the 3rd data row
    out["nanabc"].write_text("a,b,c\n1,2,3\n4,5,6\n\n7,8,NA\n")
    out["infnpy"] = root / "inf.npy"
    np.save(out["infnpy"], np.array([[1.0, 2], [3, 4], [5, np.inf], [7, -np.inf]]))
    out["twonpy"] = root / "two.npy"
    np.save(out["twonpy"], X[:, :2])
    out["xyz"] = write_table(root / "xyz.csv", {"x": X[:, 0], "y": X[:, 1],
                                                "z": X[:, 2]})
    out["negweight"] = root / "negweight.csv"
    out["negweight"].write_text("a,b,w\n1,2,1\n3,4,1\n5,6,-2\n7,8,1\n")
    out["dup"] = write_table(root / "dup.csv", {"a": np.repeat([1.0, 3.0], 20),
                                                "b": np.repeat([2.0, 4.0], 20)})
    out["notmodel"] = root / "other.npz"
    np.savez(out["notmodel"], weights=np.ones(3))
    out["textmodel"] = root / "model.npz"
    out["textmodel"].write_text("this is not a model")
    return out


@pytest.fixture(scope="module")
def model_path(files, tmp_path_factory) -> Path:
    """A model fitted by the CLI on data.csv (named columns a, b, c)."""
    path = tmp_path_factory.mktemp("model") / "model.npz"
    ok(invoke("fit", files["csv"], "-k", 3, *FIT, "-o", path, "-q"))
    return path


@pytest.fixture
def out(tmp_path) -> Path:
    """An empty directory for outputs; tests check that it stays clean on errors."""
    return tmp_path


# ------------------------------------------------------------------ fit


@pytest.mark.parametrize("fmt", FORMATS)
def test_fit_each_format_equals_python_api(files, X, out, fmt):
    result = ok(invoke("fit", files[fmt], "-k", 3, *FIT, "-o", out / "m"))
    model = gaussmix.load(out / "m.npz")  # '.npz' appended
    api = GaussianMixture(3, random_state=0, max_iter=30).fit(X)
    np.testing.assert_allclose(model.means_, api.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, api.covariances_, rtol=1e-10,
                               atol=1e-12)
    assert model.n_iter_ == api.n_iter_ and model.converged_ == api.converged_
    np.testing.assert_array_equal(quietly(model.predict, X), api.predict(X))
    # the summary table
    text = result.stdout
    assert "Fitted components" in text and "component 2" in text
    assert f"{api.n_iter_} (converged)" in text
    bic = float(re.search(r"BIC\s*│\s*(\S+)", text).group(1))
    aic = float(re.search(r"AIC\s*│\s*(\S+)", text).group(1))
    assert bic == pytest.approx(api.bic(X), rel=1e-5)
    assert aic == pytest.approx(api.aic(X), rel=1e-5)
    loglik = float(re.search(r"log-likelihood\s*│\s*(\S+) per row", text).group(1))
    assert loglik == pytest.approx(api.score(X), rel=1e-5)
    assert re.search(r"time\s*│\s*[\d.e-]+ s", text)
    # named files record the feature names; a bare .npy does not
    names = getattr(model, "feature_names_in_", None)
    if fmt == "npy":
        assert names is None
    else:
        assert list(names) == ["a", "b", "c"]
        assert "ignoring non-numeric column(s) site" in result.stderr


def test_fit_options_reach_the_estimator(files, X, out):
    ok(invoke("fit", files["npy"], "-k", 2, "--covariance", "diag", "--n-init", 2,
              "--tol", "1e-5", "--reg-covar", "1e-4", "--init", "k-means++",
              "--columns", "0,2", "--threads", 1, *FIT, "-o", out / "m.npz"))
    model = gaussmix.load(out / "m.npz")
    params = model.get_params()
    assert (params["covariance_type"], params["n_init"], params["tol"],
            params["reg_covar"], params["init_params"], params["random_state"]) == (
        "diag", 2, 1e-5, 1e-4, "k-means++", 0)
    api = GaussianMixture(2, covariance_type="diag", n_init=2, tol=1e-5,
                          reg_covar=1e-4, init_params="k-means++", random_state=0,
                          max_iter=30).fit(X[:, [0, 2]])
    np.testing.assert_allclose(model.means_, api.means_, rtol=1e-10)


def test_fit_with_weights_column_equals_sample_weight(files, X, out):
    ok(invoke("fit", files["weighted"], "-k", 3, "--weights", "w", *FIT,
              "-o", out / "m.npz"))
    model = gaussmix.load(out / "m.npz")
    assert list(model.feature_names_in_) == ["a", "b", "c"]  # w is not a feature
    w = np.arange(len(X)) % 3
    api = GaussianMixture(3, random_state=0, max_iter=30).fit(X, sample_weight=w)
    np.testing.assert_allclose(model.means_, api.means_, rtol=1e-10)


def test_fit_warns_in_one_line_when_not_converged(files, out):
    result = ok(invoke("fit", files["npy"], "-k", 3, "--max-iter", 1, "--tol", 0,
                       "-o", out / "m.npz"))
    assert result.stderr.strip() == (
        "gaussmix fit: warning: EM did not converge in 1 iterations; raise "
        "--max-iter or --tol, or try --n-init > 1")
    assert "1 (not converged)" in result.stdout


def test_fit_reports_each_warning_for_what_it_says(files, out):
    # two distinct rows, three components: k-means warns, EM then converges
    result = ok(invoke("fit", files["dup"], "-k", 3, "--n-init", 2, *FIT,
                       "-o", out / "m.npz"))
    assert result.stderr.strip() == (
        "gaussmix fit: warning: the k-means initialisation found only 2 distinct "
        "clusters for -k 3, probably because of duplicate rows; some components "
        "start from the same points: lower -k or remove the duplicates")
    assert "did not converge" not in result.stderr
    assert re.search(r"iterations\s*│\s*\d+ \(converged\)", result.stdout)


# ------------------------------------------------------------------ progress


def test_progress_is_off_without_a_terminal(files, out):
    result = ok(invoke("fit", files["npy"], "-k", 3, *FIT, "-o", out / "m.npz"))
    assert result.stderr == ""


def test_progress_flag_prints_one_line_per_iteration(files, out):
    result = ok(invoke("fit", files["npy"], "-k", 3, "--n-init", 2, *FIT,
                       "--progress", "-o", out / "m.npz"))
    lines = result.stderr.strip().splitlines()
    pattern = (r"restart (\d)/2  iteration (\d+)/30  log-likelihood (-?\d+\.\d{6})"
               r"  change (\S+)")
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert all(parsed), lines
    assert {m.group(1) for m in parsed} == {"1", "2"}
    # no change to report at the first iteration of a restart, then a number
    assert all((m.group(4) == "-") == (m.group(2) == "1") for m in parsed)
    assert [int(m.group(2)) for m in parsed if m.group(1) == "1"] == list(
        range(1, sum(m.group(1) == "1" for m in parsed) + 1))
    quiet = ok(invoke("fit", files["npy"], "-k", 3, *FIT, "--progress", "--quiet",
                      "-o", out / "m.npz"))
    assert quiet.stderr == ""


def test_live_progress_display_on_a_terminal(X):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140,
                      color_system=None)
    with EMProgress(n_init=2, max_iter=50, console=console) as progress:
        assert progress.mode == "live"
        model = GaussianMixture(3, n_init=2, max_iter=50, random_state=0,
                                callback=progress).fit(X)
    text = buffer.getvalue()
    assert "restart 1/2" in text and "restart 2/2" in text
    assert "\x1b[" in text  # redrawn in place
    final = text.rsplit("\x1b[2K", 1)[-1]  # the last redraw
    assert f"{model.lower_bound_:.6f}" in final
    assert progress.updates >= model.n_iter_ + 1


# ------------------------------------------------------------------ predict


@pytest.mark.parametrize("fmt", ["csv", "npy", PARQUET, "tsv"])
def test_predict_labels_agree_with_python_api(files, model_path, X, out, fmt):
    target = out / f"labels.{fmt}"
    result = ok(invoke("predict", model_path, files["npy"], "-o", target))
    assert f"wrote labels of {len(X)} rows" in result.stdout
    model = gaussmix.load(model_path)
    labels, names, _ = read_data(target)
    np.testing.assert_array_equal(labels[:, 0], quietly(model.predict, X))
    if fmt != "npy":
        assert names == ["label"]


def test_predict_to_stdout_and_by_column_name(files, model_path, X):
    model = gaussmix.load(model_path)
    expected = quietly(model.predict, X)
    result = ok(invoke("predict", model_path, files["csv"]))  # skips 'site'
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "label"
    np.testing.assert_array_equal([int(v) for v in lines[1:]], expected)
    # columns in another order are matched by name
    shuffled = ok(invoke("predict", model_path, files["shuffled"]))
    assert shuffled.stdout == result.stdout


def test_other_column_names_are_an_error_unless_chosen(files, model_path):
    by_name = ok(invoke("predict", model_path, files["csv"]))
    other = invoke("predict", model_path, files["xyz"])
    assert_one_line_error(other, "predict", r"fitted on columns a, b, c, the file has "
                                            r"x, y, z")
    chosen = ok(invoke("predict", model_path, files["xyz"], "--columns", "x,y,z"))
    assert chosen.stdout == by_name.stdout
    # files without names (a bare .npy) are taken in order, as before
    assert ok(invoke("predict", model_path, files["npy"])).stdout == by_name.stdout


def test_predict_proba(files, model_path, X, out):
    ok(invoke("predict", model_path, files["csv"], "--proba", "-o",
              out / "p.csv"))
    resp, names, _ = read_data(out / "p.csv")
    assert names == ["prob_0", "prob_1", "prob_2"]
    model = gaussmix.load(model_path)
    np.testing.assert_allclose(resp, quietly(model.predict_proba, X), rtol=1e-12)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)


# ------------------------------------------------------------------ score


@pytest.mark.parametrize("fmt", FORMATS)
def test_score_prints_mean_and_writes_log_density(files, model_path, X, out, fmt):
    result = ok(invoke("score", model_path, files[fmt], "-o",
                       out / f"ld.{fmt}"))
    model = gaussmix.load(model_path)
    mean = float(re.search(r"mean log-likelihood: (\S+) per row", result.stdout)
                 .group(1))
    assert mean == pytest.approx(quietly(model.score, X), rel=1e-9)
    bic = float(re.search(r"BIC: (\S+)", result.stdout).group(1))
    assert bic == pytest.approx(quietly(model.bic, X), rel=1e-9)
    log_density, _, _ = read_data(out / f"ld.{fmt}")
    np.testing.assert_allclose(log_density[:, 0], quietly(model.score_samples, X),
                               rtol=1e-12)


def test_score_with_weights(files, model_path, X):
    result = ok(invoke("score", model_path, files["weighted"], "--weights", "w"))
    model = gaussmix.load(model_path)
    w = np.arange(len(X)) % 3
    mean = float(re.search(r"mean log-likelihood: (\S+)", result.stdout).group(1))
    assert mean == pytest.approx(quietly(model.score, X, sample_weight=w), rel=1e-9)
    assert mean != pytest.approx(quietly(model.score, X), rel=1e-9)


# ------------------------------------------------------------------ sample


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_writes_n_rows_with_component(model_path, out, fmt):
    target = out / f"s.{fmt}"
    result = ok(invoke("sample", model_path, "-n", 300, "--seed", 1, "-o", target))
    assert "wrote 300 samples" in result.stdout
    data, names, _ = read_data(target)
    assert data.shape == (300, 4)
    if fmt != "npy":
        assert names == ["a", "b", "c", "component"]
    assert set(np.unique(data[:, 3])) <= {0.0, 1.0, 2.0}
    model = gaussmix.load(model_path)
    expected, labels = model.set_params(random_state=1).sample(300)
    np.testing.assert_array_equal(data[:, :3], expected)
    np.testing.assert_array_equal(data[:, 3], labels)


def test_sample_output_can_be_labelled_again(files, out):
    # a model fitted on an unnamed .npy: the sample's columns x0, x1, x2 are
    # picked by name and its 'component' column is left out
    ok(invoke("fit", files["npy"], "-k", 3, *FIT, "-o", out / "m.npz"))
    ok(invoke("sample", out / "m.npz", "-n", 200, "--seed", 3, "-o", out / "s.csv"))
    ok(invoke("predict", out / "m.npz", out / "s.csv", "-o", out / "l.csv"))
    sample, _, _ = read_data(out / "s.csv")
    labels, _, _ = read_data(out / "l.csv")
    model = gaussmix.load(out / "m.npz")
    np.testing.assert_array_equal(labels[:, 0], model.predict(sample[:, :3]))
    # well-separated clusters: labels mostly recover the drawing component
    assert np.mean(labels[:, 0] == sample[:, 3]) > 0.9


def test_sample_seed_controls_the_draw(model_path, out):
    for name, seed in [("a", 5), ("b", 5), ("c", 6)]:
        ok(invoke("sample", model_path, "-n", "1e2", "--seed", seed, "-o",
                  out / f"{name}.npy"))
    a, b, c = (np.load(out / f"{n}.npy") for n in "abc")
    assert a.shape == (100, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("covariance", ["full", "tied", "diag", "spherical"])
def test_chunked_draws_equal_model_sample(X, covariance):
    model = GaussianMixture(3, covariance_type=covariance, random_state=4,
                            max_iter=30).fit(X)
    expected, labels = model.sample(3001)
    for rows in (2, 7, 64, 1000, 5000):
        chunks = list(sample_module.draw_chunks(model, 3001, chunk_rows=rows))
        assert all(len(x) == len(y) and len(set(y)) == 1 for x, y in chunks)
        assert max(len(y) for _, y in chunks) <= max(2 * rows - 1, rows)
        np.testing.assert_array_equal(np.vstack([x for x, _ in chunks]), expected)
        np.testing.assert_array_equal(np.concatenate([y for _, y in chunks]), labels)


@pytest.fixture
def small_chunks(monkeypatch):
    """Draw and write 16 rows at a time."""
    monkeypatch.setattr(sample_module, "CHUNK_NUMBERS", 64)
    monkeypatch.setattr(sample_module, "MIN_CHUNK_ROWS", 16)


@pytest.mark.parametrize("fmt", [*FORMATS, "tsv"])
def test_sample_streams_chunks_into_the_same_file(model_path, out, small_chunks, fmt):
    target = out / f"s.{fmt}"
    ok(invoke("sample", model_path, "-n", 1000, "--seed", 2, "-o", target))
    data, names, _ = read_data(target)
    expected, labels = gaussmix.load(model_path).set_params(random_state=2).sample(1000)
    np.testing.assert_array_equal(data, np.column_stack([expected, labels]))
    if fmt == "npy":  # the same bytes as numpy.save of the whole array
        whole = out / "whole.npy"
        np.save(whole, np.column_stack([expected, labels]))
        assert target.read_bytes() == whole.read_bytes()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.ParquetFile(target).num_row_groups > 10
    assert [p.name for p in out.iterdir() if p.name != "whole.npy"] == [target.name]


def test_sample_memory_is_bounded(model_path, out, monkeypatch):
    monkeypatch.setattr(sample_module, "CHUNK_NUMBERS", 1 << 12)
    tracemalloc.start()
    try:
        ok(invoke("sample", model_path, "-n", "3e5", "--seed", 1, "-o", out / "s.npy"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.load(out / "s.npy", mmap_mode="r").shape == (300_000, 4)
    assert peak < 2_000_000  # the whole draw is 9.6 MB, plus 7.2 MB to stack it


@pytest.mark.parametrize("n, match", [
    ("1e30", r"-n 1e30 is more rows than can be counted \(at most 9\.22e\+18\)"),
    ("9223372036854775808", r"more rows than can be counted"),
    ("1e12", r"'.*s\.npy' would take about 32 TB but only .* are free in .*; lower "
             r"-n or write to a disk with more room"),
    ("2.5", r"-n '2\.5' is not a whole number of rows >= 1"),
    ("ten", r"-n 'ten' is not a whole number"),
    ("0", r"-n '0' is not a whole number of rows >= 1"),
    ("nan", r"is not a whole number"),
])
def test_sample_impossible_sizes_one_line(model_path, out, n, match):
    result = invoke("sample", model_path, "-n", n, "-o", out / "s.npy")
    assert_one_line_error(result, "sample", match)
    assert list(out.iterdir()) == []


def test_sample_checks_free_space_for_each_format(model_path, out, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: real(path)._replace(free=100_000))
    for fmt in ("csv", "npy"):
        result = invoke("sample", model_path, "-n", "1e4", "-o", out / f"s.{fmt}")
        assert_one_line_error(result, "sample", r"would take about .* but only 100 kB")
    ok(invoke("sample", model_path, "-n", 100, "-o", out / "s.csv"))


def test_sample_write_failure_names_the_file_and_leaves_nothing(model_path, out,
                                                                 small_chunks,
                                                                 monkeypatch):
    from gaussmix.files import writers

    def full_disk(self, arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers._CsvWriter, "_write", full_disk)
    result = invoke("sample", model_path, "-n", 100, "-o", out / "s.csv")
    assert_one_line_error(result, "sample",
                          r"error: '.*/s\.csv': No space left on device$")
    assert list(out.iterdir()) == []


def test_estimator_messages_are_translated_to_the_command_line():
    with pytest.raises(ValueError) as info:
        GaussianMixture(1).fit(np.array([[1.0, 2.0], [3.0, np.nan], [1.0, 1.0]]))
    text = error_message(info.value)
    assert "sklearn" not in text and "row 1" not in text
    assert "at data row 2, column 2 (counting from 1)" in text
    assert "Fill in or remove those rows in the file" in text
    bad = ValueError("component 1 is ill-defined: decrease the number of components, "
                     "increase reg_covar, or raise max_iter")
    assert error_message(bad) == ("component 1 is ill-defined: lower -k, increase "
                                  "--reg-covar, or raise --max-iter")


def test_error_message_names_the_users_file_not_the_temporary_one(tmp_path):
    hidden = tmp_path / f".model.npz.{'0a' * 16}.tmp"
    exc = PermissionError(errno.EACCES, "Permission denied", str(hidden))
    assert error_message(exc) == f"{str(tmp_path / 'model.npz')!r}: Permission denied"


# ------------------------------------------------------------------ plot


@needs_plot
@pytest.mark.parametrize("fmt", FORMATS)
def test_plot_png_has_requested_size(files, model_path, out, fmt):
    target = out / "fig.png"
    result = ok(invoke("plot", model_path, files[fmt], "--size", "900x400",
                       "-o", target))
    assert "wrote figure" in result.stdout
    from PIL import Image

    with Image.open(target) as image:
        image.verify()
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (900, 400)
        assert len(np.unique(np.asarray(image.convert("L")))) > 10


@needs_plot
def test_plot_svg_with_chosen_columns(files, model_path, out):
    target = out / "fig.svg"
    ok(invoke("plot", model_path, files["csv"], "--x", "c", "--y", "a",
              "--size", "800x400", "--dpi", 100, "--title", "my title", "-o", target))
    svg = target.read_text()
    assert re.search(r'<svg[^>]*width="576pt" height="288pt"', svg)
    assert "my title" in svg


# ------------------------------------------------------------------ example


def test_example_prints_summary_without_figure(out):
    result = ok(invoke("example", "--no-plot", "-o", out / "ex.png"))
    assert "wine" in result.stdout and "Fitted components" in result.stdout
    ari = float(re.search(r"adjusted Rand index, 1 = perfect\): (\S+)",
                          result.stdout).group(1))
    assert ari > 0.8  # the three components are the three cultivars
    assert list(out.iterdir()) == []


def test_example_without_matplotlib_still_fits(out, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = ok(invoke("example", "-o", out / "ex.png"))
    assert "Fitted components" in result.stdout
    assert "pip install 'gaussmix[plot]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


@needs_plot
def test_python_m_gaussmix_without_arguments_runs_example(tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        gaussmix_main._main([])
    assert info.value.code in (0, None)
    captured = capsys.readouterr()
    assert "'gaussmix --help' lists the commands" in captured.err
    assert "adjusted Rand index" in captured.out
    from PIL import Image

    with Image.open(tmp_path / "gaussmix-example.png") as image:  # in the current folder
        assert image.size == (1200, 500)


# ------------------------------------------------------------------ bad input


BAD_INPUT = [
    # (name, command line with {placeholders}, command, message pattern)
    ("missing data file", "fit {missing} -k 2 -o {out}/m.npz", "fit",
     r"'.*missing\.csv' does not exist"),
    ("empty file", "fit {empty} -k 2 -o {out}/m.npz", "fit", r"is empty"),
    ("unreadable file", "fit {garbage} -k 2 -o {out}/m.npz", "fit",
     r"not a UTF-8 text CSV"),
    ("non-numeric column", "fit {csv} -k 2 --columns a,site -o {out}/m.npz", "fit",
     r"column 'site' .* not numeric"),
    ("missing column", "fit {csv} -k 2 --columns a,zz -o {out}/m.npz", "fit",
     r"column 'zz' not found .* columns are a, site, b, c"),
    ("non-numeric weights", "fit {csv} -k 2 --weights site -o {out}/m.npz", "fit",
     r"weights column 'site' .* not numeric"),
    ("K larger than rows", "fit {tiny} -k 6 -o {out}/m.npz", "fit",
     r"-k 6 is larger than the number of rows \(5\)"),
    ("NaN in data", "fit {nan} -k 2 -o {out}/m.npz", "fit",
     r"line 3 of '.*nan\.csv', column 'b', is missing \(NaN\); fill in or remove "
     r"those rows in the file"),
    ("inf in an npy file", "fit {infnpy} -k 2 -o {out}/m.npz", "fit",
     r"data row 3 \(counting from 1\) of '.*inf\.npy', column 'x1', is infinite "
     r"\(inf\); 2 such values in all"),
    ("NaN in predict", "predict {model} {nanabc} -o {out}/l.csv", "predict",
     r"line 5 of '.*nanabc\.csv', column 'c', is missing \(NaN\); fill in or "
     r"remove those rows in the file, or leave the column out with --columns "
     r"\(or treat them as missing at random with --missing marginalize\)$"),
    ("negative weight", "fit {negweight} -k 2 --weights w -o {out}/m.npz", "fit",
     r"weights column 'w' has 1 negative value\(s\); the first is -2\.0 at line 4 "
     r"of '.*negweight\.csv'; weights must be >= 0"),
    ("collapsed component", "fit {dup} -k 2 --reg-covar 0 -o {out}/m.npz", "fit",
     r"ill-defined empirical covariance .* lower -k, increase --reg-covar, or scale"),
    ("model output is a directory", "fit {csv} -k 2 -o {out}/d.npz", "fit",
     r"cannot write model '.*/d\.npz': it is a directory; choose a file name"),
    ("select output is a directory", "select {csv} -k 1..2 -o {out}/d.npz", "select",
     r"cannot write model '.*/d\.npz': it is a directory"),
    ("output directory missing", "fit {csv} -k 2 -o {out}/no/m.npz", "fit",
     r"directory .* does not exist"),
    ("not a gaussmix model", "predict {notmodel} {npy} -o {out}/l.csv", "predict",
     r"not a gaussmix model file"),
    ("model file is text", "score {textmodel} {npy}", "score",
     r"not a readable gaussmix model file"),
    ("missing model file", "sample {out}/none.npz -n 5 -o {out}/s.csv", "sample",
     r"model file .* does not exist"),
    ("columns missing by name", "predict {model} {two} -o {out}/l.csv", "predict",
     r"'.*two\.csv' has no column\(s\) c of the model: the model was fitted on "
     r"columns a, b, c, the file has a, b; rename .* --columns$"),
    ("other column names", "predict {model} {xyz} -o {out}/l.csv", "predict",
     r"has no column\(s\) a, b, c of the model: .* fitted on columns a, b, c, the "
     r"file has x, y, z;"),
    ("other column names in score", "score {model} {xyz} -o {out}/s.csv", "score",
     r"fitted on columns a, b, c, the file has x, y, z;"),
    ("other column names in plot", "plot {model} {xyz} -o {out}/f.png", "plot",
     r"fitted on columns a, b, c, the file has x, y, z;"),
    ("column count mismatch", "predict {model} {twonpy} -o {out}/l.csv", "predict",
     r"gives 2 feature columns \(x0, x1\) but the model was fitted on 3 \(a, b, c\)"),
    ("column count mismatch in score", "score {model} {two} --columns a,b", "score",
     r"fitted on 3"),
    ("column count mismatch in plot", "plot {model} {twonpy} -o {out}/f.png", "plot",
     r"fitted on 3"),
    ("unknown plot column", "plot {model} {npy} --x a --y zz -o {out}/f.png", "plot",
     r"column 'zz' is not a feature of the model"),
    ("unsupported output", "sample {model} -n 5 -o {out}/s.xlsx", "sample",
     r"suffix '.xlsx'"),
    ("unsupported figure", "plot {model} {npy} -o {out}/f.gif", "plot",
     r"suffix '.gif'; use one of .png, .svg, .pdf"),
    ("missing parquet file", "predict {model} {out}/x.parquet", "predict",
     r"does not exist"),
]


# plot checks for matplotlib before it reads the data
_NEEDS = {"plot": needs_plot}


@pytest.mark.parametrize("name, line, command, match", [
    pytest.param(*case, id=case[0],
                 marks=[_NEEDS[case[2]]] if case[2] in _NEEDS and "figure" not in
                 case[0] else [])
    for case in BAD_INPUT
])
def test_bad_input_one_line_exit_2_no_output(files, model_path, out, name, line,
                                            command, match):
    places = {key: str(path) for key, path in files.items()}
    places.update(out=str(out), model=str(model_path),
                  missing=str(out.parent / "missing.csv"))
    if "directory" in name and "missing" not in name:
        (out / "d.npz").mkdir()
    result = invoke(*line.format(**places).split())
    assert_one_line_error(result, command, match)
    assert "sklearn" not in result.stderr and ".tmp" not in result.stderr
    made = [] if "directory" not in name or "missing" in name else ["d.npz"]
    assert [p.name for p in out.iterdir()] == made  # no output, no temporary file


def test_failed_command_keeps_existing_output(files, model_path, out):
    target = out / "labels.csv"
    target.write_text("old\n")
    result = invoke("predict", model_path, files["two"], "-o", target)
    assert_one_line_error(result, "predict", "has no column")
    assert target.read_text() == "old\n"
    assert [p.name for p in out.iterdir()] == ["labels.csv"]


def test_plot_without_matplotlib_names_the_extra(files, model_path, out,
                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = invoke("plot", model_path, files["npy"], "-o", out / "f.png")
    assert_one_line_error(result, "plot",
                          r"plotting requires matplotlib: pip install "
                          r"'gaussmix\[plot\]'$")
    assert list(out.iterdir()) == []


def test_debug_flag_shows_the_exception(files, out):
    args = ["fit", files["empty"], "-k", 2, "-o", out / "m.npz"]
    for result in (invoke("--debug", *args), invoke(*args, "--debug"),
                   invoke(*args, env={"GAUSSMIX_DEBUG": "1"})):
        assert result.exit_code == 1
        assert isinstance(result.exception, ValueError)
        assert "is empty" in str(result.exception)


def test_usage_errors_exit_2(model_path, out):
    assert invoke("fit").exit_code == 2
    assert invoke("sample", model_path, "-n", 0, "-o", out / "s.csv").exit_code == 2
    assert invoke("plot", model_path, "x.csv", "--size", "big", "-o",
                  out / "f.png").exit_code == 2
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ the group


def test_help_on_every_subcommand_has_examples():
    top = ok(invoke("--help"))
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{name}\s", top.stdout, re.MULTILINE)
        text = ok(invoke(name, "--help")).stdout
        assert "Examples:" in text and f"gaussmix {name}" in text
    assert ok(invoke("--version")).stdout.strip().endswith(gaussmix.__version__)


def test_commands_added_later_get_the_same_error_handling(monkeypatch):
    monkeypatch.setattr(main, "commands", dict(main.commands))

    @main.command("boom")
    @click.argument("kind")
    def boom(kind: str) -> None:
        if kind == "expected":
            raise ValueError("bad thing\nhappened")
        raise RuntimeError("a bug")

    assert_one_line_error(invoke("boom", "expected"), "boom",
                          r"error: bad thing happened$")
    bug = invoke("boom", "bug")  # unexpected errors are not hidden
    assert bug.exit_code == 1 and isinstance(bug.exception, RuntimeError)


def test_every_subcommand_is_registered():
    assert set(SUBCOMMANDS) | {"select"} <= set(main.commands)


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["README.md", "docs/cli.md"])
def test_subcommand_table_lists_every_command(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    table = text.split("### Subcommands", 1)[1].split("```", 1)[0]
    listed = re.findall(r"^\| `gaussmix (\w+)", table, re.MULTILINE)
    assert sorted(listed) == sorted(main.commands)


def test_modules_stay_short_and_entry_points_work():
    import gaussmix.cli as cli

    owned = [*(ROOT / "src/gaussmix/cli").glob("*.py"),
             *(ROOT / "src/gaussmix/files" / name for name in
               ("tables.py", "readers.py", "writers.py", "formats.py"))]
    lengths = {p.name: len(p.read_text().splitlines()) for p in owned}
    assert max(lengths.values()) <= 500, lengths
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'gaussmix = "gaussmix.cli:main"' in pyproject and cli.main is main
    with pytest.raises(SystemExit) as info:
        cli.run(["--version"])
    assert info.value.code == 0


class _Uninstalled(importlib.abc.MetaPathFinder):
    """Makes packages look uninstalled: importing them raises ImportError."""

    def __init__(self, packages: set[str]) -> None:
        self.packages = packages

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_csv_commands_run_without_the_optional_extras(files, X, out, monkeypatch):
    extras = {"pyarrow", "matplotlib", "PIL"}
    monkeypatch.setattr(sys, "meta_path", [_Uninstalled(extras), *sys.meta_path])
    for name in list(sys.modules):
        if name.split(".")[0] in extras:
            monkeypatch.delitem(sys.modules, name)
    ok(invoke("fit", files["csv"], "-k", 3, *FIT, "-o", out / "m.npz"))
    ok(invoke("predict", out / "m.npz", files["csv"], "-o", out / "l.csv"))
    ok(invoke("score", out / "m.npz", files["npy"], "-o", out / "s.tsv"))
    ok(invoke("sample", out / "m.npz", "-n", 50, "-o", out / "s.csv"))
    ok(invoke("select", files["csv"], "-k", "1..2", "--covariance", "diag", "-q"))
    parquet = invoke("sample", out / "m.npz", "-n", 5, "-o", out / "s.parquet")
    assert_one_line_error(parquet, "sample", r"pip install 'gaussmix\[io\]'$")


# ------------------------------------------------------------------ real processes


def _script(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"console script {name} is not installed next to python")
    return path


def test_installed_console_script_help():
    result = subprocess.run([str(_script("gaussmix")), "--help"], check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_python_m_gaussmix_bad_input_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gaussmix", "fit", str(tmp_path / "nope.csv"),
         "-k", "2", "-o", str(tmp_path / "m.npz")],
        check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GAUSSMIX_DEBUG": ""},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("gaussmix fit: error: data file ")
    assert list(tmp_path.iterdir()) == []
