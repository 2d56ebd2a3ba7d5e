"""Spilling a file source's rows to a row-major scratch file on the first pass.

Parquet (and compressed Zarr) store columns, encoded: every pass of a fit
decodes the whole file again and lays its columns out as rows, which on a
few cores costs as much as the E-step itself (32M x 16 Parquet, 2 cores:
6.1 s per iteration against 3.2 s in memory). A :class:`RowSpill` writes the
rows of the first complete pass, as they are read and checked, to a scratch
file of raw rows; every later pass maps that file and hands out views of it,
as :class:`~gaussmix.NpySource` does, so iterations cost what they cost from
a ``.npy`` file. Spark's MLlib caches its input for the same reason; Dask
users persist.

A source's ``cache`` argument chooses: ``"auto"`` (the default) spills in fits
only, which read the rows once per EM iteration: each fit reads a copy of the
source (:meth:`SpillsMissing.for_fit`) whose scratch file goes with it when
the fit ends, and a prediction, a single pass, reads the file. ``True`` or a
folder spills in the source's first complete pass of any kind and keeps the
rows for the source's life (for several fits of one source); ``False`` never
spills.

The scratch file takes as much disk space as the rows in float64 (float32
for float32 files), in ``tempfile.gettempdir()`` or a folder given. It is
removed from the folder as soon as the pass that wrote it ends (Linux and
macOS keep the mapped rows until the source is garbage collected or
:meth:`RowSpill.release` is called), so nothing is left behind if the process
dies. Its pages are file-backed page cache, not private memory, so peak
memory stays bounded by the chunk size. If the folder lacks the space, or a
write fails, the pass carries on without spilling (with a warning) and later
passes read the source again.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import numpy as np

from ..engine.sources import DEFAULT_CHUNK_ROWS, ArraySource, Chunk, ReadsMissing

__all__ = ["AUTO", "RowSpill", "SpilledReads", "SpillsMissing", "row_spill",
           "spill_folder"]

#: The default ``cache`` of file sources: fits spill, predictions do not.
AUTO = "auto"

#: Free space the folder must keep beyond the scratch files (so a fit never
#: fills a disk to the last byte).
SPARE_BYTES = 1 << 30


def spill_folder(cache: bool | str | os.PathLike[str]) -> str | None:
    """The folder the source itself spills into for its ``cache`` argument:
    None for False and ``"auto"`` (only its fits' copies spill), the system's
    temporary folder for True, else the folder given (which must exist; a
    folder named ``auto`` is given as ``"./auto"`` or a ``Path``)."""
    if cache is False or cache is None or is_auto(cache):
        return None
    if cache is True:
        return tempfile.gettempdir()
    folder = os.fspath(cache)
    if not os.path.isdir(folder):
        raise ValueError(f"cache={folder!r} is not an existing folder; pass cache=True "
                         "for the system's temporary folder, or create it.")
    return folder


def is_auto(cache: Any) -> bool:
    """Whether a ``cache`` argument is ``"auto"`` (the string, not a path)."""
    return isinstance(cache, str) and cache == AUTO


def row_spill(cache: bool | str | os.PathLike[str], n_features: int, dtype: np.dtype,
              n_rows: int) -> RowSpill | None:
    """The :class:`RowSpill` a source's ``cache`` argument asks for, or None."""
    folder = spill_folder(cache)
    return None if folder is None else RowSpill(folder, n_features, dtype, n_rows)


class SpillsMissing(ReadsMissing):
    """:class:`~gaussmix.engine.sources.ReadsMissing` for a source with a
    ``_spill`` (a :class:`RowSpill` or None)."""

    _spill: RowSpill | None
    #: the source's ``cache`` argument (see :func:`spill_folder`)
    _cache: bool | str | os.PathLike[str] = False
    n_features: int
    n_rows: int
    dtype: np.dtype

    def for_fit(self) -> Any:
        """The source a fit reads: with ``cache="auto"``, a copy that spills
        the rows of its first complete pass into the system's temporary
        folder (where it has room), so that later EM passes map them instead
        of decoding the file again; the copy, its scratch file with it, is
        dropped when the fit ends. Otherwise the source itself."""
        if not is_auto(self._cache) or self._spill is not None:
            return self
        fitting = copy.copy(self)
        fitting._spill = row_spill(True, self.n_features, self.dtype, self.n_rows)
        return fitting

    def reading_missing(self, *, fitting: bool) -> Any:
        """As :meth:`ReadsMissing.reading_missing`. Rows spilled by the source
        itself are shared (they were checked to hold no NaN); otherwise a fit
        spills into a scratch file of its own, so that rows with NaN never
        reach the source's (whose later readers do not check them again), and
        a prediction, a single pass, does not spill."""
        marked = super().reading_missing(fitting=fitting)
        spill = self._spill
        if spill is not None and not spill.ready:
            marked._spill = (RowSpill(spill.folder, spill.n_features, spill.dtype,
                                      spill.n_rows) if fitting else None)
        return marked


class SpilledReads(SpillsMissing):
    """``chunks()`` and ``chunk_reads()`` of a file source from its
    ``_reads()`` (independent reads, each an iterable of checked chunks) and
    its ``_spill`` (a :class:`RowSpill` or None): a pass goes through the
    reads in order, spilling the rows once; thread pools run the reads in
    their workers unless rows are spilled (the spilling pass writes them in
    order; later passes map them)."""

    chunk_size: int | None

    def _reads(self) -> list[Callable[[], Iterable[Chunk]]]:
        raise NotImplementedError

    def chunks(self) -> Iterator[Chunk]:
        if self._spill is None:
            return self._read()
        return self._spill.chunks(self._read, self.chunk_size)

    def chunk_reads(self) -> list[Callable[[], Iterable[Chunk]]] | None:
        """The reads, safe to run in any thread (see
        :mod:`gaussmix.engine.reducers`); None while rows are spilled."""
        return None if self._spill is not None else self._reads()

    def _read(self) -> Iterator[Chunk]:
        # the chunks of the reads, so that one thread or several see the same
        for read in self._reads():
            yield from read()


class RowSpill:
    """Rows (and weights) of a source's first full pass, kept in a scratch file.

    Parameters
    ----------
    folder : str
        Where the scratch files are made.
    n_features : int
    dtype : numpy dtype
        Of the rows (float32 or float64); weights are float64.
    n_rows : int
        Rows the source holds (used to check free space before writing).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> spill = RowSpill(tempfile.gettempdir(), 2, np.dtype("f8"), 5)
    >>> read = lambda: iter([Chunk(np.ones((3, 2)), None), Chunk(np.zeros((2, 2)), None)])
    >>> [len(c.X) for c in spill.chunks(read, 4)]  # first pass: the source's chunks
    [3, 2]
    >>> spill.ready, [len(c.X) for c in spill.chunks(read, 4)]  # then the file's
    (True, [4, 1])
    """

    def __init__(self, folder: str, n_features: int, dtype: np.dtype, n_rows: int) -> None:
        self.folder, self.n_features = folder, int(n_features)
        self.dtype, self.n_rows = np.dtype(dtype), int(n_rows)
        self._rows: np.ndarray | None = None
        self._weights: np.ndarray | None = None
        self._gave_up = False

    @property
    def ready(self) -> bool:
        """Whether a complete pass has been spilled (later passes map it)."""
        return self._rows is not None

    def chunks(self, read: Callable[[], Iterator[Chunk]], chunk_size: int | None
               ) -> Iterator[Chunk]:
        """The chunks of ``read()`` while spilling them; once a pass has been
        spilled, chunks of ``chunk_size`` rows of the scratch file."""
        if self._rows is not None:
            yield from self._mapped(chunk_size or DEFAULT_CHUNK_ROWS)
        elif self._gave_up or not self._room():
            yield from read()
        else:
            yield from self._spilling(read())

    def release(self) -> None:
        """Unmap the scratch rows (their disk space is returned); later passes
        read the source again and spill anew."""
        self._rows = self._weights = None

    # -- the first pass -------------------------------------------------------
    def _room(self) -> bool:
        need = self.n_rows * (self.n_features * self.dtype.itemsize + 8)
        free = shutil.disk_usage(self.folder).free
        if free >= need + SPARE_BYTES:
            return True
        self._give_up(f"{self.folder!r} has {free / 2**30:.1f} GiB free; the rows need "
                      f"{need / 2**30:.1f} GiB plus {SPARE_BYTES / 2**30:.0f} GiB to spare")
        return False

    def _spilling(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        try:
            scratch = _Scratch(self.folder)
        except OSError as error:  # a folder this process may not write in
            self._give_up(f"making a scratch file in {self.folder!r} failed ({error})")
            yield from chunks
            return
        rows, weighted = 0, None
        try:
            for chunk in chunks:
                if scratch.files:
                    has_weights = chunk.sample_weight is not None
                    weighted = has_weights if weighted is None else weighted
                    why = ("some chunks have weights and some have not"
                           if has_weights != weighted else
                           scratch.write(np.ascontiguousarray(chunk.X, dtype=self.dtype),
                                         chunk.sample_weight))
                    if why:
                        scratch.close()
                        self._give_up(why)
                rows += chunk.X.shape[0]
                yield chunk
            if scratch.files:
                scratch.flush()
                self._rows = _mapped_file(scratch.files[0][0], self.dtype,
                                          (rows, self.n_features))
                if weighted:
                    self._weights = _mapped_file(scratch.files[1][0],
                                                 np.dtype(np.float64), (rows,))
        finally:
            scratch.close()  # the mapping outlives the names

    def _give_up(self, why: str) -> None:
        self._gave_up = True
        warnings.warn(f"Not spilling rows to a scratch file: {why}. Every pass reads "
                      "the source again (slower); pass cache=<folder> with room, or "
                      "cache=False to silence this (on the command line: set TMPDIR, "
                      "or --no-spill).", RuntimeWarning, stacklevel=2)

    # -- later passes ---------------------------------------------------------
    def _mapped(self, size: int) -> Iterator[Chunk]:
        assert self._rows is not None
        # views of plain arrays (np.memmap slices are a subclass every ufunc
        # result keeps); checked when spilled, the file is private to this process
        return ArraySource(np.asarray(self._rows), None if self._weights is None
                           else np.asarray(self._weights), size).chunks()


def _mapped_file(path: str, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    if shape[0] == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


class _Scratch:
    """The scratch files of one pass: rows, and weights once a chunk has them."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files: list[tuple[str, IO[bytes]]] = []
        self._open("rows")

    def _open(self, what: str) -> None:
        fd, path = tempfile.mkstemp(prefix=f"gaussmix-spill-{what}-", dir=self.folder)
        self.files.append((path, os.fdopen(fd, "wb")))

    def write(self, X: np.ndarray, w: Any) -> str:
        """Append a chunk; the reason when a write fails, else ''."""
        try:
            if w is not None and len(self.files) == 1:
                self._open("weights")
            self.files[0][1].write(X.data)
            if w is not None:
                self.files[1][1].write(np.ascontiguousarray(w, np.float64).data)
        except OSError as error:
            return f"writing the scratch file failed ({error})"
        return ""

    def flush(self) -> None:
        for _, f in self.files:
            f.flush()

    def close(self) -> None:
        for path, f in self.files:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.files = []
