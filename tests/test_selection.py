"""Tests for gaussmix.selection and the ``gaussmix select`` command.

By module: the table and criteria (``result``, through ``select``), the shared
seeding and the passes over the data (``candidates``, ``passes``), the search
loop's order, threads and errors (``search``), progress (``progress``) and
the estimator (``estimator``)."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGMM
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from gaussmix import GaussianMixture
from gaussmix.selection import (
    Candidate,
    GaussianMixtureSearch,
    SelectionResult,
    log_likelihood_and_entropy,
    select,
)

TYPES = ("full", "tied", "diag", "spherical")


# ------------------------------------------------------------------ data
def _rotation(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _generating_model(kind: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Means and covariances of a 2-D mixture whose best description is
    exactly ``kind`` (fewer parameters would be wrong, more are unneeded)."""
    if kind == "spherical":  # K=3, round clusters of different radii
        means = [[0, 0], [9, 0], [0, 9]]
        covs = [np.eye(2) * v for v in (0.5, 1.0, 2.0)]
    elif kind == "diag":  # K=2, axis-aligned ellipses of different shapes
        means = [[0, 0], [8, 6]]
        covs = [np.diag([4.0, 0.3]), np.diag([0.3, 4.0])]
    elif kind == "tied":  # K=4, one shared tilted ellipse
        shared = _rotation(0.6) @ np.diag([3.0, 0.3]) @ _rotation(0.6).T
        means = [[0, 0], [8, 0], [0, 8], [8, 8]]
        covs = [shared] * 4
    else:  # full, K=3, differently tilted ellipses
        means = [[0, 0], [9, 1], [3, 9]]
        covs = [_rotation(a) @ np.diag(d) @ _rotation(a).T
                for a, d in ((0.5, (3, 0.3)), (-0.8, (2, 0.5)), (1.3, (4, 0.4)))]
    return np.asarray(means, dtype=float), covs


def draw(kind: str, n: int, seed: int) -> np.ndarray:
    """n rows from the generating model of ``kind`` (equal weights)."""
    rng = np.random.default_rng(seed)
    means, covs = _generating_model(kind)
    labels = rng.integers(len(means), size=n)
    factors = np.linalg.cholesky(np.array(covs))
    z = rng.standard_normal((n, 2))
    return means[labels] + np.einsum("nij,nj->ni", factors[labels], z)


@pytest.fixture(scope="module")
def small():
    """A 3-component 2-D sample and its selection over K=1..4, all types."""
    X = draw("full", 300, seed=11)
    return X, select(X, range(1, 5), random_state=0)


def _as_sklearn(model: GaussianMixture) -> SkGMM:
    """A scikit-learn GaussianMixture holding ``model``'s fitted parameters."""
    sk = SkGMM(model.n_components, covariance_type=model.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "precisions_", "converged_", "n_iter_", "lower_bound_",
                 "n_features_in_"):
        setattr(sk, name, getattr(model, name))
    return sk


# -------------------------------------------------------------- recovery
@pytest.mark.parametrize("kind", TYPES)
def test_recovers_generating_model_in_a_clear_majority(kind):
    # Rule: for each generating model (K=3 spherical, K=2 diag, K=4 tied,
    # K=3 full; 400 rows in 2-D), at least 5 of 6 seeded draws must select
    # exactly the generating (K, covariance type) by BIC among K=1..5 x all
    # four types.
    K = len(_generating_model(kind)[0])
    hits = [
        (r.best_n_components_, r.best_covariance_type_) == (K, kind)
        for r in (select(draw(kind, 400, seed), range(1, 6), random_state=seed)
                  for seed in range(6))
    ]
    assert sum(hits) >= 5, hits


# ---------------------------------------------------------------- table
def test_table_has_every_candidate_in_order(small):
    X, result = small
    keys = [(c.n_components, c.covariance_type) for c in result.table]
    assert keys == [(k, t) for t in TYPES for k in range(1, 5)]
    assert set(result.estimators_) == set(keys)
    assert result.n_components == [1, 2, 3, 4]
    assert result.covariance_types == list(TYPES)
    for c in result.table:
        assert isinstance(c, Candidate) and c.error is None
        assert c.n_iter >= 1 and c.time >= 0 and isinstance(c.converged, bool)
        assert np.isfinite([c.log_likelihood, c.bic, c.aic, c.icl]).all()
    assert result.n_samples == len(X)


def test_best_is_the_lowest_criterion_and_a_fitted_plain_estimator(small):
    X, result = small
    best = result.best_
    assert best.bic == min(c.bic for c in result.table)
    model = result.best_estimator_
    assert (model.n_components, model.covariance_type) == (
        result.best_n_components_, result.best_covariance_type_)
    assert model.get_params()["means_init"] is None
    assert model.get_params()["random_state"] == 0
    np.testing.assert_array_equal(model.labels_, model.predict(X))
    assert "candidates" in repr(result) and "bic" in repr(result)


def test_refitting_the_winner_with_its_params_reproduces_it(small):
    # With an int random_state each candidate starts where a plain
    # GaussianMixture with that seed starts, so the winner can be refit.
    X, result = small
    model = result.best_estimator_
    refit = GaussianMixture(**model.get_params()).fit(X)
    np.testing.assert_allclose(refit.means_, model.means_, rtol=1e-10)
    np.testing.assert_allclose(refit.covariances_, model.covariances_, rtol=1e-10)


@pytest.mark.parametrize("criterion", ["aic", "icl"])
def test_other_criteria_choose_their_minimum(small, criterion):
    X, _ = small
    result = select(X, range(1, 5), criterion=criterion, random_state=0)
    values = [c.criterion(criterion) for c in result.table]
    assert result.best_.criterion(criterion) == min(values)
    assert result.criterion == criterion


# ------------------------------------------------------------- criteria
def test_bic_and_aic_equal_sklearn_on_the_same_fitted_model(small):
    X, result = small
    for (k, t), model in result.estimators_.items():
        row = next(c for c in result.table if (c.n_components, c.covariance_type)
                   == (k, t))
        sk = _as_sklearn(model)
        assert row.bic == pytest.approx(sk.bic(X), rel=1e-12, abs=1e-9)
        assert row.aic == pytest.approx(sk.aic(X), rel=1e-12, abs=1e-9)
        assert row.bic == pytest.approx(model.bic(X), rel=1e-12, abs=1e-9)
        assert row.log_likelihood == pytest.approx(sk.score(X) * len(X), rel=1e-12)
        assert row.n_parameters == sk._n_parameters()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_init", [1, 2])
def test_bic_equals_sklearn_fitted_from_the_same_start(n_init):
    # scikit-learn's own k-means initialisation with the same seed gives the
    # same starting point as select's shared seeding, so the whole sweep
    # (EM included) must agree with a plain scikit-learn loop.
    X = draw("tied", 300, seed=5)
    result = select(X, range(1, 4), n_init=n_init, random_state=7, tol=1e-4)
    for c in result.table:
        sk = SkGMM(c.n_components, covariance_type=c.covariance_type, n_init=n_init,
                   random_state=7, tol=1e-4)
        with threadpool_limits(1):  # tiny data: threads only add overhead
            sk.fit(X)
        assert c.bic == pytest.approx(sk.bic(X), rel=1e-8)
        assert c.aic == pytest.approx(sk.aic(X), rel=1e-8)
        assert c.n_iter == sk.n_iter_


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("k,d", [(1, 1), (2, 3), (5, 4)])
def test_free_parameter_counts_match_closed_forms(covariance_type, k, d):
    closed_form = {
        "full": k * d * (d + 1) // 2 + k * d + k - 1,
        "tied": d * (d + 1) // 2 + k * d + k - 1,
        "diag": k * d + k * d + k - 1,
        "spherical": k + k * d + k - 1,
    }[covariance_type]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, d)) + 6 * rng.integers(k, size=(40, 1))
    result = select(X, k, covariance_type, random_state=0)
    assert result.table[0].n_parameters == closed_form
    sk = SkGMM(k, covariance_type=covariance_type, random_state=0).fit(X)
    assert sk._n_parameters() == closed_form


def test_icl_is_bic_plus_twice_the_entropy(small):
    X, result = small
    for c in result.table:
        model = result.estimators_[(c.n_components, c.covariance_type)]
        resp = _as_sklearn(model).predict_proba(X)  # computed by scikit-learn
        entropy = -xlogy(resp, resp).sum()
        assert c.icl >= c.bic
        assert c.icl == pytest.approx(c.bic + 2 * entropy, rel=1e-10, abs=1e-8)
        if c.n_components == 1:
            assert c.icl == c.bic


def test_log_likelihood_and_entropy_survive_an_empty_component():
    X = draw("diag", 200, seed=0)
    model = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    model.weights_ = np.array([1.0, 0.0])  # log weight -inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loglik, entropy = log_likelihood_and_entropy(model, X)
    assert np.isfinite(loglik) and entropy == pytest.approx(0.0, abs=1e-12)


def test_integer_weights_equal_repeated_rows():
    X = draw("spherical", 120, seed=3)
    w = np.random.default_rng(0).integers(1, 4, size=len(X))
    weighted = select(X, [1, 3], ("diag", "spherical"), init_params="random_from_data",
                      random_state=0, sample_weight=w)
    assert weighted.n_samples == w.sum()
    repeated = np.repeat(X, w, axis=0)
    for c in weighted.table:
        model = weighted.estimators_[(c.n_components, c.covariance_type)]
        loglik, entropy = log_likelihood_and_entropy(model, repeated)
        p = c.n_parameters
        assert c.log_likelihood == pytest.approx(loglik, rel=1e-10)
        assert c.bic == pytest.approx(-2 * loglik + p * math.log(len(repeated)),
                                      rel=1e-10)
        assert c.icl == pytest.approx(c.bic + 2 * entropy, rel=1e-10)


# ------------------------------------ shared seeding (candidates, passes)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_one_draw_of_responsibilities_starts_every_covariance_type(init_params):
    # passes.initial_parameters draws the responsibilities once per start and
    # turns them into each type's start with one M-step: the weights and means
    # of all types agree, and each start is where a plain GaussianMixture with
    # the same seed starts (max_iter=0 keeps its initial parameters).
    from gaussmix.selection.passes import initial_parameters

    X = draw("diag", 200, seed=1)
    starts = initial_parameters(X, None, 3, np.random.RandomState(0), 2,
                                init_params, TYPES, 1e-6, 1)
    assert list(starts) == list(TYPES)
    assert all(len(starts[t]) == 2 for t in TYPES)
    for t in TYPES:
        for mine, first in zip(starts[t], starts["full"], strict=True):
            for name in ("weights_init", "means_init"):
                np.testing.assert_allclose(mine[name], first[name], rtol=1e-12)
        plain = GaussianMixture(3, covariance_type=t, init_params=init_params,
                                random_state=0, max_iter=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain.fit(X)
        np.testing.assert_allclose(plain.means_, starts[t][0]["means_init"],
                                   rtol=1e-12)
        np.testing.assert_allclose(plain.precisions_,
                                   starts[t][0]["precisions_init"], rtol=1e-10)


def test_seeds_per_number_of_components():
    # candidates.seeds: an int seeds every K alike (as a loop over scikit-learn
    # would); a RandomState gives each K its own seed, reproducibly.
    from gaussmix.selection.candidates import seeds

    assert seeds(5, [1, 3]) == {1: 5, 3: 5}
    assert seeds(np.int64(5), [2]) == {2: 5}
    drawn = seeds(np.random.RandomState(0), [1, 2, 3])
    assert drawn == seeds(np.random.RandomState(0), [1, 2, 3])
    assert len(set(drawn.values())) == 3


# ------------------------------------------------ search: order and threads
def test_costliest_candidates_first_with_one_thread_per_pool(small):
    # search.select fits K from the largest down and the covariance types in
    # the registry's order (most parameters first); while each fit uses one
    # thread, every BLAS and OpenMP pool holds one thread, and gets its
    # threads back afterwards.
    from threadpoolctl import threadpool_info

    from gaussmix.engine.covariance import COVARIANCE_TYPES

    def pools():
        return [(i["user_api"], i["prefix"], i["num_threads"])
                for i in threadpool_info()]

    before = pools()
    seen, during = [], []

    def callback(row):
        seen.append((row.n_components, row.covariance_type))
        during.extend(pools())

    select(small[0], [1, 2], ("spherical", "full"), random_state=0,
           callback=callback)  # small data: in turn, one thread per fit
    order = [t for t in COVARIANCE_TYPES if t in ("spherical", "full")]
    assert seen == [(k, t) for k in (2, 1) for t in order]
    assert "blas" in {api for api, _, _ in during}
    assert all(n == 1 for _, _, n in during)
    assert pools() == before


def test_single_threaded_limits_blas_or_every_pool():
    from threadpoolctl import threadpool_info

    from gaussmix.engine.threads import single_threaded, single_threaded_blas

    assert single_threaded_blas is single_threaded
    with single_threaded():  # the engine's default: BLAS only
        assert all(i["num_threads"] == 1 for i in threadpool_info()
                   if i["user_api"] == "blas")
    with single_threaded(user_api=None):  # and OpenMP, as k-means uses
        assert all(i["num_threads"] == 1 for i in threadpool_info())


# ---------------------------------------------------- parallel & progress
def test_parallel_candidates_give_the_same_table(small):
    X, result = small
    parallel = select(X, range(1, 5), random_state=0, n_jobs=2)
    for a, b in zip(result.table, parallel.table, strict=True):
        assert (a.n_components, a.covariance_type) == (b.n_components, b.covariance_type)
        assert a.bic == pytest.approx(b.bic, rel=1e-10)
        assert a.n_iter == b.n_iter
    assert parallel.best_estimator_.get_params()["n_threads"] is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_parallel_run_leaves_warning_filters_alone(small):
    before = list(warnings.filters)
    select(small[0], [2, 3], ("full", "diag"), max_iter=1, random_state=0, n_jobs=2)
    assert warnings.filters == before


def test_process_backend_gives_the_same_table(small):
    from joblib import parallel_config

    X, result = small
    with parallel_config(backend="loky"):
        parallel = select(X, range(1, 3), ("full", "spherical"), random_state=0,
                          n_jobs=2)
    for b in parallel.table:
        a = next(c for c in result.table
                 if (c.n_components, c.covariance_type) == (b.n_components,
                                                            b.covariance_type))
        assert a.bic == pytest.approx(b.bic, rel=1e-10)


def test_verbose_and_callback_report_every_candidate(small, capsys):
    X, _ = small
    seen = []
    select(X, [1, 2], ("full", "diag"), random_state=0, verbose=1,
           callback=seen.append)
    out = capsys.readouterr().out
    assert len(seen) == 4 and all(isinstance(c, Candidate) for c in seen)
    assert out.count("K=") == 4 and "[4/4]" in out


def test_progress_bar_runs(small, capsys):
    X, _ = small
    select(X, [1, 2], "spherical", random_state=0, progress=True)
    assert "fitting" in capsys.readouterr().err


# ----------------------------------------------------- pandas & plotting
def test_to_pandas(small):
    pd = pytest.importorskip("pandas")
    _, result = small
    df = result.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(result.table)
    assert {"n_components", "covariance_type", "log_likelihood", "n_parameters",
            "bic", "aic", "icl", "converged", "n_iter", "time"} <= set(df.columns)
    np.testing.assert_allclose(df["bic"], [c.bic for c in result.table])


def test_to_pandas_without_pandas_says_what_to_install(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        small[1].to_pandas()


def test_plot_draws_one_line_per_covariance_type(small):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    _, result = small
    ax = result.plot()
    try:
        assert isinstance(ax, Axes)
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(TYPES) <= set(lines)
        for t in TYPES:
            np.testing.assert_array_equal(lines[t].get_xdata(), [1, 2, 3, 4])
            np.testing.assert_allclose(lines[t].get_ydata(), result.values()[t])
        chosen = [k for k in lines if k.startswith("chosen")]
        assert len(chosen) == 1
        assert "BIC" in ax.get_ylabel()
        _, ax2 = plt.subplots()
        assert result.plot(ax=ax2, criterion="icl") is ax2
        assert "ICL" in ax2.get_ylabel()
    finally:
        plt.close("all")


def test_plot_without_matplotlib_names_the_extra(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"gaussmix\[plot\]"):
        small[1].plot()


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"criterion": "bicc"}, "criterion must be one of"),
    ({"covariance_types": ("full", "round")}, "covariance_types must be"),
    ({"n_components": []}, "n_components must be"),
    ({"n_components": [0, 1]}, "n_components must be"),
    ({"n_components": range(1, 500)}, "only 300 samples"),
    ({"n_init": 0}, "n_init must be"),
    ({"init_params": "best"}, "init_params must be"),
])
def test_bad_arguments_raise_value_error(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        select(small[0], **kwargs)


def test_warns_when_the_chosen_model_did_not_converge(small):
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="chosen model"):
        result = select(small[0], [3], "full", max_iter=1, random_state=0)
    assert not result.best_.converged


def test_a_failed_candidate_is_recorded_and_skipped(small, monkeypatch):
    from gaussmix.selection import candidates

    class Fragile(GaussianMixture):
        def _fit_parameters(self, X, sample_weight=None):
            if self.covariance_type == "tied" and self.n_components == 2:
                raise ValueError("ill-defined covariance (test)")
            return super()._fit_parameters(X, sample_weight=sample_weight)

    monkeypatch.setattr(candidates, "GaussianMixture", Fragile)
    result = select(small[0], [1, 2], ("full", "tied"), random_state=0)
    failed = [c for c in result.table if c.error is not None]
    assert [(c.n_components, c.covariance_type) for c in failed] == [(2, "tied")]
    assert np.isnan(failed[0].bic) and failed[0].n_parameters == 8
    assert (2, "tied") not in result.estimators_
    assert result.best_.error is None
    assert np.isnan(result.values()["tied"][1])
    with pytest.raises(ValueError, match="Every candidate failed"):
        select(small[0], 2, "tied", random_state=0)


def test_dataframe_feature_names_are_kept(small):
    pd = pytest.importorskip("pandas")
    X, _ = small
    frame = pd.DataFrame(X, columns=["u", "v"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = select(frame, [1, 2], "full", random_state=0)
        labels = result.best_estimator_.predict(frame)
    assert list(result.best_estimator_.feature_names_in_) == ["u", "v"]
    np.testing.assert_array_equal(labels, result.best_estimator_.labels_)


def test_bad_data_raises():
    with pytest.raises(ValueError, match="NaN"):
        select(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]), [1])


# ------------------------------------------------------- search estimator
def test_search_estimator(small):
    X, result = small
    search = GaussianMixtureSearch(n_components=range(1, 5), random_state=0)
    assert clone(search).get_params()["n_components"] == range(1, 5)
    assert GaussianMixtureSearch().get_params()["n_components"] is None
    assert search.fit(X) is search
    assert isinstance(search.result_, SelectionResult)
    assert search.best_params_ == {"n_components": result.best_n_components_,
                                   "covariance_type": result.best_covariance_type_}
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))
    np.testing.assert_array_equal(search.labels_, search.predict(X))
    assert search.score(X) == pytest.approx(search.best_estimator_.score(X))
    assert search.predict_proba(X).shape == (len(X), result.best_n_components_)
    assert search.bic(X) == pytest.approx(result.best_.bic, rel=1e-10)
    assert search.sample(5)[0].shape == (5, 2)


@parametrize_with_checks([GaussianMixtureSearch(
    n_components=(1, 2), covariance_types=("full", "diag"), random_state=0)])
def test_search_estimator_passes_sklearn_checks(estimator, check):
    check(estimator)


# ------------------------------------------------------------------- CLI
@pytest.fixture
def data_csv(tmp_path):
    X = draw("full", 300, seed=11)
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="u,v", comments="")
    return path, X


def _cli_main():
    cli = pytest.importorskip("gaussmix.cli")
    if "select" not in cli.main.commands:
        pytest.skip("gaussmix.cli does not register 'select'")
    return cli.main


def test_cli_select_prints_table_and_saves_model(data_csv, tmp_path):
    from click.testing import CliRunner

    import gaussmix.files.model

    path, X = data_csv
    model_path = tmp_path / "best"
    figure = tmp_path / "bic.png"
    result = CliRunner().invoke(_cli_main(), [
        "select", str(path), "-k", "1..4", "--seed", "0", "-o", str(model_path),
        "--plot", str(figure)])
    assert result.exit_code == 0, result.output
    out = result.output
    for header in ("K", "covariance", "log-lik", "params", "BIC", "AIC", "ICL",
                   "converged", "iter"):
        assert header in out
    expected = select(X, range(1, 5), random_state=0)
    body = [line.split() for line in out.splitlines()]
    rows = [r for r in body if len(r) >= 10 and r[-1].replace(".", "").isdigit()
            and r[-2].isdigit()]
    assert len(rows) == 16
    starred = [r for r in rows if r[0] == "*"]
    assert len(starred) == 1
    best = expected.best_
    assert starred[0][1:3] == [str(best.n_components), best.covariance_type]
    assert f"{best.bic:.2f}" in starred[0]
    assert f"best by BIC: K={best.n_components}" in out
    model = gaussmix.files.model.load_model(str(model_path) + ".npz")
    assert (model.n_components, model.covariance_type) == (
        best.n_components, best.covariance_type)
    assert list(model.feature_names_in_) == ["u", "v"]
    np.testing.assert_allclose(model.means_, expected.best_estimator_.means_)
    assert figure.stat().st_size > 1000


def test_cli_select_options_and_progress_lines(data_csv):
    from click.testing import CliRunner

    path, _ = data_csv
    result = CliRunner().invoke(_cli_main(), [
        "select", str(path), "-k", "2,3", "--covariance", "full,diag",
        "--criterion", "icl", "--progress", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "[4/4]" in result.output and "best by ICL" in result.output


@pytest.mark.parametrize("args,message", [
    (["-k", "0..3"], "-k"),
    (["-k", "a..b"], "-k"),
    (["-k", "1..500"], "only 300 rows"),
    (["--covariance", "round"], "not a covariance type"),
    (["--columns", "nope"], "nope"),
    (["--plot", "figure.gif"], "suffix"),
])
def test_cli_select_bad_input_exits_2(data_csv, args, message):
    from click.testing import CliRunner

    path, _ = data_csv
    result = CliRunner().invoke(_cli_main(), ["select", str(path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_select_missing_file_exits_2(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(_cli_main(), ["select", str(tmp_path / "no.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output
