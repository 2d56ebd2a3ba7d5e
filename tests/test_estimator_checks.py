"""scikit-learn's estimator checks for every covariance type, and its tags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES
from sklearn.base import is_clusterer
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture

# Tags where gaussmix differs from scikit-learn, field path -> gaussmix's value,
# each for a reason:
EXPECTED_TAG_DIFFERENCES = {
    # scikit-learn's model runs on array-API inputs (torch, CuPy, ...) under
    # array_api_dispatch=True when init_params is 'random' or 'random_from_data'
    # and warm_start is off; gaussmix's estimator takes NumPy-convertible input
    # only, so it never claims that support.
    "array_api_support": False,
}
# sample_weight in fit, score, bic and aic is a gaussmix extension with no tag:
# estimator checks find it through the signature of fit (has_fit_parameter).


def _tag_fields(tags, prefix=""):
    """Flatten nested tag dataclasses into {'input_tags.allow_nan': False, ...}."""
    out = {}
    for field in dataclasses.fields(tags):
        value = getattr(tags, field.name)
        if dataclasses.is_dataclass(value):
            out.update(_tag_fields(value, f"{prefix}{field.name}."))
        else:
            out[f"{prefix}{field.name}"] = value
    return out


SETTINGS = [
    {},
    {"n_components": 3},
    {"init_params": "random"},
    {"init_params": "random_from_data"},
    {"init_params": "random", "warm_start": True},
    {"init_params": "k-means++"},
] + [{"covariance_type": ct} for ct in COVARIANCE_TYPES]


@pytest.mark.parametrize("params", SETTINGS, ids=str)
def test_tags_equal_scikit_learns_field_by_field(params):
    ours = _tag_fields(get_tags(GaussianMixture(**params)))
    theirs = _tag_fields(get_tags(SkGaussianMixture(**params)))
    assert ours.keys() == theirs.keys()
    for field, value in theirs.items():
        expected = EXPECTED_TAG_DIFFERENCES.get(field, value)
        assert ours[field] == expected, field


def test_estimator_type_is_a_density_estimator_not_a_clusterer():
    ours, theirs = GaussianMixture(), SkGaussianMixture()
    assert get_tags(ours).estimator_type == get_tags(theirs).estimator_type
    assert get_tags(ours).estimator_type == "density_estimator"
    assert not is_clusterer(ours) and not is_clusterer(theirs)


def test_fit_predict_and_labels_are_kept_as_extras():
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = GaussianMixture(2, random_state=0)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_array_equal(labels, model.predict(X))


# scikit-learn's defaults (n_components=1): no expected failures. With one
# component a weighted fit equals the fit on repeated rows exactly, so
# check_sample_weight_equivalence_on_dense_data runs too.
@parametrize_with_checks([GaussianMixture(covariance_type=ct) for ct in COVARIANCE_TYPES])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
