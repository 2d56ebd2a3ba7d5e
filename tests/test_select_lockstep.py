"""Candidates fitted in lockstep (shared passes) equal candidates fitted one by
one from the same starts: in memory, on a Dask array and from a file, with and
without weights and restarts; and a selection then reads the rows once per
iteration, not once per candidate and iteration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gaussmix import GaussianMixture, NpySource, select
from gaussmix.engine.covariance import get_covariance_type
from gaussmix.engine.loop import EMSettings, EMStart, run_batch, run_em
from gaussmix.engine.sources import ArraySource

KS = (1, 2, 3)
TYPES = ("full", "tied", "diag", "spherical")
SETTINGS = {"random_state": 0, "max_iter": 25}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [0.0, 6.0, 3.0]])
    X = centres[rng.integers(0, 3, 600)] + rng.normal(size=(600, 3)) * [1, 0.6, 1.4]
    return X, rng.uniform(0.2, 3.0, len(X))


def assert_same_candidates(got, expected, rtol=1e-10):
    """Every row and every fitted model of ``got`` equal to ``expected``'s."""
    key = [(c.n_components, c.covariance_type) for c in expected.table]
    assert [(c.n_components, c.covariance_type) for c in got.table] == key
    for a, b in zip(got.table, expected.table, strict=True):
        assert (a.n_iter, a.converged, a.n_parameters, a.error) == \
            (b.n_iter, b.converged, b.n_parameters, b.error)
        assert_allclose([a.log_likelihood, a.bic, a.aic, a.icl],
                        [b.log_likelihood, b.bic, b.aic, b.icl], rtol=rtol)
    assert got.estimators_.keys() == expected.estimators_.keys()
    for name, model in expected.estimators_.items():
        mine = got.estimators_[name]
        assert set(vars(mine)) == set(vars(model))  # the same fitted attributes
        assert_allclose(mine.lower_bounds_, model.lower_bounds_, rtol=rtol)
        for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert_allclose(getattr(mine, attr), getattr(model, attr), rtol=rtol,
                            atol=1e-12)
    assert got.best_.n_components == expected.best_.n_components
    assert got.best_.covariance_type == expected.best_.covariance_type
    assert_allclose(got.n_samples, expected.n_samples, rtol=1e-12)


# ------------------------------------------------------------------ the loop
def test_a_batch_of_runs_equals_each_run_alone(data):
    X, w = data
    source = ArraySource(X, w, 128)
    settings = EMSettings(tol=1e-4, max_iter=30, reg_covar=1e-6)
    starts = []
    for k, cov in [(3, "full"), (2, "diag"), (3, "spherical"), (1, "tied")]:
        gm = GaussianMixture(k, covariance_type=cov, max_iter=0, random_state=1).fit(X)
        starts.append(EMStart(get_covariance_type(cov), gm._params))
    batch = run_batch(source, starts, settings)
    alone = [run_em(source, s.piece, s.params, settings) for s in starts]
    assert len({run.n_iter for run in batch}) > 1  # runs stop at different passes
    for a, b in zip(batch, alone, strict=True):
        assert (a.n_iter, a.converged, a.error) == (b.n_iter, b.converged, None)
        assert a.lower_bounds == b.lower_bounds  # the same sums in the same order
        assert_array_equal(a.params.means, b.params.means)
        assert_array_equal(a.params.covariances, b.params.covariances)


def test_a_run_that_fails_leaves_the_others_going(data):
    X, _ = data
    source = ArraySource(X, None, 128)
    settings = EMSettings(tol=1e-4, max_iter=10, reg_covar=1e-6)
    good = GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    far = dataclasses.replace(good._params, means=good.means_ + 1e200)  # likelihood underflows
    piece = get_covariance_type("full")
    bad, ok = run_batch(source, [EMStart(piece, far), EMStart(piece, good._params)],
                        settings)
    assert isinstance(bad.error, ValueError) and "Scale the data" in str(bad.error)
    assert ok.error is None
    assert_array_equal(ok.params.means, run_em(source, piece, good._params,
                                               settings).params.means)
    with pytest.raises(ValueError, match="Scale the data"):  # alone, it raises
        run_em(source, piece, far, settings)


# ------------------------------------------------------------- selections
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_init", [1, 2])
def test_in_memory_lockstep_equals_one_by_one(data, weighted, n_init):
    X, w = data
    w = w if weighted else None
    shared = select(X, KS, TYPES, sample_weight=w, n_init=n_init, shared_passes=True,
                    **SETTINGS)
    alone = select(X, KS, TYPES, sample_weight=w, n_init=n_init, shared_passes=False,
                   **SETTINGS)
    assert_same_candidates(shared, alone)
    assert_array_equal(shared.best_estimator_.labels_, alone.best_estimator_.labels_)


@pytest.mark.parametrize("weighted", [False, True])
def test_dask_lockstep_equals_one_by_one(data, weighted):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X, w = data
    dX = da.from_array(X, chunks=(150, 3)).persist()
    dw = da.from_array(w, chunks=150).persist() if weighted else None
    with dask.config.set(scheduler="sync"):
        shared = select(dX, KS, TYPES, sample_weight=dw, n_init=2, **SETTINGS)
        alone = select(dX, KS, TYPES, sample_weight=dw, n_init=2,
                       shared_passes=False, **SETTINGS)
    assert_same_candidates(shared, alone)
    # (Not compared with in memory: with n_init=2, two starts of some
    # candidates reach the same optimum, labelled differently, and the winner
    # of that tie is decided by the last bit of their lower bounds.)


@pytest.mark.parametrize("weighted", [False, True])
def test_npy_lockstep_equals_one_by_one_in_fewer_passes(data, tmp_path, monkeypatch,
                                                        weighted):
    X, w = data
    np.save(tmp_path / "rows.npy", X)
    source = NpySource(tmp_path / "rows.npy", chunk_size=100,
                       sample_weight=w if weighted else None)
    passes = count_passes(monkeypatch)
    shared = select(source, KS, TYPES, n_init=2, **SETTINGS)
    shared_passes = passes.pop()
    alone = select(source, KS, TYPES, n_init=2, shared_passes=False, **SETTINGS)
    alone_passes = passes.pop()
    assert_same_candidates(shared, alone)
    # The passes besides EM (seeding, the start's likelihood, criteria), from
    # a selection that makes no EM iteration: EM then adds one pass per
    # iteration of the longest candidate, not one per candidate and iteration.
    select(source, KS, TYPES, n_init=2, **{**SETTINGS, "max_iter": 0})
    others = passes.pop() - 1
    longest = max(c.n_iter for c in shared.table)
    assert shared_passes == others + longest
    assert alone_passes >= others + sum(c.n_iter for c in alone.table)


def count_passes(monkeypatch):
    """A list whose last item counts the passes over any NpySource since the
    last ``pop`` (the number of times its chunks were read from the start)."""
    counter = [0]
    chunks = NpySource.chunks

    def counted(self):
        counter[-1] += 1
        return chunks(self)

    monkeypatch.setattr(NpySource, "chunks", counted)

    class Passes:
        def pop(self):
            value, counter[-1] = counter[-1], 0
            return value

    return Passes()


def test_missing_values_through_lockstep(data):
    X, _ = data
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0  # every row observes something
    kwargs = {"missing": "marginalize", **SETTINGS}
    shared = select(X, (2, 3), ("full", "diag"), shared_passes=True, **kwargs)
    alone = select(X, (2, 3), ("full", "diag"), shared_passes=False, **kwargs)
    assert_same_candidates(shared, alone)
    single = GaussianMixture(3, covariance_type="full", missing="marginalize",
                             **SETTINGS).fit(X)
    assert_allclose(shared.estimators_[(3, "full")].means_, single.means_, rtol=1e-10)


def test_failed_candidates_match_one_by_one(data, monkeypatch):
    # An EM M-step that fails for the two-component full candidates only
    # (after a seeding that succeeds): their rows carry the error, the others
    # are fitted as one by one.
    from gaussmix.engine import loop

    def failing(stats, piece, reg_covar, worst=None):
        if piece.name == "full" and len(stats.nk) == 2:
            raise np.linalg.LinAlgError("injected failure")
        return m_step(stats, piece, reg_covar, worst)

    m_step = loop.m_step
    monkeypatch.setattr(loop, "m_step", failing)
    X, _ = data
    shared = select(X, KS, ("full", "spherical"), shared_passes=True, **SETTINGS)
    alone = select(X, KS, ("full", "spherical"), shared_passes=False, **SETTINGS)
    assert [(c.n_components, c.covariance_type) for c in alone.table if c.error] == \
        [(2, "full")]
    assert_same_candidates(shared, alone)
    assert shared.table[1].error == "injected failure" and np.isnan(shared.table[1].bic)


@pytest.mark.parametrize("shared", [True, False])
def test_invalid_settings_fail_every_candidate_alike(data, shared):
    X, _ = data
    with pytest.raises(ValueError, match="The 'tol' parameter"):  # before any fit
        select(X, (1, 2), ("diag",), tol=-1.0, shared_passes=shared, **SETTINGS)


def test_lockstep_reports_each_shared_pass(data, capsys):
    """Candidates in lockstep arrive only at the end: verbose output says after
    every shared pass how many runs still iterate, down to none."""
    X, _ = data
    result = select(X, KS, TYPES, shared_passes=True, verbose=1, **SETTINGS)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("[shared EM pass")]
    longest = max(c.n_iter for c in result.table)
    assert len(lines) == longest  # one line per pass, as many as the longest run
    going = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert going == sorted(going, reverse=True)  # runs only ever stop
    assert going[0] <= len(result.table)
    assert going[-1] == 0 or longest == SETTINGS["max_iter"]
