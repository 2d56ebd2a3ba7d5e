"""Regression tests from a probe of gaussmix.plotting and `gaussmix plot`: missing
values, one row, the same column twice, max_points in 1-D, partial_fit histories,
failed selection candidates, a zero weight, data sources, and small figures."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.plotting import (
    full_covariances,
    plot_convergence,
    plot_mixture,
    plot_selection,
    projection,
)

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")


@pytest.fixture
def ax():
    from matplotlib.figure import Figure

    return Figure().add_subplot()


@pytest.fixture(scope="module")
def X3() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + [5, 0, 2]])


@pytest.fixture(scope="module")
def gm(X3) -> GaussianMixture:
    return GaussianMixture(2, random_state=0, n_threads=1).fit(X3)


def drawn_points(ax) -> np.ndarray:
    return np.vstack([c.get_offsets() for c in ax.collections
                      if c.get_label().startswith("component")])


def note(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


@pytest.fixture(scope="module")
def with_nan(X3) -> np.ndarray:
    X = X3.copy()
    X[::6, 0] = np.nan  # 20 rows miss feature 0
    return X


@pytest.mark.parametrize("cols, n_drawn", [((None, None), 100), ((0, 2), 100),
                                           ((1, 2), 120)])
def test_missing_values_are_left_out_and_said(gm, with_nan, ax, cols, n_drawn):
    from matplotlib.contour import ContourSet

    model = GaussianMixture(2, random_state=0, n_threads=1,
                            missing="marginalize").fit(with_nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_mixture(model, with_nan, ax, x=cols[0], y=cols[1])
    points = drawn_points(ax)
    assert len(points) == n_drawn and np.isfinite(points).all()
    if cols[0] is None:  # principal components of the complete rows
        complete = with_nan[~np.isnan(with_nan).any(axis=1)]
        proj = projection(complete, ["x0", "x1", "x2"])
        np.testing.assert_allclose(np.sort(points, axis=0),
                                   np.sort(proj.points(complete), axis=0))
    else:  # a missing other column leaves the row drawn
        np.testing.assert_allclose(np.sort(points[:, 1]),
                                   np.sort(with_nan[:, cols[1]][
                                       ~np.isnan(with_nan[:, cols[0]])]))
    assert [c for c in ax.collections if isinstance(c, ContourSet)]
    assert ("20 of 120 rows not drawn: missing values" in note(ax)) == (n_drawn < 120)


def test_missing_values_in_one_feature(ax):
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(-3, 1, 80), rng.normal(3, 1, 80)])[:, None]
    model = GaussianMixture(2, random_state=0, n_threads=1,
                            missing="marginalize").fit(X)
    X[::4] = np.nan
    plot_mixture(model, X, ax)
    (rug,) = ax.collections
    assert len(rug.get_offsets()) == 120
    area = sum(p.get_width() * p.get_height() for p in ax.patches)
    assert area == pytest.approx(1.0)  # histogram of the observed values
    assert "40 of 160 rows not drawn" in note(ax)


def test_one_feature_rug_keeps_to_max_points(ax):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 1))
    model = GaussianMixture(2, random_state=0, n_threads=1, tol=1e-2).fit(X)
    plot_mixture(model, X, ax, max_points=500)
    (rug,) = ax.collections
    offsets = rug.get_offsets()[:, 0]
    assert len(offsets) == 500 and np.isin(offsets, X[:, 0]).all()
    assert "500 of 3,000 rows drawn (a fixed random subset" in note(ax)


def test_subsample_is_stated_and_reproducible(gm, X3, ax):
    from matplotlib.figure import Figure

    other = Figure().add_subplot()
    plot_mixture(gm, X3, ax, max_points=50)
    plot_mixture(gm, X3, other, max_points=50)
    np.testing.assert_array_equal(drawn_points(ax), drawn_points(other))
    assert len(drawn_points(ax)) == 50
    assert note(ax) == "50 of 120 rows drawn (a fixed random subset; max_points)"


def test_no_note_when_every_row_is_drawn(gm, X3, ax):
    plot_mixture(gm, X3, ax)
    assert len(ax.texts) == 0


def test_same_column_twice_is_a_clear_error(gm, X3, ax):
    with pytest.raises(ValueError, match=r"x and y are the same feature \(b\)"):
        plot_mixture(gm, X3, ax, x="b", y=1, feature_names=["a", "b", "c"])


def test_one_row_needs_columns_for_more_than_two_features(gm, X3, ax):
    with pytest.raises(ValueError, match="at least 2 rows .* x and y instead"):
        plot_mixture(gm, X3[:1], ax)
    plot_mixture(gm, X3[:1], ax, x=0, y=2)
    np.testing.assert_array_equal(drawn_points(ax), X3[:1, [0, 2]])


def test_zero_weight_component_gives_no_warning(gm, X3, ax):
    model = GaussianMixture(3, random_state=0, n_threads=1).fit(X3)
    model.weights_ = np.array([0.5, 0.5, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_mixture(model, X3, ax)


def test_one_dimensional_array_and_source_errors_say_what_to_do(X3, ax, tmp_path):
    from gaussmix import NpySource

    model = GaussianMixture(1, n_threads=1).fit(X3[:, :1])
    with pytest.raises(ValueError, match=r"fitted on 1 feature; .*reshape\(-1, 1\)"):
        plot_mixture(model, X3[:, 0], ax)
    np.save(tmp_path / "x.npy", X3[:, :1])
    with pytest.raises(TypeError, match="rows in memory .* not NpySource"):
        plot_mixture(model, NpySource(tmp_path / "x.npy"), ax)


def test_partial_fit_history_is_drawn_at_its_step(X3, ax):
    model = GaussianMixture(2, random_state=0, n_threads=1)
    for batch in np.array_split(X3, 4):
        model.partial_fit(batch)
    plot_convergence(model, ax)
    x, y = ax.get_lines()[0].get_data()
    assert list(x) == [4] and list(y) == list(model.lower_bounds_)
    title = ax.get_legend().get_title().get_text()
    assert title == ("not converged after 4 iterations (tol 0.001)\n"
                     "only iteration 4 recorded (lower_bounds_)")


def test_one_iteration_is_singular(X3, ax):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EM stopped at max_iter
        model = GaussianMixture(2, random_state=0, n_threads=1, max_iter=1).fit(X3)
    plot_convergence(model, ax, show_change=True)
    assert list(ax.get_lines()[0].get_xdata()) == [1]
    assert ax.get_legend().get_title().get_text() == (
        "not converged after 1 iteration (tol 0.001)")


def test_selection_legend_names_failed_candidates(ax):
    from gaussmix import select

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 5])
    X[::2, 1] = X[1::2, 1]  # repeated values: large K collapse without reg_covar
    result = select(X, [1, 2, 8], random_state=0, reg_covar=0.0)
    failed = {t: [c.n_components for c in result.table
                  if c.covariance_type == t and c.error] for t in
              ("full", "tied", "diag", "spherical")}
    assert any(failed.values())
    plot_selection(result, ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for t, ks in failed.items():
        expected = t if not ks else f"{t} (failed: K={', '.join(map(str, ks))})"
        assert expected in labels


def test_projected_ellipses_rebuild_the_projected_covariances(X3, ax):
    from matplotlib.patches import Ellipse

    model = GaussianMixture(2, covariance_type="diag", random_state=0,
                            n_threads=1).fit(X3 @ [[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    data = X3 @ [[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]]
    plot_mixture(model, data, ax)
    covs = projection(data, ["a", "b", "c"]).covariances(full_covariances(model))
    for e, cov in zip([p for p in ax.patches if isinstance(p, Ellipse)][::2], covs,
                      strict=True):
        t = np.radians(e.angle)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        rebuilt = rot @ np.diag([(e.width / 2) ** 2, (e.height / 2) ** 2]) @ rot.T
        np.testing.assert_allclose(rebuilt, cov, atol=1e-12 * np.abs(cov).max())


# ------------------------------------------------------------- command line


@pytest.fixture
def files(tmp_path, with_nan):
    from click.testing import CliRunner

    from gaussmix.cli.app import main

    np.savetxt(tmp_path / "d.csv", with_nan, delimiter=",", header="a,b,c",
               comments="")
    clean = np.nan_to_num(with_nan, nan=1.0)
    np.savetxt(tmp_path / "clean.csv", clean, delimiter=",", header="a,b,c",
               comments="")
    GaussianMixture(2, random_state=0, n_threads=1).fit(clean).save(tmp_path / "m.npz")

    def run(*args: str):
        return CliRunner().invoke(main, ["plot", str(tmp_path / "m.npz"), *args])

    return tmp_path, run


def test_cli_plot_takes_missing_marginalize(files):
    path, run = files
    result = run(str(path / "d.csv"), "-o", str(path / "f.png"))
    assert result.exit_code == 2 and "--missing marginalize" in result.output
    result = run(str(path / "d.csv"), "-o", str(path / "f.png"), "--missing",
                 "marginalize")
    assert result.exit_code == 0, result.output
    assert (path / "f.png").stat().st_size > 1000


def test_cli_plot_small_size_warns_in_one_line(files):
    path, run = files
    result = run(str(path / "clean.csv"), "-o", str(path / "f.png"), "--size",
                 "60x60")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("gaussmix plot: warning: the figure is too small for its "
                        "labels, which may overlap or be cut off; give a larger "
                        "--size (or a smaller --dpi)")
    assert lines[1:] == [f"wrote figure {path / 'f.png'} (60x60 pixels)"]


def test_cli_plot_same_column_twice(files):
    path, run = files
    result = run(str(path / "clean.csv"), "-o", str(path / "f.png"), "--x", "a",
                 "--y", "0")
    assert result.exit_code == 2
    assert "error: x and y are the same feature (a)" in result.output
    assert not (path / "f.png").exists()


def test_change_of_zero_is_left_off_the_log_axis(ax):
    X = np.random.default_rng(4).normal(size=(50, 2))
    model = GaussianMixture(1, n_threads=1).fit(X)  # one component: no change
    assert model.lower_bounds_[0] == model.lower_bounds_[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_convergence(model, ax, show_change=True)
    twin = ax.figure.axes[1]
    lines = {line.get_label(): line for line in twin.get_lines()}
    assert len(lines["|change| (right axis); 0 not drawn"].get_xdata()) == 0
    low, high = twin.get_ylim()
    assert low <= model.tol <= high and high / low < 1e6  # not 1e-308 .. 1e12


@pytest.mark.parametrize("kwargs, match", [({"max_points": -1}, "max_points"),
                                           ({"sigmas": (1, -2)}, "sigmas must be"),
                                           ({"sigmas": (np.nan,)}, "sigmas must be")])
def test_bad_options_are_clear_errors(gm, X3, ax, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_mixture(gm, X3, ax, **kwargs)


def test_feature_names_of_the_wrong_length(gm, X3, ax):
    with pytest.raises(ValueError, match="feature_names has 2 names but the model "
                                         "has 3 features"):
        plot_mixture(gm, X3, ax, x=2, y=0, feature_names=["p", "q"])
