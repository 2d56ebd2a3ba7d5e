"""Missing values (``missing='marginalize'``) in file and chunk sources.

A ``.npy``, Parquet (nulls) or Zarr file, or an IterableSource, with NaN is
fitted by the same exact EM as the same rows in memory: from the same start
(a source of at most 50,000 rows starts where memory does) the results are
equal to rounding, for every covariance type, with and without weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture, IterableSource, NpySource, select
from gaussmix.engine import init as engine_init

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zarr = pytest.importorskip("zarr")

TYPES = ["full", "tied", "diag", "spherical"]

# short fits from fixed starts: convergence is not what these tests look at
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3)) + 5 * rng.integers(0, 2, (1200, 1))
    X[rng.random(X.shape) < 0.25] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    return X, rng.uniform(0.5, 2.0, len(X))


def _sources(X: np.ndarray, w: np.ndarray | None, folder) -> dict:  # noqa: ANN001
    np.save(folder / "x.npy", X)
    columns = {f"c{j}": X[:, j] for j in range(X.shape[1])}  # NaN: Parquet nulls
    table = pa.table({name: pa.array(v, from_pandas=True) for name, v in columns.items()}
                     | ({} if w is None else {"w": w}))
    assert table.column("c0").null_count > 0
    pq.write_table(table, folder / "x.parquet", row_group_size=300)
    z = zarr.open_array(str(folder / "x.zarr"), mode="w", shape=X.shape, chunks=(250, 3),
                        dtype="f8")
    z[:] = X
    from gaussmix import ParquetSource, ZarrSource

    pieces = lambda: (X[i:i + 200] if w is None else (X[i:i + 200], w[i:i + 200])  # noqa: E731
                      for i in range(0, len(X), 200))
    return {
        "npy": lambda: NpySource(folder / "x.npy", sample_weight=w, chunk_size=170),
        "parquet": lambda: ParquetSource(folder / "x.parquet", weights=None if w is None
                                         else "w", columns=list(columns)),
        "zarr": lambda: ZarrSource(str(folder / "x.zarr"), sample_weight=w),
        "iterable": lambda: IterableSource(pieces),
    }


def _close(a, b, rtol=1e-10):  # noqa: ANN001, ANN202
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) <= rtol * max(1.0, np.max(np.abs(b)))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov", TYPES)
def test_a_source_with_nan_fits_as_the_same_rows_in_memory(rows, tmp_path, cov, weighted):
    X, w = rows
    w = w if weighted else None
    kw = dict(covariance_type=cov, missing="marginalize", random_state=0, max_iter=8, tol=0)
    memory = GaussianMixture(2, **kw).fit(X, sample_weight=w)
    for name, make in _sources(X, w, tmp_path).items():
        gm = GaussianMixture(2, **kw).fit(make())
        for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert _close(getattr(gm, attr), getattr(memory, attr)), (name, attr)
        assert _close(gm.lower_bound_, memory.lower_bound_), name
        # per-row results on the source, with its NaN, as on the array
        assert _close(gm.score_samples(make()), memory.score_samples(X)), name
        assert (gm.predict(make()) == memory.predict(X)).all(), name
        assert _close(gm.score(make()), memory.score(X, sample_weight=w)), name
        assert _close(gm.bic(make()), memory.bic(X, sample_weight=w)), name


def test_a_large_source_starts_from_its_sample_with_nan_filled(rows, tmp_path, monkeypatch):
    # Sources larger than the initialisation sample draw one and fill its NaN
    # with its column means; from given starting parameters the fit is the
    # in-memory one.
    monkeypatch.setattr(engine_init, "INIT_SAMPLE_ROWS", 300)
    X, _ = rows
    np.save(tmp_path / "x.npy", X)
    drawn = GaussianMixture(2, missing="marginalize", random_state=0, max_iter=30)
    drawn.fit(NpySource(tmp_path / "x.npy"))
    assert np.isfinite(drawn.means_).all() and drawn.converged_
    # the two clusters, 5 apart in every feature, are found
    assert np.allclose(np.sort(drawn.means_[:, 0]), [0, 5], atol=0.3)
    start = dict(weights_init=drawn.weights_, means_init=drawn.means_,
                 precisions_init=drawn.precisions_)
    kw = dict(missing="marginalize", max_iter=5, tol=0, **start)
    a = GaussianMixture(2, **kw).fit(NpySource(tmp_path / "x.npy"))
    b = GaussianMixture(2, **kw).fit(X)
    assert _close(a.means_, b.means_) and _close(a.covariances_, b.covariances_)


def test_select_over_a_source_with_nan_equals_select_over_the_array(rows, tmp_path):
    X, _ = rows
    np.save(tmp_path / "x.npy", X)
    kw = dict(n_components=[1, 2, 3], covariance_types=["full", "diag"],
              missing="marginalize", random_state=0)
    a = select(X, **kw)
    b = select(NpySource(tmp_path / "x.npy"), **kw)
    assert [c.bic for c in a.table] == pytest.approx([c.bic for c in b.table], rel=1e-10)
    assert _close(a.best_estimator_.means_, b.best_estimator_.means_)


def test_bad_values_in_a_source_are_named(rows, tmp_path):
    X, _ = rows
    gm = GaussianMixture(2, missing="marginalize", random_state=0)
    empty = X.copy()
    empty[700] = np.nan
    np.save(tmp_path / "empty.npy", empty)
    with pytest.raises(ValueError, match=r"rows .* of .*empty\.npy.* every feature missing"):
        gm.fit(NpySource(tmp_path / "empty.npy"))
    infinite = X.copy()
    infinite[5, 1] = np.inf
    np.save(tmp_path / "inf.npy", infinite)
    with pytest.raises(ValueError, match="contains infinity"):
        gm.fit(NpySource(tmp_path / "inf.npy"))
    column = X.copy()
    column[:, 2] = np.nan
    column = column[~np.isnan(column).all(axis=1)]
    np.save(tmp_path / "column.npy", column)
    with pytest.raises(ValueError, match="column 2"):
        gm.fit(NpySource(tmp_path / "column.npy"))
    # without missing='marginalize' NaN stay an error that says how to fit them
    with pytest.raises(ValueError, match="NaN.*missing='marginalize'"):
        GaussianMixture(2).fit(NpySource(tmp_path / "column.npy"))
    # predictions accept a row with nothing observed (its density is 1)
    gm.fit(X)
    assert gm.score_samples(NpySource(tmp_path / "empty.npy"))[700] == pytest.approx(0.0, abs=1e-12)


def test_a_cached_parquet_file_never_hands_nan_to_a_fit_that_rejects_them(rows, tmp_path):
    # A fit with missing values spills its rows to a scratch file of its own:
    # a later fit of the same source without missing='marginalize' reads the
    # file again and rejects its NaN, instead of mapping unchecked rows.
    from gaussmix import ParquetSource

    X, _ = rows
    _sources(X, None, tmp_path)
    source = ParquetSource(tmp_path / "x.parquet", cache=True)
    kw = dict(random_state=0, max_iter=5, tol=0)
    spilled = GaussianMixture(2, missing="marginalize", **kw).fit(source)
    memory = GaussianMixture(2, missing="marginalize", **kw).fit(X)
    assert _close(spilled.means_, memory.means_)
    assert not source._spill.ready
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2, **kw).fit(source)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # Parquet's
def test_the_command_line_streams_a_file_with_missing_values(rows, tmp_path):
    # --missing marginalize with a streamed file (--chunk-size): the fit and the
    # predictions equal those of the file read whole.
    from click.testing import CliRunner

    from gaussmix import load
    from gaussmix.cli import main

    X, _ = rows
    _sources(X, None, tmp_path)

    def run(*args: object) -> None:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output + repr(result.exception)

    fit = ["-k", "2", "--seed", "0", "--max-iter", "10", "--missing", "marginalize"]
    for name in ("x.npy", "x.parquet"):
        run("fit", tmp_path / name, *fit, "-o", tmp_path / "whole.npz")
        run("fit", tmp_path / name, *fit, "--chunk-size", 100, "-o", tmp_path / "streamed.npz")
        whole, streamed = load(tmp_path / "whole.npz"), load(tmp_path / "streamed.npz")
        assert _close(streamed.means_, whole.means_), name
        assert _close(streamed.covariances_, whole.covariances_), name
        for label, extra in (("a", []), ("b", ["--chunk-size", 100])):
            run("predict", tmp_path / "streamed.npz", tmp_path / name, *extra,
                "-o", tmp_path / f"{label}.npy")
        assert (np.load(tmp_path / "a.npy") == np.load(tmp_path / "b.npy")).all(), name
        assert (np.load(tmp_path / "a.npy") == whole.predict(X)).all(), name
    empty = X.copy()
    empty[150] = np.nan
    np.save(tmp_path / "empty.npy", empty)
    result = CliRunner().invoke(main, ["fit", str(tmp_path / "empty.npy"), *fit,
                                       "--chunk-size", "100", "-o",
                                       str(tmp_path / "m.npz")])
    assert result.exit_code != 0 and "every feature missing" in result.output
    assert "data row 151 (counting from 1)" in result.output, result.output


def test_select_over_a_source_with_an_empty_column_says_so(rows, tmp_path):
    # Was: "... no observed value ...). Increase reg_covar or scale the data.":
    # advice for covariances, given for a data problem.
    X, _ = rows
    X = X.copy()
    X[:, 1] = np.nan
    np.save(tmp_path / "x.npy", X[~np.isnan(X).all(axis=1)])
    with pytest.raises(ValueError, match="no observed value") as error:
        select(NpySource(tmp_path / "x.npy"), n_components=[1, 2],
               covariance_types="diag", missing="marginalize", random_state=0)
    assert "reg_covar" not in str(error.value)
