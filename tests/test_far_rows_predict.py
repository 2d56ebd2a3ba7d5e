"""predict / predict_proba of rows so far out that the squared Mahalanobis
distance overflows under every component (score_samples is -inf there).

The responsibilities must be those of the exact log-densities
``log w_k + log det U_k - |(x - mu_k) U_k|^2 / 2``: one-hot on the component
nearest in Mahalanobis terms, which the tests find in exact rational
arithmetic from the model's float parameters (``Fraction``), and split by
weight and normaliser where two distances are exactly equal. Both E-step
kernels (the array-API reference and the compiled one, which hands such
chunks to the reference), float64 and float32 rows, rows with missing values,
torch and Dask inputs.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, draw_mixture
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture

KERNELS = ["reference", "fused"]
if importlib.util.find_spec("numba") is None:
    KERNELS = ["reference"]

DIRECTIONS = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [1.0, 1.0, 1.0],
                       [-1.0, 1.0, 0.3], [1.0, -1.0, 1.0], [0.3, 0.2, -0.7]])
SCALES = {np.float64: [1e160, 1e200, 1e300], np.float32: [1e20, 1e30, 3e38]}


@pytest.fixture(scope="module")
def data():
    X, _ = draw_mixture(300, [[0, 0, 0], [6, 0, 1], [-2, 6, -1]],
                        [[1, 1, 1], [1.5, 0.5, 1], [0.7, 1.2, 0.9]], [0.3, 0.3, 0.4])
    return X


@pytest.fixture(scope="module")
def models(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {ct: GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=20,
                                    missing="marginalize").fit(data)
                for ct in COVARIANCE_TYPES}


def exact_scores(model, x):
    """``log w_k + log N(x_o | k)`` of the row ``x`` (NaN: missing) as exact
    squared distances (Fractions) and float log terms, per component:
    ``[(q_k, log_terms_k)]``. The marginal on the observed coordinates has
    precision ``(Sigma_oo)^-1`` with ``Sigma = (U U^T)^-1``, all exact."""
    K, d = model.means_.shape
    U = model._piece.to_full(model.precisions_cholesky_, K, d)
    seen = [i for i in range(d) if not np.isnan(x[i])]
    out = []
    for k in range(K):
        u = [[Fraction(float(v)) for v in row] for row in U[k]]
        prec = [[sum(u[i][c] * u[j][c] for c in range(d)) for j in range(d)]
                for i in range(d)]
        cov = _inverse(prec)
        marginal = _inverse([[cov[i][j] for j in seen] for i in seen])
        r = [Fraction(float(x[i])) - Fraction(float(model.means_[k, i])) for i in seen]
        q = sum(r[a] * marginal[a][b] * r[b] for a in range(len(seen))
                for b in range(len(seen)))
        det = _det([[cov[i][j] for j in seen] for i in seen])
        log_det = math.log(det.numerator) - math.log(det.denominator)
        log_terms = (math.log(model.weights_[k]) - 0.5 * len(seen) * math.log(2 * math.pi)
                     - 0.5 * log_det)
        out.append((q, log_terms))
    return out


def expected_proba(model, x):
    """Responsibilities from the exact scores: ``exp`` of each gap to the
    best (0 beyond 800, where exp underflows)."""
    scores = [Fraction(t) - q / 2 for q, t in exact_scores(model, x)]
    top = max(scores)
    p = np.array([math.exp(float(s - top)) if top - s < 800 else 0.0 for s in scores])
    return p / p.sum()


def _inverse(a):
    """Inverse of a small matrix of Fractions (Gauss-Jordan, exact)."""
    n = len(a)
    m = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        p = next(r for r in range(c, n) if m[r][c] != 0)
        m[c], m[p] = m[p], m[c]
        m[c] = [v / m[c][c] for v in m[c]]
        for r in range(n):
            if r != c and m[r][c] != 0:
                m[r] = [v - m[r][c] * w for v, w in zip(m[r], m[c], strict=True)]
    return [row[n:] for row in m]


def _det(a):
    if len(a) == 1:
        return a[0][0]
    return sum((-1) ** j * a[0][j] * _det([row[:j] + row[j + 1:] for row in a[1:]])
               for j in range(len(a)))


def far_rows(dtype):
    return np.vstack([DIRECTIONS * s for s in SCALES[dtype]]).astype(dtype)


def check(model, far, near, monkeypatch, kernel, atol):
    """predict_proba / predict / score_samples of ``far`` rows, batched with
    enough ``near`` rows for the compiled kernel to apply, against the exact
    responsibilities; the near rows exactly as without the far ones."""
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    batch = np.vstack([far, near]).astype(far.dtype)
    proba = model.predict_proba(batch)
    labels = model.predict(batch)
    log_density = model.score_samples(batch)
    assert not np.isnan(proba).any() and not np.isnan(log_density).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=atol)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    for x, p in zip(far, proba[:len(far)], strict=True):
        np.testing.assert_allclose(p, expected_proba(model, x), rtol=0, atol=atol,
                                   err_msg=f"row {x}")
    # The far rows do not touch their neighbours' results: bit for bit in the
    # reference kernel; the compiled one hands a chunk with a far row to the
    # reference, whose results differ from its own by rounding.
    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    alone = model.predict_proba(near), model.score_samples(near)
    rtol = 0 if kernel == "reference" else 1e-12 if far.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(proba[len(far):], alone[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(log_density[len(far):], alone[1], rtol=rtol)
    return log_density[:len(far)]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_far_rows_go_to_the_nearest_component(models, data, monkeypatch, ct, kernel):
    model = models[ct]
    far = far_rows(np.float64)
    log_density = check(model, far, data[:100], monkeypatch, kernel, 1e-12)
    assert np.all(log_density == -np.inf)  # as scikit-learn's
    for x, label in zip(far, model.predict(far), strict=True):
        q = [q for q, _ in exact_scores(model, x)]
        assert q[label] == min(q) and sorted(q)[1] - min(q) > 1e100  # no near tie


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_far_rows(models, data, monkeypatch, ct, kernel):
    # float32 distances overflow from about 1e19 out; tied covariances gave
    # every such row the weights' split before
    check(models[ct], far_rows(np.float32), data[:100].astype(np.float32), monkeypatch,
          kernel, 1e-6)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_far_rows_with_missing_values(models, data, monkeypatch, ct, kernel):
    far = far_rows(np.float64)
    far[::3, 1] = np.nan
    far[1::3, 0] = np.nan
    near = data[:100].copy()
    near[::4, 2] = np.nan  # a chunk with NaN: its complete rows go the same way
    check(models[ct], far, near, monkeypatch, kernel, 1e-12)


def _two_components(ct, weights, precision=1.0):
    """Two components at -1 and +1 on the first axis, the same covariance
    (``precision`` times the identity) in every covariance type's form."""
    d = 3
    chol = {"full": np.eye(d)[None].repeat(2, axis=0), "tied": np.eye(d),
            "diag": np.ones((2, d)), "spherical": np.ones(2)}[ct] * np.sqrt(precision)
    gm = GaussianMixture(2, covariance_type=ct)
    gm.weights_ = np.asarray(weights, float)
    gm.means_ = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    gm.precisions_cholesky_ = chol
    return gm


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_equal_covariances_decided_by_the_means(monkeypatch, ct, kernel):
    # Equal covariances: |y_k|^2 agree to every digit, the difference
    # (4 x_0 here) is 1e160 or more; the heavier weight must not win.
    gm = _two_components(ct, [0.9, 0.1])
    far = np.array([[1e200, 1e200, 0.0], [1e160, -1e300, 1e300], [-1e300, 0.0, 0.0],
                    [5e-324, 1e300, 0.0]])
    monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
    batch = np.vstack([far, np.zeros((70, 3))])
    proba = gm.predict_proba(batch)[:4]
    np.testing.assert_array_equal(proba[:3], [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # 5e-324 puts the last row nearer the second component by 2e-323 in
    # squared distance: a gap of 1e-323 in log-density, nothing next to the
    # weights, so the split is the weights'
    np.testing.assert_allclose(proba[3], [0.9, 0.1], rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(batch)[:3], [1, 1, 0])


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_exact_ties_split_by_the_weights(monkeypatch, ct):
    # On the plane x_0 = 0 both distances are exactly equal: the exact
    # log-densities differ by the log weights only.
    gm = _two_components(ct, [0.3, 0.7])
    far = np.array([[0.0, 1e200, 0.0], [0.0, -1e300, 3e300], [0.0, 0.0, 1e160]])
    for kernel in KERNELS:
        monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
        batch = np.vstack([far, np.zeros((70, 3))])
        np.testing.assert_allclose(gm.predict_proba(batch)[:3], [[0.3, 0.7]] * 3,
                                   rtol=1e-12)
        np.testing.assert_array_equal(gm.predict(batch)[:3], [1, 1, 1])


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_finite_gaps_give_the_exact_softmax(monkeypatch, ct):
    # At x = (t, 1e200, 0) the distances overflow but differ by exactly 4t:
    # the log-odds of the second component are 2t, whatever the 1e200.
    gm = _two_components(ct, [0.5, 0.5])
    t = np.array([0.25, -0.5, 1.0, 3.0])
    far = np.c_[t, np.full(4, 1e200), np.zeros(4)]
    for kernel in KERNELS:
        monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
        proba = gm.predict_proba(np.vstack([far, np.zeros((70, 3))]))[:4]
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-2 * t)), rtol=1e-12)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_array_api_strict_gives_the_same(models, ct):
    xps = pytest.importorskip("array_api_strict")
    from gaussmix.engine.estep import EStepKernel
    from gaussmix.engine.sources import spec_of
    from gaussmix.engine.xp import to_host

    model = models[ct]
    far = far_rows(np.float64)
    strict = xps.asarray(far)
    kernel = EStepKernel.build(model._piece, model._params, spec_of(strict))
    np.testing.assert_array_equal(np.exp(to_host(kernel.log_resp(strict))).T,
                                  model.predict_proba(far))


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_where_some_distances_stay_finite_those_components_win(monkeypatch, ct):
    # Component 1 is 1e300 times wider: at 1e200 only component 0's distance
    # overflows, and component 1 takes the row with a finite log-density.
    gm = _two_components(ct, [0.5, 0.5])
    gm.precisions_cholesky_ = gm.precisions_cholesky_ * (
        np.array([1.0, 1e-150]).reshape((2,) + (1,) * (gm.precisions_cholesky_.ndim - 1)))
    gm.means_ = np.zeros((2, 3))
    x = np.array([[1e200, 0.0, 0.0], [0.0, -3e250, 1e200]])
    for kernel in KERNELS:
        monkeypatch.setenv("GAUSSMIX_KERNEL", kernel)
        np.testing.assert_array_equal(gm.predict_proba(x), [[0.0, 1.0], [0.0, 1.0]])
        for row, log_density in zip(x, gm.score_samples(x), strict=True):
            (q0, _), (q1, t1) = exact_scores(gm, row)
            assert q0 > 1e308 > q1
            assert log_density == pytest.approx(t1 - float(q1) / 2, rel=1e-12)


@pytest.mark.parametrize("ct", ["full", "tied"])
def test_torch_and_dask_inputs(models, ct):
    model = models[ct]
    far = far_rows(np.float64)
    expected = model.predict_proba(far)
    np.testing.assert_allclose(expected, [expected_proba(model, x) for x in far],
                               atol=1e-12)
    da = pytest.importorskip("dask.array")
    on_dask = model.predict_proba(da.from_array(far, chunks=5)).compute()
    np.testing.assert_array_equal(on_dask, expected)
    torch = pytest.importorskip("torch")
    for dtype, rows in ((torch.float64, far), (torch.float32, far_rows(np.float32))):
        proba = model.predict_proba(torch.tensor(rows, dtype=dtype))
        assert not torch.isnan(proba).any()
        np.testing.assert_allclose(proba.double().numpy(),
                                   [expected_proba(model, x) for x in rows], atol=1e-6)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fitting_far_rows_is_still_an_error(models, data, ct):
    # A log-likelihood of -inf stops EM with advice, as before.
    start = models[ct]
    gm = GaussianMixture(3, covariance_type=ct, weights_init=start.weights_,
                         means_init=start.means_, precisions_init=start.precisions_)
    with pytest.raises(ValueError, match="Scale the data"):
        gm.fit(np.vstack([data, [[1e200, 0.0, 0.0]]]))
