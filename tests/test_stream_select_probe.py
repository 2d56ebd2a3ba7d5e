"""Edge cases found by probing ``partial_fit`` and ``gaussmix.select``: each
test pins a crash, a silent wrong answer or an unclear error that was fixed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture

from gaussmix import GaussianMixture
from gaussmix.validation import InvalidParameterError


@pytest.fixture(scope="module")
def rows():
    X, _ = draw_mixture(600, [[0, 0, 0], [8, 8, 8]], [[1, 1, 1], [1, 1, 1]],
                        [0.5, 0.5], seed=3)
    return X


def _streamed(rows, **params):
    gm = GaussianMixture(2, random_state=0, **params)
    return gm.partial_fit(rows[:100]).partial_fit(rows[100:200])


def _snapshot(gm):
    return [np.copy(getattr(gm, a)) for a in ("weights_", "means_", "covariances_")] + [
        gm.n_iter_]


def _assert_unchanged(gm, before):
    after = _snapshot(gm)
    for a, b in zip(after[:-1], before[:-1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert after[-1] == before[-1]


# -- partial_fit: parameters changed in the middle of a stream ------------------
@pytest.mark.parametrize(("old", "new"), [(a, b) for a in COVARIANCE_TYPES
                                          for b in COVARIANCE_TYPES if a != b])
def test_covariance_type_changed_mid_stream_is_refused_clearly(rows, old, new):
    # Was: a NumPy broadcasting error (the old type's covariances read by the
    # new type's kernel).
    gm = _streamed(rows, covariance_type=old)
    before = _snapshot(gm)
    gm.set_params(covariance_type=new)
    with pytest.raises(ValueError, match=f"partial_fit continues from the fitted model "
                       f".*covariance_type='{new}' set since"):
        gm.partial_fit(rows[200:300])
    _assert_unchanged(gm, before)
    gm.set_params(covariance_type=old).partial_fit(rows[200:300])  # restored: goes on
    assert gm.n_iter_ == 3


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("after", ["partial_fit", "fit"])
def test_n_components_changed_after_fitting_is_refused_clearly(rows, k, after):
    # Was: silently ignored (the stream went on with 2 components while
    # n_components said otherwise).
    gm = (_streamed(rows) if after == "partial_fit"
          else GaussianMixture(2, random_state=0).fit(rows))
    gm.set_params(n_components=k)
    with pytest.raises(ValueError, match=f"does not fit n_components={k}"):
        gm.partial_fit(rows[200:300])
    assert len(gm.weights_) == 2
    # Starting afresh, as the message says.
    from sklearn.base import clone

    assert len(clone(gm).partial_fit(rows[:300]).weights_) == k


@pytest.mark.parametrize(("name", "value"), [
    ("reg_covar", -1.0), ("reg_covar", float("nan")), ("chunk_size", 0),
    ("n_threads", 0), ("missing", "bogus"), ("n_components", True)])
def test_parameters_a_step_reads_are_checked_when_changed(rows, name, value):
    # Was: used unchecked on later calls (chunk_size=0: ZeroDivisionError;
    # reg_covar=-1: "ill-defined covariance ... increase reg_covar").
    gm = _streamed(rows)
    before = _snapshot(gm)
    gm.set_params(**{name: value})
    with pytest.raises(InvalidParameterError, match=name):
        gm.partial_fit(rows[200:300])
    _assert_unchanged(gm, before)


def test_valid_changes_mid_stream_take_effect(rows):
    gm = _streamed(rows)
    reference = _streamed(rows)
    gm.set_params(reg_covar=0.5, chunk_size=7).partial_fit(rows[200:300])
    reference.set_params(reg_covar=0.5).partial_fit(rows[200:300])
    np.testing.assert_allclose(gm.covariances_, reference.covariances_, rtol=1e-12)
    # every variance carries the new reg_covar
    assert np.all(np.diagonal(gm.covariances_, axis1=1, axis2=2) > 0.5)
