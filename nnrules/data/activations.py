"""Recorded activations (:class:`Activations`): one ``(n_samples, n_units)`` array per layer, in memory, in an
``.npz`` file or in a Zarr store (:mod:`nnrules.data.stored_activations`); the output layer as items.

Defined here, below recording and binarization, because both read it: :func:`nnrules.record` fills it,
a :class:`~nnrules.data.binarizer.Binarizer` reads it.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .bits import BinaryMatrix

__all__ = ["Activations", "OUTPUT", "REDUCTIONS"]

#: the name of a model's output layer (logits, one unit per class) in every recording
OUTPUT = "output"
#: How a conv layer's ``(C, H, W)`` map becomes units: one per channel, or one per channel × position.
REDUCTIONS = ("max", "mean", "l1", "none")


@dataclass(eq=False)
class Activations:
    """Recorded activations of a model on ``n`` samples.

    ``values[layer]`` is ``(n_samples, n_units) float32``; ``unit_names[layer]`` names its columns.
    The model output is the layer ``"output"`` (logits, one unit per class). ``labels`` are the true
    labels (or ``None``), ``predictions`` the argmax of the logits. ``shapes[layer]`` is the
    per-sample output shape before reduction, ``reduce`` how conv maps were reduced.
    """

    values: dict[str, np.ndarray]
    unit_names: dict[str, list[str]]
    predictions: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    shapes: dict[str, tuple] = field(default_factory=dict)
    reduce: str = "max"
    store: str | None = None  # the Zarr store the values live in (record(..., store=)), read on demand

    def __post_init__(self) -> None:
        if not isinstance(self.values, dict) or not self.values:
            raise ValueError("values must be a dict {layer name: (n_samples, n_units) array} with at least one layer")
        preds = np.asarray(self.predictions)
        if preds.ndim != 1 or (preds.size and not np.issubdtype(preds.dtype, np.integer)):
            raise ValueError(f"predictions must be a 1-D array of class indices, got {preds.dtype} of shape "
                             f"{preds.shape}")
        n = len(preds)
        self.predictions = preds
        names = dict(self.unit_names or {})
        for layer, v in self.values.items():
            if not isinstance(layer, str) or not hasattr(v, "shape") or len(v.shape) != 2:
                raise ValueError(f"values[{layer!r}] must be a 2-D (n_samples, n_units) array, got "
                                 f"{getattr(v, 'shape', type(v).__name__)}")
            if v.shape[0] != n:
                raise ValueError(f"values[{layer!r}] has {v.shape[0]} rows but predictions has {n} samples: every "
                                 "layer needs one row per sample")
            if layer not in names:
                names[layer] = [f"{layer}:{i}" for i in range(v.shape[1])]
            elif len(names[layer]) != v.shape[1]:
                raise ValueError(f"unit_names[{layer!r}] has {len(names[layer])} names for {v.shape[1]} units")
        self.unit_names = names
        if OUTPUT in self.values and n and (preds.min() < 0 or preds.max() >= self.values[OUTPUT].shape[1]):
            raise ValueError(f"predictions must be class indices in 0..{self.values[OUTPUT].shape[1] - 1} "
                             "(one per output unit)")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (n,) or (labels.size and (not np.issubdtype(labels.dtype, np.integer)
                                                         or labels.min() < -1)):
                raise ValueError(f"labels must be {n} class indices (−1 = unlabelled), got {labels.dtype} of "
                                 f"shape {labels.shape}")
            self.labels = labels
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {self.reduce!r}")
        unknown = set(self.shapes) - set(self.values)
        if unknown:
            raise ValueError(f"shapes names layers that are not in values: {sorted(unknown)}")

    @property
    def layers(self) -> list[str]:
        return list(self.values)

    @property
    def logits(self) -> np.ndarray:
        return self.values[OUTPUT]

    @property
    def n_samples(self) -> int:
        return len(self.predictions)

    def __getitem__(self, layer: str) -> np.ndarray:
        if layer not in self.values:
            raise KeyError(f"layer {layer!r} was not recorded; recorded: {self.layers}")
        return self.values[layer]

    def accuracy(self) -> float:
        """Fraction of labelled samples whose prediction equals the true label (label -1 = unlabelled)."""
        if self.labels is None or not (self.labels >= 0).any():
            raise ValueError("no labels were recorded: pass (inputs, labels) or a labelled dataset")
        known = self.labels >= 0
        return float(np.mean(self.predictions[known] == self.labels[known]))

    def subset(self, rows=None, classes: Sequence[int] | None = None) -> "Activations":
        """These activations on some samples and/or as a classifier over some classes only.

        ``rows``: a bool mask or indices of the samples to keep (default all). ``classes``: class indices;
        the output keeps only their logits, predictions become the argmax among them and predictions,
        labels and class names are renumbered 0..len(classes)-1 (labels of other classes become -1). This
        is how a 10-class model is read as a 3-class one (seed 001 Table 1's protocol)."""
        idx = np.arange(self.n_samples) if rows is None else np.asarray(rows)
        if idx.dtype == bool:
            if idx.shape != (self.n_samples,):
                raise ValueError(f"rows as a mask must have {self.n_samples} entries, got shape {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or (idx.size and (
                idx.min() < -self.n_samples or idx.max() >= self.n_samples)):
            raise ValueError(f"rows must be a bool mask or sample indices in 0..{self.n_samples - 1}")
        values = {l: v[idx] for l, v in self.values.items()}
        names, preds = dict(self.unit_names), self.predictions[idx]
        labels = None if self.labels is None else self.labels[idx]
        class_names = list(self.class_names)
        if classes is not None:
            k = len(self.class_names) or self.logits.shape[1]
            cls = [int(c) for c in classes]
            if not cls or len(set(cls)) != len(cls) or min(cls) < 0 or max(cls) >= k:
                raise ValueError(f"classes must be distinct class indices in 0..{k - 1}, got {list(classes)!r}")
            values[OUTPUT] = values[OUTPUT][:, cls]
            names[OUTPUT] = [self.unit_names[OUTPUT][c] for c in cls]
            preds = values[OUTPUT].argmax(1)
            if labels is not None:
                lookup = np.full(k, -1)
                lookup[cls] = np.arange(len(cls))
                labels = np.where(labels >= 0, lookup[np.clip(labels, 0, k - 1)], -1)
            class_names = [class_names[c] for c in cls] if class_names else [str(c) for c in cls]
        return Activations(values, names, preds, labels, class_names, dict(self.shapes), self.reduce)

    def save(self, path: str | os.PathLike) -> None:
        """Write everything to one ``.npz`` file."""
        meta = {"layers": self.layers, "unit_names": self.unit_names, "class_names": self.class_names,
                "shapes": {k: list(v) for k, v in self.shapes.items()}, "reduce": self.reduce,
                "has_labels": self.labels is not None}
        arrays = {f"layer_{i}": np.asarray(v) for i, v in enumerate(self.values.values())}
        arrays["predictions"] = self.predictions
        if self.labels is not None:
            arrays["labels"] = self.labels
        arrays["meta"] = np.array(json.dumps(meta))
        np.savez(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Activations":
        """Activations written by :meth:`save` (no pickles are read)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"activations file {str(path)!r} does not exist or is not a regular file")
        try:
            with np.load(path, allow_pickle=False) as f:  # a file that needs pickles is refused by numpy
                meta = json.loads(str(f["meta"]))
                values = {name: f[f"layer_{i}"] for i, name in enumerate(meta["layers"])}
                fields = dict(unit_names=meta["unit_names"], predictions=f["predictions"],
                              labels=f["labels"] if meta["has_labels"] else None, class_names=meta["class_names"],
                              shapes={k: tuple(v) for k, v in meta["shapes"].items()}, reduce=meta["reduce"])
        except (OSError, KeyError, TypeError, AttributeError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path.name!r} is not an activations file written by Activations.save (nnrules "
                             f"record): {type(err).__name__}") from None
        return cls(values=values, **fields)

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}: {v.shape[1]}" for k, v in self.values.items())
        return f"Activations(n_samples={self.n_samples}, reduce={self.reduce!r}, units={{{dims}}})"


def output_onehot(acts: Activations, mode: str = "predicted") -> BinaryMatrix:
    """The output layer as items: one-hot of the predicted class or of the true label."""
    if mode == "label":
        if acts.labels is None:
            raise ValueError("output='label' needs recorded labels; use output='predicted'")
        cls = acts.labels
    else:
        cls = acts.predictions
    n_classes = acts.values[OUTPUT].shape[1]
    cls = np.asarray(cls)
    known = (cls >= 0) & (cls < n_classes)  # label −1: unlabelled, no class item (never "the last class")
    if mode == "label" and (cls[~known] != -1).any():
        raise ValueError(f"labels must be class indices 0..{n_classes - 1} (or −1 for unlabelled), got "
                         f"{sorted(set(cls[~known].tolist()))[:5]}")
    dense = np.zeros((len(cls), n_classes), dtype=bool)
    dense[np.flatnonzero(known), cls[known]] = True
    return BinaryMatrix.from_dense(dense, acts.unit_names[OUTPUT], OUTPUT)
