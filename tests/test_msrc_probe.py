"""Probe tests: missing values (``missing='marginalize'``) in data sources
other than in-memory arrays, against the same rows in memory."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def holes() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)) + 5 * rng.integers(0, 2, (80, 1))
    X[rng.random(X.shape) < 0.25] = np.nan
    return X[~np.isnan(X).all(axis=1)]


def test_dask_blocks_of_zero_rows_impute_and_give_probabilities(holes):
    # a block of zero rows gave a (0, 0) result: Dask could not concatenate it
    da = pytest.importorskip("dask.array")
    gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(holes)
    Xd = da.from_array(holes, chunks=((10, 0, len(holes) - 10), 3))
    np.testing.assert_allclose(gm.impute(Xd).compute(), gm.impute(holes), rtol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(Xd).compute(), gm.predict_proba(holes),
                               rtol=1e-12)


def test_a_column_observed_only_outside_the_init_sample_is_fitted(tmp_path, monkeypatch):
    # the sample's mean filling raised "drop it" for a column the file observes
    from gaussmix import NpySource
    from gaussmix.engine import init as engine_init

    monkeypatch.setattr(engine_init, "INIT_SAMPLE_ROWS", 50)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3)) + 5 * rng.integers(0, 2, (600, 1))
    X[:-2, 2], X[-2:, 2] = np.nan, [1.0, 3.0]
    np.save(tmp_path / "x.npy", X)
    for seed in (0, 2):  # samples without the last two rows
        gm = GaussianMixture(2, missing="marginalize", covariance_type="diag",
                             random_state=seed).fit(NpySource(tmp_path / "x.npy"))
        assert np.all(np.isfinite(gm.means_)) and np.all(gm.means_[:, 2] > 0.9)
        assert np.all(gm.means_[:, 2] < 3.1)
    X[-2:, 2] = np.nan  # nothing observed: the error says the file, not the sample
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match="no observed value .* in its rows.* column 2"):
        GaussianMixture(2, missing="marginalize").fit(NpySource(tmp_path / "x.npy"))


def test_an_empty_row_in_a_dask_sample_is_named_by_its_row(holes, monkeypatch):
    # the sample's check named the row's place in the sample, not in the array
    import re

    da = pytest.importorskip("dask.array")
    from gaussmix.engine import init as engine_init

    monkeypatch.setattr(engine_init, "INIT_SAMPLE_ROWS", 30)
    X = np.vstack([holes, np.full((len(holes), 3), np.nan)])
    with pytest.raises(ValueError, match="every feature missing") as error:
        GaussianMixture(2, missing="marginalize", random_state=0).fit(
            da.from_array(X, chunks=40))
    row = int(re.search(r"row (\d+) of the Dask array", str(error.value)).group(1))
    assert np.isnan(X[row]).all()


def test_bad_values_in_a_dask_block_name_its_rows(holes):
    # the block checks said "a block of the Dask array", not which rows
    da = pytest.importorskip("dask.array")
    gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(holes)
    X = holes.copy()
    X[45, 1] = np.inf
    Xd = da.from_array(X, chunks=20)
    for method in (gm.score, lambda Xd: gm.predict(Xd).compute()):
        with pytest.raises(ValueError, match=r"rows 40\.\.59 of the Dask array contains inf"):
            method(Xd)
