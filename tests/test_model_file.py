"""Tests for gaussmix.files.model: the portable, pickle-free model file format."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from gaussmix import GaussianMixture
from gaussmix._version import __version__
from gaussmix.files.model import FORMAT_VERSION, ModelFileError, load_model, save_model

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
