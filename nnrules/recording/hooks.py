"""Forward hooks that always come off, layer lookup by name, and the layer table."""
from __future__ import annotations

import contextlib
import difflib
from typing import Callable, Iterator, Sequence

import pandas as pd
import torch
from torch import nn

#: Name under which the model's output (the class units) is recorded (defined with the recordings).
from ..data.activations import OUTPUT

__all__ = ["forward_hooks", "resolve_layers", "layers", "preserved_mode", "class_layer", "named_layers", "OUTPUT",
           "model_device", "on_model"]


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__} "
                        "(load a file with nnrules.load_model)")


def model_device(model: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    """Device and floating dtype of the model's first floating parameter (or buffer); (CPU, None) without
    any (a parameter-free function takes inputs as they are)."""
    _check_model(model)
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), None


def on_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device; floating inputs also in its dtype (a float16 model takes float16)."""
    device, dtype = model_device(model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(x).__name__}")
    if dtype is None:  # no tensor tells where the model lives
        return x
    return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)


def named_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All submodules by qualified name (the root module excluded)."""
    _check_model(model)
    return {name: mod for name, mod in model.named_modules() if name}


def class_layer(model: nn.Module) -> str:
    """Name of the last ``nn.Linear`` in the model (the layer producing class scores)."""
    linears = [name for name, m in named_layers(model).items() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer; intervene needs a linear class layer")
    return linears[-1]


def resolve_layers(model: nn.Module, names: Sequence[str], allow_output: bool = True) -> list[str]:
    """Check layer names against the model; unknown names raise a ValueError listing close matches."""
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("layers is empty: name at least one layer (see nnrules.layers(model, x))")
    valid = named_layers(model)
    for name in names:
        if name == OUTPUT and allow_output:
            continue
        if name not in valid:
            close = difflib.get_close_matches(name, list(valid), n=5, cutoff=0.4)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            some = ", ".join(map(repr, list(valid)[:12])) + (" …" if len(valid) > 12 else "")
            raise ValueError(f"layer {name!r} does not exist in {type(model).__name__}.{hint} "
                             f"Valid names: {some}{' or ' + repr(OUTPUT) if allow_output else ''}. "
                             "List them with nnrules.layers(model, example_input).")
    if len(set(names)) != len(names):
        raise ValueError(f"layers has duplicates: {names}")
    return names


@contextlib.contextmanager
def forward_hooks(model: nn.Module, hooks: dict[str, Callable]) -> Iterator[None]:
    """Attach ``{layer name: hook(module, inputs, output)}`` for the block; removed on any exit."""
    if hooks:
        resolve_layers(model, list(hooks), allow_output=False)
    modules = named_layers(model)
    handles = []
    try:
        for name, fn in hooks.items():
            handles.append(modules[name].register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def preserved_mode(model: nn.Module, training: bool = False) -> Iterator[None]:
    """Put every submodule in eval (or train) mode for the block, restoring each one's own flag."""
    _check_model(model)
    flags = {m: m.training for m in model.modules()}
    try:
        model.train(training)
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag


def _n_units(shape: tuple[int, ...]) -> int:
    # (C, *spatial) -> C channels; (F,) -> F features.
    return int(shape[0]) if shape else 1


def _fingerprint(t: torch.Tensor) -> tuple:
    """Shape, sum, sum of squares and 64 evenly spaced values: equal for equal tensors, and two different
    maps of one network practically never share all of them."""
    flat = t.reshape(-1).double()
    step = max(1, flat.numel() // 64)
    return (tuple(t.shape), float(flat.sum()), float((flat * flat).sum()), tuple(flat[::step][:64].tolist()))


def layers(model: nn.Module, example_input: torch.Tensor) -> pd.DataFrame:
    """One row per submodule that ran on ``example_input`` (a batch, e.g. ``(1, 1, 8, 8)``).

    Columns: ``name`` (qualified, as ``record`` takes it), ``type``, ``output_shape`` (per sample, of the
    first call), ``n_units`` (channels for conv-like outputs, features for dense ones), ``kind`` ("conv"
    when the output has spatial positions, else "dense"), ``leaf`` (no children), ``calls`` (how often it
    ran in one forward pass: a module used more than once — a ReLU reused in a ResNet block — cannot be
    recorded; record the block that contains it), ``passes_on`` (for a container: the submodule that ran
    once whose very output it returns, e.g. a ``Sequential``'s last layer; "" when its output is its own, as
    a residual block's sum). Rows are in the order the modules finished; the model output is the last
    row, named ``"output"``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError("example_input must be a tensor batch, e.g. dataset[0][0].unsqueeze(0)")
    rows: list[dict] = []
    calls: dict[str, int] = {}
    # each module's first output as a fingerprint taken when it finished (later in-place ops change the tensor;
    # a fingerprint instead of a copy keeps a 224-px pass through a deep net from holding every map twice)
    prints: dict[str, tuple] = {}
    mods = named_layers(model)

    def make(name: str) -> Callable:
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            calls[name] = calls.get(name, 0) + 1
            if calls[name] > 1:
                return
            prints[name] = _fingerprint(output.detach())
            shape = tuple(output.shape[1:])
            rows.append({"name": name, "type": type(module).__name__, "output_shape": shape,
                         "n_units": _n_units(shape), "kind": "conv" if len(shape) > 1 else "dense",
                         "leaf": not any(True for _ in module.children())})
        return hook

    with preserved_mode(model), torch.no_grad(), forward_hooks(model, {n: make(n) for n in mods}):
        try:
            out = model(example_input)
        except Exception as err:
            raise ValueError(f"the model's forward failed on an input of shape "
                             f"{tuple(example_input.shape)}: {err}") from err
    for i, row in enumerate(rows):
        row["calls"], row["passes_on"] = calls[row["name"]], ""
        if row["leaf"]:
            continue
        mine = prints[row["name"]]
        for inner in reversed(rows[:i]):  # its submodules finished before it; the last one first
            n = inner["name"]
            if n.startswith(row["name"] + ".") and calls[n] == 1 and prints[n] == mine:
                row["passes_on"] = n
                break
    if isinstance(out, torch.Tensor):
        shape = tuple(out.shape[1:])
        rows.append({"name": OUTPUT, "type": "output", "output_shape": shape,
                     "n_units": _n_units(shape), "kind": "dense", "leaf": True, "calls": 1, "passes_on": ""})
    return pd.DataFrame(rows, columns=["name", "type", "output_shape", "n_units", "kind", "leaf", "calls", "passes_on"])
