"""Transactions as CSR arrays: reading FIMI files, and the conversions itemset mining starts from.

A transaction database of n rows over item ids is held as ``indptr (n+1,) int64`` and ``ids (nnz,) int32``
(row t's items at ``ids[indptr[t]:indptr[t+1]]``). Every input the miners take (lists of item ids, scipy
sparse, bool matrices, bit-packed :class:`~nnrules.BinaryMatrix`) reaches this form in O(nnz + n + items).
"""
from __future__ import annotations

import gzip
import itertools
import numbers
import os
import zlib
from dataclasses import dataclass
from typing import Collection, Sequence

import numba
import numpy as np

from .packing import _popcount64

__all__ = ["Transactions", "read_fimi"]

_MAX_ID = 2 ** 31 - 1


@dataclass(eq=False)
class Transactions:
    """Transactions over integer item ids, as CSR arrays: row t holds ``ids[indptr[t]:indptr[t+1]]``.

    ``indptr (n+1,) int64``, ``ids (nnz,) int32`` (0 ≤ id < 2**31). Memory 8·(n + 1) + 4·nnz bytes; the
    miners take it as it is (:func:`nnrules.frequent_itemsets`, :meth:`nnrules.BinaryMatrix.from_transactions`).
    Build with :meth:`from_lists` or :func:`read_fimi`."""

    indptr: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        indptr = np.asarray(self.indptr)
        ids = np.asarray(self.ids)
        if indptr.ndim != 1 or len(indptr) < 1 or indptr.dtype.kind not in "iu" or ids.ndim != 1 \
                or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError("Transactions needs a 1-D integer indptr (n+1,) and 1-D integer ids; build it with "
                             "Transactions.from_lists(lists of item ids)")
        if indptr[0] != 0 or indptr[-1] != len(ids) or (np.diff(indptr) < 0).any():
            raise ValueError(f"indptr must rise from 0 to len(ids)={len(ids)}, got {indptr[0]}…{indptr[-1]}")
        if ids.size and (ids.min() < 0 or ids.max() > _MAX_ID):
            bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
            raise ValueError(f"item ids must be ≥ 0 and < 2**31 (map them to 0..k-1 first), got {bad}")
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.ids = np.ascontiguousarray(ids, dtype=np.int32)

    @classmethod
    def from_lists(cls, transactions: Sequence[Collection[int]]) -> "Transactions":
        """Lists (tuples, sets, arrays) of non-negative integer item ids, one per transaction."""
        return cls(*csr_from_transactions(transactions))

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        """One more than the largest item id (the columns of the packed matrix)."""
        return int(self.ids.max()) + 1 if self.ids.size else 0

    def to_lists(self) -> list[list[int]]:
        """The transactions as lists of item ids (pyfim's input)."""
        ids = self.ids.tolist()
        b = self.indptr.tolist()
        return [ids[b[t]:b[t + 1]] for t in range(len(self))]

    def __repr__(self) -> str:
        return f"Transactions(n={len(self)}, items={self.n_items}, nnz={len(self.ids)})"


def read_fimi(path: str | os.PathLike) -> Transactions:
    """A FIMI ``.dat`` file (one transaction a line, non-negative integer item ids separated by blanks;
    ``.gz`` read as gzip) as :class:`Transactions`. Blank lines are empty transactions; anything else than
    digits and blanks raises a ``ValueError`` naming the line. Parsed in one pass over the bytes (numba):
    retail's 4 MB in milliseconds."""
    from .memory import check_allocation, memory_budget

    if not os.path.isfile(path):
        raise ValueError(f"path {os.fspath(path)!r} does not exist or is not a file")
    name = os.fspath(path)
    if name.endswith(".gz"):
        cap = memory_budget() // 4  # the text, then its parse (≤ 12 bytes per 2 bytes of text, bounded below)
        out = bytearray()
        try:
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 24):
                    out += chunk
                    if len(out) > cap:
                        raise ValueError(f"{name!r} decompresses to more than {cap / 2 ** 30:,.1f} GiB, the most "
                                         "read here (NNRULES_MAX_BYTES sets the cap)")
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise ValueError(f"{name!r} is not a whole gzip file ({type(err).__name__}): decompress it to check, "
                             "or read the plain .dat") from None
        data = np.frombuffer(bytes(out), dtype=np.uint8)
    else:
        check_allocation(os.path.getsize(path), f"reading {name!r}")
        with open(path, "rb") as f:
            data = np.frombuffer(f.read(), dtype=np.uint8)
    lines, numbers = _count_fimi(data)
    check_allocation(8 * (lines + 2) + 4 * (numbers + 1), f"the {lines:,} transactions of {name!r}")
    indptr, ids, bad = _parse_fimi(data, lines, numbers)
    if bad >= 0:
        line = int(np.count_nonzero(data[:bad] == 10)) + 1
        start = int(np.flatnonzero(data[:bad] == 10)[-1]) + 1 if line > 1 else 0
        text = bytes(data[start:start + 60]).split(b"\n")[0].decode("latin-1")
        raise ValueError(f"{os.fspath(path)!r} line {line}: item ids must be non-negative integers separated by "
                         f"blanks, got {text!r}")
    return Transactions(indptr, ids)


@numba.njit(cache=True)
def _count_fimi(data):
    """(lines, runs of digits) of a FIMI file's bytes: what its parse will allocate, counted first."""
    n_lines = 1
    numbers = 0
    in_num = False
    for b in data:
        n_lines += b == 10
        digit = 48 <= b <= 57
        numbers += digit and not in_num
        in_num = digit
    return n_lines, numbers


@numba.njit(cache=True)
def _parse_fimi(data, n_lines, n_numbers):
    """Bytes of a FIMI file -> (indptr, ids, position of the first bad byte or -1)."""
    indptr = np.zeros(n_lines + 1, dtype=np.int64)
    ids = np.empty(n_numbers + 1, dtype=np.int32)
    k = 0
    t = 0
    val = 0
    in_num = False
    for p in range(data.shape[0]):
        b = data[p]
        if 48 <= b <= 57:
            val = val * 10 + (b - 48)
            if val > 2147483647:  # an id of int32
                return indptr, ids[:0], p
            in_num = True
            continue
        if in_num:
            ids[k] = val
            k += 1
            val = 0
            in_num = False
        if b == 10:
            t += 1
            indptr[t] = k
        elif b != 32 and b != 9 and b != 13:
            return indptr, ids[:0], p
    if in_num:
        ids[k] = val
        k += 1
    if data.shape[0] and data[data.shape[0] - 1] != 10:
        t += 1
    indptr[t] = k
    return indptr[: t + 1].copy(), ids[:k].copy(), -1


def csr_from_transactions(transactions: Sequence[Collection[int]], name: str = "transactions"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Lists (or arrays) of non-negative integer item ids -> CSR ``(indptr (n+1,) int64, ids (nnz,) int32)``.

    Ids are kept as given (duplicates within a row are allowed and count once where it matters)."""
    if isinstance(transactions, (str, bytes)) or not isinstance(transactions, Sequence):
        raise TypeError(f"{name} must be a list of transactions (each a list of item ids), "
                        f"got {type(transactions).__name__}")
    try:
        lens = np.fromiter(map(len, transactions), dtype=np.int64, count=len(transactions))
    except TypeError:
        raise TypeError(f"{name} must be a list of transactions, each a list of integer item ids") from None
    indptr = np.zeros(len(transactions) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    try:
        ids = np.fromiter(itertools.chain.from_iterable(transactions), dtype=np.int32, count=int(indptr[-1]))
    except (TypeError, ValueError, OverflowError):
        bad = next((x for t in transactions for x in t
                    if isinstance(x, bool) or not isinstance(x, numbers.Integral)), None)
        if bad is None:
            big = next(x for t in transactions for x in t if not 0 <= x <= _MAX_ID)
            raise ValueError(f"{name}: item ids must be ≥ 0 and < 2**31 (map them to 0..k-1 first), "
                             f"got {big}") from None
        raise TypeError(f"{name}: item ids must be integers (map other items to ids first), got {bad!r}") from None
    if ids.size and ids.min() < 0:
        raise ValueError(f"{name}: item ids must be ≥ 0, got {int(ids.min())}")
    return indptr, ids


@numba.njit(cache=True)
def distinct_counts(indptr, ids, n_ids):
    """Number of transactions holding each id ``(n_ids,) int64``, a duplicate in a row counted once."""
    counts = np.zeros(n_ids, dtype=np.int64)
    last = np.full(n_ids, -1, dtype=np.int64)
    for t in range(indptr.shape[0] - 1):
        for p in range(indptr[t], indptr[t + 1]):
            i = ids[p]
            if last[i] != t:
                last[i] = t
                counts[i] += 1
    return counts


@numba.njit(cache=True)
def ranked_layout(indptr, ids, rank, m):
    """The items with ``rank[id] ≥ 0`` (ranks 0..m-1) of CSR transactions over ids, laid out both ways: rows
    ``(indptr, rows int32)`` with each row's ranks ascending, and tid-lists ``(vptr, tids int32)`` ascending;
    a duplicate in a row counts once. Two counting sorts, O(nnz + n + m); memory 4 bytes per frequent
    occurrence for each layout (infrequent items are never copied)."""
    n = indptr.shape[0] - 1
    vptr = np.zeros(m + 1, dtype=np.int64)
    for p in range(ids.shape[0]):
        r = rank[ids[p]]
        if r >= 0:
            vptr[r + 1] += 1
    for r in range(m):
        vptr[r + 1] += vptr[r]
    fill = vptr[:m].copy()
    tids = np.empty(vptr[m], dtype=np.int32)
    for t in range(n):
        for p in range(indptr[t], indptr[t + 1]):
            r = rank[ids[p]]
            if r >= 0:
                tids[fill[r]] = t
                fill[r] += 1
    row_ptr = np.zeros(n + 1, dtype=np.int64)
    w = 0
    for r in range(m):  # drop duplicates in place: each tid-list is ascending, a repeat follows its first
        last = -1
        lo = vptr[r]
        vptr[r] = w
        for q in range(lo, vptr[r + 1]):
            t = tids[q]
            if t != last:
                tids[w] = t
                w += 1
                row_ptr[t + 1] += 1
                last = t
    vptr[m] = w
    row_ptr, rows = _rows_of(vptr, tids, n, row_ptr)
    return row_ptr, rows, vptr, tids[:w]


@numba.njit(cache=True)
def _rows_of(vptr, tids, n, row_ptr):
    """Tid-lists (item r's at ``tids[vptr[r]:vptr[r+1]]``) -> CSR rows ``(indptr, rows int32)``, each row's
    items ascending; ``row_ptr`` holds each row's length at ``[t + 1]`` (turned into the offsets)."""
    for t in range(n):
        row_ptr[t + 1] += row_ptr[t]
    rows = np.empty(row_ptr[n], dtype=np.int32)
    pos = row_ptr[:n].copy()
    for r in range(vptr.shape[0] - 1):
        for p in range(vptr[r], vptr[r + 1]):
            t = tids[p]
            rows[pos[t]] = r
            pos[t] += 1
    return row_ptr, rows


@numba.njit(cache=True)
def bits_layout(words, order, supp, n):
    """Item bitsets ``words`` restricted to the items ``order`` (ranked 0..m-1, ``supp`` their supports) ->
    rows ``(indptr, rows int32)`` and tid-lists ``(vptr, tids int32)`` as :func:`ranked_layout` gives them.
    One scan of the m bitsets, then one pass over the occurrences: O(m·n_words + nnz)."""
    m = order.shape[0]
    vptr = np.zeros(m + 1, dtype=np.int64)
    for r in range(m):
        vptr[r + 1] = vptr[r] + supp[r]
    tids = np.empty(vptr[m], dtype=np.int32)
    row_ptr = np.zeros(n + 1, dtype=np.int64)
    q = 0
    for r in range(m):
        for w in range(words.shape[1]):
            x = words[order[r], w]
            while x != 0:
                low = x & (~x + np.uint64(1))
                t = w * 64 + _popcount64(low - np.uint64(1))
                tids[q] = t
                row_ptr[t + 1] += 1
                q += 1
                x ^= low
    row_ptr, rows = _rows_of(vptr, tids, n, row_ptr)
    return row_ptr, rows, vptr, tids


@numba.njit(cache=True)
def bits_from_tidlists(vptr, tids, n):
    """Tid-lists -> item bitsets ``(m, ceil(n/64)) uint64`` (the library's packed layout)."""
    m = vptr.shape[0] - 1
    out = np.zeros((m, max(1, (n + 63) // 64)), dtype=np.uint64)
    for j in range(m):
        for p in range(vptr[j], vptr[j + 1]):
            t = tids[p]
            out[j, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
    return out
