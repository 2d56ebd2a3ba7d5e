"""scikit-learn's estimator checks, for every covariance type."""

from __future__ import annotations

from conftest import COVARIANCE_TYPES
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture

# With the scikit-learn default n_components=1 a single cluster cannot reach the
# adjusted Rand index check_clustering asks of make_blobs' three clusters; the
# three-component instances below run that check and pass it.
ONE_COMPONENT = {"check_clustering": "n_components=1 (sklearn's default) "
                 "makes one cluster; checked with n_components=3 below"}
# k-means initialisation draws depend on the number of rows, so repeated rows
# start elsewhere than weighted ones; weighted EM from one start is equivalent
# (test_mixture.py::test_integer_weights_equal_repeated_rows).
THREE_COMPONENTS = {"check_sample_weight_equivalence_on_dense_data":
                    "k-means init depends on the row count; see "
                    "test_integer_weights_equal_repeated_rows"}


def _expected_failures(estimator):
    return ONE_COMPONENT if estimator.n_components == 1 else THREE_COMPONENTS


@parametrize_with_checks(
    [GaussianMixture(covariance_type=ct) for ct in COVARIANCE_TYPES]
    + [GaussianMixture(n_components=3, covariance_type=ct) for ct in COVARIANCE_TYPES],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
