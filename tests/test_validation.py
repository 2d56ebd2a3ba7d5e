"""Bad input gets a clear error: the type and the wording are scikit-learn's.

Each invalid input in the tables below goes through both
``sklearn.mixture.GaussianMixture`` and ``gaussmix.GaussianMixture``: the
exception types must be the same and gaussmix's message must begin with
scikit-learn's, compared at runtime. What follows scikit-learn's wording is
gaussmix's own advice, tested further down.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError as SkInvalidParameterError

from gaussmix import GaussianMixture
from gaussmix.validation import InvalidParameterError

X_OK = np.random.default_rng(0).normal(size=(50, 2))
Action = Callable[[Any], object]


def fit(X: Any = X_OK) -> Action:
    return lambda model: model.fit(X)


def after_fit(method: str, *args: Any) -> Action:
    return lambda model: getattr(model.fit(X_OK), method)(*args)


def unfitted(method: str, *args: Any) -> Action:
    return lambda model: getattr(model, method)(*args)


def with_nan(X: np.ndarray, *cells: tuple[int, int], value: float = np.nan) -> np.ndarray:
    X = np.array(X, dtype=float)
    for cell in cells:
        X[cell] = value
    return X


def raised(cls: type, kwargs: dict[str, Any], action: Action) -> Exception:
    """The exception ``action(cls(**kwargs))`` raises; fails if it raises none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            action(cls(**kwargs))
        except Exception as err:  # noqa: BLE001 - any type, compared below
            return err
    pytest.fail(f"{cls.__module__}.{cls.__name__}(**{kwargs}) accepted it")


FIT_OK = fit()


def case(id_: str, action: Action = FIT_OK, **kwargs: Any) -> Any:
    return pytest.param({"n_components": 2, **kwargs}, action, id=id_)


# Every constructor parameter scikit-learn validates, with values of the wrong
# type and out of range.
PARAMETER_CASES = [
    # (ids without addresses: the same in every process, as pytest-xdist needs)
    case(re.sub(" at 0x[0-9A-Fa-f]+", "", f"{name}={value!r}"), **{name: value})
    for name, values in {
        "n_components": [0, -1, 1.5, "2", None],
        "covariance_type": ["round", "Full", 1, None],
        "tol": [-1.0, np.nan, np.inf, "a", None],
        "reg_covar": [-1e-6, np.nan, np.inf, "a"],
        "max_iter": [-1, 1.5, "10"],
        "n_init": [0, 2.0, None],
        "init_params": ["kmedoids", "KMEANS", None],
        "random_state": [-1, 2**32, 1.5, "a", np.random.default_rng(0)],
        "warm_start": ["yes", 1, None],
        "verbose": [-1, 1.5, "a"],
        "verbose_interval": [0, 2.5],
        "weights_init": ["abc", 0.5],
        "means_init": ["abc", 0.0],
        "precisions_init": ["abc", 3.0],
    }.items()
    for value in values
]

full_pd = np.stack([np.eye(2), 2 * np.eye(2)])
INITIAL_PARAMETER_CASES = [
    # weights_init: shape, NaN/inf, range, normalisation, conversion
    case("weights (2, 1)", weights_init=np.full((2, 1), 0.5)),
    case("weights (1,)", weights_init=[1.0]),
    case("weights (3,)", weights_init=[0.2, 0.3, 0.5]),
    case("weights (1, 2)", weights_init=[[0.5, 0.5]]),
    case("weights 3-D", weights_init=np.full((2, 1, 1), 0.5)),
    case("weights empty", weights_init=[]),
    case("weights NaN", weights_init=[0.5, np.nan]),
    case("weights inf", weights_init=[0.5, np.inf]),
    case("weights strings", weights_init=["a", "b"]),
    case("weights complex", weights_init=[0.5 + 1j, 0.5]),
    # (weights outside [0, 1]: see test_weights_out_of_range_prints_max_and_min...)
    case("weights sum 1.1", weights_init=[0.5, 0.6]),
    case("weights sum 0.5", weights_init=[0.25, 0.25]),
    # means_init
    case("means (3, 2)", means_init=np.zeros((3, 2))),
    case("means (2, 3)", means_init=np.zeros((2, 3))),
    case("means (2,)", means_init=[0.0, 1.0]),
    case("means 3-D", means_init=np.zeros((2, 2, 1))),
    case("means NaN", means_init=[[0.0, np.nan], [1.0, 1.0]]),
    case("means inf", means_init=[[0.0, 1.0], [-np.inf, 1.0]]),
    case("means strings", means_init=[["a", "b"], ["c", "d"]]),
    # precisions_init, every covariance type: shape, NaN, values
    case("full (3, 3)", precisions_init=np.eye(3)),
    case("full (2, 3, 3)", precisions_init=np.stack([np.eye(3)] * 2)),
    case("full (2, 2)", precisions_init=np.eye(2)),
    case("full NaN", precisions_init=with_nan(full_pd, (1, 0, 1))),
    case("full negative definite", precisions_init=np.stack([np.eye(2), -np.eye(2)])),
    case("full not symmetric", precisions_init=np.stack([np.eye(2), [[1, 2], [0, 1]]])),
    case("full singular", precisions_init=np.stack([np.eye(2), np.ones((2, 2))])),
    case("tied (3, 3)", covariance_type="tied", precisions_init=np.eye(3)),
    case("tied (2, 2, 2)", covariance_type="tied", precisions_init=full_pd),
    case("tied inf", covariance_type="tied", precisions_init=[[1, 0], [0, np.inf]]),
    case("tied indefinite", covariance_type="tied", precisions_init=[[1, 0], [0, -1]]),
    case("tied not symmetric", covariance_type="tied", precisions_init=[[1, 2], [0, 1]]),
    case("diag (2, 3)", covariance_type="diag", precisions_init=np.ones((2, 3))),
    case("diag (2,)", covariance_type="diag", precisions_init=np.ones(2)),
    case("diag NaN", covariance_type="diag", precisions_init=[[1, 1], [np.nan, 1]]),
    case("diag zero", covariance_type="diag", precisions_init=[[1, 1], [1, 0]]),
    case("diag negative", covariance_type="diag", precisions_init=[[1, -1], [1, 1]]),
    case("spherical (3,)", covariance_type="spherical", precisions_init=[1, 1, 1]),
    case("spherical (2, 1)", covariance_type="spherical", precisions_init=[[1], [1]]),
    case("spherical NaN", covariance_type="spherical", precisions_init=[1, np.nan]),
    case("spherical negative", covariance_type="spherical", precisions_init=[1, -1]),
]

X_STRINGS = np.array([["a", "b"]] * 3, dtype=object)
DATA_CASES = [
    # fit
    case("X NaN", fit(with_nan(X_OK, (7, 1)))),
    case("X inf", fit(with_nan(X_OK, (3, 0), value=np.inf))),
    case("X -inf and NaN", fit(with_nan(with_nan(X_OK, (4, 1)), (2, 0), value=-np.inf))),
    case("X float32 inf", fit(with_nan(X_OK, (3, 0), value=np.inf).astype(np.float32))),
    case("X one sample", fit(X_OK[:1]), n_components=1),
    case("X no samples", fit(X_OK[:0]), n_components=1),
    case("n_samples < n_components", fit(X_OK[:3]), n_components=5),
    case("X 1-D", fit(np.arange(10.0))),
    case("X 3-D", fit(np.ones((4, 2, 2)))),
    case("X scalar", fit(3.0)),
    case("X no features", fit(np.ones((5, 0)))),
    case("X strings", fit(X_STRINGS), n_components=1),
    case("X complex", fit(X_OK + 1j)),
    case("X sparse", fit(sp.csr_matrix(X_OK))),
    # every method that takes X after fit: wrong width, NaN, 1-D, not fitted
    *[case(f"{method} {what}", action)
      for method in ("predict", "predict_proba", "score_samples", "score")
      for what, action in [
          ("3 features", after_fit(method, np.ones((4, 3)))),
          ("NaN", after_fit(method, with_nan(X_OK[:5], (2, 0)))),
          ("1-D", after_fit(method, np.ones(2))),
          ("strings", after_fit(method, X_STRINGS)),
          ("unfitted", unfitted(method, X_OK)),
      ]],
    *[case(f"{method} {what}", action)
      for method in ("bic", "aic")
      for what, action in [("3 features", after_fit(method, np.ones((4, 3)))),
                           ("unfitted", unfitted(method, X_OK))]],
    case("sample unfitted", unfitted("sample", 3)),
]


@pytest.mark.parametrize("kwargs, action",
                         PARAMETER_CASES + INITIAL_PARAMETER_CASES + DATA_CASES)
def test_same_exception_and_message_start_as_scikit_learn(kwargs, action):
    theirs = raised(SkGaussianMixture, kwargs, action)
    ours = raised(GaussianMixture, kwargs, action)
    assert type(ours) is type(theirs)
    assert str(ours).startswith(str(theirs)), f"\nsklearn:  {theirs}\ngaussmix: {ours}"


def test_feature_names_must_match_as_in_scikit_learn():
    pd = pytest.importorskip("pandas")
    train = pd.DataFrame(X_OK, columns=["a", "b"])
    other = pd.DataFrame(X_OK, columns=["a", "c"])

    def action(model):
        return model.fit(train).predict(other)

    theirs = raised(SkGaussianMixture, {"n_components": 2}, action)
    ours = raised(GaussianMixture, {"n_components": 2}, action)
    assert type(ours) is type(theirs)
    assert str(ours).startswith(str(theirs))


def test_invalid_parameter_error_is_scikit_learns():
    assert InvalidParameterError is SkInvalidParameterError
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


# ------------------------------------------------ where gaussmix differs, on purpose


@pytest.mark.parametrize("name, bad_int", [
    ("n_components", 0), ("max_iter", -1), ("n_init", 0), ("verbose_interval", 0),
])
@pytest.mark.parametrize("flag", [True, np.True_])
def test_a_bool_is_not_an_integer(name, bad_int, flag):
    # scikit-learn's check takes True for 1 (n_components=True then fails with a
    # bare TypeError); gaussmix rejects it in scikit-learn's words for that
    # parameter.
    sk_message = str(raised(SkGaussianMixture, {name: bad_int}, fit()))
    expected = sk_message.replace(f"Got {bad_int!r} instead.", f"Got {flag!r} instead.")
    with pytest.raises(InvalidParameterError) as info:
        GaussianMixture(**{name: flag}).fit(X_OK)
    assert str(info.value) == expected


def test_weights_out_of_range_prints_max_and_min_the_right_way_round():
    # scikit-learn prints the minimum as "max value" and the maximum as "min
    # value"; gaussmix keeps its wording up to the numbers and prints them right.
    kwargs = {"n_components": 3, "weights_init": [0.8, 0.7, -0.5]}
    theirs = str(raised(SkGaussianMixture, kwargs, fit()))
    ours = str(raised(GaussianMixture, kwargs, fit()))
    lead = "The parameter 'weights' should be in the range [0, 1], but got max value "
    assert theirs.startswith(lead) and ours.startswith(lead)
    assert ours.startswith(lead + "0.80000, min value -0.50000.")


def test_weights_sum_tolerance_is_looser_than_scikit_learns():
    # scikit-learn allows |sum - 1| <= 1e-8 for float64 weights, gaussmix 1e-6
    # (for all dtypes, as scikit-learn allows float32 weights).
    weights = [0.5, 0.5 + 1e-7]
    with pytest.raises(ValueError, match="should be normalized"):
        SkGaussianMixture(2, weights_init=weights).fit(X_OK)
    GaussianMixture(2, weights_init=weights).fit(X_OK)


def test_sample_count_message_names_the_count():
    # scikit-learn's message shows n_components where the count belongs.
    model = GaussianMixture(2, random_state=0).fit(X_OK)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match=f"Invalid value for 'n_samples': {bad}. "
                           "The sampling requires at least one sample."):
            model.sample(bad)


# ------------------------------------------------------------- gaussmix's advice


@pytest.fixture(scope="module")
def fitted():
    return GaussianMixture(2, random_state=0).fit(X_OK)


def test_nan_reports_count_and_first_position():
    X = with_nan(with_nan(X_OK, (7, 1)), (9, 0), value=np.inf)
    with pytest.raises(ValueError, match=r"X has 2 non-finite value\(s\) \(1 NaN, 1 inf\)"
                       r"; the first is at row 7, column 1. Remove or impute"):
        GaussianMixture(2).fit(X)


def test_nan_at_predict_time(fitted):
    with pytest.raises(ValueError, match="first is at row 2, column 0"):
        fitted.predict(with_nan(np.ones((3, 2)), (2, 0)))


def test_one_dimensional_input_says_how_to_reshape():
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        GaussianMixture(2).fit(np.arange(10.0))


def test_non_numeric_data():
    with pytest.raises(ValueError, match=r"could not convert string to float: 'a'\. "
                       r"X must contain only numbers: .*select_dtypes"):
        GaussianMixture(1).fit(X_STRINGS)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_components = 5, n_samples = 3.* Lower "
                       "n_components or add data"):
        GaussianMixture(5).fit(X_OK[:3])


def test_wrong_number_of_features_at_predict(fitted):
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture "
                           "is expecting 2 features"):
            getattr(fitted, method)(np.ones((4, 3)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights_init=np.full((2, 1), 0.5)),
     r"^The parameter 'weights' should have the shape of \(2,\), but got \(2, 1\)\. "
     r"weights_init needs one weight per component \(n_components=2\)\.$"),
    (dict(weights_init=[0.5, 0.6]),
     "should be normalized, but got sum.* = 1.10000. weights_init sums to 1.1; "
     "divide it by its sum"),
    (dict(weights_init=[0.5, np.nan]),
     r"^Input contains NaN\. weights_init has 1 non-finite value\(s\) .* at index 1"),
    (dict(means_init=np.zeros((3, 2))),
     r"means_init needs one row per component \(n_components=2\) and one column "
     r"per feature of X \(n_features=2\)"),
    (dict(means_init=[[0, np.nan], [1, 1]]), "means_init has 1 non-finite value"),
    (dict(precisions_init=np.eye(3)),
     r"'full precision' should have the shape of \(2, 2, 2\), but got \(3, 3\)\. "
     "precisions_init needs this shape for covariance_type='full'"),
    (dict(precisions_init=with_nan(full_pd, (1, 0, 1))),
     r"precisions_init has 1 non-finite .* at index \(1, 0, 1\)"),
    (dict(precisions_init=np.stack([np.eye(2), -np.eye(2)])),
     r"^'full precision' should be symmetric, positive-definite, but precisions_init\[1\]"),
    (dict(precisions_init=np.stack([np.eye(2), [[1, 2], [0, 1]]])),
     r"precisions_init\[1\] is not symmetric"),
    (dict(covariance_type="diag", precisions_init=[[1, 1], [1, 0]]),
     r"^'diag precision' should be positive, .* 1 non-positive"),
    (dict(covariance_type="spherical", precisions_init=[1, -1]),
     r"^'spherical precision' should be positive, but"),
    (dict(covariance_type="tied", precisions_init=[[1, 0], [0, -1]]),
     r"^'tied precision' should be symmetric, positive-definite, .*eigenvalue"),
])
def test_invalid_initial_parameters_say_what_to_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, **kwargs).fit(X_OK)


# gaussmix-only parameters: scikit-learn's style, gaussmix's constraints.
@pytest.mark.parametrize("name, value, must_be", [
    ("chunk_size", 0, "an int in the range [1, inf) or None"),
    ("chunk_size", 1.5, "an int in the range [1, inf) or None"),
    ("chunk_size", True, "an int in the range [1, inf) or None"),
    ("chunk_size", "big", "an int in the range [1, inf) or None"),
    ("n_threads", 0, "an int in the range [1, inf) or None"),
    ("n_threads", -2, "an int in the range [1, inf) or None"),
    ("n_threads", np.True_, "an int in the range [1, inf) or None"),
    ("callback", "print", "a callable or None"),
    ("callback", 3, "a callable or None"),
])
def test_gaussmix_parameters_in_scikit_learns_style(name, value, must_be):
    with pytest.raises(InvalidParameterError) as info:
        GaussianMixture(2, **{name: value}).fit(X_OK)
    assert str(info.value) == (f"The {name!r} parameter of GaussianMixture must be "
                               f"{must_be}. Got {value!r} instead.")


def test_parameters_are_checked_under_a_subclass_name():
    class MyMixture(GaussianMixture):
        pass

    with pytest.raises(InvalidParameterError, match="^The 'tol' parameter of "
                       "MyMixture must be"):
        MyMixture(tol=-1).fit(X_OK)


@pytest.mark.parametrize("weights, match", [
    (-np.ones(50), "must be non-negative, but 50 weight.* the first is -1.0 at row 0"),
    (np.r_[np.ones(49), np.nan],
     r"^Input sample_weight contains NaN\. sample_weight has 1 non-finite .* index 49"),
    (np.r_[np.ones(49), np.inf], "^Input sample_weight contains infinity"),
    (np.ones(10), r"sample_weight must have shape \(50,\)"),
    (np.zeros(50), "sums to zero"),
])
def test_invalid_sample_weight(weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(X_OK, sample_weight=weights)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_fewer_weighted_rows_than_components_is_a_clear_error(init_params):
    # Rows of weight zero count as absent, as repeated rows count for an
    # integer weight: two weighted rows cannot seed three components
    # (scikit-learn refuses two rows for three components the same way).
    X = np.random.default_rng(0).normal(size=(10, 2))
    w = np.zeros(10)
    w[:2] = 1.0
    gm = GaussianMixture(3, init_params=init_params, random_state=0)
    with pytest.raises(ValueError, match="only 2 row.*positive sample_weight"):
        gm.fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="only 2 row.*positive sample_weight"):
        GaussianMixture(3, init_params=init_params).partial_fit(X, sample_weight=w)
    w[2] = 0.5  # three weighted rows: fits
    assert GaussianMixture(3, init_params=init_params, random_state=0).fit(
        X, sample_weight=w).weights_.shape == (3,)


def test_fewer_weighted_rows_than_components_on_torch():
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(np.random.default_rng(0).normal(size=(10, 2)))
    w = torch.zeros(10, dtype=torch.float64)
    w[:2] = 1.0
    with pytest.raises(ValueError, match="only 2 row.*positive sample_weight"):
        GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
