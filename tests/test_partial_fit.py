"""partial_fit: stepwise EM over a stream of batches (engine.streaming)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from sklearn.base import clone

from gaussmix import GaussianMixture
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.estep import EStepKernel
from gaussmix.engine.loop import EMSettings, run_em
from gaussmix.engine.mstep import m_step
from gaussmix.engine.params import MixtureParams
from gaussmix.engine.sources import ArraySource
from gaussmix.engine.streaming import StepSize, blend
from gaussmix.files.model import load_model
from gaussmix.validation import InvalidParameterError

MEANS = [[0, 0, 0], [8, 0, 0], [0, 8, 8]]
SCALES = [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]]


@pytest.fixture(scope="module")
def stream():
    X, _ = draw_mixture(3000, MEANS, SCALES, [0.3, 0.3, 0.4], seed=1)
    return X


def batches(X, size):
    return [X[i:i + size] for i in range(0, len(X), size)]


def assert_params_close(a, b, rtol=1e-12, atol=1e-12):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol,
                                   atol=atol, err_msg=name)


# -- acceptance: close to the full fit --------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stream_reaches_the_full_fits_likelihood_within_one_percent(
        stream, covariance_type):
    full = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(stream)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for _ in range(2):  # two passes over 30 batches of 100 rows
        for batch in batches(stream, 100):
            online.partial_fit(batch)
    target = full.score(stream)
    assert abs(online.score(stream) - target) <= 0.01 * abs(target)
    assert online.n_iter_ == 60 and online.converged_ is False


# -- exactness ----------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_first_call_is_one_em_iteration_from_fits_start(stream, covariance_type):
    batch = stream[:500]
    online = GaussianMixture(3, covariance_type=covariance_type,
                             random_state=0).partial_fit(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of max_iter=1
        one = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                              max_iter=1).fit(batch)
    assert_params_close(online, one)
    assert online.lower_bound_ == pytest.approx(one.lower_bound_, rel=1e-12)
    assert online.lower_bounds_ == [online.lower_bound_] and online.n_iter_ == 1


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_step_with_rho_one_is_one_em_iteration_on_the_batch(stream, covariance_type):
    # learning_offset=0: the second step has rho = (0 + 1)^(-alpha) = 1.
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                             learning_offset=0.0)
    online.partial_fit(stream[:300])
    before = online._params
    online.partial_fit(stream[300:700])
    piece = get_covariance_type(covariance_type)
    source = ArraySource(stream[300:700], None, 128)  # other chunks, same sums
    run = run_em(source, piece, before, EMSettings(tol=0.0, max_iter=1,
                                                   reg_covar=online.reg_covar))
    assert_params_close(online, _as_model(run.params))
    assert online.lower_bound_ == pytest.approx(run.lower_bound, rel=1e-12)


def _as_model(params: MixtureParams):
    model = GaussianMixture()
    model.weights_, model.means_ = params.weights, params.means
    model.covariances_ = params.covariances
    model.precisions_cholesky_ = params.precisions_cholesky
    return model


def _statistics(X, params, covariance_type, w=None):
    piece = get_covariance_type(covariance_type)
    kernel = EStepKernel.build(piece, params, ArraySource(X, w, 1000).spec)
    return kernel.statistics(X, w)


def _one_component(covariance_type, mean, scale=1.0):
    piece = get_covariance_type(covariance_type)
    d = len(mean)
    cov = {"full": np.eye(d)[None] * scale, "tied": np.eye(d) * scale,
           "diag": np.full((1, d), scale), "spherical": np.full(1, scale)}[
        covariance_type]
    return MixtureParams(np.ones(1), np.asarray([mean], float), cov,
                         piece.precisions_cholesky(cov))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_blend_about_different_centres_equals_blend_about_one(stream, covariance_type):
    # One component: responsibilities are 1 whatever the parameters, so the
    # statistics of the same rows differ only in their centres.
    a_rows, b_rows = stream[:700] + 1e4, stream[700:1000] + 1e4
    a = _statistics(a_rows, _one_component(covariance_type, [1e4 - 3, 1e4, 1e4 + 5]),
                    covariance_type)
    b = _statistics(b_rows, _one_component(covariance_type, [1e4 + 4, 1e4 + 1, 1e4]),
                    covariance_type)
    running = a.scaled(1 / a.weight)
    centre = np.full((1, 3), 1e4 + 2.0)
    apart = blend(running, b, 0.3)
    together = blend(running.recentred(centre), b.recentred(centre), 0.3)
    piece = get_covariance_type(covariance_type)
    p, q = m_step(apart, piece, 0.0), m_step(together, piece, 0.0)
    np.testing.assert_allclose(p.means, q.means, rtol=1e-10)
    np.testing.assert_allclose(p.covariances, q.covariances, rtol=1e-10)
    # ... and both equal the statistics of all rows weighted 0.7/700 and 0.3/300.
    w = np.r_[np.full(700, 0.7 / 700), np.full(300, 0.3 / 300)]
    direct = _statistics(np.vstack([a_rows, b_rows]),
                         _one_component(covariance_type, [1e4, 1e4, 1e4]),
                         covariance_type, w)
    r = m_step(direct, piece, 0.0)
    np.testing.assert_allclose(p.means, r.means, rtol=1e-10)
    np.testing.assert_allclose(p.covariances, r.covariances, rtol=1e-10)
    assert apart.weight == pytest.approx(1.0) and apart.nk.sum() == pytest.approx(1.0)


def test_blend_with_rho_one_is_the_batch_per_row(stream):
    params = _one_component("full", [0.0, 0.0, 0.0])
    b = _statistics(stream[:100], params, "full")
    running = _statistics(stream[100:200] + 5, params, "full").scaled(0.01)
    out = blend(running, b, 1.0)
    assert out == b.scaled(1 / b.weight)
    with pytest.raises(ValueError, match="step size"):
        blend(running, b, 0.0)


def test_step_size_schedule():
    rate = StepSize(offset=10.0, decay=0.7)
    assert rate(1) == pytest.approx(11 ** -0.7)
    assert rate(5) < rate(4) < 1
    assert StepSize(0.0, 1.0)(1) == 1.0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(stream, covariance_type):
    rng = np.random.default_rng(3)
    first, second = stream[:200], stream[200:400]
    w1, w2 = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    precisions = {"full": np.array([np.eye(3)] * 3), "tied": np.eye(3),
                  "diag": np.ones((3, 3)), "spherical": np.ones(3)}[covariance_type]
    start = dict(means_init=np.array(MEANS, float) + 0.5,
                 weights_init=[0.3, 0.3, 0.4], precisions_init=precisions)
    weighted = GaussianMixture(3, covariance_type=covariance_type, **start)
    repeated = clone(weighted)
    for X, w in ((first, w1), (second, w2)):
        weighted.partial_fit(X, sample_weight=w)
        repeated.partial_fit(np.repeat(X, w, axis=0))
        assert_params_close(weighted, repeated, rtol=1e-10, atol=1e-12)
        assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


# -- the estimator around it ---------------------------------------------------
def test_batches_are_checked(stream):
    gm = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="first batch of partial_fit"):
        gm.partial_fit(stream[:2])
    gm.partial_fit(stream[:100])
    gm.partial_fit(stream[100:101])  # later batches may hold one row
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is "
                       "expecting 3 features"):
        gm.partial_fit(stream[:10, :2])
    with pytest.raises(InvalidParameterError, match="learning_decay"):
        GaussianMixture(learning_decay=0.5).partial_fit(stream[:10])
    with pytest.raises(InvalidParameterError, match="learning_offset"):
        GaussianMixture(learning_offset=-1.0).partial_fit(stream[:10])


def test_later_plain_arrays_skip_validation_and_change_nothing(stream, monkeypatch):
    # A later batch that is already a finite float array of the right width
    # skips scikit-learn's validation (most of a small batch's fixed cost);
    # the steps are those of validated batches, and anything else still gets
    # check_data's conversions and messages.
    import gaussmix._partial_fit as pf

    def step_by_step(convert):
        gm = GaussianMixture(3, random_state=0).partial_fit(stream[:300])
        for batch in batches(stream[300:1300], 250):
            gm.partial_fit(convert(batch))
        return gm

    checked = []
    real_check = pf.check_data
    monkeypatch.setattr(pf, "check_data", lambda *a, **k: checked.append(1) or
                        real_check(*a, **k))
    fast = step_by_step(np.asarray)
    assert len(checked) == 1  # the first batch only
    slow = step_by_step(lambda b: b.tolist())  # lists: validated every time
    assert len(checked) == 1 + 5
    assert_params_close(fast, slow, rtol=0, atol=0)
    assert fast.lower_bound_ == slow.lower_bound_
    bad = stream[:10].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fast.partial_fit(bad)
    with pytest.raises(ValueError, match="0 sample"):
        fast.partial_fit(stream[:0])
    float32 = fast.partial_fit(stream[:50].astype(np.float32))
    assert float32.means_.dtype == np.float64


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_non_finite_values_in_a_large_plain_batch_are_refused_unchanged(
        stream, bad_value, covariance_type):
    # A plain batch's values are checked by the pass itself (no extra read):
    # the error is still the validation's, and the model is left as it was.
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    gm.partial_fit(stream[:400])
    before = (gm.means_.copy(), gm.covariances_.copy(), gm.n_iter_, gm.lower_bound_)
    bad = stream[400:1400].copy()
    bad[777, 1] = bad_value
    word = "NaN" if np.isnan(bad_value) else "infinity"
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        gm.partial_fit(bad)
    np.testing.assert_array_equal(gm.means_, before[0])
    np.testing.assert_array_equal(gm.covariances_, before[1])
    assert (gm.n_iter_, gm.lower_bound_) == before[2:]
    gm.partial_fit(stream[400:1400])  # the stream goes on
    assert gm.n_iter_ == before[2] + 1


def test_nan_batches_still_stream_when_missing_values_are_marginalised(stream):
    gm = GaussianMixture(3, missing="marginalize", random_state=0)
    gm.partial_fit(stream[:400])
    holes = stream[400:1400].copy()
    holes[::7, 0] = np.nan
    gm.partial_fit(holes)
    assert gm.n_iter_ == 2 and np.isfinite(gm.means_).all()


def test_feature_names_are_checked_on_later_batches(stream):
    pd = pytest.importorskip("pandas")
    gm = GaussianMixture(2, random_state=0).partial_fit(
        pd.DataFrame(stream[:100], columns=["a", "b", "c"]))
    assert list(gm.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        gm.partial_fit(pd.DataFrame(stream[:100], columns=["a", "b", "x"]))


def test_params_clone_fit_and_stream_restart(stream):
    gm = GaussianMixture(3, random_state=0, learning_offset=2.0, learning_decay=0.9)
    params = clone(gm).get_params()
    assert params["learning_offset"] == 2.0 and params["learning_decay"] == 0.9
    gm.partial_fit(stream[:300]).partial_fit(stream[300:600])
    assert gm.n_iter_ == 2
    gm.fit(stream)  # a fit ends the stream ...
    assert not hasattr(gm, "_stream_")
    means = gm.means_
    gm.partial_fit(stream[:1000])  # ... and the next batch starts one from its result
    assert gm.n_iter_ == 1 and not hasattr(gm, "labels_")
    np.testing.assert_allclose(np.sort(gm.means_, axis=0), np.sort(means, axis=0),
                               atol=0.3)


def test_model_file_keeps_the_new_parameters(stream, tmp_path):
    gm = GaussianMixture(3, random_state=0, learning_offset=3.5, learning_decay=0.8)
    gm.partial_fit(stream[:500]).partial_fit(stream[500:1000])
    path = gm.save(tmp_path / "stream.npz")
    loaded = load_model(path)
    assert loaded.get_params()["learning_offset"] == 3.5
    assert loaded.get_params()["learning_decay"] == 0.8
    assert_params_close(loaded, gm, rtol=0, atol=0)
    assert loaded.partial_fit(stream[1000:1500]).n_iter_ == 1


def test_empty_component_is_reseeded_from_the_batch(stream):
    means = np.array(MEANS, float)
    means[2] = 1e3  # no row near it: empty after the first E-step
    gm = GaussianMixture(3, means_init=means, random_state=0).partial_fit(stream[:600])
    assert np.all(np.isfinite(gm.means_)) and np.all(np.abs(gm.means_) < 100)
    assert np.all(gm.weights_ > 0)


def test_readme_section_runs(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    code = re.search(r"## From a stream: `partial_fit`\n.*?```python\n(.*?)```",
                     text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README partial_fit", "exec"), namespace)
    gm = namespace["gm"]
    assert np.sort(gm.means_[:, 0]).round().tolist() == [0.0, 6.0] and gm.n_iter_ == 50


def test_step_size_is_checked_on_later_calls_and_sources_are_refused(stream, tmp_path):
    from gaussmix import NpySource

    gm = GaussianMixture(2, random_state=0).partial_fit(stream[:100])
    gm.set_params(learning_decay=1.5)
    with pytest.raises(InvalidParameterError, match="learning_decay"):
        gm.partial_fit(stream[100:200])
    np.save(tmp_path / "rows.npy", stream[:100])
    with pytest.raises(TypeError, match="fit\\(source\\)"):
        gm.set_params(learning_decay=0.7).partial_fit(NpySource(tmp_path / "rows.npy"))


def test_float32_batches_give_float64_parameters(stream):
    gm = GaussianMixture(3, random_state=0)
    for batch in batches(stream[:1500].astype(np.float32), 300):
        gm.partial_fit(batch)
    assert gm.means_.dtype == np.float64 and np.all(np.isfinite(gm.covariances_))
    reference = GaussianMixture(3, random_state=0)
    for batch in batches(stream[:1500], 300):
        reference.partial_fit(batch)
    np.testing.assert_allclose(gm.means_, reference.means_, atol=1e-3)
