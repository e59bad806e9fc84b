"""The Zarr format of nnrules' stores: bit matrices and recorded values written in whole chunks, read by row
ranges or units. The types over it are :class:`~nnrules.data.bits.StoredBits` and the store-backed
:class:`~nnrules.data.activations.Activations` (:mod:`nnrules.data.stored_activations`).

A bit matrix lives in a Zarr group as one array ``words`` — ``(n_units, ceil(n_samples / 64)) uint64``, the
layout of :class:`~nnrules.data.bits.BinaryMatrix` — chunked ``(UNIT_BLOCK, chunk_rows / 64)``: a row range
(a *shard*: the samples one worker counts over) is a column of chunks, and a set of units over all rows is a
few rows of chunks. Its attributes hold ``n_samples``, ``names``, ``layer``, each unit's ``support`` and a
``digest`` of its words (BLAKE2b over the unit's whole row, the same whatever the chunking): the miner needs
supports and the test "is this tail unit the same as that head unit" without reading the data again.

Every array is written by one writer, in whole chunks, in order (Dask issue 12583: writes that straddle Zarr
chunks from several writers lose data); the last chunk may be partial.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from .packing import popcount_rows

__all__: list[str] = []  # the format's readers and writers; the public names are in .bits and .stored_activations

#: samples per chunk of a bit matrix (a multiple of 64): 65,536 rows × 256 units = 2 MiB a chunk
DEFAULT_CHUNK_ROWS = 1 << 16
#: units per chunk of a bit matrix
UNIT_BLOCK = 256


def zarr_module():
    """``zarr``, or a clear error saying how to get it (it is an optional dependency)."""
    try:
        import zarr
    except ImportError:
        raise ImportError("Zarr stores need the optional dependencies of nnrules[scale]: "
                          "pip install 'nnrules[scale]' (dask[array], distributed, zarr)") from None
    return zarr


def _check_chunk_rows(chunk_rows) -> int:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 64 \
            or chunk_rows % 64:
        raise ValueError(f"chunk_rows must be a positive multiple of 64 (samples per chunk; bits are packed "
                         f"64 to a word), got {chunk_rows!r}")
    return int(chunk_rows)


def _fresh(path: str | os.PathLike, overwrite: bool) -> Path:
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        if not overwrite:
            raise ValueError(f"store {str(p)!r} exists; choose a new path or pass overwrite=True")
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return p


class BitsWriter:
    """Writes a bit matrix into a Zarr group in row order: ``write(words)`` takes the next ``(n_units, w)``
    uint64 words (any w; whole Zarr chunks are written as they fill), keeping each unit's support and digest
    on the way. ``close()`` stores them (:class:`~nnrules.data.bits.StoredBits` opens the result).
    ``chunk_rows`` None: chunks of at most 65,536 rows whose whole row (all units) takes at most ``BUFFER_BYTES`` (the writer's buffer)."""

    BUFFER_BYTES = 64 << 20

    def __init__(self, path: str | os.PathLike, n_samples: int, n_units: int, names: Sequence[str] = (),
                 layer: str = "", key: str = "", chunk_rows: int | None = None) -> None:
        zarr = zarr_module()
        if chunk_rows is None:
            chunk_rows = 64 * min(DEFAULT_CHUNK_ROWS // 64, max(1, self.BUFFER_BYTES // (8 * max(n_units, 1))))
        chunk_rows = _check_chunk_rows(chunk_rows)
        self.path, self.key, self.n_samples = str(path), key, int(n_samples)
        self.n_words = max(1, -(-self.n_samples // 64))
        self.chunk_words = min(chunk_rows // 64, self.n_words)
        group = zarr.open_group(self.path, mode="a")
        self.array = group.create_array(f"{key}/words" if key else "words", shape=(n_units, self.n_words),
                                        chunks=(min(UNIT_BLOCK, max(n_units, 1)), self.chunk_words),
                                        dtype="uint64", fill_value=0, overwrite=True)
        self.names = list(names) if names else [f"{layer}:{i}" if layer else str(i) for i in range(n_units)]
        if len(self.names) != n_units:
            raise ValueError(f"{len(self.names)} names for {n_units} units")
        self.layer = layer
        self.support = np.zeros(n_units, np.int64)
        self._hash = [hashlib.blake2b(digest_size=16) for _ in range(n_units)]
        self._buf = np.zeros((n_units, self.chunk_words), np.uint64)
        self._filled = 0  # words in the buffer
        self.done = 0  # words written to the store

    def write(self, words: np.ndarray) -> None:
        words = np.asarray(words, dtype=np.uint64)
        if words.ndim != 2 or words.shape[0] != len(self.support) or \
                self.done + self._filled + words.shape[1] > self.n_words:
            raise ValueError(f"expected the next words of {len(self.support)} units (at word "
                             f"{self.done + self._filled} of {self.n_words}), got shape {words.shape}")
        while words.shape[1]:
            take = min(words.shape[1], self.chunk_words - self._filled)
            self._buf[:, self._filled: self._filled + take] = words[:, :take]
            self._filled += take
            words = words[:, take:]
            if self._filled == self.chunk_words or self.done + self._filled == self.n_words:
                self._flush()

    def _flush(self) -> None:
        block = np.ascontiguousarray(self._buf[:, : self._filled])
        self.array[:, self.done: self.done + self._filled] = block
        self.support += popcount_rows(block)
        for h, row in zip(self._hash, block):
            h.update(row.tobytes())
        self.done += self._filled
        self._filled = 0

    def close(self) -> None:
        if self.done != self.n_words:
            raise ValueError(f"{self.done} of {self.n_words} words were written")
        self.array.attrs.update({"nnrules": "bits", "n_samples": self.n_samples, "names": self.names,
                                 "layer": self.layer, "support": self.support.tolist(),
                                 "digest": [h.hexdigest() for h in self._hash]})


def read_words(array, rows: np.ndarray, w0: int, w1: int) -> np.ndarray:
    """Words ``[w0, w1)`` of the units ``rows`` of a stored ``words`` array, in the order of ``rows``; read one
    block of units (a row of chunks) at a time into the output, so that the memory it takes is the output and
    one block."""
    out = np.empty((len(rows), w1 - w0), np.uint64)
    block = int(array.chunks[0])
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    for b0 in range(0, int(array.shape[0]), block):
        lo, hi = np.searchsorted(srt, [b0, b0 + block])
        if hi == lo:
            continue
        part = array[b0: min(b0 + block, array.shape[0]), w0:w1]
        out[order[lo:hi]] = part[srt[lo:hi] - b0]
    return out


def open_words(path: str, key: str):
    """The ``words`` array of the bit matrix at ``path`` / ``key``, read-only."""
    return zarr_module().open_array(path, path=f"{key}/words" if key else "words", mode="r")


def verified_attrs(array, attrs: dict, where: str) -> tuple[int, list[str], np.ndarray, list[str]]:
    """``(n_samples, names, support, digest)`` of a stored bit matrix, after checking the attributes against the
    words: dtype exactly uint64, one name, support and digest per unit, ``ceil(n_samples / 64)`` words, no bit
    past the last sample, and every unit's support and digest recomputed from the words (one streamed pass,
    a block of ``UNIT_BLOCK`` units at a time). ValueError naming ``where`` otherwise: a miner reads supports
    and digests from the attributes, so a changed store would give silently wrong rules."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{where} is not a bit matrix as nnrules writes it: {what}; write it again "
                          "(BinaryMatrix.to_zarr, Binarizer on stored activations)")
    if array.dtype != np.uint64 or len(array.shape) != 2:
        raise bad(f"its words are {array.dtype} of shape {tuple(array.shape)}, not 2-d uint64")
    units, n_words = (int(v) for v in array.shape)
    n = attrs.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n_words != max(1, -(-n // 64)):
        raise bad(f"n_samples {n!r} does not fit its {n_words} words of 64 samples")
    names, support, digest = attrs.get("names"), attrs.get("support"), attrs.get("digest")
    if not (isinstance(names, list) and isinstance(support, list) and isinstance(digest, list)) \
            or not len(names) == len(support) == len(digest) == units:
        short = [k for k in ("names", "support", "digest") if not isinstance(attrs.get(k), list)
                 or len(attrs[k]) != units]
        raise bad(f"its {', '.join(short)} are not a list of {units} (one per unit)")
    if not all(isinstance(x, str) for x in names + digest) \
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in support):
        raise bad("its names, digests or supports have the wrong types")
    got = np.asarray(support, np.int64)
    tail = n % 64
    for b0 in range(0, units, int(array.chunks[0])):
        block = np.ascontiguousarray(array[b0: b0 + int(array.chunks[0]), :])
        if tail and (block[:, -1] >> np.uint64(tail)).any():
            raise bad("bits are set past its last sample")
        count = popcount_rows(block)
        for i, row in enumerate(block):
            u = b0 + i
            if count[i] != got[u] or hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() != digest[u]:
                raise bad(f"unit {names[u]!r} has support {int(count[i])} in its words but {int(got[u])} in its "
                          "attributes, or another digest (changed after it was written)")
    return n, list(names), got, list(digest)


class ChunkedRows:
    """A float32 ``(n, units)`` Zarr array filled row block by row block, in order, written in whole chunks:
    rows are buffered until a chunk of ``chunk_rows`` is full (the recording's batches need not line up)."""

    def __init__(self, group, name: str, n: int, units: int, chunk_rows: int) -> None:
        self.array = group.create_array(name, shape=(n, units), chunks=(chunk_rows, units), dtype="float32",
                                        fill_value=0.0, overwrite=True)
        self.shape = (n, units)
        self.chunk_rows = chunk_rows
        self._buf = np.empty((chunk_rows, units), np.float32)
        self._filled = 0  # rows in the buffer
        self._start = 0  # first row of the buffer

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        if rows.start != self._start + self._filled:
            raise ValueError("rows must be written in order")
        values = np.asarray(values, np.float32)
        while len(values):
            take = min(len(values), self.chunk_rows - self._filled)
            self._buf[self._filled: self._filled + take] = values[:take]
            self._filled += take
            values = values[take:]
            if self._filled == self.chunk_rows:
                self.flush()

    def flush(self) -> None:
        if self._filled:
            self.array[self._start: self._start + self._filled] = self._buf[: self._filled]
            self._start += self._filled
            self._filled = 0


#: the most bytes of one chunk of recorded values (and of the recorder's buffer per layer)
VALUE_CHUNK_BYTES = 64 << 20


def value_chunk_rows(units: int) -> int:
    """Rows per chunk of a layer with ``units`` float32 columns: a multiple of 64, at most
    ``VALUE_CHUNK_BYTES`` a chunk, at most 65,536."""
    rows = VALUE_CHUNK_BYTES // max(4 * units, 1)
    return int(min(max(64, rows // 64 * 64), DEFAULT_CHUNK_ROWS))
