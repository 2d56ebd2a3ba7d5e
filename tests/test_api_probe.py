"""The estimator API against scikit-learn's conventions: verbose output, the
callback, parameters round trips, GaussianMixtureSearch's delegation, and the
imputer's DataFrame output (each a probe finding, or a check that it holds)."""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture, GaussianMixtureImputer
from gaussmix.selection import GaussianMixtureSearch


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-3, 1, (60, 2)), rng.normal(3, 1, (60, 2))])


def _printed(estimator, X):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    return out.getvalue()


# -- verbose and callback -------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"verbose": 1},
    {"verbose": 2, "verbose_interval": 1, "max_iter": 3},
    {"verbose": 3, "verbose_interval": 2, "n_init": 2, "max_iter": 5, "tol": 0},
    {"verbose": 2, "max_iter": 0},
], ids=str)
def test_verbose_lines_are_scikit_learns(X, params):
    def timeless(text):
        return re.sub(r"[-\d.]+s\b", "<t>s", text)

    ours = _printed(GaussianMixture(3, random_state=0, **params), X)
    theirs = _printed(SkGaussianMixture(3, random_state=0, **params), X)
    assert ours.startswith("Initialization 0\n")
    assert timeless(ours) == timeless(theirs)


def test_verbose_time_lapse_counts_since_the_last_line(X):
    # Was: the lapse of one iteration only; scikit-learn's covers the
    # verbose_interval iterations since the last line.
    def slow(_):
        time.sleep(0.03)

    text = _printed(GaussianMixture(2, verbose=2, verbose_interval=3, max_iter=3, tol=0,
                                    random_state=0, callback=slow), X)
    lapse = float(re.search(r"Iteration 3\t time lapse ([\d.]+)s", text).group(1))
    assert lapse >= 0.055  # the callbacks of iterations 1 and 2 slept in it


def test_callback_return_ignored_and_raising_keeps_the_fitted_model(X):
    gm = GaussianMixture(2, max_iter=3, tol=0, random_state=0,
                         callback=lambda info: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    assert gm.n_iter_ == 3
    before = gm.means_.copy()

    def stop(info):
        if info["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gm.set_params(callback=stop, random_state=1, max_iter=50).fit(X[::-1] + 5)
    np.testing.assert_array_equal(gm.means_, before)


def test_callback_reports_each_restart(X):
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, n_init=2, max_iter=2, tol=0, random_state=0,
                        callback=seen.append).fit(X)
    assert [(s["init"], s["iteration"]) for s in seen] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert seen[0]["change"] == np.inf and np.isfinite(seen[1]["change"])


# -- parameters -----------------------------------------------------------------
def test_every_parameter_round_trips_through_set_params_and_clone():
    values = dict(
        n_components=3, covariance_type="diag", tol=1e-4, reg_covar=1e-5, max_iter=7,
        n_init=2, init_params="random", weights_init=[0.2, 0.3, 0.5],
        means_init=np.zeros((3, 2)), precisions_init=np.ones((3, 2)), random_state=4,
        warm_start=True, verbose=1, verbose_interval=3, chunk_size=17, n_threads=1,
        callback=print, learning_offset=3.0, learning_decay=0.9, device="cpu",
        matmul_precision="tf32", missing="marginalize",
    )
    gm = GaussianMixture().set_params(**values)
    assert gm.get_params().keys() == values.keys()
    copy = clone(gm).get_params()
    for name, value in values.items():
        np.testing.assert_equal(copy[name], value, err_msg=name)
    assert repr(GaussianMixture(chunk_size=5, device="cpu")) == (
        "GaussianMixture(chunk_size=5, device='cpu')")


# -- GaussianMixtureSearch ------------------------------------------------------
@pytest.fixture(scope="module")
def search(X):
    return GaussianMixtureSearch(range(1, 3), covariance_types=("full", "diag"),
                                 random_state=0).fit(X)


def test_search_bic_and_aic_take_sample_weight(search, X):
    # Was: TypeError (GaussianMixture's bic and aic take sample_weight).
    w = np.arange(len(X)) % 3
    best = search.best_estimator_
    assert search.bic(X, sample_weight=w) == best.bic(X, sample_weight=w)
    assert search.aic(X, sample_weight=w) == best.aic(X, sample_weight=w)
    assert search.bic(X, sample_weight=w) != search.bic(X)


def test_search_takes_missing_values_under_marginalize(X):
    # Was: no `missing` parameter, so the estimator refused NaN that select takes.
    holes = X.copy()
    holes[::7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureSearch(range(1, 3), random_state=0).fit(holes)
    search = GaussianMixtureSearch(range(1, 3), random_state=0,
                                   missing="marginalize").fit(holes)
    assert search.best_estimator_.missing == "marginalize"
    assert np.isfinite(search.score(holes))
    np.testing.assert_array_equal(search.predict(holes), search.labels_)
    assert get_tags(search).input_tags.allow_nan
    assert not get_tags(GaussianMixtureSearch()).input_tags.allow_nan


@parametrize_with_checks([GaussianMixtureSearch(
    n_components=(1, 2), covariance_types=("full",), random_state=0,
    missing="marginalize")])
def test_search_with_missing_values_passes_sklearn_checks(estimator, check):
    check(estimator)  # its allow_nan tag on: the checks feed it NaN


def test_search_in_a_pipeline_and_cross_validation(X):
    pipe = make_pipeline(StandardScaler(), GaussianMixtureSearch(range(1, 3),
                                                                 random_state=0))
    scores = cross_val_score(pipe, X, cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    grid = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2]},
                        cv=3).fit(X)
    assert grid.best_params_ == {"n_components": 2}  # two well-separated blobs


# -- imputer --------------------------------------------------------------------
def test_imputer_pandas_output_keeps_columns_and_index():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    values = rng.multivariate_normal([0, 0, 0], np.eye(3) + 0.5, 200)
    values[rng.random(values.shape) < 0.1] = np.nan
    df = pd.DataFrame(values, columns=["a", "b", "c"], index=np.arange(200) + 1000)
    imputer = GaussianMixtureImputer(2, random_state=0).set_output(transform="pandas")
    out = imputer.fit(df).transform(df)
    assert list(out.columns) == ["a", "b", "c"] and out.index.equals(df.index)
    assert not out.isna().any().any()
    observed = ~np.isnan(values)
    np.testing.assert_array_equal(out.to_numpy()[observed], values[observed])
    assert list(imputer.get_feature_names_out()) == ["a", "b", "c"]


def test_search_refit_drops_what_the_new_fit_lacks(X, tmp_path):
    # Was: feature_names_in_ of a DataFrame fit, and labels_ of an in-memory
    # fit, stayed after a refit on an array without names or on a file.
    pd = pytest.importorskip("pandas")
    from gaussmix import NpySource

    search = GaussianMixtureSearch(range(1, 3), covariance_types="full", random_state=0)
    search.fit(pd.DataFrame(X, columns=["a", "b"]))
    assert list(search.feature_names_in_) == ["a", "b"] and hasattr(search, "labels_")
    assert not hasattr(search.fit(X), "feature_names_in_")
    np.save(tmp_path / "x.npy", X)
    assert not hasattr(search.fit(NpySource(tmp_path / "x.npy")), "labels_")
    assert search.n_features_in_ == 2


def test_fractional_sample_count_says_what_to_pass(X):
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"n_samples': 2.5\. .*whole number"):
        model.sample(2.5)


@pytest.mark.parametrize(("fitted", "changed"), [("full", "diag"), ("diag", "spherical"),
                                                 ("spherical", "diag"), ("tied", "full")])
def test_predicting_after_changing_covariance_type_says_why(X, fitted, changed):
    # Was: broadcasting/AxisError messages from the kernels, and for full ->
    # diag (and diag -> spherical) sample() drew silently from misread covariances.
    gm = GaussianMixture(2, covariance_type=fitted, random_state=0).fit(X)
    gm.set_params(covariance_type=changed)
    for call in (gm.score_samples, gm.predict, gm.bic, lambda _: gm.sample(3)):
        with pytest.raises(ValueError, match=f"covariance_type='{changed}'.*refit"):
            call(X)
    gm.set_params(covariance_type=fitted).predict(X)  # back to the fitted type


@pytest.mark.parametrize(("fitted", "changed"), [("diag", "tied"), ("tied", "diag")])
@pytest.mark.parametrize("how", ["fit", "partial_fit", "loaded"])
def test_changing_between_types_of_the_same_shape_is_refused(tmp_path, fitted, changed,
                                                             how):
    # With K == d, diag factors (K, d) and tied ones (d, d) have the same shape,
    # which the shape check alone let through: predictions read one type's
    # factors as the other's (silently wrong probabilities, samples from a
    # matrix that is not a covariance), and streams went on with them.
    from gaussmix.files.model import load_model, save_model

    rng = np.random.default_rng(0)
    data = rng.standard_normal((300, 3)) * [1.0, 2.0, 3.0]
    gm = GaussianMixture(3, covariance_type=fitted, random_state=0)
    gm = gm.fit(data) if how != "partial_fit" else gm.partial_fit(data)
    if how == "loaded":
        save_model(gm, tmp_path / "m.npz")
        gm = load_model(tmp_path / "m.npz")
    expected = gm.predict_proba(data[:5])
    gm.set_params(covariance_type=changed)
    for call in (gm.predict_proba, gm.score_samples, lambda _: gm.sample(3)):
        with pytest.raises(ValueError, match=f"covariance_type='{fitted}'.*"
                           f"covariance_type='{changed}' set since.*refit"):
            call(data)
    with pytest.raises(ValueError, match=f"partial_fit continues from .*"
                       f"covariance_type='{changed}' set since"):
        gm.partial_fit(data[:50])
    with pytest.raises(ValueError, match="warm_start=True continues from"):
        gm.set_params(warm_start=True).fit(data)
    gm.set_params(covariance_type=fitted, warm_start=False)
    np.testing.assert_array_equal(gm.predict_proba(data[:5]), expected)
