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


def test_a_hand_made_model_without_covariances_still_streams(rows):
    # Such a model predicts (scikit-learn reads only these three); partial_fit
    # starts from it, as before the shape check was added.
    gm = GaussianMixture(2)
    gm.weights_ = np.array([0.5, 0.5])
    gm.means_ = np.array([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]])
    gm.precisions_cholesky_ = np.array([np.eye(3)] * 2)
    gm.partial_fit(rows[:100])  # without n_features_in_ (was: AttributeError)
    gm.n_features_in_ = 3
    gm.partial_fit(rows[100:200])
    assert gm.n_iter_ == 2 and gm.covariances_.shape == (2, 3, 3)
    gm.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="covariances of shape \\(2, 3, 3\\)"):
        gm.partial_fit(rows[200:300])


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


# -- select ----------------------------------------------------------------------
def _incomplete(rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rows[:200].copy()
    X[rng.random(X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0  # every row observes something
    return X, rng.random(len(X)) * 3


@pytest.mark.parametrize("shared", [False, True])
def test_select_with_missing_values_and_weights_starts_where_fit_starts(rows, shared):
    # Was: the starts were drawn from NaN filled with unweighted column means,
    # fit fills weighted ones: candidates (and best_estimator_) differed from
    # GaussianMixture(...).fit(X, sample_weight=w) by up to 0.7 in the means.
    from gaussmix import select

    X, w = _incomplete(rows)
    result = select(X, [1, 2, 3], ["full", "diag"], missing="marginalize",
                    sample_weight=w, random_state=0, shared_passes=shared)
    for (k, cov), model in result.estimators_.items():
        direct = GaussianMixture(k, covariance_type=cov, random_state=0,
                                 missing="marginalize").fit(X, sample_weight=w)
        np.testing.assert_allclose(model.means_, direct.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(model.covariances_, direct.covariances_, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("where", ["row", "column"])
def test_select_refuses_what_fit_refuses_with_fits_message(rows, where):
    # Was: a row with nothing observed failed every candidate ("Every candidate
    # failed ... Increase reg_covar"); a column with nothing observed reached
    # k-means ("KMeans does not accept missing values").
    from gaussmix import select

    X, _ = _incomplete(rows)
    if where == "row":
        X[5] = np.nan
    else:
        X[:, 1] = np.nan
    with pytest.raises(ValueError) as from_fit:
        GaussianMixture(2, missing="marginalize").fit(X)
    with pytest.raises(ValueError) as from_select:
        select(X, [1, 2], "diag", missing="marginalize", random_state=0)
    assert str(from_select.value) == str(from_fit.value)
    assert "have no observed value" in str(from_fit.value) or "every feature missing" in str(
        from_fit.value)


@pytest.mark.parametrize(("name", "value"), [
    ("tol", -1.0), ("reg_covar", -1.0), ("max_iter", -1), ("missing", "bogus"),
    ("random_state", np.random.default_rng(0))])
def test_select_checks_shared_settings_before_fitting(rows, name, value):
    # Was: "Every candidate failed to fit (...). Increase reg_covar or scale
    # the data.", a covariance error for reg_covar=-1, or numpy's message for a
    # Generator.
    from gaussmix import select

    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        select(rows[:100], [1, 2], "diag", **{name: value})


@pytest.mark.parametrize("shared", [False, True])
def test_select_a_start_that_cannot_be_made_fails_its_candidate_alone(shared):
    # Was: with reg_covar=0 the seeding's singular covariance of one K raised
    # out of select, losing the candidates that fit.
    from gaussmix import select

    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 25, axis=0)  # two points on a line
    result = select(X, [1, 2], ["full", "diag"], reg_covar=0.0, random_state=0,
                    shared_passes=shared)
    for row in result.table:
        try:
            direct = GaussianMixture(row.n_components, covariance_type=row.covariance_type,
                                     reg_covar=0.0, random_state=0).fit(X)
        except ValueError as err:
            assert row.error == str(err) and np.isnan(row.bic)
        else:
            assert row.error is None and row.bic == pytest.approx(direct.bic(X), rel=1e-12)
    assert (result.best_n_components_, result.best_covariance_type_) == (1, "diag")
    assert result.table[0].error is not None  # K=1 full: singular


def test_select_ties_go_to_fewer_parameters_then_to_the_first_listed(rows):
    from gaussmix import select

    # Was: K=1 full and tied (the same model) differ in the last bits once the
    # process has switched to the fused kernels, so which won depended on the
    # work done before in the process.
    for order in (["full", "tied"], ["tied", "full"]):
        result = select(rows[:200], 1, order, random_state=0)
        assert result.table[0].bic == pytest.approx(result.table[1].bic, rel=1e-12)
        assert result.best_covariance_type_ == order[0]
    from gaussmix.selection import Candidate
    from gaussmix.selection.search import _choose

    def row(cov, p, bic):
        return Candidate(2, cov, -10.0, p, bic, bic, bic, True, 3, 0.0)

    big, small = row("full", 11, 5000.0), row("diag", 9, 5000.0 * (1 + 1e-12))
    assert _choose([big, small], "bic") is small  # a tie to rounding: fewer parameters
    first, second = row("full", 9, 5000.0 * (1 + 1e-12)), row("tied", 9, 5000.0)
    assert _choose([first, second], "bic") is first  # same size: the first listed
    lower = row("full", 11, 4999.99)
    assert _choose([lower, small], "bic") is lower  # a real difference decides


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"covariance_types": None}, "covariance_types must be"),
    ({"covariance_types": 5}, "covariance_types must be"),
    ({"covariance_types": [["full"]]}, "covariance_types must be"),
    ({"n_components": None}, "n_components must be"),
])
def test_select_non_iterable_choices_get_the_usual_message(rows, kwargs, match):
    # Was: a bare TypeError ("'NoneType' object is not iterable", "unhashable").
    from gaussmix import select

    with pytest.raises(ValueError, match=match):
        select(rows[:50], **{"n_components": [1, 2], **kwargs})


def test_select_covariance_types_from_a_numpy_array_are_plain_strings(rows):
    from gaussmix import select

    result = select(rows[:100], [1, 2], np.array(["full", "diag", "full"]),
                    random_state=0)
    assert result.covariance_types == ["full", "diag"]
    assert all(type(c.covariance_type) is str for c in result.table)
