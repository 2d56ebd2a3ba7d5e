"""Tests for gaussmix.files.model: the portable, pickle-free model file format.

Tampered files are built by rewriting a saved model's arrays or metadata; each
kind of tampering has its own test that checks the error and its message.
"""

from __future__ import annotations

import ast
import json
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from gaussmix import GaussianMixture
from gaussmix._version import __version__
from gaussmix.files.model import (
    FORMAT_VERSION,
    ModelFileError,
    ModelRecord,
    load_model,
    read_model_record,
    save_model,
)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED_ARRAYS = [
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
]


# ----------------------------------------------------- helpers


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.RandomState(0)
    return np.vstack(
        [rng.normal(-2.0, 1.0, size=(40, 3)), rng.normal(2.0, 0.5, size=(40, 3))]
    )


def fit(X, covariance_type="full", **kwargs) -> GaussianMixture:
    return GaussianMixture(
        n_components=2, covariance_type=covariance_type, random_state=0, **kwargs
    ).fit(X)


def read_raw(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def read_metadata(path: Path) -> dict:
    return json.loads(read_raw(path)["metadata"].tobytes().decode("utf-8"))


def write_raw(
    path: Path, arrays: dict[str, np.ndarray], metadata: dict | None = None
) -> Path:
    arrays = dict(arrays)
    if metadata is not None:
        arrays["metadata"] = np.frombuffer(
            json.dumps(metadata).encode("utf-8"), np.uint8
        )
    np.savez(path, **arrays)
    return path


@pytest.fixture
def saved(X, tmp_path) -> Path:
    return save_model(fit(X), tmp_path / "model.npz")


def tampered(
    saved: Path,
    arrays: Callable[[dict], None] | None = None,
    meta: Callable[[dict], None] | None = None,
) -> Path:
    """A copy of ``saved`` named tampered.npz, its arrays and metadata edited."""
    members = {key: value.copy() for key, value in read_raw(saved).items()}
    metadata = read_metadata(saved)
    if arrays is not None:
        arrays(members)
    if meta is not None:
        meta(metadata)
    return write_raw(saved.with_name("tampered.npz"), members, metadata)


def refused(path: Path, pattern: str) -> str:
    """The one-line ModelFileError message of loading ``path``, which must
    name the file and match ``pattern``."""
    with pytest.raises(ModelFileError, match=pattern) as info:
        load_model(path)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    assert info.value.path == path
    return message


def saved_as(X, tmp_path, covariance_type: str, **kwargs) -> Path:
    return save_model(fit(X, covariance_type, **kwargs), tmp_path / "model.npz")


def assert_params_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], np.ndarray) or isinstance(b[name], np.ndarray):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        else:
            assert a[name] == b[name], name
            assert type(a[name]) is type(b[name]), name


def assert_same_model(original, loaded, X) -> None:
    assert isinstance(loaded, GaussianMixture)
    for name in FITTED_ARRAYS:
        got = getattr(loaded, name)
        assert got.dtype == np.float64, name
        np.testing.assert_array_equal(got, getattr(original, name), err_msg=name)
    assert loaded.converged_ == original.converged_
    assert loaded.n_iter_ == original.n_iter_
    assert loaded.lower_bound_ == original.lower_bound_
    assert loaded.n_features_in_ == original.n_features_in_
    np.testing.assert_array_equal(loaded.lower_bounds_, original.lower_bounds_)
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), original.score_samples(X))


# -------------------------------------------------- round trip


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_is_exact(X, tmp_path, covariance_type):
    model = fit(X, covariance_type)
    path = save_model(model, tmp_path / "model.npz")
    assert path == tmp_path / "model.npz" and path.is_file()
    loaded = load_model(path)
    assert_same_model(model, loaded, X)
    assert_params_equal(loaded.get_params(), model.get_params())
    assert not hasattr(loaded, "feature_names_in_")


def test_estimator_save_and_package_load(X, tmp_path):
    import gaussmix

    model = fit(X, "tied")
    path = model.save(tmp_path / "model")
    assert Path(path) == tmp_path / "model.npz"
    assert_same_model(model, gaussmix.load(path), X)


def test_scalar_params_round_trip(X, tmp_path):
    model = fit(
        X,
        "diag",
        tol=1e-5,
        reg_covar=1e-4,
        max_iter=50,
        n_init=2,
        init_params="random",
        warm_start=True,
        verbose_interval=3,
        chunk_size=16,
        n_threads=1,
    )
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    assert_params_equal(loaded.get_params(), model.get_params())
    assert_same_model(model, loaded, X)


def test_lists_and_attribute_types_restored(saved, X):
    loaded = load_model(saved)
    assert isinstance(loaded.lower_bounds_, list)
    assert all(isinstance(v, float) for v in loaded.lower_bounds_)
    assert isinstance(loaded.lower_bound_, float)
    assert isinstance(loaded.n_iter_, int) and isinstance(loaded.n_features_in_, int)
    assert isinstance(loaded.converged_, bool)


def test_accepts_str_path(X, tmp_path):
    path = save_model(fit(X), str(tmp_path / "model.npz"))
    assert isinstance(path, Path)
    assert_same_model(fit(X), load_model(str(path)), X)


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("model", "model.npz"),
        ("model.gmm", "model.gmm.npz"),
        ("model.npz", "model.npz"),
    ],
)
def test_npz_suffix_appended_like_numpy(X, tmp_path, name, written):
    path = save_model(fit(X), tmp_path / name)
    assert path == tmp_path / written
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]
    load_model(path)


def test_overwrite_existing_file(X, tmp_path):
    path = save_model(fit(X, "full"), tmp_path / "model.npz")
    save_model(fit(X, "tied"), path)
    assert load_model(path).covariance_type == "tied"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_dataframe_feature_names_kept(X, tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["alpha", "beta", "gamma"])
    model = GaussianMixture(n_components=2, random_state=0).fit(df)
    loaded = load_model(save_model(model, tmp_path / "df.npz"))
    names = loaded.feature_names_in_
    assert isinstance(names, np.ndarray) and names.dtype == object
    np.testing.assert_array_equal(names, model.feature_names_in_)
    assert read_metadata(tmp_path / "df.npz")["feature_names_in"] == [
        "alpha",
        "beta",
        "gamma",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name mismatch warning
        np.testing.assert_array_equal(loaded.predict(df), model.predict(df))


def _precisions_init(covariance_type: str, k: int, d: int) -> np.ndarray:
    return {
        "full": np.stack([np.eye(d)] * k) * 2.0,
        "tied": np.eye(d) * 0.5,
        "diag": np.full((k, d), 1.5),
        "spherical": np.array([0.7, 1.3]),
    }[covariance_type]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_array_init_params_round_trip(X, tmp_path, covariance_type):
    init = dict(
        weights_init=np.array([0.3, 0.7]),
        means_init=np.array([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]]) + 0.1,
        precisions_init=_precisions_init(covariance_type, 2, 3),
    )
    model = fit(X, covariance_type, **init)
    path = save_model(model, tmp_path / "init.npz")
    raw = read_raw(path)
    for name, value in init.items():
        np.testing.assert_array_equal(raw["param_" + name], value)
    loaded = load_model(path)
    assert_params_equal(loaded.get_params(), model.get_params())
    assert_same_model(model, loaded, X)


def test_unserialisable_params_stored_as_null(X, tmp_path):
    model = fit(X).set_params(
        random_state=np.random.RandomState(3), callback=lambda *a: None
    )
    path = save_model(model, tmp_path / "m.npz")
    meta = read_metadata(path)
    assert meta["params"]["random_state"] is None and meta["params"]["callback"] is None
    assert meta["unserialised_params"] == ["callback", "random_state"]
    loaded = load_model(path)
    assert loaded.random_state is None and loaded.callback is None
    assert_same_model(model, loaded, X)


def test_int_random_state_kept(saved):
    assert load_model(saved).random_state == 0


def test_sklearn_model_can_be_saved_and_loaded(X, tmp_path):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    sk = SkGaussianMixture(n_components=2, covariance_type="diag", random_state=0).fit(
        X
    )
    loaded = load_model(save_model(sk, tmp_path / "sk.npz"))
    assert isinstance(loaded, GaussianMixture)
    for name in FITTED_ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(sk, name))
    np.testing.assert_allclose(loaded.score_samples(X), sk.score_samples(X), rtol=1e-12)


# ------------------------------------------------- file format


def test_file_is_plain_npz_without_pickle(saved):
    with np.load(saved, allow_pickle=False) as f:
        keys = set(f.files)
        arrays = {key: f[key] for key in f.files}
    assert keys == {"metadata", "lower_bounds_", *FITTED_ARRAYS}
    assert arrays["metadata"].dtype == np.uint8 and arrays["metadata"].ndim == 1
    for name in FITTED_ARRAYS + ["lower_bounds_"]:
        assert arrays[name].dtype == np.float64
    assert not any(a.dtype.hasobject for a in arrays.values())


def test_metadata_records_format_and_version(saved):
    meta = read_metadata(saved)
    assert meta["format"] == "gaussmix-model"
    assert meta["format_version"] == FORMAT_VERSION == 1
    assert meta["gaussmix_version"] == __version__
    assert meta["params"]["n_components"] == 2
    assert meta["params"]["covariance_type"] == "full"
    assert set(meta["fitted"]) == {
        "n_features_in_",
        "n_iter_",
        "converged_",
        "lower_bound_",
    }
    assert meta["feature_names_in"] is None
    assert meta["arrays"] == sorted(set(read_raw(saved)) - {"metadata"})


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(NotFittedError, match=r"not fitted.*fit"):
        save_model(GaussianMixture(n_components=2), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_directory(X, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Directory .* does not exist.*nodir"):
        save_model(fit(X), tmp_path / "nodir" / "m.npz")


def test_failed_save_leaves_no_partial_file(X, tmp_path, monkeypatch):
    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    model = fit(X)
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_file(X, tmp_path, monkeypatch):
    model = fit(X)
    path = save_model(model, tmp_path / "m.npz")
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# ------------------------------------------------------ errors


def test_model_file_error_is_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_model(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(np.random.RandomState(0).bytes(2000))
    with pytest.raises(
        ModelFileError, match=r"junk\.npz.*not a readable gaussmix model file"
    ):
        load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"empty\.npz.*not a readable"):
        load_model(path)


def test_truncated_file(saved, tmp_path):
    data = saved.read_bytes()
    path = tmp_path / "half.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"half\.npz.*truncated or corrupt"):
        load_model(path)


def test_corrupted_byte(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    start = data.index(b"\x93NUMPY\x01\x00")  # first .npy member, format 1.0
    header_len = int.from_bytes(data[start + 8 : start + 10], "little")
    data[start + 10 + header_len + 3] ^= 0xFF  # a byte of the first array's data
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"flipped\.npz.*(corrupt|CRC)"):
        load_model(path)


def test_foreign_npz_without_metadata(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3), b=np.ones((2, 2)))
    with pytest.raises(
        ModelFileError,
        match=r"foreign\.npz.*not a gaussmix model file \(no metadata entry\)"
        r".*save_model",
    ):
        load_model(path)


def test_single_npy_file(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(3))
    with pytest.raises(ModelFileError, match=r"array\.npy.*single \.npy array"):
        load_model(path)


def test_wrong_format_name(saved, tmp_path):
    meta = read_metadata(saved)
    meta["format"] = "someone-else"
    path = write_raw(tmp_path / "other.npz", read_raw(saved), meta)
    with pytest.raises(
        ModelFileError, match=r"other\.npz.*not a gaussmix model file.*someone-else"
    ):
        load_model(path)


def test_metadata_not_json(saved, tmp_path):
    arrays = read_raw(saved)
    arrays["metadata"] = np.frombuffer(b"{not json", np.uint8)
    path = write_raw(tmp_path / "badjson.npz", arrays)
    with pytest.raises(ModelFileError, match=r"badjson\.npz.*unreadable metadata"):
        load_model(path)


def test_future_format_version(saved, tmp_path):
    meta = read_metadata(saved)
    meta["format_version"] = FORMAT_VERSION + 1
    path = write_raw(tmp_path / "future.npz", read_raw(saved), meta)
    with pytest.raises(
        ModelFileError, match=r"future\.npz.*format version 2.*newer.*Upgrade gaussmix"
    ):
        load_model(path)


@pytest.mark.parametrize("version", [0, "1", None])
def test_invalid_format_version(saved, tmp_path, version):
    meta = read_metadata(saved)
    meta["format_version"] = version
    path = write_raw(tmp_path / "v.npz", read_raw(saved), meta)
    with pytest.raises(ModelFileError, match=r"invalid format_version"):
        load_model(path)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "name", ["means_", "weights_", "covariances_", "precisions_cholesky_"]
)
def test_misshaped_array(X, tmp_path, covariance_type, name):
    saved = save_model(fit(X, covariance_type), tmp_path / "ok.npz")
    arrays = read_raw(saved)
    arrays[name] = np.concatenate([arrays[name], arrays[name]])  # twice as long
    path = write_raw(tmp_path / "shape.npz", arrays)
    with pytest.raises(
        ModelFileError, match=rf"shape\.npz.*array '{name}' of shape .*expected"
    ):
        load_model(path)


def test_misshaped_init_param(X, tmp_path):
    saved = save_model(fit(X, means_init=np.zeros((2, 3))), tmp_path / "ok.npz")
    arrays = read_raw(saved)
    arrays["param_means_init"] = np.zeros((2, 4))
    path = write_raw(tmp_path / "init.npz", arrays)
    with pytest.raises(ModelFileError, match=r"'param_means_init' of shape \(2, 4\)"):
        load_model(path)


def test_missing_array(saved, tmp_path):
    arrays = read_raw(saved)
    del arrays["covariances_"]
    path = write_raw(tmp_path / "missing.npz", arrays)
    with pytest.raises(
        ModelFileError, match=r"missing\.npz.*missing the array\(s\) covariances_"
    ):
        load_model(path)


def test_non_finite_array(saved, tmp_path):
    arrays = read_raw(saved)
    arrays["means_"] = arrays["means_"].copy()
    arrays["means_"][0, 0] = np.nan
    path = write_raw(tmp_path / "nan.npz", arrays)
    with pytest.raises(ModelFileError, match=r"nan\.npz.*non-finite.*'means_'"):
        load_model(path)


def test_non_numeric_array(saved, tmp_path):
    arrays = read_raw(saved)
    arrays["weights_"] = np.array(["a", "b"])
    path = write_raw(tmp_path / "str.npz", arrays)
    with pytest.raises(ModelFileError, match=r"'weights_' of non-numeric dtype"):
        load_model(path)


def test_wrong_feature_names_length(saved, tmp_path):
    meta = read_metadata(saved)
    meta["feature_names_in"] = ["a", "b"]
    path = write_raw(tmp_path / "names.npz", read_raw(saved), meta)
    with pytest.raises(ModelFileError, match=r"invalid feature_names_in.*3 strings"):
        load_model(path)


def test_unknown_metadata_and_arrays_are_ignored(saved, tmp_path, X):
    meta = read_metadata(saved)
    meta["added_in_a_later_minor_release"] = {"x": 1}
    arrays = read_raw(saved)
    arrays["some_future_array"] = np.arange(5)
    path = write_raw(tmp_path / "extra.npz", arrays, meta)
    assert_same_model(load_model(saved), load_model(path), X)


# ---------------------------------------------- round trip on hard data


def _hard_data(kind: str, seed: int) -> np.ndarray:
    """Data whose fits have badly scaled, nearly singular or far-off components."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(120, 4))
    if kind == "scaled":
        return X * np.array([1e4, 1.0, 1e-3, 10.0])
    if kind == "collinear":
        X[:, 1] = 2.0 * X[:, 0] + 1e-5 * rng.normal(size=len(X))
        return X
    return X @ rng.normal(size=(4, 4)) * 100.0 + 1e6  # far from the origin


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("kind", ["scaled", "collinear", "far"])
@pytest.mark.parametrize("reg_covar", [0.0, 1e-6])
def test_round_trip_gives_identical_predictions(tmp_path, covariance_type, kind, reg_covar):
    X = _hard_data(kind, seed=len(kind))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning is beside the point
        model = GaussianMixture(n_components=3, covariance_type=covariance_type,
                                reg_covar=reg_covar, random_state=0).fit(X)
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.covariances_, model.covariances_)


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["full", "spherical"])
def test_reads_files_written_by_earlier_format_version_1_code(name):
    """tests/data/model_v1_*.npz were written by gaussmix before the strict
    checks, with the score_samples of a few points in model_v1_expected.npz."""
    import pandas as pd

    model = load_model(DATA / f"model_v1_{name}.npz")
    with np.load(DATA / "model_v1_expected.npz") as expected:
        points, scores = expected["points"], expected[name]
    if name == "full":
        assert list(model.feature_names_in_) == ["alpha", "beta", "gamma"]
        points = pd.DataFrame(points, columns=model.feature_names_in_)
        assert model.means_init.shape == (2, 3)
    assert model.covariance_type == name
    np.testing.assert_allclose(model.score_samples(points), scores, rtol=1e-10)


# ----------------------------------------------- tampered fitted values


def test_negative_weight_refused(saved):
    def edit(a):
        a["weights_"] = np.array([-0.25, 1.25])  # still sums to one

    refused(tampered(saved, edit), r"negative mixture weights: weights_\[0\] = -0\.25")


def test_weights_not_summing_to_one_refused(saved):
    def edit(a):
        a["weights_"] = a["weights_"] * 1.01

    refused(tampered(saved, edit), r"weights_ that sum to 1\.01, not 1")


def test_weights_off_by_rounding_load(saved, X):
    def edit(a):
        a["weights_"] = a["weights_"] * (1 + 1e-12)

    load_model(tampered(saved, edit)).predict(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_negated_cholesky_refused(X, tmp_path, covariance_type):
    # Negated factors give the same precisions and covariances, but a NaN
    # log-determinant: only the factor check can catch them.
    def edit(a):
        a["precisions_cholesky_"] = -a["precisions_cholesky_"]

    refused(tampered(saved_as(X, tmp_path, covariance_type), edit),
            r"precisions_cholesky_ with a non-positive diagonal entry -\d")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zeroed_cholesky_refused(X, tmp_path, covariance_type):
    def edit(a):
        a["precisions_cholesky_"] = np.zeros_like(a["precisions_cholesky_"])

    refused(tampered(saved_as(X, tmp_path, covariance_type), edit),
            r"precisions_cholesky_ with a non-positive diagonal entry 0\.0")


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_lower_triangular_cholesky_refused(X, tmp_path, covariance_type):
    def edit(a):
        a["precisions_cholesky_"] = np.swapaxes(a["precisions_cholesky_"], -1, -2)

    refused(tampered(saved_as(X, tmp_path, covariance_type), edit),
            r"precisions_cholesky_ that are not upper-triangular: entry \(.*\) below")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariances_inconsistent_with_cholesky_refused(X, tmp_path, covariance_type):
    def edit(a):
        a["covariances_"] = a["covariances_"] * 1.5

    refused(tampered(saved_as(X, tmp_path, covariance_type), edit),
            r"covariances_ inconsistent with precisions_cholesky_: covariances_\[0.*\] is "
            r".* but the Cholesky factors give .*relative difference 0\.5")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_inconsistent_with_cholesky_refused(X, tmp_path, covariance_type):
    def edit(a):
        a["precisions_"] = -a["precisions_"]

    refused(tampered(saved_as(X, tmp_path, covariance_type), edit),
            r"precisions_ inconsistent with precisions_cholesky_")


def test_small_edit_of_a_small_covariance_refused(tmp_path):
    # Agreement is measured in each entry's own scale, so editing the
    # variance of a feature in millimetres next to one in kilometres is seen.
    X = _hard_data("scaled", seed=0)
    path = save_model(fit(X, "diag"), tmp_path / "model.npz")

    def edit(a):
        a["covariances_"][0, 2] *= 1 + 1e-6

    refused(tampered(path, edit), r"covariances_\[0, 2\] .*relative difference 1e-06")


def test_cholesky_that_overflows_refused(X, tmp_path):
    def edit(a):
        a["precisions_cholesky_"] = np.full_like(a["precisions_cholesky_"], 1e200)

    refused(tampered(saved_as(X, tmp_path, "diag"), edit),
            r"precisions_cholesky_ so large or small .* overflow")


@pytest.mark.parametrize("name", [*FITTED_ARRAYS, "lower_bounds_"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_array_value_refused(saved, name, value):
    def edit(a):
        a[name].reshape(-1)[-1] = value

    refused(tampered(saved, edit), rf"non-finite values \(nan or inf\) in array '{name}'")


def test_non_finite_init_param_refused(X, tmp_path):
    path = saved_as(X, tmp_path, "full", means_init=np.zeros((2, 3)))

    def edit(a):
        a["param_means_init"][1, 1] = np.inf

    refused(tampered(path, edit), r"non-finite .* in array 'param_means_init'")


# ----------------------------------------------- tampered fitted scalars


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_non_finite_lower_bound_refused(saved, value):
    # float("nan") is written as the non-standard JSON literal NaN.
    def edit(m):
        m["fitted"]["lower_bound_"] = value

    refused(tampered(saved, meta=edit), r"non-finite lower_bound_ \((nan|inf|-inf)\)")


@pytest.mark.parametrize("value", ["-1.5", [1], True, None])
def test_lower_bound_must_be_a_number(saved, value):
    def edit(m):
        m["fitted"]["lower_bound_"] = value

    refused(tampered(saved, meta=edit), r"invalid fitted attribute lower_bound_ .* number")


@pytest.mark.parametrize("value", [-1, 2.5, True, "3", None])
def test_invalid_n_iter_refused(saved, value):
    def edit(m):
        m["fitted"]["n_iter_"] = value

    refused(tampered(saved, meta=edit),
            r"n_iter_ = -1, not >= 0" if value == -1
            else rf"invalid fitted attribute n_iter_ .*{re.escape(repr(value))} is not an "
                 "integer")


@pytest.mark.parametrize("value", ["no", "yes", 1, 0, None])
def test_converged_must_be_a_json_boolean(saved, value):
    def edit(m):
        m["fitted"]["converged_"] = value

    refused(tampered(saved, meta=edit),
            rf"invalid fitted attribute converged_ .*{re.escape(repr(value))} is not a JSON "
            r"boolean")


@pytest.mark.parametrize("value", [0, 3.0, "3"])
def test_invalid_n_features_refused(saved, value):
    def edit(m):
        m["fitted"]["n_features_in_"] = value

    refused(tampered(saved, meta=edit),
            r"n_features_in_ (= 0, not >= 1|in its metadata: .* is not an integer)")


def test_missing_fitted_attribute_refused(saved):
    def edit(m):
        del m["fitted"]["lower_bound_"]

    refused(tampered(saved, meta=edit), r"missing the fitted attribute\(s\) lower_bound_")


# ----------------------------------------- tampered constructor parameters


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tol", "abc"),
        ("tol", "nan"),
        ("tol", -1.0),
        ("reg_covar", "abc"),
        ("max_iter", -1),
        ("max_iter", 2.5),
        ("n_init", 0),
        ("init_params", "magic"),
        ("warm_start", "no"),
        ("verbose", -2),
        ("verbose_interval", 0),
        ("chunk_size", 0),
        ("n_threads", "many"),
        ("random_state", "abc"),
        ("random_state", -1),
    ],
)
def test_invalid_constructor_parameter_refused(saved, name, value):
    def edit(m):
        m["params"][name] = value

    message = refused(tampered(saved, meta=edit),
                      rf"invalid constructor parameter in its metadata 'params': .*'{name}'")
    assert repr(value) in message


@pytest.mark.parametrize(
    ("name", "value"), [("n_components", 0), ("n_components", "2"),
                        ("covariance_type", "bogus"), ("covariance_type", None)],
)
def test_invalid_shape_parameter_refused(saved, name, value):
    def edit(m):
        m["params"][name] = value

    refused(tampered(saved, meta=edit), rf"invalid {name} {re.escape(repr(value))}")


def test_nested_parameter_refused(saved):
    def edit(m):
        m["params"]["tol"] = [0.001]

    refused(tampered(saved, meta=edit),
            r"invalid constructor parameter 'tol' in its metadata: a JSON list")


def test_invalid_weights_init_refused(X, tmp_path):
    path = saved_as(X, tmp_path, "full", weights_init=np.array([0.5, 0.5]))

    def edit(a):
        a["param_weights_init"] = np.array([0.5, 0.7])

    refused(tampered(path, edit),
            r"'params': The parameter 'weights' should be normalized.*sums to 1\.2; divide")


def test_invalid_precisions_init_refused(X, tmp_path):
    path = saved_as(X, tmp_path, "diag", precisions_init=np.ones((2, 3)))

    def edit(a):
        a["param_precisions_init"][0, 0] = -1.0

    refused(tampered(path, edit),
            r"'params': 'diag precision' should be positive, but precisions_init")


def test_unknown_parameter_warns_and_is_ignored(saved, X):
    def edit(m):
        m["params"]["added_later"] = 3

    with pytest.warns(UserWarning, match=r"ignoring parameter\(s\) unknown .*added_later"):
        loaded = load_model(tampered(saved, meta=edit))
    assert "added_later" not in loaded.get_params()
    np.testing.assert_array_equal(loaded.predict(X), load_model(saved).predict(X))


def test_unknown_estimator_refused(saved):
    def edit(m):
        m["estimator"] = "BayesianGaussianMixture"

    refused(tampered(saved, meta=edit),
            r"holds a 'BayesianGaussianMixture', which this gaussmix cannot load")


@pytest.mark.parametrize("key", ["estimator", "gaussmix_version"])
def test_missing_header_field_refused(saved, key):
    def edit(m):
        del m[key]

    refused(tampered(saved, meta=edit), rf"invalid '{key}' in its metadata")


# ------------------------------------------------------ non-model files


def refused_plainly(path: Path, pattern: str) -> None:
    """Refused in one line, without numpy's advice to unpickle the file."""
    message = refused(path, pattern)
    assert "allow_pickle" not in message and "pickle.load" not in message


def test_object_npy_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    refused_plainly(path, r"single \.npy array, not a gaussmix model file")


def test_pickle_file_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights_": [0.5, 0.5]}))
    refused_plainly(path, r"not a readable gaussmix model file: it is not an \.npz")


def test_text_file_refused(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("weights_ = 0.5, 0.5\n")
    refused_plainly(path, r"not a readable gaussmix model file: it is not an \.npz")


def test_npz_with_object_array_refused(saved):
    def edit(a):
        a["weights_"] = np.array([0.5, "half"], dtype=object)  # savez pickles it

    refused_plainly(tampered(saved, edit),
                    r"member 'weights_' is not a plain numeric \.npy array")


def test_zip_members_that_are_not_npy_are_ignored(saved, X):
    path = saved.with_name("extra.npz")
    path.write_bytes(saved.read_bytes())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "added by a later version")
    np.testing.assert_array_equal(load_model(path).predict(X), load_model(saved).predict(X))


def test_zip_that_is_no_model_refused(tmp_path):
    path = tmp_path / "notes.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    refused_plainly(path, r"not a gaussmix model file \(no metadata entry\)")


# ------------------------------------------------------ records and saving


def test_read_model_record_gives_plain_values(saved):
    record = read_model_record(saved)
    assert isinstance(record, ModelRecord) and record.estimator == "GaussianMixture"
    raw = read_raw(saved)
    for name in FITTED_ARRAYS:
        np.testing.assert_array_equal(record.arrays[name], raw[name])
    assert record.fitted == read_metadata(saved)["fitted"]


def test_save_refuses_a_model_that_would_not_load(X, tmp_path):
    model = fit(X)
    model.lower_bound_ = float("nan")
    with pytest.raises(ValueError, match=r"Cannot save .*non-finite lower_bound_"):
        save_model(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------ module structure


FILES_PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gaussmix" / "files"


def _modules() -> list[tuple[str, ast.Module]]:
    return [(p.name, ast.parse(p.read_text(encoding="utf-8")))
            for p in sorted(FILES_PACKAGE.glob("*.py"))]


def _imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] + [alias.name for alias in node.names]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def test_files_package_never_imports_the_estimator():
    for name, tree in _modules():
        for node in ast.walk(tree):
            assert not any("mixture" in part for part in _imported_names(node)), name
            # No import by name at run time either (importlib, __import__).
            called = getattr(node, "id", None) or getattr(node, "attr", None)
            assert called not in ("import_module", "__import__"), name


def _code_strings(tree: ast.Module) -> list[str]:
    """String constants that are not docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_files_package_names_no_covariance_type():
    from gaussmix.engine.covariance import COVARIANCE_TYPES as registry

    for name, tree in _modules():
        for text in _code_strings(tree):
            words = set(re.findall(r"\w+", text))
            assert not words & set(registry), (name, text)
