"""Recording a model's activations on a data set into preallocated arrays."""
from __future__ import annotations

import json
import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import registry as _registry
from .loading import as_loader, iterate_inputs
from .hooks import OUTPUT, forward_hooks, preserved_mode, resolve_layers
from .hooks import model_device as _model_device

__all__ = ["Activations", "record", "REDUCTIONS", "RecordingError"]


class RecordingError(ValueError):
    """A layer's output cannot be recorded (not a tensor, non-finite, module reused)."""

#: How a conv layer's ``(C, H, W)`` map becomes units: one per channel, or one per channel × position.
REDUCTIONS = ("max", "mean", "l1", "none")
for _name, _label, _help in (
        ("max", "max over positions", "a channel is one unit: its largest value anywhere in the map"),
        ("mean", "mean over positions", "a channel is one unit: its average over the map"),
        ("l1", "l1 norm of the map", "a channel is one unit: the sum of |values| (ERIC's kernel strength)"),
        ("none", "every position", "each channel × position is a unit (many units: slow to mine)")):
    _registry.REDUCTIONS.register(_name, _label, _name, params=(), help=_help)


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


def _reduce(out: torch.Tensor, reduce: str) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, units)``; dense ``(B, F)`` passes through."""
    if out.dim() <= 2:
        return out.reshape(out.shape[0], -1)
    flat = out.flatten(2)  # (B, C, positions)
    if reduce == "max":
        return flat.amax(dim=2)
    if reduce == "mean":
        return flat.mean(dim=2)
    if reduce == "l1":  # ERIC eq. 3: the l1 norm of the kernel's activation map
        return flat.abs().sum(dim=2)
    return flat.flatten(1)  # "none": channel-major, channel c at position p is unit c*P + p


def _unit_names(layer: str, shape: tuple, reduce: str) -> list[str]:
    if len(shape) <= 1:
        return [f"{layer}:{i}" for i in range(int(np.prod(shape)) if shape else 1)]
    if reduce != "none":
        return [f"{layer}:c{c}" for c in range(shape[0])]
    spatial = shape[1:]
    return [f"{layer}:c{c}@{','.join(map(str, pos))}"
            for c in range(shape[0]) for pos in np.ndindex(*spatial)]


def _allocate(n: int, units: int, name: str, memmap_dir: Path | None) -> np.ndarray:
    if memmap_dir is None:
        return np.empty((n, units), dtype=np.float32)
    # a readable name plus a hash of the exact one: "layer.1" and "layer_1" must not share a file
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name) + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return np.lib.format.open_memmap(memmap_dir / f"{safe}.npy", mode="w+", dtype=np.float32,
                                     shape=(n, units))


def record(model: nn.Module, data: Any, layers: Sequence[str], reduce: str = "max",
           batch_size: int = 256, device: str | torch.device | None = None, progress: bool = True,
           memmap_dir: str | os.PathLike | None = None,
           class_names: Sequence[str] | None = None,
           on_batch: Callable[[int, int], None] | None = None,
           store: str | os.PathLike | None = None) -> Activations:
    """Run ``model`` over ``data`` in eval mode without gradients and keep the named layers' outputs.

    Parameters
    ----------
    layers : qualified module names (see :func:`nnrules.layers`); ``"output"`` is the model output,
        which is always recorded.
    reduce : conv outputs ``(C, H, W)`` become C units by ``"max"`` or ``"mean"`` over positions or
        their ``"l1"`` norm (ERIC, seed 001 eq. 3), or C·H·W units with ``"none"``.
    memmap_dir : write the arrays as ``.npy`` memory maps in this folder (for data larger than RAM).
    store : stream the values into a new Zarr store at this path (chunks of whole rows, ≤ 64 MiB each,
        each written once; needs ``nnrules[scale]``) and return activations backed by it: a binarizer reads
        it in passes and writes bit-packed rows beside them, ExplaiNN counts on a Dask cluster from there.
        Before a layer is written its size (n × units × 4 bytes) is checked against the disk's free space.
    on_batch : called as ``on_batch(samples_done, n_samples)`` after each batch (progress bars in apps);
        an exception raised in it stops the recording (cancel) and propagates, hooks removed.

    Each module's train/eval flag, the parameters and the hooks are as before afterwards, also when
    the forward pass fails. Values are reduced inside the hook, before later in-place operations
    (``ReLU(inplace=True)``) can overwrite the tensor.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    names = [n for n in resolve_layers(model, layers) if n != OUTPUT]
    if names and isinstance(model, torch.jit.ScriptModule):
        raise ValueError("a TorchScript model cannot take forward hooks, so only layers=['output'] can "
                         "be recorded from it; save the module with torch.save(model, path) to record "
                         f"inner layers such as {names[0]!r}")
    loader, n = as_loader(data, batch_size)
    mdir = Path(memmap_dir) if memmap_dir is not None else None
    if store is not None and not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be a path (a new Zarr store's folder), got {type(store).__name__}")
    if mdir is not None and store is not None:
        raise ValueError("give memmap_dir or store, not both")
    if mdir is not None:
        mdir.mkdir(parents=True, exist_ok=True)
    sink = None
    if store is not None:
        from ..scale.activations import StoreRecorder
        sink = StoreRecorder(store, n)

    model_device_, dtype = _model_device(model)
    device = torch.device(device) if device is not None else model_device_
    to_model = lambda x: x.to(device, dtype=dtype if dtype is not None and x.is_floating_point() else x.dtype)  # noqa: E731

    values: dict[str, Any] = {}  # arrays, or ChunkedRows writing into a store
    shapes: dict[str, tuple] = {}
    state: dict[str, Any] = {"start": 0, "batch": 0, "calls": {}}

    def make(name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise RecordingError(f"layer {name!r} returns {type(output).__name__}, not a tensor; "
                                "record one of its submodules instead")
            calls = state["calls"]
            calls[name] = calls.get(name, 0) + 1
            if calls[name] > 1:
                parent = name.rsplit(".", 1)[0] if "." in name else ""
                raise RecordingError(f"module {name!r} runs more than once per forward pass (a shared "
                                     "module, e.g. one ReLU reused in a ResNet block); its outputs are ambiguous. "
                                     + (f"Record the block that contains it ({parent!r}) or another layer"
                                        if parent else "Record a module that runs once")
                                     + " (nnrules.layers lists how often each one runs: column 'calls')")
            red = _reduce(output.detach(), reduce).float().cpu().numpy()
            _store(name, red, tuple(output.shape[1:]))
        return hook

    def _store(name: str, red: np.ndarray, shape: tuple) -> None:
        if name not in values:
            values[name] = _allocate(n, red.shape[1], name, mdir) if sink is None else sink.allocate(name, red.shape[1])
            shapes[name] = shape
            if sink is not None and progress and name == OUTPUT:  # every layer has shown its width
                tqdm.write(f"record: about {sink.estimate() / 2**30:.2f} GiB of float32 values into {sink.path}")
        if not np.isfinite(red).all():
            raise RecordingError(f"layer {name!r} produced non-finite activations (NaN/inf) in the batch "
                             f"starting at sample {state['start']}; check the model and the inputs")
        values[name][state["start"]: state["start"] + len(red)] = red

    labels = np.full(n, -1, dtype=np.int64)
    has_labels = False
    moved = device != model_device_
    try:
        if moved:
            model.to(device)
        with preserved_mode(model), torch.no_grad(), forward_hooks(model, {k: make(k) for k in names}):
            bar = tqdm(total=n, desc="record", unit="sample", disable=not progress, leave=False)
            with bar:
                for x, y in iterate_inputs(loader):
                    state["calls"] = {}
                    try:
                        out = model(to_model(x))
                    except RecordingError:
                        raise
                    except Exception as err:
                        raise ValueError(f"the model's forward failed on a batch of shape "
                                         f"{tuple(x.shape)} ({x.dtype}): {err}") from err
                    if not isinstance(out, torch.Tensor) or out.dim() != 2:
                        raise ValueError("the model must return a (batch, n_classes) tensor of logits, "
                                         f"got {getattr(out, 'shape', type(out).__name__)}")
                    _store(OUTPUT, out.detach().float().cpu().numpy(), tuple(out.shape[1:]))
                    if y is not None:
                        yb = y.detach().cpu().numpy().reshape(-1)
                        if yb.dtype.kind == "f" and not np.array_equal(yb, np.round(yb)):
                            raise ValueError(f"labels must be class indices (integers), got {yb[:3].tolist()}…")
                        yb = yb.astype(np.int64)
                        if len(yb) != len(x):
                            raise ValueError(f"a batch has {len(x)} inputs but {len(yb)} labels")
                        if (yb < -1).any() or (yb >= out.shape[1]).any():
                            raise ValueError(f"labels must be 0..{out.shape[1] - 1} (the model's classes) or −1 "
                                             f"for unlabelled, got {sorted(set(yb[(yb < -1) | (yb >= out.shape[1])].tolist()))[:5]}")
                        labels[state["start"]: state["start"] + len(x)] = yb
                        has_labels = True
                    state["start"] += len(x)
                    bar.update(len(x))
                    if on_batch is not None:
                        on_batch(state["start"], n)
    except BaseException:
        if sink is not None:  # a cancelled or failed recording leaves no half-written store behind
            import shutil
            shutil.rmtree(sink.path, ignore_errors=True)
        raise
    finally:
        if moved:
            model.to(model_device_)
    for name in names:
        if name not in values:
            raise ValueError(f"layer {name!r} never ran during the forward pass; pick a module that "
                             "is used by forward()")
    n_classes = values[OUTPUT].shape[1]
    cls = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    if len(cls) != n_classes:
        raise ValueError(f"class_names has {len(cls)} names but the model outputs {n_classes} classes")
    ordered = {k: values[k] for k in names + [OUTPUT]}
    unit_names = {k: _unit_names(k, shapes[k], reduce) for k in names}
    unit_names[OUTPUT] = [f"class {c}" for c in cls]
    if sink is not None:
        logits = sink.arrays[OUTPUT]
        logits.flush()  # the logits are small: predictions come from them in memory
        preds = np.asarray(logits.array[:]).argmax(axis=1)
        ordered = sink.finish(list(ordered), unit_names, cls, shapes, reduce, preds, labels if has_labels else None)
        return Activations(values=ordered, unit_names=unit_names, predictions=preds,
                           labels=labels if has_labels else None, class_names=cls, shapes=shapes,
                           reduce=reduce, store=str(sink.path))
    return Activations(values=ordered, unit_names=unit_names,
                       predictions=np.asarray(values[OUTPUT]).argmax(axis=1),
                       labels=labels if has_labels else None, class_names=cls, shapes=shapes,
                       reduce=reduce)
