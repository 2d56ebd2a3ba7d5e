"""Found by a differential probe of the Dask and torch backends against the
in-memory fit: each test is a case that was refused, wrong or unclear on one
backend while the in-memory fit handles it (or says clearly why not)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import draw_mixture
from sklearn.exceptions import ConvergenceWarning

import gaussmix
from gaussmix import GaussianMixture

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed")

FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")
FEW_WEIGHTED = "only 2 row.*positive sample_weight"


@pytest.fixture(scope="module")
def X():
    rows, _ = draw_mixture(120, [[0, 0, 0], [6, 1, 0], [0, 7, 3]],
                           [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.4]],
                           [0.3, 0.3, 0.4], seed=3)
    return rows


@pytest.fixture(autouse=True)
def local_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _fit(X, w=None, n_components=3, **kw):
    gm = GaussianMixture(n_components, random_state=0, max_iter=5, tol=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, sample_weight=w)


def _assert_same_fit(got, expected, rtol=1e-10):
    for name in FITTED:
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name),
                                   rtol=rtol, atol=rtol, err_msg=name)


# ------------------------ fewer rows of positive weight than components
@pytest.mark.parametrize("init_params", ["kmeans", "random_from_data"])
def test_dask_counts_rows_of_positive_weight_as_in_memory(X, init_params):
    # Was: a fit of 3 components on 2 weighted rows (k-means: weights
    # [0.5, 0.3, 0.2]) or NumPy's "Fewer non-zero entries in p than size".
    w = np.zeros(len(X))
    w[:2] = 1.0
    with pytest.raises(ValueError, match=FEW_WEIGHTED):
        _fit(X, w, init_params=init_params)
    for weights in (w, da.from_array(w, chunks=50)):
        with pytest.raises(ValueError, match=FEW_WEIGHTED):
            _fit(da.from_array(X, chunks=50), weights, init_params=init_params)
    w[60] = 0.5  # three weighted rows: fits, as in memory
    _assert_same_fit(_fit(da.from_array(X, chunks=7), da.from_array(w, chunks=7)),
                     _fit(X, w))


@pytest.mark.parametrize("how", ["in-memory lockstep", "dask"])
def test_select_reports_too_few_weighted_rows_for_a_candidate(X, how):
    # Was: in lockstep (the default for Dask) a 3-component candidate fitted
    # on 2 weighted rows got a score; fitted one by one it failed.
    w = np.zeros(len(X))
    w[[0, 70]] = 1.0
    rows, shared = (X, True) if how != "dask" else (da.from_array(X, chunks=50), None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        table = gaussmix.select(rows, range(1, 4), "diag", random_state=0,
                                sample_weight=w, shared_passes=shared).table
        expected = gaussmix.select(X, range(1, 4), "diag", random_state=0,
                                   sample_weight=w, shared_passes=False).table
    assert [c.error is None for c in table] == [True, True, False]
    assert table[2].error == expected[2].error
    np.testing.assert_allclose([c.bic for c in table[:2]],
                               [c.bic for c in expected[:2]], rtol=1e-10)


# --------------------------------------------------------------- NaN
def test_nan_in_a_dask_array_is_named_before_initialisation(X):
    # Was: scikit-learn's KMeans message ("KMeans does not accept missing
    # values"), raised by the initialisation sample before any block check.
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="Dask array contains NaN.*missing='marginalize'"):
        _fit(da.from_array(bad, chunks=50))
    gm = _fit(X)  # predictions say the same
    with pytest.raises(ValueError, match="NaN.*missing='marginalize'"):
        gm.predict(da.from_array(bad, chunks=50)).compute()
    # under missing='marginalize' they are missing values, as in memory
    gm = _fit(da.from_array(bad, chunks=50), missing="marginalize")
    memory = _fit(bad, missing="marginalize")
    np.testing.assert_allclose(gm.means_, memory.means_, rtol=1e-10)
    np.testing.assert_allclose(gm.score_samples(da.from_array(bad, chunks=50)).compute(),
                               memory.score_samples(bad), rtol=1e-10)


def test_torch_refuses_nan_under_marginalize_instead_of_a_wrong_answer(X):
    torch = pytest.importorskip("torch")
    bad = X.copy()
    bad[5, 1] = np.nan
    # Was: NumPy rows on device="cpu" passed the NaN to the ordinary kernel:
    # a finite but wrong log-density for the row (not marginalised).
    gm = _fit(X, missing="marginalize", device="cpu")
    for method in ("predict", "score_samples", "predict_proba"):
        with pytest.raises(ValueError, match="row 5, column 1.*does not marginalise"):
            getattr(gm, method)(bad)
    with pytest.raises(ValueError, match="row 5, column 1.*does not marginalise"):
        gm.predict(torch.from_numpy(bad))
    # Was: scikit-learn's KMeans message at fit.
    with pytest.raises(ValueError, match="row 5, column 1.*does not marginalise"):
        _fit(bad, missing="marginalize", device="cpu")
    with pytest.raises(ValueError, match="row 5, column 1.*device=None"):
        _fit(torch.from_numpy(bad), missing="marginalize")
    with pytest.raises(ValueError, match="row 5, column 1. Remove or impute"):
        _fit(torch.from_numpy(bad))  # missing="raise": the usual advice
    with pytest.raises(ValueError, match="row 5, column 1.*device=None"):
        gaussmix.select(torch.from_numpy(bad), 2, "diag", missing="marginalize")
    # the in-memory fit marginalises them
    assert np.isfinite(_fit(bad, missing="marginalize").score_samples(bad)).all()


# -------------------------------------------------------- DataFrames
def test_dask_dataframe_of_bool_and_nullable_columns_fits_as_pandas(X):
    # Was: "Expected a numeric Dask array, got dtype object" for numeric
    # columns that to_dask_array turns into objects.
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        flag=np.arange(len(X)) % 2 == 0,
        count=pd.array(np.arange(len(X)) % 5, dtype="Int64"))
    frame["c"] = frame["c"].astype("Float64")
    expected = _fit(frame.astype(np.float64), covariance_type="diag")
    got = _fit(dd.from_pandas(frame, npartitions=3), covariance_type="diag")
    _assert_same_fit(got, expected)
    assert list(got.feature_names_in_) == ["a", "b", "c", "flag", "count"]
    with pytest.raises(ValueError, match=r"\['name'\] are not numeric.*select_dtypes"):
        got.predict(dd.from_pandas(frame.assign(name="x"), npartitions=3))
    with_na = frame.assign(count=pd.array([1, None] * (len(X) // 2), dtype="Int64"))
    with pytest.raises(ValueError, match="contains NaN"):
        _fit(dd.from_pandas(with_na, npartitions=3))
    single = dd.from_pandas(pd.DataFrame(X[:, :1].astype(np.float32)), npartitions=2)
    from gaussmix.backends.dask import DaskSource

    assert DaskSource(single).X.dtype == np.float32  # float32 columns stay float32


def test_dask_series_says_to_make_a_frame(X):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    series = dd.from_pandas(pd.Series(X[:, 0]), npartitions=2)
    with pytest.raises(ValueError, match="Series; pass series.to_frame()"):
        _fit(series)
    _assert_same_fit(_fit(series.to_frame()), _fit(X[:, :1]))


# ------------------------------------------------------ other inputs
def test_impute_on_a_tensor_returns_a_tensor(X):
    # Was: a NumPy array (float64 for a float32 tensor), unlike predictions.
    torch = pytest.importorskip("torch")
    bad = X.copy()
    bad[[5, 9], [1, 2]] = np.nan
    gm = _fit(X)
    for dtype in (np.float32, np.float64):
        T = torch.from_numpy(bad.astype(dtype))
        filled = gm.impute(T)
        assert isinstance(filled, torch.Tensor) and filled.dtype == T.dtype
        np.testing.assert_array_equal(filled.numpy(), gm.impute(bad.astype(dtype)))
        draws = gm.impute(T, n_draws=2, random_state=0)
        assert isinstance(draws, torch.Tensor) and tuple(draws.shape) == (2, *X.shape)
        np.testing.assert_array_equal(
            draws.numpy(), gm.impute(bad.astype(dtype), n_draws=2, random_state=0))


def test_dask_input_errors_are_clear(X):
    # Was: KMeans' "minimum of 1 is required by KMeans", and NumPy's bare
    # "could not convert string to float".
    with pytest.raises(ValueError, match=r"shape \(120, 0\).*at least 1 feature"):
        _fit(da.from_array(X[:, :0]))
    with pytest.raises(ValueError, match="sample_weight must be numeric"):
        _fit(da.from_array(X), ["a"] * len(X))
    with pytest.raises(ValueError, match="real-valued"):
        _fit(da.from_array(X.astype(complex)))


@pytest.mark.parametrize("scale", [1e306, 1e-320])
def test_score_with_huge_or_subnormal_weights_equals_in_memory(X, scale):
    # Was: NaN for weights near the top of the float range (the weighted sum
    # overflowed; in memory the weights are scaled by a power of two first),
    # and 5e-6 off for subnormal weights (digits lost in w * log p).
    torch = pytest.importorskip("torch")
    gm = _fit(X)
    w = np.random.default_rng(1).uniform(0.5, 1.0, len(X)) * scale  # subnormal: rounded
    expected = gm.score(X, sample_weight=w)
    assert expected == pytest.approx(gm.score(X, sample_weight=w / scale), rel=1e-6)
    for rows, weights in [(da.from_array(X, chunks=50), w),
                          (da.from_array(X, chunks=50), da.from_array(w, chunks=41)),
                          (torch.from_numpy(X), torch.from_numpy(w))]:
        assert gm.score(rows, sample_weight=weights) == pytest.approx(expected, rel=1e-14)


def test_select_with_subnormal_weights_fits_the_candidates_of_their_scaled_values(X):
    # Was: in memory, "component 0 has an ill-defined covariance" (the seeding
    # M-step ran on the subnormal weights as given; fit scales them first);
    # on Dask, a refusal of the weights.
    counts = np.random.default_rng(1).integers(1, 4, len(X)).astype(float)
    tiny = np.ldexp(counts, -1070)
    expected = gaussmix.select(X, range(1, 3), "full", random_state=0,
                               sample_weight=counts).estimators_
    for rows, weights in [(X, tiny), (da.from_array(X, chunks=50), tiny)]:
        got = gaussmix.select(rows, range(1, 3), "full", random_state=0,
                              sample_weight=weights)
        assert all(c.error is None for c in got.table)
        for key, model in expected.items():
            _assert_same_fit(got.estimators_[key], model)


def test_a_model_fitted_on_a_dask_array_pickles(X):
    # Was: "Can't pickle local object 'GaussianMixture._per_row.<locals>.<lambda>'"
    # (the lazy labels_ held a closure in its graph); in-memory models pickle.
    import pickle

    dX = da.from_array(X, chunks=50)
    gm = _fit(dX)
    again = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(again.labels_.compute(), gm.predict(X))
    np.testing.assert_array_equal(again.predict(dX).compute(), gm.predict(X))
    _assert_same_fit(again, gm, rtol=0)


@pytest.mark.parametrize("init_params", ["kmeans", "random", "random_from_data"])
def test_initialisation_sample_skips_rows_of_weight_zero(X, init_params, monkeypatch):
    # Past INIT_SAMPLE_ROWS rows, initialisation works on a uniform sample of
    # rows; drawn among all rows, it could hold no row of positive weight
    # (was: "Sample weights must contain at least one non-zero number",
    # "probabilities contain NaN", "ill-defined covariance").
    torch = pytest.importorskip("torch")
    from gaussmix.backends.dask import DaskSource
    from gaussmix.backends.torch import TorchSource
    from gaussmix.engine import init as init_module

    w = np.zeros(len(X))
    w[[10, 50, 51, 90, 119]] = [1.0, 2.0, 1.0, 3.0, 1.0]
    rng = np.random.RandomState(0)
    for source in (DaskSource(da.from_array(X, chunks=25), w),
                   TorchSource(torch.from_numpy(X), w)):
        rows, weights = source.sample(8, rng)
        assert len(rows) == 8 and np.count_nonzero(weights) == 5  # all of them
        rows, weights = source.sample(4, rng)
        assert np.all(weights > 0)
        assert all(any(np.array_equal(r, X[i]) for i in np.flatnonzero(w)) for r in rows)
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 20)
    low, high = X[w > 0].min(axis=0), X[w > 0].max(axis=0)
    chunks = [(X[i:i + 25], w[i:i + 25]) for i in range(0, len(X), 25)]
    for rows, weights in [(da.from_array(X, chunks=25), w), (torch.from_numpy(X), w),
                          (gaussmix.IterableSource(chunks), None)]:
        got = _fit(rows, weights, init_params=init_params, n_components=2)
        means = np.asarray(got.means_)  # averages of the weighted rows only
        assert np.isfinite(float(got.lower_bound_))
        assert np.all((means >= low - 1e-9) & (means <= high + 1e-9))


def test_partial_fit_on_tensor_batches_runs_on_the_host(X, monkeypatch):
    # partial_fit steps on the host: tensor batches (and weights) are copied
    # there first, so a batch on a GPU works as a CPU one (here: the copy is
    # made by to_host, not by NumPy's conversion, which refuses CUDA tensors).
    torch = pytest.importorskip("torch")
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(X))
    a, b = GaussianMixture(3, random_state=0), GaussianMixture(3, random_state=0)
    for part in (slice(0, 60), slice(60, None)):
        a.partial_fit(X[part].astype(np.float32), sample_weight=w[part])
        b.partial_fit(torch.from_numpy(X[part].astype(np.float32)),
                      sample_weight=torch.from_numpy(w[part]))
    _assert_same_fit(b, a, rtol=0)
    assert isinstance(b.means_, np.ndarray)
    monkeypatch.setattr(torch.Tensor, "__array__", None)  # as a CUDA tensor refuses
    b.partial_fit(torch.from_numpy(X[:30]))
    a.partial_fit(X[:30])
    _assert_same_fit(b, a, rtol=0)
    # tensor weights of NumPy rows, in fit and score, likewise
    expected = _fit(X, w)
    _assert_same_fit(_fit(X, torch.from_numpy(w)), expected, rtol=0)
    assert expected.score(X, sample_weight=torch.from_numpy(w)) == \
        expected.score(X, sample_weight=w)
