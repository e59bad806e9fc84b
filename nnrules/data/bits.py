"""Bit-packed binary matrices, in memory (:class:`BinaryMatrix`) and in a Zarr store (:class:`StoredBits`).

Layout, used everywhere in nnrules: **one packed row per item (unit)**. An item's row is its
tid-list over samples, stored as ``uint64`` words, bit ``s % 64`` of word ``s // 64`` set when
sample ``s`` has the item. ``words`` has shape ``(n_items, ceil(n_samples / 64))``; bits past
``n_samples`` are always zero, so popcounts need no masking. Both types satisfy
:class:`~nnrules.data.protocol.BitRows`, what a miner may ask of its data; the kernels are in
:mod:`nnrules.data.packing`, the Zarr format in :mod:`nnrules.data.zarr_io`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np

# the kernels' public names stay importable from here (nnrules.data.bits.pack_columns, …)
from .packing import (_check_words, _popcount64, _popcount_rows, and_count, pack_columns,  # noqa: F401
                      popcount_rows, tidlists, unpack_columns)
from .zarr_io import DEFAULT_CHUNK_ROWS, BitsWriter, _check_chunk_rows, _fresh, open_words, read_words, verified_attrs

__all__ = ["BinaryMatrix", "StoredBits", "open_bits", "write_bits", "pack_columns", "unpack_columns",
           "popcount_rows", "and_count", "tidlists"]


@dataclass(eq=False)
class BinaryMatrix:
    """A binary ``(n_samples, n_units)`` matrix stored bit-packed, one packed row per unit.

    Build with :meth:`from_dense`; ``words`` is ``(n_units, ceil(n_samples/64)) uint64``.
    ``names`` labels the units (``"fc1:17"``), ``layer`` names the layer they come from.
    """

    words: np.ndarray
    n_samples: int
    names: list[str] = field(default_factory=list)
    layer: str = ""
    #: the rows live in memory (:class:`StoredBits`: in a store, read on demand)
    stored: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, (int, np.integer)) or self.n_samples < 0:
            raise ValueError(f"n_samples must be an integer ≥ 0, got {self.n_samples!r}")
        words = np.asarray(self.words)
        if words.dtype.kind not in "ui" or (words.dtype.kind == "i" and words.size and words.min() < 0):
            raise ValueError(f"words must hold unsigned 64-bit words (BinaryMatrix.from_dense packs a bool "
                             f"matrix), got {words.dtype}" + (" with negative values" if words.dtype.kind == "i" else ""))
        self.words = np.ascontiguousarray(words, dtype=np.uint64)
        if self.words.ndim != 2:
            raise ValueError(f"words must be 2-D (n_units, n_words), got shape {self.words.shape}")
        need = max(1, -(-self.n_samples // 64))
        if self.words.shape[1] != need:
            raise ValueError(f"words has {self.words.shape[1]} words per unit; {self.n_samples} "
                             f"samples need {need}")
        rem = self.n_samples % 64
        if self.words.size and (self.n_samples == 0 or rem):
            pad = np.uint64(0xFFFFFFFFFFFFFFFF) if self.n_samples == 0 else ~np.uint64((1 << rem) - 1)
            if (self.words[:, -1] & pad).any():
                raise ValueError(f"words has bits set past sample {self.n_samples - 1} (the padding of the last "
                                 "word must be zero: counts would include samples that do not exist); pack with "
                                 "BinaryMatrix.from_dense")
        if not self.names:
            prefix = f"{self.layer}:" if self.layer else ""
            self.names = [f"{prefix}{i}" for i in range(self.words.shape[0])]
        if len(self.names) != self.words.shape[0]:
            raise ValueError(f"{len(self.names)} names for {self.words.shape[0]} units")

    @classmethod
    def from_dense(cls, dense, names: Sequence[str] | None = None, layer: str = "") -> "BinaryMatrix":
        """Pack a ``(n_samples, n_units)`` array of booleans (or 0/1 values)."""
        arr = np.asarray(dense)
        if arr.ndim != 2:
            raise ValueError(f"expected a 2-D (n_samples, n_units) array, got shape {arr.shape}")
        if arr.dtype != bool and arr.size:
            if not (np.issubdtype(arr.dtype, np.number)) or not np.isin(arr, (0, 1)).all():
                raise ValueError("expected binary data (bool or 0/1 values); binarize real-valued "
                                 "activations first with nnrules.binarize(...)")
            arr = arr.astype(bool)
        return cls(pack_columns(arr), arr.shape[0], list(names) if names is not None else [], layer)

    @classmethod
    def from_sparse(cls, matrix, names: Sequence[str] | None = None, layer: str = "") -> "BinaryMatrix":
        """Pack a scipy.sparse ``(n_samples, n_units)`` 0/1 matrix (CSR, CSC, COO…) from its indices:
        O(nnz + n_units·n_words), never densified."""
        import scipy.sparse as sp

        from .transactions import bits_from_tidlists
        if not sp.issparse(matrix) or matrix.ndim != 2:
            raise TypeError(f"matrix must be a 2-D scipy.sparse matrix, got {type(matrix).__name__}; "
                            "use BinaryMatrix.from_dense for arrays")
        csc = sp.csc_matrix(matrix)
        csc.eliminate_zeros()
        if csc.nnz and not np.all(csc.data == 1):
            raise ValueError("matrix must hold binary data (0/1 values); binarize first")
        csc.sort_indices()
        words = bits_from_tidlists(csc.indptr.astype(np.int64), csc.indices.astype(np.int32), csc.shape[0])
        return cls(words, csc.shape[0], list(names) if names is not None else [], layer)

    @classmethod
    def from_transactions(cls, transactions, n_items: int | None = None, layer: str = "") -> "BinaryMatrix":
        """Pack transactions (:class:`~nnrules.Transactions` or lists of non-negative integer item ids): unit
        j is item id j, ``n_items`` (default: largest id + 1) units. O(nnz + n_items·n_words); the packed
        form takes n_items · ceil(n/64) · 8 bytes (retail: 16,470 items × 88,162 rows = 181 MB)."""
        from .transactions import Transactions, bits_from_tidlists
        tr = transactions if isinstance(transactions, Transactions) else Transactions.from_lists(transactions)
        m = tr.n_items if n_items is None else n_items
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < tr.n_items:
            raise ValueError(f"n_items must be an integer ≥ the largest item id + 1 = {tr.n_items}, got {n_items!r}")
        from .memory import check_allocation
        # the words, the per-item offsets and counts: asked before any of them is allocated
        check_allocation(int(m) * ((len(tr) + 63) // 64) * 8 + int(m) * 16 + len(tr.ids) * 12,
                         f"packing {len(tr):,} transactions over {int(m):,} items")
        order = np.argsort(tr.ids, kind="stable")  # a row's duplicates set one bit: harmless
        counts = np.bincount(tr.ids, minlength=m)
        vptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(counts, out=vptr[1:])
        tids = np.repeat(np.arange(len(tr), dtype=np.int32), np.diff(tr.indptr))[order]
        return cls(bits_from_tidlists(vptr, tids, len(tr)), len(tr), [], layer)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_samples, self.words.shape[0])

    @property
    def n_units(self) -> int:
        return self.words.shape[0]

    def to_dense(self) -> np.ndarray:
        """``(n_samples, n_units) bool``."""
        return unpack_columns(self.words, self.n_samples)

    def support(self) -> np.ndarray:
        """Number of samples in which each unit is on: ``(n_units,) int64``."""
        return _popcount_rows(self.words)

    def density(self) -> float:
        """Fraction of ones in the whole matrix."""
        total = self.n_samples * self.n_units
        return float(self.support().sum() / total) if total else 0.0

    def select(self, units: Sequence[int]) -> "BinaryMatrix":
        """A matrix over a subset of units (in the given order)."""
        idx = np.asarray(units, dtype=np.int64)
        return BinaryMatrix(self.words[idx], self.n_samples, [self.names[i] for i in idx], self.layer)

    @property
    def n_words(self) -> int:
        return int(self.words.shape[1])

    def read(self, w0: int = 0, w1: int | None = None, units: np.ndarray | None = None) -> np.ndarray:
        """Words ``[w0, w1)`` of ``units`` (default all): ``(units, w) uint64`` (a view when it can be)."""
        rows = self.words if units is None else self.words[np.asarray(units, np.int64)]
        return rows[:, w0: self.n_words if w1 is None else w1]

    def load(self) -> "BinaryMatrix":
        """The matrix in memory: itself."""
        return self

    def to_zarr(self, path, chunk_rows: int = 1 << 16, overwrite: bool = False) -> "StoredBits":
        """Write into a new Zarr store at ``path`` in chunks of ``chunk_rows`` samples (a multiple of 64) and
        return it as :class:`StoredBits` (needs ``nnrules[scale]``). The packed form takes
        ``n_units · ceil(n_samples / 64) · 8`` bytes before compression."""
        return write_bits(self, path, chunk_rows=chunk_rows, overwrite=overwrite)

    @classmethod
    def from_zarr(cls, path, key: str = "") -> "BinaryMatrix":
        """The matrix stored at ``path`` (by :meth:`to_zarr`, or under ``key`` by a Binarizer on stored
        activations), in memory. :func:`open_bits` opens it without reading it."""
        return StoredBits(path, key).load()

    def __repr__(self) -> str:
        return (f"BinaryMatrix(layer={self.layer!r}, n_samples={self.n_samples}, "
                f"n_units={self.n_units}, density={self.density():.3f})")


def write_bits(matrix: BinaryMatrix, path: str | os.PathLike, key: str = "",
               chunk_rows: int = DEFAULT_CHUNK_ROWS, overwrite: bool = False) -> "StoredBits":
    """Write ``matrix`` into the Zarr group at ``path`` (under ``key``; a new store unless ``key`` names a
    place in an existing one) and return it as :class:`StoredBits`."""
    if not isinstance(matrix, BinaryMatrix):
        raise TypeError(f"matrix must be a BinaryMatrix, got {type(matrix).__name__}")
    chunk_rows = _check_chunk_rows(chunk_rows)
    if not key:
        _fresh(path, overwrite)
    w = BitsWriter(path, matrix.n_samples, matrix.n_units, matrix.names, matrix.layer, key, chunk_rows)
    for start in range(0, w.n_words, w.chunk_words):
        w.write(matrix.words[:, start: start + w.chunk_words])
    w.close()
    return StoredBits(path, key, verify=False)


class StoredBits:
    """A bit matrix in a Zarr store, read on demand: ``load()`` into memory, ``read(w0, w1)`` a row range
    (words w0..w1, i.e. samples 64·w0 .. 64·w1), ``select(units)`` a subset of units (nothing is read).

    ExplaiNN fits on it in memory (``load``), or, with a Dask client, counts on the workers where each row
    range is loaded once (:mod:`nnrules.miners.explainn._distributed`). Opened from a path, the store's
    attributes (supports, digests, sizes) are checked against its words in one streamed read (``verify=False``
    skips it for a store you just wrote yourself)."""

    stored: ClassVar[bool] = True

    def __init__(self, path: str | os.PathLike, key: str = "", units: np.ndarray | None = None,
                 verify: bool = True) -> None:
        self.path, self.key = str(path), key
        try:
            self._array = open_words(self.path, key)
            attrs = dict(self._array.attrs)
        except (FileNotFoundError, KeyError, ValueError) as err:
            raise ValueError(f"{self.path!r}{f' ({key})' if key else ''} holds no bit matrix written by nnrules "
                             f"(BinaryMatrix.to_zarr, Binarizer on stored activations): {type(err).__name__}") from None
        if attrs.get("nnrules") != "bits":
            raise ValueError(f"{self.path!r}{f' ({key})' if key else ''} holds no bit matrix written by nnrules")
        if verify:  # a store opened from a path: its attributes checked against its words (one read)
            where = repr(self.path) + (f" ({key})" if key else "")
            n, names, support, digest = verified_attrs(self._array, attrs, where)
        else:  # a store this process just wrote, or a selection of a verified one
            n, names, support, digest = int(attrs["n_samples"]), attrs["names"], attrs["support"], attrs["digest"]
        self.n_samples = n
        self.layer = str(attrs.get("layer", ""))
        all_units = self._array.shape[0]
        self.units = np.arange(all_units, dtype=np.int64) if units is None else np.asarray(units, np.int64)
        self.names = [names[i] for i in self.units]
        self._support = np.asarray(support, np.int64)[self.units]
        self._digest = [digest[i] for i in self.units]
        self.chunk_words = int(self._array.chunks[1])

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_words(self) -> int:
        return int(self._array.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_samples, self.n_units)

    def support(self) -> np.ndarray:
        """Samples in which each unit is on, ``(n_units,) int64`` (stored when written: nothing is read)."""
        return self._support.copy()

    def digests(self) -> list[str]:
        """A digest of each unit's words: equal digests = equal columns (BLAKE2b, 128 bits)."""
        return list(self._digest)

    def density(self) -> float:
        total = self.n_samples * self.n_units
        return float(self._support.sum() / total) if total else 0.0

    def select(self, units: Sequence[int]) -> "StoredBits":
        idx = np.asarray(units, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.n_units)):
            raise ValueError(f"units must be unit indices in 0..{self.n_units - 1}")
        return StoredBits(self.path, self.key, self.units[idx], verify=False)

    def read(self, w0: int = 0, w1: int | None = None, units: np.ndarray | None = None) -> np.ndarray:
        """Words ``[w0, w1)`` of ``units`` (positions in this selection; default all): ``(units, w) uint64``."""
        rows = self.units if units is None else self.units[np.asarray(units, np.int64)]
        return read_words(self._array, rows, w0, self.n_words if w1 is None else w1)

    def source(self) -> tuple[str, str, np.ndarray]:
        """What a worker needs to read this selection itself: (path, key, units)."""
        return (self.path, self.key, self.units)

    def row_ranges(self, parts: int) -> list[tuple[int, int]]:
        """The words split into at most ``parts`` contiguous ranges of whole chunks, as even as chunks allow."""
        chunks = -(-self.n_words // self.chunk_words)
        parts = max(1, min(int(parts), chunks))
        bounds = [round(i * chunks / parts) for i in range(parts + 1)]
        return [(b0 * self.chunk_words, min(b1 * self.chunk_words, self.n_words))
                for b0, b1 in zip(bounds[:-1], bounds[1:]) if b1 > b0]

    def load(self) -> BinaryMatrix:
        """The matrix in memory."""
        return BinaryMatrix(self.read(), self.n_samples, list(self.names), self.layer)

    def nbytes(self) -> int:
        """Bytes of the packed words of this selection (what ``load`` takes in memory)."""
        return self.n_units * self.n_words * 8

    def __repr__(self) -> str:
        return (f"StoredBits({self.path!r}{', ' + repr(self.key) if self.key else ''}, layer={self.layer!r}, "
                f"n_samples={self.n_samples}, n_units={self.n_units}, density={self.density():.3f})")


def open_bits(path: str | os.PathLike, key: str = "") -> StoredBits:
    """The bit matrix stored at ``path`` (under ``key``), read on demand."""
    return StoredBits(path, key)
