"""Bit-packed binary matrices and the numba kernels that count over them.

Layout, used everywhere in nnrules: **one packed row per item (unit)**. An item's row is its
tid-list over samples, stored as ``uint64`` words, bit ``s % 64`` of word ``s // 64`` set when
sample ``s`` has the item. ``words`` has shape ``(n_items, ceil(n_samples / 64))``; bits past
``n_samples`` are always zero, so popcounts need no masking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numba
from numba.core import types
from numba.extending import intrinsic
import numpy as np

__all__ = ["BinaryMatrix", "pack_columns", "unpack_columns", "popcount_rows", "and_count",
           "tidlists"]


# ----------------------------------------------------------------------------- kernels
@intrinsic
def _ctpop(typingctx, x):
    """LLVM's ctpop on a uint64: one POPCNT instruction, and vectorisable (VPOPCNTQ) inside word loops."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.zext(builder.ctpop(args[0]), context.get_value_type(types.int64))
    return sig, codegen


@numba.njit(cache=True, inline="always")
def _popcount64(x: np.uint64) -> np.int64:
    """Number of set bits of a uint64 word."""
    return _ctpop(x)


def _check_words(name: str, words, n_samples: int | None = None) -> None:
    """``words`` must be a ``(n_items, n_words) uint64`` matrix, holding ``n_samples`` bits per item."""
    if not isinstance(words, np.ndarray) or words.ndim != 2 or words.dtype != np.uint64:
        raise ValueError(f"{name} must be a 2-D uint64 word matrix (n_items, n_words) as BinaryMatrix.words, "
                         f"got {getattr(words, 'dtype', type(words).__name__)} of shape {getattr(words, 'shape', None)}")
    if n_samples is not None and not (isinstance(n_samples, (int, np.integer))
                                      and 0 <= n_samples <= 64 * words.shape[1]):
        raise ValueError(f"n_samples must be an integer in 0..{64 * words.shape[1]} for {words.shape[1]} words "
                         f"per item, got {n_samples!r}")


def popcount_rows(words: np.ndarray) -> np.ndarray:
    """Support of each item: ``words (n_items, n_words) uint64`` -> ``(n_items,) int64``."""
    _check_words("words", words)
    return _popcount_rows(np.ascontiguousarray(words))


@numba.njit(cache=True)
def _popcount_rows(words: np.ndarray) -> np.ndarray:
    out = np.zeros(words.shape[0], dtype=np.int64)
    for i in range(words.shape[0]):
        c = 0
        for w in range(words.shape[1]):
            c += _popcount64(words[i, w])
        out[i] = c
    return out


def and_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection sizes ``|T_x ∩ T_y|`` for all item pairs: ``(p, W), (q, W) -> (p, q) int64``.

    Both are bit-packed word matrices over the same samples (the same word count ``W``)."""
    _check_words("a", a)
    _check_words("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b cover different samples: {a.shape[1]} and {b.shape[1]} words per item")
    return _and_count(np.ascontiguousarray(a), np.ascontiguousarray(b))


@numba.njit(cache=True, parallel=True)
def _and_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p, q, nw = a.shape[0], b.shape[0], a.shape[1]
    out = np.zeros((p, q), dtype=np.int64)
    for i in numba.prange(p):
        for j in range(q):
            c = 0
            for w in range(nw):
                c += _popcount64(a[i, w] & b[j, w])
            out[i, j] = c
    return out


@numba.njit(cache=True)
def _tidlists(words: np.ndarray):
    supp = _popcount_rows(words)
    indptr = np.zeros(words.shape[0] + 1, dtype=np.int64)
    for i in range(words.shape[0]):
        indptr[i + 1] = indptr[i] + supp[i]
    indices = np.empty(indptr[-1], dtype=np.int64)
    for i in range(words.shape[0]):
        pos = indptr[i]
        for w in range(words.shape[1]):
            x = words[i, w]
            while x != 0:
                low = x & (~x + np.uint64(1))  # lowest set bit
                # index of that bit = popcount(low - 1)
                indices[pos] = w * 64 + _popcount64(low - np.uint64(1))
                pos += 1
                x ^= low
    return indptr, indices


def tidlists(words: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR tid-lists ``(indptr (n_items+1,), indices (nnz,))``, sample ids ascending per item."""
    _check_words("words", words, n_samples)
    return _tidlists(np.ascontiguousarray(words, dtype=np.uint64))


def pack_columns(dense: np.ndarray) -> np.ndarray:
    """``dense (n_samples, n_items) bool`` -> ``words (n_items, n_words) uint64``.

    Packs along the samples in the array's own memory order (``np.packbits`` over axis 0 reads rows
    contiguously), then transposes the 8× smaller bytes: O(n·m) with sequential reads, seconds for
    88,162 × 16,470 (a transposed view packed along its rows took minutes)."""
    dense = np.asarray(dense)
    if dense.ndim != 2:
        raise ValueError(f"dense must be a 2-D (n_samples, n_items) array, got shape {dense.shape}")
    if dense.dtype != bool:
        if dense.size and not (np.issubdtype(dense.dtype, np.number) and np.isin(dense, (0, 1)).all()):
            raise ValueError("dense must hold binary data (bool or 0/1 values)")
        dense = dense.astype(bool)
    n, p = dense.shape
    n_words = max(1, -(-n // 64))
    if dense.flags.f_contiguous and not dense.flags.c_contiguous:
        bytes_ = np.packbits(dense.T, axis=1, bitorder="little")  # (p, ceil(n/8)): rows already contiguous
    else:
        bytes_ = np.packbits(dense, axis=0, bitorder="little").T  # (p, ceil(n/8)) view
    padded = np.zeros((p, n_words * 8), dtype=np.uint8)
    padded[:, : bytes_.shape[1]] = bytes_
    return padded.view("<u8").astype(np.uint64, copy=False).reshape(p, n_words)


def unpack_columns(words: np.ndarray, n_samples: int) -> np.ndarray:
    """Inverse of :func:`pack_columns`: ``words (n_items, n_words)`` -> ``(n_samples, n_items) bool``."""
    _check_words("words", words, n_samples)
    bytes_ = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(bytes_, axis=1, count=n_samples, bitorder="little")
    return bits.T.astype(bool)


# ----------------------------------------------------------------------------- container
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

    def to_zarr(self, path, chunk_rows: int = 1 << 16, overwrite: bool = False):
        """Write into a new Zarr store at ``path`` in chunks of ``chunk_rows`` samples (a multiple of 64) and
        return it as :class:`~nnrules.scale.StoredBits` (needs ``nnrules[scale]``). The packed form takes
        ``n_units · ceil(n_samples / 64) · 8`` bytes before compression."""
        from ..scale.store import write_bits
        return write_bits(self, path, chunk_rows=chunk_rows, overwrite=overwrite)

    @classmethod
    def from_zarr(cls, path, key: str = "") -> "BinaryMatrix":
        """The matrix stored at ``path`` (by :meth:`to_zarr`, or under ``key`` by a Binarizer on stored
        activations), in memory. :func:`nnrules.scale.open_bits` opens it without reading it."""
        from ..scale.store import StoredBits
        return StoredBits(path, key).load()

    def __repr__(self) -> str:
        return (f"BinaryMatrix(layer={self.layer!r}, n_samples={self.n_samples}, "
                f"n_units={self.n_units}, density={self.density():.3f})")
