"""gaussmix inside scikit-learn's machinery: metadata routing, model
selection, pipelines, persistence and estimator tags, side by side with
scikit-learn's GaussianMixture where it applies (each a probe finding, or a
check that a workflow holds)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

from gaussmix import GaussianMixture, GaussianMixtureImputer


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-3, 1, (60, 3)), rng.normal(3, 1, (60, 3))])


@pytest.fixture(scope="module")
def holes(X):
    out = X.copy()
    out[::5, 1] = np.nan
    return out


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


# -- estimator tags -------------------------------------------------------------
@pytest.mark.parametrize("device", [None, "cpu"])
def test_allow_nan_tag_says_whether_fit_takes_nan(holes, device):
    # Was: allow_nan True under missing='marginalize' with a device, where torch
    # computes and fit refuses NaN.
    if device is not None:
        pytest.importorskip("torch")
    model = GaussianMixture(2, random_state=0, missing="marginalize", device=device)
    try:
        model.fit(holes)
        takes_nan = True
    except ValueError as err:
        assert "NaN" in str(err)
        takes_nan = False
    assert takes_nan == (device is None)
    assert get_tags(model).input_tags.allow_nan == takes_nan


@pytest.mark.parametrize("sample_posterior", [False, True])
def test_imputer_preserves_the_dtypes_its_tag_lists(holes, sample_posterior):
    # Was: preserves_dtype ['float64'] only, though float32 rows come back float32.
    imputer = GaussianMixtureImputer(2, random_state=0, sample_posterior=sample_posterior)
    preserved = get_tags(imputer).transformer_tags.preserves_dtype
    assert set(preserved) == {"float64", "float32"}
    for dtype in preserved:
        rows = holes.astype(dtype)
        assert imputer.fit(rows).transform(rows).dtype == dtype
        assert imputer.fit_transform(rows).dtype == dtype


# -- metadata routing -----------------------------------------------------------
def test_routed_weights_reach_fit_and_score_in_cross_validation(X, routing):
    w = np.random.default_rng(1).integers(0, 4, len(X)).astype(float)
    cv = KFold(3, shuffle=True, random_state=0)
    model = GaussianMixture(2, random_state=0).set_fit_request(sample_weight=True)
    routed = cross_validate(model.set_score_request(sample_weight=True), X, cv=cv,
                            params={"sample_weight": w})["test_score"]
    by_hand = [GaussianMixture(2, random_state=0).fit(X[tr], sample_weight=w[tr])
               .score(X[te], sample_weight=w[te]) for tr, te in cv.split(X)]
    np.testing.assert_allclose(routed, by_hand, rtol=1e-12)
    unweighted_score = cross_validate(
        clone(model).set_score_request(sample_weight=False), X, cv=cv,
        params={"sample_weight": w})["test_score"]
    assert not np.allclose(unweighted_score, routed)


def test_routed_weights_reach_the_imputer_in_a_pipeline(holes, routing):
    w = np.random.default_rng(2).integers(1, 4, len(holes)).astype(float)
    pipe = make_pipeline(
        GaussianMixtureImputer(2, random_state=0).set_fit_request(sample_weight=True),
        GaussianMixture(2, random_state=0).set_fit_request(sample_weight=False))
    pipe.fit(holes, sample_weight=w)
    alone = GaussianMixtureImputer(2, random_state=0).fit(holes, sample_weight=w)
    np.testing.assert_array_equal(pipe[0].mixture_.means_, alone.mixture_.means_)
    unweighted = GaussianMixtureImputer(2, random_state=0).fit(holes)
    assert not np.allclose(pipe[0].mixture_.means_, unweighted.mixture_.means_)


def test_fit_params_without_routing_weight_the_fit(X):
    w = np.random.default_rng(3).integers(0, 4, len(X)).astype(float)
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0))
    pipe.fit(X, gaussianmixture__sample_weight=w)
    alone = GaussianMixture(2, random_state=0).fit(pipe[0].transform(X), sample_weight=w)
    np.testing.assert_array_equal(pipe[-1].means_, alone.means_)


# -- model selection and pipelines ------------------------------------------------
@pytest.fixture()
def blas_threads_kept():
    """Restore BLAS's thread counts after the test: scikit-learn's own
    GaussianMixture (its k-means), searched with joblib's threading backend,
    leaves BLAS at one thread for the rest of the process under threadpoolctl
    3.8 (seen with scikit-learn alone, no gaussmix imported), which made a
    later test that needs a threaded BLAS skip."""
    from gaussmix.engine import threads

    saved = [(lib, lib.get_num_threads()) for lib in threads._libraries("blas")]
    yield
    for lib, n in saved:
        threads._set_threads(lib, n)


@pytest.mark.usefixtures("blas_threads_kept")
@pytest.mark.parametrize("backend", ["sequential", "threading", "loky"])
def test_grid_search_scores_equal_scikit_learns(X, backend):
    import joblib

    grid = {"n_components": [1, 2], "covariance_type": ["full", "spherical"]}
    scores = {}
    with joblib.parallel_backend(backend, n_jobs=2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cls in (GaussianMixture, SkGaussianMixture):
            search = GridSearchCV(cls(random_state=0), grid, cv=3, n_jobs=2).fit(X)
            scores[cls] = search.cv_results_["mean_test_score"]
    np.testing.assert_allclose(scores[GaussianMixture], scores[SkGaussianMixture],
                               rtol=1e-10)


def test_pipeline_predictions_equal_scikit_learns(X):
    ours = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    theirs = make_pipeline(StandardScaler(), SkGaussianMixture(2, random_state=0)).fit(X)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-12)


@pytest.mark.parametrize("method", ["predict", "partial_fit", "impute", "transform"])
def test_feature_names_are_checked_as_scikit_learn_checks_them(X, method):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    estimator = (GaussianMixtureImputer(2, random_state=0) if method == "transform"
                 else GaussianMixture(2, random_state=0)).fit(frame)
    theirs = SkGaussianMixture(2, random_state=0).fit(frame)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        theirs.predict(X)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        getattr(estimator, method)(X)
    for model, name in ((theirs, "predict"), (estimator, method)):
        with pytest.raises(ValueError, match="same order as they were in fit"):
            getattr(model, name)(frame[["b", "a", "c"]])


# -- persistence ----------------------------------------------------------------
def test_a_pickled_stream_continues_as_the_original(holes):
    stream = GaussianMixture(2, random_state=0, missing="marginalize")
    for start in (0, 40):
        stream.partial_fit(holes[start:start + 40])
    copy = pickle.loads(pickle.dumps(stream))
    stream.partial_fit(holes[80:])
    copy.partial_fit(holes[80:])
    assert copy.n_iter_ == stream.n_iter_ == 3
    np.testing.assert_array_equal(copy.means_, stream.means_)
    fresh = clone(stream)  # parameters only: a new stream
    assert not hasattr(fresh, "means_") and fresh.partial_fit(holes[:40]).n_iter_ == 1


# -- a fit that raises ------------------------------------------------------------
def _stop(info):
    raise RuntimeError("stop")


@pytest.mark.parametrize(("estimator", "rows"), [
    (GaussianMixture(5), 3),  # fewer rows than components
    (GaussianMixture(2, callback=_stop), None),
    (GaussianMixtureImputer(5), 3),
], ids=["n_components", "callback", "imputer"])
def test_a_first_fit_that_fails_leaves_the_estimator_unfitted(X, estimator, rows):
    # Was: n_features_in_ of the failed data made check_is_fitted pass, and
    # predict/transform/sample raised AttributeError ('weights_', 'mixture_') or
    # sample() asked for covariances_ (scikit-learn: AttributeError 'means_').
    from sklearn.exceptions import NotFittedError

    estimator = clone(estimator)
    with pytest.raises((ValueError, RuntimeError)):
        estimator.fit(X[:rows])
    assert not hasattr(estimator, "n_features_in_")
    method = getattr(estimator, "predict", None) or estimator.transform
    with pytest.raises(NotFittedError):
        method(X)
    if hasattr(estimator, "sample"):
        with pytest.raises(NotFittedError):
            estimator.sample(2)


def test_a_hand_built_model_counts_as_fitted(X):
    fitted = GaussianMixture(2, random_state=0).fit(X)
    model = GaussianMixture(2)
    for name in ("weights_", "means_", "precisions_cholesky_"):
        setattr(model, name, getattr(fitted, name))
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))


def test_a_refit_that_fails_keeps_checking_the_fitted_features(X):
    # Was: the failed data's n_features_in_ and feature_names_in_ replaced the
    # fit's, though the model is still the fit's (as the callback's docs say):
    # it then refused rows of its own width and names.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    before = model.predict(frame)
    model.set_params(callback=_stop)
    with pytest.raises(RuntimeError, match="stop"):
        model.fit(pd.DataFrame(X[:, :2], columns=["x", "y"]))
    assert model.n_features_in_ == 3 and list(model.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(model.predict(frame), before)
    with pytest.raises(RuntimeError, match="stop"):
        model.fit(X[:, :2])  # no names: those of the fit stay
    assert list(model.feature_names_in_) == ["a", "b", "c"]


# -- scikit-learn's global configuration ---------------------------------------------
@pytest.mark.parametrize("fit", [
    lambda X: GaussianMixture(2).fit(X),
    lambda X: GaussianMixture(2).fit(np.nan_to_num(X), sample_weight=X[:, 1]),
    lambda X: GaussianMixtureImputer(2).fit(np.where(np.isnan(X), np.inf, X)),
], ids=["X", "sample_weight", "imputer-inf"])
def test_nan_under_assume_finite_gets_the_ordinary_message(holes, fit):
    # Was: AssertionError('X has no NaN or inf') from inside the check, whose
    # scikit-learn half is skipped under assume_finite (scikit-learn's own
    # model fails deep in k-means: 'array must not contain infs or NaNs').
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r"(?s)contains (NaN|infinity).*non-finite"):
            fit(holes)


# -- sparse input -----------------------------------------------------------------
def test_sparse_rows_and_weights_are_refused_with_scikit_learns_message(X):
    # X: as scikit-learn's GaussianMixture; sample_weight was: "sample_weight
    # must be numeric: setting an array element with a sequence."
    sparse = pytest.importorskip("scipy.sparse")
    for estimator in (GaussianMixture(2), GaussianMixtureImputer(2),
                      SkGaussianMixture(2)):
        with pytest.raises(TypeError, match="Sparse data was passed for X"):
            estimator.fit(sparse.csr_matrix(X))
    weights = sparse.csr_matrix(np.ones(len(X)))
    for method in (GaussianMixture(2).fit, GaussianMixtureImputer(2).fit,
                   GaussianMixture(2).partial_fit,
                   GaussianMixture(2, random_state=0).fit(X).score):
        with pytest.raises(TypeError, match=r"sample_weight.*toarray\(\)\.ravel\(\)"):
            method(X, sample_weight=weights)


# -- DataFrame columns that are not numbers -----------------------------------------
def test_a_dataframe_with_dates_says_what_to_do(X):
    # Was (and scikit-learn's): NumPy's DTypePromotionError about DTypes alone.
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        when=pd.date_range("2020-01-01", periods=len(X)))
    for estimator in (GaussianMixture(2), GaussianMixtureImputer(2)):
        with pytest.raises(TypeError, match=r"only numbers: .*DateTime64.*select_dtypes"):
            estimator.fit(frame)
    with pytest.raises(TypeError, match="DateTime64"):  # the same exception type
        SkGaussianMixture(2).fit(frame)


# -- threads in joblib's process workers ------------------------------------------------
def _default_threads(_=None):
    from gaussmix.engine.threads import resolve_threads

    return resolve_threads(None)


def test_default_threads_are_a_joblib_workers_share_of_the_cores():
    # Was: each of GridSearchCV's loky workers ran a thread per core, where
    # joblib sets OMP_NUM_THREADS to the worker's share (cores // n_jobs),
    # which scikit-learn's threaded code follows.
    import joblib

    share = max(1, joblib.cpu_count() // 2)
    in_workers = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_default_threads)(i) for i in range(2))
    assert all(1 <= n <= share for n in in_workers)


def test_omp_num_threads_caps_threads_only_in_joblib_tasks(monkeypatch):
    import joblib

    from gaussmix.engine.threads import available_cores, resolve_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # outside a joblib task (Dask's local cluster sets it in the parent process)
    assert _default_threads() == available_cores()
    with joblib.parallel_config(backend="threading", n_jobs=2):
        in_tasks = joblib.Parallel()(joblib.delayed(_default_threads)(i) for i in range(2))
        assert in_tasks == [1, 1]
        assert joblib.Parallel()(joblib.delayed(resolve_threads)(3) for _ in range(1)) == [3]
        for value in ("4096,2", "", "abc", "0"):  # a cap, never more threads
            monkeypatch.setenv("OMP_NUM_THREADS", value)
            assert joblib.Parallel()(joblib.delayed(_default_threads)(i)
                                     for i in range(1)) == [available_cores()]


# -- the imputer's parameters -----------------------------------------------------------
@pytest.mark.parametrize("params", [{"n_components": True}, {"n_threads": True},
                                    {"max_iter": False}, {"n_components": 0}])
def test_imputer_parameter_errors_name_the_imputer(X, params):
    # Was: a bool for an int parameter passed the imputer's check and was refused
    # by the inner mixture, as "parameter of GaussianMixture".
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="of GaussianMixtureImputer must be"):
        GaussianMixtureImputer(**params).fit(X)
