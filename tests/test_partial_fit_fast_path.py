"""partial_fit's per-call fast paths change no result: a stream of batches of
every covariance type, against a slow, obviously-correct float64 stepwise EM
written here (scipy's densities, raw per-row moments, the textbook M-step)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture
from gaussmix.validation import InvalidParameterError

MEANS = [[0, 0, 0], [6, 0, 1], [0, 6, 6]]
SCALES = [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]]
REG = 1e-6


@pytest.fixture(scope="module")
def rows():
    X, _ = draw_mixture(2400, MEANS, SCALES, [0.3, 0.3, 0.4], seed=7)
    return X


def start(covariance_type):
    """A fixed start (no random initialisation): weights, means, precisions."""
    precisions = {"full": np.array([np.eye(3)] * 3), "tied": np.eye(3),
                  "diag": np.ones((3, 3)), "spherical": np.ones(3)}[covariance_type]
    return dict(weights_init=[0.2, 0.3, 0.5], precisions_init=precisions,
                means_init=np.array(MEANS, float) + [[0.5, -0.3, 0.2]])


def full_covariances(covariance_type, covariances, K, d):
    """Any covariance type's covariances as (K, d, d) matrices."""
    c = np.asarray(covariances, float)
    return {"full": lambda: c, "tied": lambda: np.repeat(c[None], K, axis=0),
            "diag": lambda: np.array([np.diag(v) for v in c]),
            "spherical": lambda: np.array([v * np.eye(d) for v in c])}[
        covariance_type]()


def reference_stream(covariance_type, batches, weights_list, offset, decay):
    """Stepwise EM, one batch at a time: per-row statistics of the batch at
    the current parameters blended with rho_t = (offset + t)^(-decay) after
    t steps (rho = 1 on the first), then the M-step. Returns the parameters
    and the last batch's mean log-likelihood before its update."""
    s = start(covariance_type)
    K, d = len(MEANS), len(MEANS[0])
    weights = np.asarray(s["weights_init"], float)
    means = s["means_init"]
    precisions = full_covariances(covariance_type, s["precisions_init"], K, d)
    covs = np.linalg.inv(precisions)
    running = None
    for t, (X, w) in enumerate(zip(batches, weights_list, strict=True)):
        w = np.ones(len(X)) if w is None else np.asarray(w, float)
        log_p = np.column_stack([
            np.log(weights[k]) + multivariate_normal(means[k], covs[k]).logpdf(X)
            for k in range(K)])
        log_norm = logsumexp(log_p, axis=1)
        resp = np.exp(log_p - log_norm[:, None]) * (w / w.sum())[:, None]
        batch = (resp.sum(axis=0), resp.T @ X,
                 np.einsum("nk,ni,nj->kij", resp, X, X))  # per-row moments
        rho = 1.0 if t == 0 else min(1.0, (offset + t) ** -decay)
        running = batch if running is None else tuple(
            (1 - rho) * r + rho * b for r, b in zip(running, batch, strict=True))
        weights, means, covs = reference_m_step(covariance_type, *running)
        lower_bound = float(w @ log_norm / w.sum())
    return weights, means, covs, lower_bound


def reference_m_step(covariance_type, nk, m1, m2):
    """Weights, means and (K, d, d) covariances from per-row raw moments."""
    K, d = m1.shape
    means = m1 / nk[:, None]
    scatter = m2 - nk[:, None, None] * np.einsum("ki,kj->kij", means, means)
    if covariance_type == "tied":
        scatter = np.repeat(scatter.sum(0)[None], K, axis=0) / nk.sum()
    else:
        scatter = scatter / nk[:, None, None]
    if covariance_type == "diag":
        scatter = np.array([np.diag(np.diag(c)) for c in scatter])
    if covariance_type == "spherical":
        scatter = np.array([np.trace(c) / d * np.eye(d) for c in scatter])
    return nk / nk.sum(), means, scatter + REG * np.eye(d)


def stream_of(rows):
    """Batches of uneven sizes (one row, below and above the chunk size), and
    integer weights on two of them."""
    sizes = [400, 1, 97, 300, 64, 700, 250, 488]
    cuts = np.cumsum([0] + sizes)
    batches = [rows[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    rng = np.random.default_rng(0)
    weights = [None] * len(batches)
    weights[3] = rng.integers(0, 4, len(batches[3])).astype(float)
    weights[5] = rng.uniform(0.1, 2.0, len(batches[5]))
    return batches, weights


@pytest.mark.parametrize("kernel", ["reference", "fused"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stream_equals_slow_stepwise_em(rows, covariance_type, kernel, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    batches, weights = stream_of(rows)
    gm = GaussianMixture(3, covariance_type=covariance_type, reg_covar=REG,
                         learning_offset=2.0, learning_decay=0.7, chunk_size=128,
                         **start(covariance_type))
    for X, w in zip(batches, weights, strict=True):
        gm.partial_fit(X, sample_weight=w)
    want_weights, want_means, want_covs, want_bound = reference_stream(
        covariance_type, batches, weights, 2.0, 0.7)
    K, d = want_means.shape
    np.testing.assert_allclose(gm.weights_, want_weights, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gm.means_, want_means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(full_covariances(covariance_type, gm.covariances_, K, d),
                               want_covs, rtol=1e-10, atol=1e-12)
    assert gm.lower_bound_ == pytest.approx(want_bound, rel=1e-12)
    assert gm.n_iter_ == len(batches)
    precisions = full_covariances(covariance_type, gm.precisions_, K, d)
    np.testing.assert_allclose(precisions @ full_covariances(
        covariance_type, gm.covariances_, K, d), np.broadcast_to(np.eye(d), (K, d, d)),
        atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_or_two_threads_give_the_same_stream_bit_for_bit(rows, covariance_type):
    batches, weights = stream_of(rows)
    models = [GaussianMixture(3, covariance_type=covariance_type, n_threads=n,
                              chunk_size=128, **start(covariance_type))
              for n in (1, 2)]
    for X, w in zip(batches, weights, strict=True):
        for gm in models:
            gm.partial_fit(X, sample_weight=w)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(models[0], name),
                                      getattr(models[1], name), err_msg=name)
    assert models[0].lower_bound_ == models[1].lower_bound_


def test_step_parameters_are_checked_again_whenever_they_change(rows):
    gm = GaussianMixture(3, **start("full")).partial_fit(rows[:300])
    gm.partial_fit(rows[300:400])
    for bad in ({"learning_decay": 0.4}, {"learning_decay": float("nan")},
                {"learning_offset": -1.0}, {"learning_offset": "1"}):
        gm.set_params(**{"learning_offset": 0.0, "learning_decay": 0.7, **bad})
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            gm.partial_fit(rows[400:500])
        assert gm.n_iter_ == 2
    gm.set_params(learning_offset=0.0, learning_decay=0.7).partial_fit(rows[400:500])
    assert gm.n_iter_ == 3


def test_unchanged_step_parameters_are_not_checked_again(rows, monkeypatch):
    # the stream's state keeps the settings of its last step: a later call
    # with the same parameters skips their validation (a small batch's cost)
    import gaussmix._partial_fit as pf

    calls = []
    check = pf.check_parameters
    monkeypatch.setattr(pf, "check_parameters", lambda *a: calls.append(1) or check(*a))
    gm = GaussianMixture(3, **start("diag"), covariance_type="diag")
    for i in range(4):
        gm.partial_fit(rows[100 * i:100 * (i + 1)])
    assert len(calls) == 1
    gm.set_params(reg_covar=1e-5).partial_fit(rows[400:500])
    assert len(calls) == 2


def test_bad_batches_after_the_first_still_get_clear_errors(rows):
    gm = GaussianMixture(3, covariance_type="diag", **start("diag")).partial_fit(
        rows[:300])
    with pytest.raises(ValueError, match="expecting 3 features"):
        gm.partial_fit(rows[:10, :2])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        gm.partial_fit(rows[:10], sample_weight=-np.ones(10))
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        gm.partial_fit(rows[:10], sample_weight=np.ones(9))
    bad = rows[:10].copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        gm.partial_fit(bad)
    with pytest.raises(ValueError, match="X must contain only numbers"):
        gm.partial_fit(np.array([["a", "b", "c"]]))
    assert gm.partial_fit(rows[:10].astype(np.int64)).n_iter_ == 2  # converted
