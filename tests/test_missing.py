"""Missing values: exact EM for incomplete rows (gaussmix.engine.incomplete),
GaussianMixture(missing="marginalize"), impute and GaussianMixtureImputer.

The judges: scipy.stats.multivariate_normal on the observed coordinates for
densities, and a slow per-row EM iteration written here (conditional moments
by np.linalg.solve, one row at a time) for the statistics and the M-step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture, GaussianMixtureImputer, select
from gaussmix.engine.incomplete.patterns import pattern_blocks

TYPES = ["full", "tied", "diag", "spherical"]


def _mixture(K: int = 3, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(K, d))
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    covs = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
    weights = rng.dirichlet(np.full(K, 5.0))
    return weights, means, covs


def _sample(n: int, fraction: float, seed: int = 0, K: int = 3, d: int = 4):
    weights, means, covs = _mixture(K, d, seed)
    rng = np.random.default_rng(seed + 1)
    z = rng.choice(K, size=n, p=weights)
    X = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in z])
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < fraction] = np.nan
    keep = ~np.isnan(X_missing).all(axis=1)
    return X[keep], X_missing[keep], (weights, means, covs)


def _typed(cov_type: str, covs: np.ndarray) -> np.ndarray:
    """Full covariances reduced to a covariance type's parameters."""
    diag = np.diagonal(covs, axis1=1, axis2=2)
    return {"full": covs, "tied": covs.mean(axis=0), "diag": diag,
            "spherical": diag.mean(axis=1)}[cov_type]


def _full(cov_type: str, typed: np.ndarray, K: int, d: int) -> np.ndarray:
    if cov_type == "full":
        return typed
    if cov_type == "tied":
        return np.repeat(typed[None], K, axis=0)
    if cov_type == "diag":
        return typed[:, :, None] * np.eye(d)
    return typed[:, None, None] * np.eye(d)


def _inverse(cov_type: str, typed: np.ndarray) -> np.ndarray:
    return np.linalg.inv(typed) if cov_type in ("full", "tied") else 1.0 / typed


def _started(cov_type: str, weights, means, covs, **kw) -> GaussianMixture:
    typed = _typed(cov_type, covs)
    return GaussianMixture(len(weights), covariance_type=cov_type, weights_init=weights,
                           means_init=means, precisions_init=_inverse(cov_type, typed),
                           missing="marginalize", **kw)


# ------------------------------------------------------------ slow reference
def _reference_iteration(X, weights, means, full_covs, cov_type, reg_covar,
                         sample_weight=None):
    """One EM iteration, row by row, from the textbook formulas."""
    n, d = X.shape
    K = len(weights)
    w = np.ones(n) if sample_weight is None else sample_weight
    nk, sx = np.zeros(K), np.zeros((K, d))
    sxx = np.zeros((K, d, d))
    loglik = 0.0
    for i in range(n):
        o = ~np.isnan(X[i])
        m = ~o
        log_p = np.array([np.log(weights[k]) + (multivariate_normal(
            means[k][o], full_covs[k][np.ix_(o, o)]).logpdf(X[i][o]) if o.any() else 0.0)
            for k in range(K)])
        top = log_p.max()
        total = top + np.log(np.exp(log_p - top).sum())
        loglik += w[i] * total
        resp = np.exp(log_p - total)
        for k in range(K):
            S = full_covs[k]
            xhat = X[i].copy()
            C = np.zeros((d, d))
            if m.any():
                gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)]) if o.any() \
                    else np.zeros((m.sum(), 0))
                xhat[m] = means[k][m] + gain @ (X[i][o] - means[k][o])
                C[np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            g = w[i] * resp[k]
            nk[k] += g
            sx[k] += g * xhat
            sxx[k] += g * (np.outer(xhat, xhat) + C)
    mu = sx / nk[:, None]
    full = sxx / nk[:, None, None] - mu[:, :, None] * mu[:, None, :]
    if cov_type == "full":
        cov = full + reg_covar * np.eye(d)
    elif cov_type == "tied":
        cov = (full * nk[:, None, None]).sum(axis=0) / nk.sum() + reg_covar * np.eye(d)
    elif cov_type == "diag":
        cov = np.diagonal(full, axis1=1, axis2=2) + reg_covar
    else:
        cov = np.diagonal(full, axis1=1, axis2=2).mean(axis=1) + reg_covar
    return nk / nk.sum(), mu, cov, loglik / w.sum()


@pytest.mark.parametrize("cov_type", TYPES)
def test_log_density_of_incomplete_rows_is_the_observed_marginal(cov_type):
    _, X, (weights, means, covs) = _sample(120, 0.35, seed=3)
    X[0] = np.nan  # nothing observed: log p = 0, responsibilities = weights
    typed = _typed(cov_type, covs)
    full = _full(cov_type, typed, len(weights), X.shape[1])
    gm = _started(cov_type, weights, means, covs, max_iter=0).fit(X[1:])
    expected = []
    for x in X:
        o = ~np.isnan(x)
        dens = [weights[k] * (multivariate_normal(means[k][o], full[k][np.ix_(o, o)]).pdf(
            x[o]) if o.any() else 1.0) for k in range(len(weights))]
        expected.append(np.log(np.sum(dens)))
    np.testing.assert_allclose(gm.score_samples(X), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(X[:1])[0], weights, rtol=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_one_iteration_equals_the_per_row_reference(cov_type, weighted):
    _, X, (weights, means, covs) = _sample(150, 0.3, seed=5)
    sw = np.random.default_rng(0).uniform(0.2, 3.0, len(X)) if weighted else None
    typed = _typed(cov_type, covs)
    full = _full(cov_type, typed, len(weights), X.shape[1])
    ref = _reference_iteration(X, weights, means, full, cov_type, 1e-6, sw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = _started(cov_type, weights, means, covs, max_iter=1,
                      chunk_size=37).fit(X, sample_weight=sw)
    np.testing.assert_allclose(gm.weights_, ref[0], rtol=1e-10)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.lower_bound_, ref[3], rtol=1e-12)


@pytest.mark.parametrize("cov_type", TYPES)
def test_without_nan_the_fit_is_the_ordinary_fit(cov_type):
    X, _, _ = _sample(300, 0.0, seed=7)
    plain = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    marg = GaussianMixture(3, covariance_type=cov_type, random_state=0,
                           missing="marginalize").fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(marg, name), getattr(plain, name),
                                   rtol=1e-12, atol=1e-12)
    assert marg.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-12)
    np.testing.assert_array_equal(marg.predict(X), plain.predict(X))


def test_statistics_are_additive_across_chunks_and_patterns():
    _, X, (weights, means, covs) = _sample(200, 0.4, seed=11)
    fits = []
    for chunk in (7, 64, 1000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(_started("full", weights, means, covs, max_iter=2,
                                 chunk_size=chunk, n_threads=1).fit(X))
    for other in fits[1:]:
        np.testing.assert_allclose(other.covariances_, fits[0].covariances_, rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    _, X, (weights, means, covs) = _sample(80, 0.3, seed=2)
    counts = np.random.default_rng(1).integers(1, 4, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = _started("diag", weights, means, covs, max_iter=3).fit(X, sample_weight=counts)
        b = _started("diag", weights, means, covs, max_iter=3).fit(np.repeat(X, counts, 0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-10)


def test_likelihood_never_decreases_and_float32_agrees():
    _, X, _ = _sample(400, 0.3, seed=4)
    gm = GaussianMixture(3, random_state=0, missing="marginalize", reg_covar=0,
                         tol=0, max_iter=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
        gm32 = GaussianMixture(3, random_state=0, missing="marginalize",
                               max_iter=15).fit(X.astype(np.float32))
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-10)
    assert gm32.means_.dtype == np.float64
    assert abs(gm32.lower_bound_ - gm.lower_bound_) < 1e-3


def test_pattern_blocks_cover_incomplete_rows_once():
    rng = np.random.default_rng(0)
    mask = rng.random((3000, 9)) < 0.4
    seen = []
    for block in pattern_blocks(mask, 4, budget=500):
        assert np.array_equal(mask[block.rows], _mask_of(block, 9))
        assert np.all(block.patterns[block.pattern] == block.missing)
        seen.append(block.rows)
    rows = np.concatenate(seen)
    assert sorted(rows.tolist()) == np.flatnonzero(mask.any(axis=1)).tolist()


def _mask_of(block, d):
    out = np.zeros((len(block.rows), d), bool)
    out[np.arange(len(block.rows))[:, None], block.missing] = True
    return out


# --------------------------------------------------------------- benefit
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_closer_to_the_truth_than_mean_imputation(fraction):
    """Distance: sum over components (matched to the truth by mean) of the
    Euclidean distance of means plus the Frobenius distance of covariances."""
    wins = 0
    for seed in range(5):
        _, X, (weights, means, covs) = _sample(1500, fraction, seed=seed, K=2, d=4)
        exact = GaussianMixture(2, random_state=0, missing="marginalize").fit(X)
        filled = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        imputed = GaussianMixture(2, random_state=0).fit(filled)
        wins += _distance(exact, means, covs) < _distance(imputed, means, covs)
    assert wins >= 4


def _distance(gm, means, covs):
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in means]
    return sum(np.linalg.norm(gm.means_[j] - means[k])
               + np.linalg.norm(gm.covariances_[j] - covs[k])
               for k, j in enumerate(order))


# ------------------------------------------------------------ imputation
def test_impute_is_the_conditional_expectation():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    X = rng.multivariate_normal([1.0, -1.0, 2.0], cov, 5000)
    gm = GaussianMixture(1, random_state=0).fit(X)
    row = np.array([[2.0, np.nan, np.nan]])
    S, mu = gm.covariances_[0], gm.means_[0]
    expected = mu[1:] + S[1:, :1] @ np.linalg.solve(S[:1, :1], row[0, :1] - mu[:1])
    np.testing.assert_allclose(gm.impute(row)[0, 1:], expected, rtol=1e-10)
    assert gm.impute(row)[0, 0] == 2.0
    draws = gm.impute(np.repeat(row, 4000, 0), n_draws=1, random_state=0)[0]
    np.testing.assert_allclose(draws[:, 1:].mean(axis=0), expected, atol=0.05)
    cond = S[1:, 1:] - S[1:, :1] @ np.linalg.solve(S[:1, :1], S[:1, 1:])
    np.testing.assert_allclose(np.cov(draws[:, 1:].T), cond, atol=0.05)
    np.testing.assert_allclose(gm.impute([[np.nan] * 3])[0], mu, rtol=1e-12)



def test_draws_do_not_depend_on_chunks_or_threads():
    """A seed gives the same multiple imputations whatever the chunk size
    and threads (other machines cut rows into other chunks), and a slice of
    the rows gets its own rows' draws only through the streamed path."""
    _, X, _ = _sample(700, 0.3, seed=12)
    gm = GaussianMixture(3, missing="marginalize", random_state=0).fit(X)
    first = gm.impute(X, n_draws=2, random_state=7)
    for chunk_size, n_threads in ((50, 1), (333, 2), (None, 2)):
        gm.set_params(chunk_size=chunk_size, n_threads=n_threads)
        np.testing.assert_array_equal(gm.impute(X, n_draws=2, random_state=7), first)
    assert not np.array_equal(first[0], first[1])  # two draws differ
    assert not np.array_equal(gm.impute(X, n_draws=2, random_state=8), first)

def test_imputer_in_a_pipeline_beats_mean_imputation():
    X, X_missing, _ = _sample(1200, 0.3, seed=8)
    imputer = GaussianMixtureImputer(3, random_state=0)
    filled = make_pipeline(imputer).fit_transform(X_missing)
    holes = np.isnan(X_missing)
    rmse = np.sqrt(np.mean((filled[holes] - X[holes]) ** 2))
    means = np.where(holes, np.nanmean(X_missing, axis=0), X_missing)
    assert rmse < 0.9 * np.sqrt(np.mean((means[holes] - X[holes]) ** 2))
    assert not np.isnan(filled).any()
    assert np.array_equal(filled[~holes], X_missing[~holes])
    drawn = GaussianMixtureImputer(3, random_state=0, sample_posterior=True).fit(
        X_missing).transform(X_missing)
    assert not np.array_equal(drawn, filled) and not np.isnan(drawn).any()


@parametrize_with_checks([GaussianMixtureImputer(), GaussianMixture(missing="marginalize")])
def test_sklearn_compatible_with_missing_values(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem():
    _, X, _ = _sample(100, 0.3, seed=1)
    with pytest.raises(ValueError, match="missing='marginalize'"):
        GaussianMixture(2).fit(X)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="1 inf.*row 3, column 1"):
        GaussianMixture(2, missing="marginalize").fit(bad)
    empty = X.copy()
    empty[5] = np.nan
    with pytest.raises(ValueError, match="every feature missing.*row 5"):
        GaussianMixture(2, missing="marginalize").fit(empty)
    column = X.copy()
    column[:, 2] = np.nan
    with pytest.raises(ValueError, match="no observed value.*column 2"):
        GaussianMixture(2, missing="marginalize").fit(column)
    with pytest.raises(ValueError, match="'missing' parameter"):
        GaussianMixture(2, missing="drop").fit(X)


def test_scores_partial_fit_and_select_accept_nan():
    _, X, _ = _sample(600, 0.2, seed=9)
    gm = GaussianMixture(3, random_state=0, missing="marginalize").fit(X)
    assert np.isfinite(gm.score(X)) and np.isfinite(gm.bic(X)) and np.isfinite(gm.aic(X))
    assert gm.bic(X) == pytest.approx(-2 * gm.score(X) * len(X)
                                      + gm._n_parameters() * np.log(len(X)))
    np.testing.assert_array_equal(gm.labels_, gm.predict(X))
    stream = GaussianMixture(3, random_state=0, missing="marginalize")
    for part in np.array_split(X, 4):
        stream.partial_fit(part)
    assert np.all(np.isfinite(stream.means_))
    result = select(X, n_components=[2, 3], covariance_types=["full", "diag"],
                    random_state=0, missing="marginalize")
    assert result.best_estimator_.missing == "marginalize"
    assert np.isfinite([row.bic for row in result.table]).all()


def test_cli_reads_empty_cells_as_missing(tmp_path):
    from click.testing import CliRunner

    from gaussmix.cli import main

    _, X, _ = _sample(200, 0.2, seed=12)
    text = "a,b,c,d\n" + "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X)
    data = tmp_path / "holes.csv"
    data.write_text(text + "\n")
    model = tmp_path / "m.npz"
    runner = CliRunner()
    refused = runner.invoke(main, ["fit", str(data), "-k", "3", "-o", str(model), "-q"])
    assert refused.exit_code == 2 and "--missing marginalize" in refused.output
    done = runner.invoke(main, ["fit", str(data), "-k", "3", "-o", str(model), "-q",
                                "--seed", "0", "--missing", "marginalize"])
    assert done.exit_code == 0, done.output
    direct = GaussianMixture(3, random_state=0, missing="marginalize").fit(X)
    scored = runner.invoke(main, ["score", str(model), str(data)])
    assert scored.exit_code == 0, scored.output
    mean = float(scored.output.split("mean log-likelihood: ")[1].split()[0])
    assert mean == pytest.approx(direct.score(X), rel=1e-8)
    labels = runner.invoke(main, ["predict", str(model), str(data)])
    assert labels.output.split()[1:] == [str(v) for v in direct.predict(X)]


def test_cli_select_reads_empty_cells_as_missing(tmp_path):
    """gaussmix select --missing marginalize gives gaussmix.select's table."""
    from click.testing import CliRunner

    from gaussmix import select
    from gaussmix.cli import main

    _, X, _ = _sample(200, 0.2, seed=13)
    text = "a,b,c,d\n" + "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X)
    data = tmp_path / "holes.csv"
    data.write_text(text + "\n")
    model = tmp_path / "best.npz"
    runner = CliRunner()
    refused = runner.invoke(main, ["select", str(data), "-k", "1..2", "-q"])
    assert refused.exit_code == 2 and "--missing marginalize" in refused.output
    done = runner.invoke(main, ["select", str(data), "-k", "1..2", "--covariance", "diag",
                                "--seed", "0", "--missing", "marginalize", "-q",
                                "-o", str(model)])
    assert done.exit_code == 0, done.output
    direct = select(X, n_components=[1, 2], covariance_types=["diag"], random_state=0,
                    missing="marginalize")
    loaded = __import__("gaussmix").load(model)
    assert loaded.missing == "marginalize"
    assert loaded.n_components == direct.best_n_components_
    np.testing.assert_allclose(loaded.means_, direct.best_estimator_.means_, rtol=1e-10)


# ---------------------------------------------------- compiled loops (numba)
needs_numba = pytest.mark.skipif(
    __import__("importlib").util.find_spec("numba") is None, reason="numba not installed")


def _kernel_stats(monkeypatch, mode, cov_type, X, sw):
    """Statistics of X (one chunk) and per-row results under GAUSSMIX_KERNEL=mode."""
    from gaussmix.engine.covariance import ComputeSpec, get_covariance_type
    from gaussmix.engine.incomplete import MarginalKernel
    from gaussmix.engine.params import MixtureParams

    monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
    weights, means, covs = _mixture(3, X.shape[1], seed=1)
    piece = get_covariance_type(cov_type)
    typed = _typed(cov_type, covs)
    params = MixtureParams(weights, means, typed, piece.precisions_cholesky(typed))
    kernel = MarginalKernel.build(piece, params, ComputeSpec(np, np.float64))
    return (kernel.statistics(X, sw), kernel.scores(X)[0], kernel.impute(X),
            kernel.labels(X))


@needs_numba
@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_loops_equal_the_numpy_reference(monkeypatch, cov_type, weighted, dtype):
    # 700 rows, d = 5: several tiles per number of missing coordinates, every
    # q from 0 (complete rows) to 5 (nothing observed) present
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 5)) * 2.0 + rng.integers(0, 3, 700)[:, None]
    X[rng.random(X.shape) < 0.4] = np.nan
    X = X.astype(dtype)
    sw = rng.uniform(0.1, 3.0, len(X)) if weighted else None
    ref = _kernel_stats(monkeypatch, "reference", cov_type, X, sw)
    fast = _kernel_stats(monkeypatch, "fused", cov_type, X, sw)
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(fast[0], name), getattr(ref[0], name),
                                   rtol=1e-12, atol=1e-12 * np.abs(ref[0].s2).max())
    assert fast[0].loglik == pytest.approx(ref[0].loglik, rel=1e-12)
    assert (fast[0].weight, fast[0].min_weight) == (ref[0].weight, ref[0].min_weight)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12)
    np.testing.assert_allclose(fast[2], ref[2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fast[3], ref[3])


@needs_numba
@pytest.mark.parametrize("complete_share", [0.03, 0.5])
def test_compiled_chunks_with_few_or_many_complete_rows(monkeypatch, complete_share):
    # few complete rows go through the compiled loops with the others, many
    # through the ordinary kernel; both give the reference's statistics
    from gaussmix.engine.incomplete.kernel import COMPLETE_SHARE_IN_LOOPS

    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 4)) * 2.0 + rng.integers(0, 3, 500)[:, None]
    incomplete = rng.random(len(X)) >= complete_share
    X[incomplete, rng.integers(0, 4, incomplete.sum())] = np.nan
    share = 1 - incomplete.mean()
    assert (share < COMPLETE_SHARE_IN_LOOPS) == (complete_share < COMPLETE_SHARE_IN_LOOPS)
    sw = rng.uniform(0.1, 3.0, len(X))
    ref = _kernel_stats(monkeypatch, "reference", "full", X, sw)[0]
    fast = _kernel_stats(monkeypatch, "fused", "full", X, sw)[0]
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name),
                                   rtol=1e-12, atol=1e-12 * np.abs(ref.s2).max())
    assert fast.loglik == pytest.approx(ref.loglik, rel=1e-12)
    assert (fast.weight, fast.min_weight) == pytest.approx((ref.weight, ref.min_weight),
                                                           rel=1e-12)


@needs_numba
def test_compiled_loops_for_every_number_of_missing_coordinates(monkeypatch):
    # d = 13: rows missing 1..12 coordinates, each count in its own tiles, so
    # that every generated per-lane kernel (q <= QMAX) and the loops beyond
    # them give the reference's statistics and per-row results
    from gaussmix.engine.incomplete.lanes import QMAX

    rng = np.random.default_rng(11)
    d = 13
    X = rng.normal(size=(650, d)) * 2.0 + rng.integers(0, 3, 650)[:, None]
    count = np.arange(len(X)) % d  # 0 (complete) .. 12
    for i, q in enumerate(count):
        X[i, rng.choice(d, q, replace=False)] = np.nan
    assert count.max() > QMAX
    ref = _kernel_stats(monkeypatch, "reference", "full", X, None)
    fast = _kernel_stats(monkeypatch, "fused", "full", X, None)
    for name in ("nk", "s1", "s2"):
        np.testing.assert_allclose(getattr(fast[0], name), getattr(ref[0], name),
                                   rtol=1e-12, atol=1e-12 * np.abs(ref[0].s2).max())
    assert fast[0].loglik == pytest.approx(ref[0].loglik, rel=1e-12)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12)
    np.testing.assert_allclose(fast[2], ref[2], rtol=1e-12, atol=1e-12)


def test_generated_lanes_module_is_up_to_date():
    from gaussmix.engine.incomplete import lanes_source

    assert lanes_source.target().read_text() == lanes_source.module_source(), (
        "lanes.py is stale: run python -m gaussmix.engine.incomplete.lanes_source")


@needs_numba
@pytest.mark.parametrize("K", [2, 40])
def test_compiled_loops_with_many_features(monkeypatch, K):
    # d = 40, half missing: tiles limited by the q x q factors' budget (K = 2),
    # down to one row per tile (K = 40)
    X, rng = _shifted_rows_with_nan(4, 300, 40, shifts=2, missing=0.5)
    _assert_one_iteration_as_the_reference(monkeypatch, X, K, rng)


@needs_numba
@pytest.mark.parametrize("K", [4, 13])
def test_compiled_loops_move_any_number_of_components(monkeypatch, K):
    # the gather of L_mm and the scatter of the conditional covariances take a
    # row's K components eight, four, then one at a time: K = 4 (one step of
    # four), K = 13 (one of each); K = 2, 3 and 40 are in the tests above
    X, rng = _shifted_rows_with_nan(8, 400, 6, shifts=3, missing=0.35)
    _assert_one_iteration_as_the_reference(monkeypatch, X, K, rng)


def _shifted_rows_with_nan(seed: int, n: int, d: int, *, shifts: int, missing: float
                           ) -> tuple[np.ndarray, np.random.Generator]:
    """n standard normal rows of d features, each shifted along the diagonal
    by a random integer below ``shifts``, each entry NaN with probability
    ``missing``, rows with nothing observed left out; and the generator, to
    draw the start from."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + rng.integers(0, shifts, n)[:, None]
    X[rng.random(X.shape) < missing] = np.nan
    return X[~np.isnan(X).all(axis=1)], rng


def _assert_one_iteration_as_the_reference(monkeypatch, X: np.ndarray, K: int,
                                           rng: np.random.Generator) -> None:
    """One EM iteration on X from a random start of K components gives the
    same means, covariances and per-row scores with the compiled loops as with
    the NumPy reference."""
    d = X.shape[1]
    A = rng.normal(size=(K, d, d)) / np.sqrt(d)
    start = dict(weights_init=np.full(K, 1 / K), means_init=rng.normal(size=(K, d)),
                 precisions_init=np.linalg.inv(A @ A.transpose(0, 2, 1) + np.eye(d)))
    out = []
    for mode in ("reference", "fused"):
        monkeypatch.setenv("GAUSSMIX_KERNEL", mode)
        gm = GaussianMixture(K, missing="marginalize", max_iter=1, tol=0, **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X)
        out.append((gm.means_, gm.covariances_, gm.score_samples(X)))
    for ref, fast in zip(*out, strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("cov_type", TYPES)
def test_compiled_iteration_equals_the_per_row_reference(monkeypatch, cov_type):
    monkeypatch.setenv("GAUSSMIX_KERNEL", "fused")
    _, X, (weights, means, covs) = _sample(150, 0.3, seed=5)
    sw = np.random.default_rng(0).uniform(0.2, 3.0, len(X))
    full = _full(cov_type, _typed(cov_type, covs), len(weights), X.shape[1])
    ref = _reference_iteration(X, weights, means, full, cov_type, 1e-6, sw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = _started(cov_type, weights, means, covs, max_iter=1,
                      chunk_size=37).fit(X, sample_weight=sw)
    np.testing.assert_allclose(gm.means_, ref[1], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, ref[2], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.lower_bound_, ref[3], rtol=1e-12)


@needs_numba
def test_compiled_loops_hand_hard_rows_to_the_reference(monkeypatch):
    """A row far beyond every component (no finite score) and a precision
    whose restriction is not positive definite: the chunk goes to the NumPy
    reference, so results and errors are the reference's."""
    _, X, _ = _sample(200, 0.3, seed=6)
    X[4] = [1e200, np.nan, 1e200, 1e200]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = _kernel_stats(monkeypatch, "reference", "full", X, None)
        fast = _kernel_stats(monkeypatch, "fused", "full", X, None)
    np.testing.assert_array_equal(fast[0].s2, ref[0].s2)
    np.testing.assert_allclose(fast[1], ref[1], rtol=1e-12)  # -inf for the far row

    from gaussmix.engine.compiled_inputs import read_only
    from gaussmix.engine.incomplete import loops
    miss = np.array([[np.nan, 1.0]])
    bad = np.array([[[-1.0, 0.0], [0.0, 1.0]]])  # L_mm = -1 for the missing column
    out = np.empty((1, 1))
    # read-only, as the kernel passes them (one compiled loop for both)
    inputs = [read_only(a) for a in (miss, np.array([0]), np.zeros((1, 2)), bad,
                                     np.eye(2)[None], np.zeros(1))]
    assert loops.scores(*inputs, False, out) == 2


def test_kernel_choice(monkeypatch):
    from gaussmix.engine.incomplete import compiled
    from gaussmix.engine.threads import WorkCounter

    monkeypatch.setenv("GAUSSMIX_KERNEL", "reference")
    assert compiled.loops_for(10**9, 8, 16) is None
    monkeypatch.setenv("GAUSSMIX_KERNEL", "nonsense")
    with pytest.raises(ValueError, match="GAUSSMIX_KERNEL='nonsense'.*reference"):
        compiled.loops_for(1, 1, 1)
    monkeypatch.delenv("GAUSSMIX_KERNEL")
    monkeypatch.setattr(compiled, "_work", WorkCounter())
    monkeypatch.setattr(compiled, "_import", _NeverImported())
    assert compiled.loops_for(100, 3, 4) is None  # small fits stay on NumPy
    assert compiled._work.total == 100 * 3 * 16


class _NeverImported:
    """Stands in for compiled._import where loading must not happen."""

    def __call__(self):
        raise AssertionError("the loops were loaded for a small fit")

    def cache_info(self):
        return type("Info", (), {"currsize": 0})()
