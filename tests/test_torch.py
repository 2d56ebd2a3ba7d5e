"""torch tensors: the same fit as NumPy from the same start, tensors in and out
by the documented rule, streamed host rows, clear errors.

The tensors live on the CPU unless ``GAUSSMIX_TEST_DEVICE`` names another torch
device: ``GAUSSMIX_TEST_DEVICE=cuda pytest tests/test_torch.py`` runs the same
checks on a GPU (as done on the lent GPU machine; CI has none)."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from sklearn.exceptions import ConvergenceWarning

import gaussmix
from gaussmix import GaussianMixture, IterableSource, load
from gaussmix.engine import init as init_module
from gaussmix.validation import INIT_METHODS, InvalidParameterError

torch = pytest.importorskip("torch")

from gaussmix.backends import torch as backend  # noqa: E402 - needs torch

DEVICE = os.environ.get("GAUSSMIX_TEST_DEVICE", "cpu")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def data():
    X, _ = draw_mixture(400, [[0, 0, 0], [5, 1, 0], [0, 6, -2]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]], [0.3, 0.3, 0.4])
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(X))
    return X, w


def _start(X, ct):
    """A shared starting point (weights, means, precisions) after a short fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=2).fit(X)
    return {"weights_init": gm.weights_, "means_init": gm.means_,
            "precisions_init": gm.precisions_}


def _fit(X, ct, start, w=None, **kw):
    gm = GaussianMixture(3, covariance_type=ct, max_iter=8, tol=0.0, **start, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, sample_weight=w)


def _t(a, **kw):
    """A tensor of ``a`` on the device under test."""
    return torch.asarray(a, device=DEVICE, **kw)


def _host(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _assert_same_fit(a, b, rtol, atol):
    for name in FITTED:
        np.testing.assert_allclose(_host(getattr(b, name)), _host(getattr(a, name)), rtol=rtol,
                                   atol=atol, err_msg=name)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=rtol)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float64_tensor_fit_equals_numpy(data, ct, weighted):
    X, w = data
    w = w if weighted else None
    start = _start(X, ct)
    a = _fit(X, ct, start, w)
    b = _fit(_t(X), ct, start, None if w is None else _t(w))
    _assert_same_fit(a, b, rtol=1e-10, atol=1e-12)
    assert b.n_iter_ == a.n_iter_ == 8


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_tensor_fit_equals_numpy_float32(data, ct, weighted):
    X, w = data
    w = w if weighted else None
    start = _start(X, ct)
    a = _fit(X.astype(np.float32), ct, start, w)
    b = _fit(_t(X, dtype=torch.float32), ct, start, w)
    _assert_same_fit(a, b, rtol=1e-4, atol=1e-5)
    reference = _fit(X, ct, start, w)  # float64: float32 loses no more than that
    _assert_same_fit(reference, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_streamed_host_rows_equal_numpy(data, ct):
    """Host rows streamed through the two staging buffers (chunks that do not
    divide n), from an array and from a data source, give NumPy's fit."""
    X, w = data
    start = _start(X, ct)
    a = _fit(X, ct, start, w)
    # float64 asked for: host rows on a GPU are computed in float32 by default
    streamed = backend.TorchSource(X, w, device=DEVICE, stream=True, chunk_size=97,
                                   dtype=torch.float64)
    assert streamed.streamed and streamed.n_chunks == 5
    _assert_same_fit(a, _fit(streamed, ct, start), rtol=1e-10, atol=1e-12)
    parts = [(X[i:i + 150], w[i:i + 150]) for i in range(0, len(X), 150)]
    inner = IterableSource(parts, chunk_size=64)
    from_source = _fit(backend.TorchSource(inner, device=DEVICE, dtype=torch.float64),
                       ct, start)
    _assert_same_fit(a, from_source, rtol=1e-10, atol=1e-12)
    assert inner.chunk_size == 64  # the caller's source is not changed


def test_device_cpu_on_numpy_keeps_numpy(data):
    X, w = data
    start = _start(X, "full")
    a = _fit(X, "full", start, w)
    b = _fit(X, "full", start, w, device="cpu")
    _assert_same_fit(a, b, rtol=1e-10, atol=1e-12)
    assert all(isinstance(getattr(b, n), np.ndarray) for n in (*FITTED, "labels_"))
    assert isinstance(b.predict(X), np.ndarray)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))


def test_tensor_in_tensors_out(data, tmp_path):
    X, _ = data
    T = _t(X)
    gm = GaussianMixture(3, random_state=0).fit(T)
    for name in FITTED:
        value = getattr(gm, name)
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    assert gm.labels_.dtype == torch.int64
    reference = GaussianMixture(3, random_state=0).fit(X)  # same start: n is small
    _assert_same_fit(reference, gm, rtol=1e-10, atol=1e-12)

    labels, proba, dens = gm.predict(T), gm.predict_proba(T), gm.score_samples(T)
    assert all(isinstance(r, torch.Tensor) for r in (labels, proba, dens))
    np.testing.assert_array_equal(_host(labels), reference.predict(X))
    np.testing.assert_allclose(_host(proba), reference.predict_proba(X), atol=1e-10)
    np.testing.assert_allclose(_host(dens), reference.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(_host(proba.sum(dim=1)), 1.0, rtol=1e-12)
    assert gm.score(T) == pytest.approx(reference.score(X), rel=1e-10)
    assert gm.bic(T) == pytest.approx(reference.bic(X), rel=1e-10)
    # NumPy rows on a tensor-fitted model: the NumPy path, NumPy results
    np.testing.assert_allclose(gm.score_samples(X), reference.score_samples(X),
                               rtol=1e-10)

    samples, components = gm.sample(500)
    assert isinstance(samples, torch.Tensor) and samples.shape == (500, 3)
    assert torch.bincount(components, minlength=3).tolist() == \
        np.bincount(reference.sample(500)[1], minlength=3).tolist()

    path = gm.save(tmp_path / "model.npz")
    loaded = load(path)
    assert isinstance(loaded.means_, np.ndarray)
    np.testing.assert_allclose(loaded.score_samples(X), _host(dens), rtol=1e-12)

    host = backend.as_numpy(gm)
    assert isinstance(host.means_, np.ndarray) and isinstance(gm.means_, torch.Tensor)
    back = backend.as_tensors(host, DEVICE)
    assert torch.equal(back.means_, gm.means_) and back.labels_.dtype == torch.int64


@pytest.mark.parametrize("method", INIT_METHODS)
def test_initialisations_on_tensors(data, method, monkeypatch):
    """Every init starts where NumPy starts (all rows fit in the sample); past
    the sample size it runs on a host sample, the one gaussmix.select draws."""
    X, w = data
    a = GaussianMixture(3, init_params=method, random_state=0, max_iter=0).fit(X, None, w)
    b = GaussianMixture(3, init_params=method, random_state=0, max_iter=0).fit(
        _t(X), None, _t(w))
    _assert_same_fit(a, b, rtol=1e-10, atol=1e-12)

    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 150)
    kw = {"init_params": method, "random_state": 3, "max_iter": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = GaussianMixture(3, covariance_type="diag", **kw).fit(_t(X))
        result = gaussmix.select(_t(X), 3, "diag", **kw)
    _assert_same_fit(one, result.best_estimator_, rtol=1e-10, atol=1e-12)


def test_select_on_tensors_equals_numpy(data):
    X, w = data
    a = gaussmix.select(X, range(1, 4), ["full", "spherical"], random_state=0,
                        sample_weight=w)
    b = gaussmix.select(_t(X), range(1, 4), ["full", "spherical"],
                        random_state=0, sample_weight=_t(w))
    for x, y in zip(a.table, b.table, strict=True):
        assert y.bic == pytest.approx(x.bic, rel=1e-10)
        assert y.icl == pytest.approx(x.icl, rel=1e-10)
    assert isinstance(b.best_estimator_.means_, torch.Tensor)
    assert isinstance(b.best_estimator_.labels_, torch.Tensor)


@pytest.mark.parametrize("blocks", [1, 3, 7])
def test_blocked_weighted_grams_equal_the_batched_product(blocks):
    """The GPU's spelling of the second moments (rows cut into blocks that
    become batches, and a remainder) against the plain batched product."""
    from gaussmix.engine.xp import blocked_weighted_grams, weighted_grams

    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4, 101))
    w = rng.uniform(0.0, 2.0, size=(3, 101))
    expected = np.einsum("kdn,kn,ken->kde", a, w, a)
    plain = weighted_grams(_t(a.copy()), _t(w))
    blocked = blocked_weighted_grams(_t(a.copy()), _t(w), blocks)
    np.testing.assert_allclose(_host(plain), expected, rtol=1e-12)
    np.testing.assert_allclose(_host(blocked), expected, rtol=1e-12)


def test_matmul_precision_is_set_in_the_pass_and_restored():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch < 2.9: the global float32 matmul precision is used")
    before = matmul.fp32_precision
    with backend.matmul_precision("tf32"):
        assert matmul.fp32_precision == "tf32"
    with backend.matmul_precision("highest"):
        assert matmul.fp32_precision == "ieee"
    assert matmul.fp32_precision == before


def test_clear_errors(data, monkeypatch):
    X, w = data
    T = _t(X)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA GPU.*sees none"):
            GaussianMixture(2, device="cuda").fit(X)
    with pytest.raises(ValueError, match="not a torch device"):
        GaussianMixture(2, device="gpu please").fit(X)
    with pytest.raises(InvalidParameterError, match="matmul_precision"):
        GaussianMixture(2, matmul_precision="fast").fit(T)
    bad = T.clone()
    bad[7, 2] = float("nan")
    with pytest.raises(ValueError, match="row 7, column 2"):
        GaussianMixture(2).fit(bad)
    with pytest.raises(ValueError, match="2-D tensor"):
        GaussianMixture(2).fit(T[:, 0])
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(2).fit(T, sample_weight=-_t(w))
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2).fit(T, sample_weight=_t(np.ones(3)))
    gm = GaussianMixture(2, random_state=0).fit(T)
    with pytest.raises(ValueError, match="3 features"):
        gm.predict(T[:, :2])
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ImportError, match=r"gaussmix\[torch\]"):
        GaussianMixture(2, device="cpu").fit(X)
