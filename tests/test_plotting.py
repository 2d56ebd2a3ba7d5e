"""Tests for gaussmix.plotting: geometry, the drawn artists (mixture, convergence,
selection), and saved figures."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture, plotting
from gaussmix.plotting import (
    full_covariances,
    plot_convergence,
    plot_mixture,
    plot_model,
    plot_selection,
    projection,
    save_figure,
)

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
PIL_Image = pytest.importorskip("PIL.Image")

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def three_blobs(n: int = 240, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, d))
    centres[1, 0], centres[2, 1 % d] = 6.0, -6.0
    labels = rng.integers(0, 3, size=n)
    return centres[labels] + rng.normal(size=(n, d)) * [1.0] + 0.3 * rng.normal(
        size=(n, d)) * np.arange(1, d + 1)


@pytest.fixture(scope="module")
def X3() -> np.ndarray:
    return three_blobs()


@pytest.fixture(scope="module")
def models(X3) -> dict[str, GaussianMixture]:
    return {
        cov: GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=30,
                             n_threads=1).fit(X3)
        for cov in COVARIANCE_TYPES
    }


@pytest.fixture
def ax():
    from matplotlib.figure import Figure

    return Figure().add_subplot()


# ------------------------------------------------------------- geometry


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_full_covariances_are_inverse_of_full_precisions(models, cov):
    model = models[cov]
    covs = full_covariances(model)
    precs = full_covariances(SimpleNamespace(
        covariances_=model.precisions_, means_=model.means_, covariance_type=cov))
    assert covs.shape == (3, 3, 3)
    np.testing.assert_allclose(covs @ precs, np.broadcast_to(np.eye(3), covs.shape),
                               atol=1e-8)
    np.testing.assert_allclose(covs, np.swapaxes(covs, 1, 2))


def test_column_projection_picks_submatrices(models, X3):
    proj = projection(X3, ["a", "b", "c"], x="c", y=0)
    assert proj.labels == ("c", "a")
    np.testing.assert_array_equal(proj.points(X3), X3[:, [2, 0]])
    cov = full_covariances(models["full"])
    np.testing.assert_allclose(proj.covariances(cov), cov[:, [2, 0]][:, :, [2, 0]])


def test_pca_projection_is_orthonormal_and_ordered(X3):
    proj = projection(X3, ["a", "b", "c"])
    assert proj.labels[0].startswith("PC1") and proj.labels[1].startswith("PC2")
    np.testing.assert_allclose(proj.basis.T @ proj.basis, np.eye(2), atol=1e-12)
    Z = proj.points(X3)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
    assert Z[:, 0].var() >= Z[:, 1].var()
    # no other unit direction has more variance than PC1
    other = np.linalg.svd(X3 - X3.mean(0))[2][0]
    assert Z[:, 0].var() == pytest.approx(((X3 - X3.mean(0)) @ other).var())


def test_projection_rejects_bad_columns(X3):
    with pytest.raises(ValueError, match="both x and y"):
        projection(X3, ["a", "b", "c"], x="a")
    with pytest.raises(ValueError, match="'zz' is not a feature .* a, b, c"):
        projection(X3, ["a", "b", "c"], x="zz", y="a")
    with pytest.raises(ValueError, match="not a feature"):
        projection(X3, ["a", "b", "c"], x=0, y=3)


def test_log_density_matches_scipy(models):
    rng = np.random.default_rng(1)
    weights = np.array([0.2, 0.8])
    means = rng.normal(size=(2, 2))
    covs = np.array([[[2.0, 0.3], [0.3, 0.5]], [[1.0, -0.2], [-0.2, 1.5]]])
    Z = rng.normal(size=(50, 2))
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(Z)
                          for w, m, c in zip(weights, means, covs, strict=True)))
    np.testing.assert_allclose(plotting._log_density(Z, weights, means, covs),
                               expected, rtol=1e-10)


# ------------------------------------------------------------- plots


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_plot_mixture_draws_points_ellipses_means_and_contours(models, X3, ax,
                                                               cov):
    from matplotlib.patches import Ellipse

    model = models[cov]
    out = plot_mixture(model, X3, ax, feature_names=["a", "b", "c"])
    assert out is ax
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 2 * model.n_components  # 1- and 2-sigma each
    labels = model.predict(X3)
    point_sets = [c for c in ax.collections if c.get_label().startswith("component")]
    assert [len(c.get_offsets()) for c in point_sets] == list(np.bincount(labels))
    from matplotlib.contour import ContourSet

    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 1 and len(contours[0].levels) >= 3
    proj = projection(X3, ["a", "b", "c"])
    centres = np.array([e.center for e in ellipses[::2]])
    np.testing.assert_allclose(centres, proj.points(model.means_))
    # ellipse axes are sqrt of the projected covariance's eigenvalues
    covs2 = proj.covariances(full_covariances(model))
    major = np.sqrt(np.linalg.eigvalsh(covs2)[:, 1])
    np.testing.assert_allclose([e.width / 2 for e in ellipses[::2]], major)
    np.testing.assert_allclose([e.width / 2 for e in ellipses[1::2]], 2 * major)
    assert ax.get_xlabel().startswith("PC1")


def test_plot_mixture_columns_and_names(models, X3, ax):
    plot_mixture(models["diag"], X3, ax, x="c", y="b", feature_names=["a", "b", "c"],
                 contours=False, legend=False, title="custom")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("c", "b", "custom")
    assert ax.get_legend() is None
    points = np.vstack([c.get_offsets() for c in ax.collections
                        if c.get_label().startswith("component")])
    np.testing.assert_allclose(np.sort(points[:, 0]), np.sort(X3[:, 2]))


def test_plot_mixture_one_feature_draws_density_curves(ax):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, 100), rng.normal(3, 0.5, 100)])[:, None]
    model = GaussianMixture(2, random_state=0, n_threads=1).fit(X)
    plot_mixture(model, X, ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {f"component 0 (weight {model.weights_[0]:.2f})", "mixture"} <= set(lines)
    x, y = lines["mixture"].get_data()
    # the drawn mixture density is the model's density
    np.testing.assert_allclose(np.log(y), model.score_samples(x[:, None]), rtol=1e-8)


def test_plot_mixture_one_feature_components_are_the_weighted_densities(ax):
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(-3, 1, 150), rng.normal(2, 0.5, 50)])[:, None]
    model = GaussianMixture(2, covariance_type="spherical", random_state=0,
                            n_threads=1).fit(X)
    plot_mixture(model, X, ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    x, mixture = lines["mixture"].get_data()
    parts = [lines[f"component {k} (weight {w:.2f})"].get_ydata()
             for k, w in enumerate(model.weights_)]
    np.testing.assert_allclose(np.sum(parts, axis=0), mixture, rtol=1e-10)
    sd = np.sqrt(full_covariances(model)[:, 0, 0])
    for part, w, m, s in zip(parts, model.weights_, model.means_[:, 0], sd,
                             strict=True):
        np.testing.assert_allclose(part, w * norm.pdf(x, m, s), rtol=1e-8,
                                   atol=1e-300)


def test_plot_mixture_checks_input(models, ax):
    with pytest.raises(ValueError, match=r"fitted on 3 features"):
        plot_mixture(models["full"], np.zeros((5, 2)), ax)
    with pytest.raises(Exception, match="not fitted"):
        plot_mixture(GaussianMixture(2), np.zeros((5, 3)), ax)


def test_plot_mixture_uses_current_pyplot_axes(models, X3):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = plt.figure()
    try:
        ax = plot_mixture(models["spherical"], X3)
        assert ax is plt.gca() and ax.figure is fig
    finally:
        plt.close(fig)


def test_plot_convergence_draws_lower_bounds(models, ax):
    model = models["full"]
    plot_convergence(model, ax, show_change=True)
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, len(model.lower_bounds_) + 1))
    np.testing.assert_array_equal(y, model.lower_bounds_)
    title = ax.get_legend().get_title().get_text()
    assert re.match(rf"(not )?converged after {model.n_iter_} iterations", title)
    assert len(ax.figure.axes) == 2  # the |change| twin axis


def test_plot_convergence_without_history(models, ax):
    model = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(
        size=(30, 2)))
    del model.lower_bounds_
    plot_convergence(model, ax)
    assert "no per-iteration history" in ax.texts[0].get_text()


@pytest.fixture(scope="module")
def selection():
    from gaussmix import select

    return select(three_blobs(120, d=2), [1, 2, 3], random_state=0)


def test_plot_selection_draws_each_type_with_its_own_marker(selection, ax):
    from gaussmix.engine.covariance import COVARIANCE_TYPES

    assert plot_selection(selection, ax, criterion="aic") is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    for t in COVARIANCE_TYPES:
        np.testing.assert_array_equal(lines[t].get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(lines[t].get_ydata(), selection.values("aic")[t])
    assert len({lines[t].get_marker() for t in COVARIANCE_TYPES}) == len(
        COVARIANCE_TYPES)
    (chosen,) = [line for label, line in lines.items()
                 if label.startswith("chosen by BIC: ")]
    best = selection.best_
    assert list(chosen.get_data()[0]) == [best.n_components]
    assert list(chosen.get_data()[1]) == [best.aic]
    assert ax.get_ylabel() == "AIC (lower is better)"
    with pytest.raises(ValueError, match="criterion must be one of"):
        plot_selection(selection, ax, criterion="bicc")


def test_selection_result_plot_is_plot_selection(selection, ax):
    from matplotlib.figure import Figure

    other = Figure().add_subplot()
    assert selection.plot(ax) is ax
    plot_selection(selection, other)
    for a, b in zip(ax.get_lines(), other.get_lines(), strict=True):
        assert (a.get_label(), a.get_marker()) == (b.get_label(), b.get_marker())
        np.testing.assert_array_equal(a.get_xydata(), b.get_xydata())


# ------------------------------------------------------------- figures


@pytest.mark.parametrize("size_px, dpi", [((1200, 500), 100), ((777, 333), 100),
                                          ((640, 480), 80)])
def test_plot_model_png_has_requested_pixel_size(models, X3, tmp_path, size_px, dpi):
    fig = plot_model(models["full"], X3, figsize=(size_px[0] / dpi, size_px[1] / dpi),
                     dpi=dpi)
    assert len(fig.axes) == 2
    path = save_figure(fig, tmp_path / "fig.png")
    with PIL_Image.open(path) as image:
        image.verify()
    with PIL_Image.open(path) as image:
        assert image.format == "PNG" and image.size == size_px
        assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not blank
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_save_figure_svg_and_pdf(models, X3, tmp_path):
    fig = plot_model(models["tied"], X3, figsize=(8, 4), dpi=100)
    svg = save_figure(fig, tmp_path / "fig.svg").read_text()
    assert re.search(r'<svg[^>]*width="576pt" height="288pt"', svg)
    assert svg.count("<path") > 50
    pdf = save_figure(fig, tmp_path / "fig.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000


def test_save_figure_failure_leaves_nothing(models, X3, tmp_path, monkeypatch):
    from gaussmix.files.tables import DataError

    fig = plot_model(models["full"], X3)
    with pytest.raises(DataError, match="suffix '.gif'"):
        save_figure(fig, tmp_path / "fig.gif")

    def broken(*args, **kwargs):
        with open(args[0], "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_names_the_extra(models, X3, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"^plotting requires matplotlib: "
                                          r"pip install 'gaussmix\[plot\]'$"):
        plot_model(models["full"], X3)
