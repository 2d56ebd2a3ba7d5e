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
