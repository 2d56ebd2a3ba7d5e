"""``gaussmix impute``: a file's empty cells filled from a saved model, as
``GaussianMixture.impute`` fills them, streamed or read whole."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner, Result

from gaussmix import load
from gaussmix.cli import main

# the model remembers the CSV's column names; the tests impute NumPy rows
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def holes(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.multivariate_normal([0, 0, 0], np.eye(3) + 0.7, 300),
                   rng.multivariate_normal([5, 5, 0], np.eye(3), 300)])
    X[rng.random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    root = tmp_path_factory.mktemp("impute")
    with open(root / "holes.csv", "w") as f:
        f.write("a,b,c\n")
        for row in X:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    np.save(root / "holes.npy", X)
    invoke("fit", root / "holes.csv", "-k", 2, "--seed", 0, "--missing", "marginalize",
           "--quiet", "-o", root / "model.npz")
    return X, root


def _table(path) -> np.ndarray:  # noqa: ANN001
    import pandas as pd

    return pd.read_csv(path).to_numpy()


def test_impute_fills_the_empty_cells_as_the_model_does(holes):
    X, root = holes
    model = load(root / "model.npz")
    invoke("impute", root / "model.npz", root / "holes.csv", "-o", root / "filled.csv")
    filled = _table(root / "filled.csv")
    observed = ~np.isnan(X)
    assert not np.isnan(filled).any()
    assert (filled[observed] == X[observed]).all()  # observed cells unchanged
    np.testing.assert_allclose(filled, model.impute(X), rtol=1e-12)
    # a large file read chunk by chunk gives the same table
    invoke("impute", root / "model.npz", root / "holes.npy", "--chunk-size", 100,
           "-o", root / "streamed.csv")
    np.testing.assert_array_equal(_table(root / "streamed.csv"), filled)
    # a .npy file has no column names: the output takes the model's
    with open(root / "streamed.csv") as f:
        assert f.readline().strip() == "a,b,c"
    # stdout: CSV with the model's column names
    lines = invoke("impute", root / "model.npz", root / "holes.csv").output.splitlines()
    assert lines[0] == "a,b,c" and len(lines) == len(X) + 1


def test_draws_are_reproducible_and_change_only_the_empty_cells(holes):
    X, root = holes
    runs = [invoke("impute", root / "model.npz", root / "holes.csv", "--draw",
                   "--seed", seed, "-o", root / f"draw{i}.csv")
            for i, seed in enumerate((1, 1, 2))]
    assert "one draw" in runs[0].output
    first, again, other = (_table(root / f"draw{i}.csv") for i in range(3))
    expectation = load(root / "model.npz").impute(X)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(first, again)
    assert (first[observed] == X[observed]).all()
    assert (first[~observed] != other[~observed]).all()
    assert (first[~observed] != expectation[~observed]).all()
    # a draw scatters about the expectation: their mean difference is small
    # against the spread (about 1 here)
    assert abs(np.mean(first[~observed] - expectation[~observed])) < 0.2


def test_draws_of_a_file_read_in_chunks_are_those_of_its_rows_in_memory(holes):
    """Row i takes the same random numbers whatever the chunks: streamed
    draws equal the whole file's and ``GaussianMixture.impute``'s."""
    X, root = holes
    for name, chunks in (("whole", ()), ("streamed", ("--chunk-size", 37))):
        invoke("impute", root / "model.npz", root / "holes.npy", "--draw", "--seed", 5,
               *chunks, "-o", root / f"{name}.npy")
    whole, streamed = np.load(root / "whole.npy"), np.load(root / "streamed.npy")
    np.testing.assert_array_equal(streamed, whole)
    expected = load(root / "model.npz").impute(X, n_draws=1, random_state=5)[0]
    np.testing.assert_allclose(whole, expected, rtol=1e-12)


def test_a_model_fitted_without_missing_values_imputes_too(holes, tmp_path):
    X, root = holes
    complete = X[~np.isnan(X).any(axis=1)]
    np.save(tmp_path / "complete.npy", complete)
    invoke("fit", tmp_path / "complete.npy", "-k", 2, "--seed", 0, "--quiet",
           "-o", tmp_path / "model.npz")
    invoke("impute", tmp_path / "model.npz", root / "holes.npy", "-o", tmp_path / "f.npy")
    model = load(tmp_path / "model.npz")
    assert model.missing == "raise"
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), model.impute(X), rtol=1e-12)
