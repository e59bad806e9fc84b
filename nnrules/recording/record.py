"""Recording a model's activations on a data set into preallocated arrays."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..registry import REDUCTIONS as _REDUCTION_REGISTRY
from ..data.activations import OUTPUT, REDUCTIONS, Activations
from .loading import as_loader, iterate_inputs
from .hooks import forward_hooks, preserved_mode, resolve_layers
from .hooks import model_device as _model_device

__all__ = ["Activations", "record", "REDUCTIONS", "RecordingError"]


class RecordingError(ValueError):
    """A layer's output cannot be recorded (not a tensor, non-finite, module reused)."""

for _name, _label, _help in (
        ("max", "max over positions", "a channel is one unit: its largest value anywhere in the map"),
        ("mean", "mean over positions", "a channel is one unit: its average over the map"),
        ("l1", "l1 norm of the map", "a channel is one unit: the sum of |values| (ERIC's kernel strength)"),
        ("none", "every position", "each channel × position is a unit (many units: slow to mine)")):
    _REDUCTION_REGISTRY.register(_name, _label, _name, params=(), help=_help)


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
        from ..data.stored_activations import StoreRecorder
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
            sink.discard()
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
