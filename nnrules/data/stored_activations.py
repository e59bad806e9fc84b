"""Activations in a Zarr store: what ``record(..., store=)`` writes, opened again, binarized in passes.

Store layout (a Zarr group): attributes ``nnrules = "activations"``, ``layers``, ``unit_names``,
``class_names``, ``shapes``, ``reduce``, ``has_labels``; arrays ``values/<i>`` (layer i, ``(n, units)
float32``, chunks of whole rows ≤ 64 MiB), ``predictions`` and ``labels``; binarized layers under
``bits/<i>`` (see :mod:`nnrules.data.zarr_io`).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .activations import OUTPUT, Activations, output_onehot
from .bits import StoredBits
from .packing import pack_columns
from .zarr_io import VALUE_CHUNK_BYTES, BitsWriter, ChunkedRows, _fresh, value_chunk_rows, zarr_module

__all__ = ["open_activations"]

class StoreRecorder:
    """The recording's side of a store: one :class:`ChunkedRows` per layer, created when the layer's first
    batch shows its width; a size check before anything large is written."""

    def __init__(self, path: str | os.PathLike, n: int) -> None:
        zarr = zarr_module()
        self.existed = Path(path).is_dir()  # a user's own empty folder: kept if the recording fails
        self.path = _fresh(path, overwrite=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.group = zarr.open_group(str(self.path), mode="w")
        self.n = n
        self.layers: list[str] = []
        self.arrays: dict[str, ChunkedRows] = {}

    def allocate(self, name: str, units: int) -> ChunkedRows:
        need = self.n * units * 4
        free = shutil.disk_usage(self.path).free
        if need > free:
            raise ValueError(f"recording layer {name!r} into {str(self.path)!r} needs about {need / 2**30:.1f} GiB "
                             f"({self.n:,} samples × {units:,} units × 4 bytes, before compression) but "
                             f"{free / 2**30:.1f} GiB are free there: pick a store on a larger disk, fewer samples "
                             "or a reduction (reduce='max')")
        self.layers.append(name)
        rows = min(value_chunk_rows(units), max(64, -(-self.n // 64) * 64))
        arr = ChunkedRows(self.group, f"values/{len(self.layers) - 1}", self.n, units, rows)
        self.arrays[name] = arr
        return arr

    def discard(self) -> None:
        """Remove what a failed or cancelled recording wrote (the folder too, unless it was there before)."""
        if not self.existed:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for child in self.path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def estimate(self) -> int:
        """Bytes of the values once every layer seen so far is written (uncompressed)."""
        return sum(self.n * a.shape[1] * 4 for a in self.arrays.values())

    def finish(self, ordered: list[str], unit_names: dict, class_names: list[str], shapes: dict, reduce: str,
               predictions: np.ndarray, labels: np.ndarray | None) -> dict:
        for a in self.arrays.values():
            a.flush()
        self.group.create_array("predictions", data=np.asarray(predictions, np.int64), overwrite=True)
        if labels is not None:
            self.group.create_array("labels", data=np.asarray(labels, np.int64), overwrite=True)
        index = {name: self.layers.index(name) for name in ordered}
        self.group.attrs.update({"nnrules": "activations", "layers": ordered,
                                 "arrays": [f"values/{index[k]}" for k in ordered],
                                 "unit_names": unit_names, "class_names": class_names,
                                 "shapes": {k: list(v) for k, v in shapes.items()}, "reduce": reduce,
                                 "has_labels": labels is not None})
        return {k: self.group[f"values/{index[k]}"] for k in ordered}


def open_activations(path: str | os.PathLike):
    """The :class:`~nnrules.Activations` a ``record(..., store=path)`` wrote, backed by the store (values are
    read on demand)."""
    zarr = zarr_module()
    p = Path(path)
    try:
        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise ValueError(f"{str(p)!r} is not an activations store written by nnrules.record(..., store=): "
                         f"{type(err).__name__}") from None
    if attrs.get("nnrules") != "activations":
        raise ValueError(f"{str(p)!r} is not an activations store written by nnrules.record(..., store=)")
    try:
        values, predictions, labels = _verified_arrays(group, attrs)
        return Activations(values=values, unit_names=attrs["unit_names"], predictions=predictions, labels=labels,
                           class_names=attrs["class_names"], shapes={k: tuple(v) for k, v in attrs["shapes"].items()},
                           reduce=attrs["reduce"], store=str(p))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{str(p)!r} is an activations store that does not hold what its attributes say "
                         f"({err}); record it again with nnrules.record(..., store=)") from None


def _verified_arrays(group, attrs: dict) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """The store's arrays, checked against its attributes: float32 ``(n, units)`` values with one unit name per
    column, int64 predictions (and labels) of length n, the classes in range."""
    layers, arrays, names = attrs["layers"], attrs["arrays"], attrs["unit_names"]
    if not isinstance(layers, list) or not isinstance(arrays, list) or len(layers) != len(arrays):
        raise ValueError("layers and arrays are not two lists of one length")
    n = int((group[str(arrays[0])] if arrays else group["predictions"]).shape[0])  # samples: the first array's rows
    values = {}
    for k, a in zip(layers, arrays):
        x = group[str(a)]
        if x.dtype != np.float32 or len(x.shape) != 2 or x.shape[0] != n or x.shape[1] != len(names[k]):
            raise ValueError(f"layer {k!r} holds {x.dtype} of shape {tuple(x.shape)}, not float32 of "
                             f"({n}, {len(names[k])})")
        values[k] = x
    n_classes = len(attrs["class_names"]) or None
    out = []
    for key in ("predictions", "labels") if attrs["has_labels"] else ("predictions",):
        v = group[key]
        if v.dtype != np.int64 or v.shape != (n,):
            raise ValueError(f"{key} are {v.dtype} of shape {tuple(v.shape)}, not int64 of ({n},)")
        v = np.asarray(v[:])
        if len(v) and (v.min() < (0 if key == "predictions" else -1) or (n_classes and v.max() >= n_classes)):
            raise ValueError(f"{key} hold classes outside 0..{(n_classes or 1) - 1}")
        out.append(v)
    return values, out[0], out[1] if len(out) > 1 else None


def _row_blocks(x) -> list[tuple[int, int]]:
    rows = x.chunks[0] if hasattr(x, "chunks") else value_chunk_rows(x.shape[1])
    return [(s, min(s + rows, x.shape[0])) for s in range(0, x.shape[0], rows)]


def column_means(x) -> np.ndarray:
    """Per-column mean of a stored ``(n, units)`` array, one pass over its row chunks (float64 sums)."""
    total = np.zeros(x.shape[1], np.float64)
    for s, e in _row_blocks(x):
        total += np.asarray(x[s:e], np.float64).sum(axis=0)
    return total / max(x.shape[0], 1)


def column_quantiles(x, q: float) -> np.ndarray:
    """Exact per-column ``q`` quantiles of a stored array, a block of columns at a time (each block's rows
    in memory: at most ``VALUE_CHUNK_BYTES`` × 4 of float64)."""
    n, units = x.shape
    block = max(1, (VALUE_CHUNK_BYTES // 2) // max(8 * n, 1))
    out = np.empty(units, np.float64)
    for c in range(0, units, block):
        out[c: c + block] = np.quantile(np.asarray(x[:, c: c + block], np.float64), q, axis=0)
    return out


def binarize_stored(binarizer, acts) -> dict[str, StoredBits]:
    """``binarizer.transform`` of store-backed activations, written as bit matrices into the same store
    (``bits/<i>``, replaced by the next call) one row block at a time (≤ ``VALUE_CHUNK_BYTES`` × 4 of
    values in memory)."""
    out: dict[str, StoredBits] = {}
    layers = [k for k in acts.layers if k != OUTPUT]
    for i, name in enumerate(layers):
        x = acts.values[name]
        w = BitsWriter(acts.store, acts.n_samples, x.shape[1], acts.unit_names[name], name, f"bits/{i}")
        rows = value_chunk_rows(x.shape[1]) * 4
        for s in range(0, acts.n_samples, rows):
            w.write(pack_columns(binarizer._apply(name, np.asarray(x[s: s + rows]))))
        w.close()
        out[name] = StoredBits(w.path, w.key, verify=False)
    onehot = output_onehot(acts, binarizer.output)
    w = BitsWriter(acts.store, acts.n_samples, onehot.n_units, onehot.names, onehot.layer, f"bits/{len(layers)}")
    w.write(onehot.words)
    w.close()
    out[OUTPUT] = StoredBits(w.path, w.key, verify=False)
    return out
