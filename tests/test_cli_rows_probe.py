"""Regression tests from probing the command line for outputs whose rows do
not line up with the data file's rows (a user pastes predictions beside the
data), and for values parsed wrongly: each case once gave a silent wrong answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gaussmix import GaussianMixture
from gaussmix.cli import main
from gaussmix.files.model import load_model, save_model
from gaussmix.files.tables import read_table


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-2.0, 1.0, size=(30, 2)),
                      rng.normal(2.0, 0.5, size=(30, 2))])


def cli(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def saved_model(X: np.ndarray, path: Path) -> Path:
    return save_model(GaussianMixture(n_components=2, random_state=0).fit(X), path)


def stdout_rows(result: Result) -> list[str]:
    """Data lines printed on standard output (warnings go to standard error)."""
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[1:]


# ------------------------------------------------ blank lines in one-column files


def one_column_with_gaps(X: np.ndarray, path: Path, header: bool) -> list[int]:
    """X[:, 0] one value a line, with lines 4, 11 and 21 of the data left blank
    (an empty cell of a one-column spreadsheet); returns the blank rows."""
    gaps = [3, 10, 20]
    cells = ["" if i in gaps else repr(float(v)) for i, v in enumerate(X[:, 0])]
    path.write_text(("a\n" if header else "") + "\n".join(cells) + "\n\n")
    return gaps


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("proba", [False, True])
def test_one_column_blank_line_is_a_missing_value_under_marginalize(X, tmp_path,
                                                                    header, proba):
    # The blank lines were skipped: 57 labels for 60 data lines, no warning,
    # every label after line 4 beside the wrong row.
    model = saved_model(X[:, :1], tmp_path / "m.npz")
    data = tmp_path / "d.csv"
    gaps = one_column_with_gaps(X, data, header)
    extra = ["--proba"] if proba else []
    rows = stdout_rows(cli("predict", model, data, "--missing", "marginalize", *extra))
    assert len(rows) == len(X)
    complete = np.delete(np.arange(len(X)), gaps)
    reference = GaussianMixture(n_components=2, random_state=0).fit(X[:, :1])
    expected = (reference.predict_proba(X[complete, :1]) if proba
                else reference.predict(X[complete, :1])[:, None])
    got = np.array([[float(v) for v in r.split(",")] for r in rows])
    np.testing.assert_allclose(got[complete], expected, rtol=1e-12, atol=1e-300)
    out = tmp_path / "labels.npy"
    assert cli("predict", model, data, "--missing", "marginalize", *extra,
               "-o", out).exit_code == 0
    assert len(np.load(out)) == len(X)


def test_one_column_blank_line_without_marginalize_is_refused_at_its_line(X, tmp_path):
    model = saved_model(X[:, :1], tmp_path / "m.npz")
    data = tmp_path / "d.csv"
    one_column_with_gaps(X, data, header=True)
    for args in (["predict", model, data], ["score", model, data],
                 ["fit", data, "-k", 2, "-q", "-o", tmp_path / "f.npz"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert "line 5 of" in result.output and "3 such values" in result.output
        assert "--missing marginalize" in result.output


def test_one_column_blank_lines_before_and_after_the_data_are_skipped(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("\n\na\n1\n\n2\n\n\n")
    table = read_table(path)
    assert table.lines.tolist() == [4, 5, 6]
    np.testing.assert_array_equal(table.columns[0], [1.0, np.nan, 2.0])
    assert table.blank_lines == []


def test_one_column_with_trailing_delimiters_keeps_blank_lines_as_missing(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,\n1,\n\n2,\n")
    np.testing.assert_array_equal(read_table(path).columns[0], [1.0, np.nan, 2.0])


# ------------------------------------------ blank lines in multi-column files


def test_multi_column_blank_line_warns_that_rows_and_lines_differ(X, tmp_path):
    # Skipped silently: the labels after the blank line stood beside the wrong
    # rows of the file with nothing said.
    model = saved_model(X, tmp_path / "m.npz")
    data = tmp_path / "d.csv"
    lines = [f"{a},{b}" for a, b in X.tolist()]
    data.write_text("a,b\n" + "\n".join(lines[:5] + [""] + lines[5:]) + "\n\n")
    result = cli("predict", model, data)
    assert len(stdout_rows(result)) == len(X)
    assert "1 blank line(s)" in result.stderr and "(line 7)" in result.stderr
    scored = cli("score", model, data, "-o", tmp_path / "s.csv")
    assert scored.exit_code == 0 and "(line 7)" in scored.stderr
    assert "blank" not in cli("score", model, data).stderr  # no rows written
    clean = tmp_path / "clean.csv"
    clean.write_text("a,b\n" + "\n".join(lines) + "\n\n\n")
    assert "blank" not in cli("predict", model, clean).stderr


# ------------------------------------------ decimal commas, thousands separators


@pytest.mark.parametrize("sep", [";", "\t"])
def test_headerless_decimal_comma_file_is_refused_not_split_at_the_commas(tmp_path,
                                                                         sep):
    # "1,5;2,5" was split at its commas: column x0 held the integer parts and
    # x2 the fractions, x1 ('5;2') was skipped with a warning, and the model
    # was fitted on those two made-up columns.
    path = tmp_path / "d.csv"
    path.write_text("\n".join(f"{i},5{sep}{i + 2},25" for i in range(6)) + "\n")
    result = cli("fit", path, "-k", 1, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 2, result.output
    assert "line 1 holds '0,5', a number with a decimal comma" in result.stderr
    assert "x0, x1" in result.stderr and "'.' as decimal separator" in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_thousands_separators_stop_the_fit_instead_of_dropping_the_column(tmp_path):
    # The column was skipped with a warning and the model fitted without it.
    path = tmp_path / "d.csv"
    path.write_text('a,b,name\n"1,234",2,x\n"2,000",4,y\n"3,500",5,z\n')
    result = cli("fit", path, "-k", 1, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 2
    assert "column(s) a of" in result.stderr and "'1,234'" in result.stderr
    chosen = cli("fit", path, "-k", 1, "-q", "-o", tmp_path / "m.npz", "--columns", "b")
    assert chosen.exit_code == 0, chosen.output


def test_text_columns_that_only_look_dotted_are_still_skipped(tmp_path):
    path = tmp_path / "d.csv"
    rows = [f"{i}.0{i}.2020,{i * 1.5},{i % 2 + 0.1 * i}" for i in range(1, 9)]
    path.write_text("day,a,b\n" + "\n".join(rows) + "\n")
    result = cli("fit", path, "-k", 1, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    assert "ignoring non-numeric column(s) day" in result.stderr


# ------------------------------------------------ --columns against the model's names


@pytest.mark.parametrize("columns", ["b,a", "1,0", "a,a2"])
@pytest.mark.parametrize("command", ["predict", "score"])
def test_columns_that_swap_the_models_named_features_are_refused(X, tmp_path,
                                                                 columns, command):
    # --columns b,a applied the parameters of 'a' to column b and of 'b' to a,
    # printing labels (or a mean log-likelihood) for the swapped data.
    model = save_model(GaussianMixture(n_components=2, random_state=0).fit(
        _frame(X, ["a", "b"])), tmp_path / "m.npz")
    data = tmp_path / "d.csv"
    data.write_text("a,b,a2\n" + "\n".join(f"{u},{v},{u}" for u, v in X.tolist()))
    result = cli(command, model, data, "--columns", columns)
    if columns == "a,a2":  # a renamed column in the model's place is the user's choice
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2
    assert "puts column 'b'" in result.stderr and "expects 'a'" in result.stderr
    assert cli(command, model, data, "--columns", "a,b").exit_code == 0


def _frame(X: np.ndarray, names: list[str]):  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=names)


# ------------------------------------------------ rows with nothing observed


@pytest.mark.parametrize("command", ["fit", "select"])
def test_fit_names_the_file_line_of_a_row_with_nothing_observed(X, tmp_path, command):
    # The message spoke of 'row 3 of X' (0-based) and suggested NumPy code.
    data = tmp_path / "d.csv"
    rows = ["," if i in (3, 10, 20) else f"{u},{v}" for i, (u, v) in enumerate(X.tolist())]
    data.write_text("a,b\n" + "\n".join(rows) + "\n")
    result = cli(command, data, "-k", "2" if command == "fit" else "1-2", "-q",
                 "--missing", "marginalize", "-o", tmp_path / "m.npz")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gaussmix {command}: error: line 5 of ")
    assert "(and 2 other row(s)) has every feature missing" in result.stderr
    assert "X[" not in result.stderr


def test_spreadsheet_na_cells_are_missing_values_not_text(X, tmp_path):
    # '#N/A' made the whole column text: fit skipped it with a warning and
    # fitted the other columns alone.
    data = tmp_path / "d.csv"
    rows = [f"{u},{'#N/A' if i == 4 else v}" for i, (u, v) in enumerate(X.tolist())]
    data.write_text("a,b\n" + "\n".join(rows) + "\n")
    refused = cli("fit", data, "-k", 2, "-q", "-o", tmp_path / "m.npz")
    assert refused.exit_code == 2 and "line 6 of" in refused.stderr
    assert "is missing (NaN)" in refused.stderr
    fitted = cli("fit", data, "-k", 2, "-q", "--missing", "marginalize",
                 "-o", tmp_path / "m.npz")
    assert fitted.exit_code == 0, fitted.output
    assert "2 features" in fitted.stdout


@pytest.mark.parametrize("header", ["", "a b\n"])
def test_space_separated_file_is_refused_with_the_reason(tmp_path, header):
    # The message said only "no numeric column (its columns are 1 2)": the
    # first line was taken for a header and nothing said why.
    data = tmp_path / "d.csv"
    data.write_text(header + "1 2\n3 4\n5 6\n")
    result = cli("fit", data, "-k", 1, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 2
    assert "numbers separated by spaces" in result.stderr
    assert ("columns are x0;" in result.stderr) == (not header)


# ------------------------------------------------ Parquet written by pandas


@pytest.mark.parametrize("chunk", [[], ["--chunk-size", "5"]])
def test_pandas_row_index_in_parquet_is_not_a_feature(X, tmp_path, chunk):
    # A filtered DataFrame's index was stored as '__index_level_0__' and
    # fitted as a third feature (its mean, the mean row number, in the summary).
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(X, columns=["a", "b"])
    kept = [i for i in range(len(X)) if i % 20 != 0]  # 3 rows dropped: index 1, 2, ...
    frame.iloc[kept].to_parquet(tmp_path / "d.parquet")
    result = cli("fit", tmp_path / "d.parquet", "-k", 2, "-q", *chunk,
                 "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    assert f"({len(X) - 3} rows x 2 features)" in result.stdout
    assert "__index_level_0__" not in result.output


def test_parquet_source_leaves_out_a_pandas_row_index(X, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from gaussmix.files.sources import ParquetSource

    pd.DataFrame(X, columns=["a", "b"]).iloc[[5, 1, 7]].to_parquet(tmp_path / "d.parquet")
    assert ParquetSource(tmp_path / "d.parquet").columns == ["a", "b"]
    assert read_table(tmp_path / "d.parquet").names == ["a", "b"]


# ------------------------------------------------ CSV written by pandas with its index


@pytest.mark.parametrize("command", ["fit", "select"])
def test_pandas_to_csv_row_index_is_not_fitted_as_a_feature(X, tmp_path, command):
    # pandas' to_csv writes the index as a first column with no name; fit took
    # the row numbers for a third feature.
    data = tmp_path / "d.csv"
    rows = [f"{i},{u},{v}" for i, (u, v) in enumerate(X.tolist())]
    data.write_text(",a,b\n" + "\n".join(rows) + "\n")
    result = cli(command, data, "-k", "2" if command == "fit" else "1-2", "-q",
                 "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    assert "a row index" in result.stderr and "non-numeric" not in result.stderr
    fitted = load_model(tmp_path / "m.npz")
    assert list(fitted.feature_names_in_) == ["a", "b"]
    chosen = cli("fit", data, "-k", 2, "-q", "--columns", "unnamed_0,a",
                 "-o", tmp_path / "n.npz")
    assert chosen.exit_code == 0 and "row index" not in chosen.stderr


def test_unnamed_first_column_of_measurements_is_still_a_feature(X, tmp_path):
    data = tmp_path / "d.csv"
    rows = [f"{u},{v}" for u, v in X.tolist()]
    data.write_text(",b\n" + "\n".join(rows) + "\n")
    result = cli("fit", data, "-k", 2, "-q", "-o", tmp_path / "m.npz")
    assert result.exit_code == 0 and "2 features" in result.stdout
    assert "row index" not in result.stderr


# ------------------------------------------------ streamed and in-memory reads agree


def test_streamed_missing_value_message_offers_marginalize_like_in_memory(X, tmp_path):
    # Read whole, the message offered --missing marginalize; streamed, it did not.
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    model = saved_model(X, tmp_path / "m.npz")
    a = X[:, 0].copy()
    a[7] = np.nan
    pq.write_table(pa.table({"x0": a, "x1": X[:, 1]}), tmp_path / "d.parquet")
    whole = cli("predict", model, tmp_path / "d.parquet")
    streamed = cli("predict", model, tmp_path / "d.parquet", "--chunk-size", 3)
    for result in (whole, streamed):
        assert result.exit_code == 2
        assert "data row 8 (counting from 1)" in result.stderr
        assert "--missing marginalize" in result.stderr
    labels = [cli("predict", model, tmp_path / "d.parquet", "--missing", "marginalize",
                  *chunk).stdout for chunk in ([], ["--chunk-size", "3"])]
    assert labels[0] == labels[1] and len(labels[0].splitlines()) == len(X) + 1
