"""Regressions found by probing the data sources (NpySource, IterableSource,
ParquetSource, ZarrSource) against the same rows in memory: streams that give
other rows on a later pass raise instead of fitting fewer rows; empty chunks
are skipped; a small stream starts where the same rows in memory start; bad
files, bad chunks and bad arguments raise errors that say what is wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import assert_same_fit

import gaussmix
from gaussmix import GaussianMixture, IterableSource, NpySource, select

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0, 1, (150, 3)), rng.normal(5, 1, (150, 3))])


def _start(X, ct="full"):
    gm = GaussianMixture(2, covariance_type=ct, max_iter=0, random_state=0).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_,
                precisions_init=gm.precisions_)


# -- IterableSource: every pass must give the same rows ------------------------
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_factory_returning_one_generator_raises_instead_of_fitting_fewer_rows(
        X, n_threads):
    gen = (X[i:i + 50] for i in range(0, len(X), 50))
    with pytest.raises(ValueError, match="gave 0 rows, an earlier pass 300.*fresh"):
        GaussianMixture(2, random_state=0, n_threads=n_threads).fit(
            IterableSource(lambda: gen, chunk_size=40))


def test_a_stream_that_shrinks_between_passes_raises(X):
    calls = []

    def shrinking():
        calls.append(1)
        n = len(X) if len(calls) == 1 else len(X) // 2
        return (X[i:i + 50] for i in range(0, n, 50))

    with pytest.raises(ValueError, match="gave 150 rows, an earlier pass 300"):
        GaussianMixture(2, random_state=0).fit(IterableSource(shrinking))


def test_the_first_pass_continues_the_iterator_the_constructor_opened(X):
    """A one-shot generator read in one pass loses no rows to the
    constructor's look at the first chunk (it used to lose them silently)."""
    gm = GaussianMixture(2, random_state=0).fit(X)
    gen = (X[i:i + 50] for i in range(0, len(X), 50))
    scores = gm.score_samples(IterableSource(lambda: gen))
    np.testing.assert_allclose(scores, gm.score_samples(X), rtol=1e-12)


def test_empty_chunks_are_skipped(X):
    start = _start(X)
    reference = GaussianMixture(2, **start).fit(X)
    parts = [np.empty((0, 0)), [], X[:100], np.empty((0, 3)), X[100:]]
    assert_same_fit(GaussianMixture(2, **start).fit(IterableSource(parts, chunk_size=64)),
              reference)
    with pytest.raises(ValueError, match="yielded no rows"):
        IterableSource([np.empty((0, 3)), []])


def test_chunks_are_computed_in_the_first_chunks_dtype(X):
    """A float32 chunk after a float64 one is computed in float64, as the
    same rows concatenated in memory (it was computed in float32)."""
    rounded = X.copy()
    rounded[100:] = X[100:].astype(np.float32)
    start = _start(X)
    assert_same_fit(GaussianMixture(2, **start).fit(
        IterableSource([X[:100], X[100:].astype(np.float32)])),
        GaussianMixture(2, **start).fit(rounded))
    first32 = IterableSource([X[:100].astype(np.float32), X[100:]])
    assert {c.X.dtype for c in first32.chunks()} == {np.dtype(np.float32)}


def test_bad_chunks_are_refused_with_what_is_wrong(X):
    with pytest.raises(ValueError, match="complex"):
        IterableSource([X.astype(complex)])
    with pytest.raises(ValueError, match="not numbers"):
        IterableSource([np.array([["a", "b"], ["c", "d"]])])
    with pytest.raises(ValueError, match="pair"):
        GaussianMixture(2).fit(IterableSource([X, (X, np.ones(len(X)), None)]))
    with pytest.raises(ValueError, match=r"weights of rows 100\.\.299 .*non-negative"):
        GaussianMixture(2).fit(IterableSource([X[:100], (X[100:], -np.ones(200))]))
    bad = X.copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="rows 300..599 .*NaN.*missing='marginalize'"):
        GaussianMixture(2).fit(IterableSource([X, bad]))
    with pytest.raises(ValueError, match=r"holds 1 row\(s\)"):
        GaussianMixture(2).fit(IterableSource([X[:1]]))


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")  # k-means on the sample
def test_too_few_positively_weighted_rows_are_refused_as_in_memory(X, tmp_path):
    w = np.zeros(len(X))
    w[10] = 1.0
    with pytest.raises(ValueError, match="only 1 row"):
        GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    np.save(tmp_path / "x.npy", X)
    for source in (NpySource(tmp_path / "x.npy", sample_weight=w),
                   IterableSource([(X, w)])):
        with pytest.raises(ValueError, match=r"only 1 row\(s\) have a positive sample_"):
            GaussianMixture(2, random_state=0).fit(source)
    # A large source: the message says the rows counted are the sample's.
    big_w = np.zeros(60_000)
    big_w[:1] = 1.0
    big = IterableSource([(np.zeros((60_000, 2)), big_w)])
    with pytest.raises(ValueError, match=r"only 1 row\(s\) of the 50000 initialisation"):
        GaussianMixture(2, random_state=0).fit(big)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random",
                                         "random_from_data"])
def test_a_small_stream_starts_where_the_same_rows_in_memory_start(X, init_params):
    """A stream of unknown length holding fewer rows than the initialisation
    sample is read whole and draws nothing from random_state (as a file of
    known length), so n_init starts equal the in-memory ones."""
    for max_iter in (0, 100):  # the starts themselves, and the fits
        kw = dict(n_init=2, init_params=init_params, max_iter=max_iter, random_state=0)
        assert_same_fit(GaussianMixture(2, **kw).fit(IterableSource([X[:120], X[120:]])),
                  GaussianMixture(2, **kw).fit(X), rtol=1e-12)


def test_select_over_a_small_stream_equals_the_in_memory_table(X):
    kw = dict(n_components=[1, 2, 3], covariance_types=["full", "spherical"],
              random_state=0)
    a = select(X, **kw)
    b = select(IterableSource([X[:120], X[120:]]), **kw)
    np.testing.assert_allclose([c.bic for c in b.table], [c.bic for c in a.table],
                               rtol=1e-10)


# -- NpySource -------------------------------------------------------------------
def test_unreadable_npy_files_are_named(X, tmp_path):
    np.save(tmp_path / "good.npy", X)
    raw = (tmp_path / "good.npy").read_bytes()
    for name, content in [("truncated", raw[:len(raw) // 2]), ("header", raw[:60]),
                          ("empty", b""), ("garbage", b"not a numpy file" * 8)]:
        path = tmp_path / f"{name}.npy"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}\.npy' is not a readable \.npy"):
            NpySource(path)
    np.save(tmp_path / "objects.npy", X.astype(object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npy"):
        NpySource(tmp_path / "objects.npy")
    bad = X.copy()
    bad[200, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(ValueError, match=r"of '.*inf\.npy' contains NaN or infinity"):
        GaussianMixture(2, chunk_size=100).fit(NpySource(tmp_path / "inf.npy"))


def test_big_endian_float32_files_stay_float32(X, tmp_path):
    np.save(tmp_path / "native.npy", X.astype("<f4"))
    np.save(tmp_path / "swapped.npy", X.astype(">f4"))
    native, swapped = NpySource(tmp_path / "native.npy"), NpySource(tmp_path / "swapped.npy")
    assert swapped.dtype == np.float32
    start = _start(X)
    assert_same_fit(GaussianMixture(2, **start).fit(swapped),
              GaussianMixture(2, **start).fit(native), rtol=0)


@pytest.mark.parametrize("n_rows", [0, 1])
def test_files_with_too_few_rows_say_so(X, tmp_path, n_rows):
    np.save(tmp_path / "few.npy", X[:n_rows])
    pq.write_table(pa.table({"a": X[:n_rows, 0], "b": X[:n_rows, 1]}),
                   tmp_path / "few.parquet")
    z = zarr.open_array(str(tmp_path / "few.zarr"), mode="w", shape=(n_rows, 2),
                        chunks=(10, 2), dtype="f8")
    z[:] = X[:n_rows, :2]
    for source in (NpySource(tmp_path / "few.npy"),
                   gaussmix.ParquetSource(tmp_path / "few.parquet"),
                   gaussmix.ZarrSource(tmp_path / "few.zarr")):
        with pytest.raises(ValueError, match=rf"holds {n_rows} row\(s\).*at least 2"):
            GaussianMixture(2).fit(source)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_chunk_sizes_must_be_positive_ints(X, tmp_path, bad):
    np.save(tmp_path / "x.npy", X)
    pq.write_table(pa.table({"a": X[:, 0]}), tmp_path / "x.parquet")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, dtype="f8")
    for make in (lambda: NpySource(tmp_path / "x.npy", chunk_size=bad),
                 lambda: IterableSource([X], chunk_size=bad),
                 lambda: gaussmix.ParquetSource(tmp_path / "x.parquet", chunk_size=bad),
                 lambda: gaussmix.ZarrSource(z, chunk_size=bad)):
        with pytest.raises(ValueError, match="chunk_size must be None or an int >= 1"):
            make()


# -- Parquet and Zarr ------------------------------------------------------------------
def test_bad_parquet_arguments_and_files(X, tmp_path):
    path = tmp_path / "x.parquet"
    w = pa.array([None if i == 7 else 1.0 for i in range(len(X))])
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "w": w}), path)
    with pytest.raises(ValueError, match="columns lists 'a' more than once"):
        gaussmix.ParquetSource(path, columns=["a", "b", "a"])
    with pytest.raises(TypeError, match=r"list of column names, e\.g\. \['a'\]"):
        gaussmix.ParquetSource(path, columns="a")
    with pytest.raises(ValueError, match=r"x\.parquet' \(column 'w'\) must be finite"):
        GaussianMixture(2).fit(gaussmix.ParquetSource(path, weights="w"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="broken.parquet' is not a readable Parquet"):
        gaussmix.ParquetSource(broken)


def test_an_empty_row_group_is_skipped(X, tmp_path):
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    path = tmp_path / "gap.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        for part in (table.slice(0, 100), table.slice(0, 0), table.slice(100)):
            writer.write_table(part)
    start = _start(X)
    for threads in (1, 2):
        assert_same_fit(GaussianMixture(2, n_threads=threads, **start).fit(
            gaussmix.ParquetSource(path, chunk_size=64)),
            GaussianMixture(2, **start).fit(X))


def test_parquet_column_names_are_recorded_and_checked_as_a_dataframes(X, tmp_path):
    """Columns of a Parquet source in another order than at fit raise, as a
    DataFrame's do (they were scored in the wrong places, silently)."""
    pd = pytest.importorskip("pandas")
    path = tmp_path / "abc.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}), path)
    frame = pd.DataFrame(X, columns=list("abc"))
    from_frame = GaussianMixture(2, random_state=0).fit(frame)
    from_file = GaussianMixture(2, random_state=0).fit(gaussmix.ParquetSource(path))
    assert list(from_file.feature_names_in_) == ["a", "b", "c"]
    reordered = gaussmix.ParquetSource(path, columns=["c", "b", "a"])
    for gm in (from_frame, from_file):
        with pytest.raises(ValueError, match="feature names should match"):
            gm.score(reordered)
        assert gm.score(gaussmix.ParquetSource(path)) == pytest.approx(
            from_frame.score(frame), rel=1e-12)
    unnamed = GaussianMixture(2, random_state=0).fit(NpySource(_saved(tmp_path, X)))
    assert not hasattr(unnamed, "feature_names_in_")
    with warnings.catch_warnings():  # nothing to compare names with: no warning
        warnings.simplefilter("error")
        assert unnamed.score(reordered) < unnamed.score(gaussmix.ParquetSource(path))


def _saved(folder, X):
    np.save(folder / "rows.npy", X)
    return folder / "rows.npy"


def test_a_zarr_group_is_refused_naming_its_arrays(X, tmp_path):
    group = zarr.open_group(str(tmp_path / "g"), mode="w")
    group.create_array("rows", shape=X.shape, dtype="f8")[:] = X
    for given in (tmp_path / "g", group):
        with pytest.raises(ValueError, match="is a Zarr group, not an array.*'rows'"):
            gaussmix.ZarrSource(given)
    assert gaussmix.ZarrSource(group["rows"]).n_rows == len(X)


# -- what takes sources and what does not ----------------------------------------------
def test_array_only_methods_refuse_sources_clearly(X, tmp_path):
    np.save(tmp_path / "x.npy", X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match="not a NpySource: data sources are read by fit"):
        gm.impute(NpySource(tmp_path / "x.npy"))
    with pytest.raises(TypeError, match="not a NpySource"):
        gaussmix.GaussianMixtureImputer(2).fit(NpySource(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match=r"NpySource\(sample_weight=\.\.\.\)"):
        gm.fit(NpySource(tmp_path / "x.npy"), sample_weight=np.ones(len(X)))


def test_select_over_a_source_fails_a_k_with_too_few_weighted_rows_as_in_memory():
    # 3 rows of positive weight: K=4 fails alone (was: a degenerate candidate with a
    # BIC from a source, while in memory the same candidate fails), shared passes or not
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    w = np.zeros(200)
    w[:3] = 1.0
    in_memory = select(X, n_components=[1, 2, 3, 4], covariance_types=["full", "diag"],
                       sample_weight=w, random_state=0)
    for shared in (True, False):
        source = IterableSource(lambda: iter([(X[:100], w[:100]), (X[100:], w[100:])]))
        result = select(source, n_components=[1, 2, 3, 4], random_state=0,
                        covariance_types=["full", "diag"], shared_passes=shared)
        for ours, theirs in zip(result.table, in_memory.table, strict=True):
            assert (ours.n_components, ours.covariance_type) == (
                theirs.n_components, theirs.covariance_type)
            assert ours.error == theirs.error
            if ours.n_components == 4:
                assert "positive sample_weight" in ours.error and np.isnan(ours.bic)
            else:
                np.testing.assert_allclose(ours.bic, theirs.bic, rtol=1e-10)
