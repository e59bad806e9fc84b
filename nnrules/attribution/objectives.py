"""What an attribution or a prototype explains: the summed activation of a group of units, as a function of the
input (hooks removed on exit). Below :mod:`.methods`, :mod:`.zennit_lrp` and :mod:`.prototypes`, which all use it."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..recording.hooks import OUTPUT, named_layers, resolve_layers

__all__ = ["group_objective"]


def _select(out: torch.Tensor, units: list[int], layer: str, relevance: bool = False) -> torch.Tensor:
    """Sum of the group's units of a layer output ``(B, C, ...)`` or ``(B, F)`` → ``(B,)``.

    With ``relevance=True`` the sum is Σ a·sg(a), whose gradient is the activation itself: LRP then starts
    from R = a on the group's units."""
    if max(units) >= out.shape[1] or min(units) < 0:
        raise ValueError(f"unit index out of range for layer {layer!r}: it has {out.shape[1]} "
                         f"{'channels' if out.dim() > 2 else 'units'} (0..{out.shape[1] - 1})")
    sel = out[:, units]
    return (sel * sel.detach() if relevance else sel).flatten(1).sum(1)


class _Reached(Exception):
    """Raised by the hook once the layer's value is kept: the layers above it need not run."""


@contextlib.contextmanager
def group_objective(model: nn.Module, layer: str, units: Sequence[int], relevance: bool = False,
                    pre: bool = False, stop: bool = False) -> Iterator[Callable]:
    """A function ``x → (B,)``: the summed activation of ``units`` of ``layer`` (hook removed on exit).

    ``pre=True`` takes the layer's input instead of its output (e.g. a ReLU's pre-activation). ``stop=True``
    ends the forward pass at the layer once a first pass showed that it runs once per pass (a module called
    twice, like a ResNet block's ReLU, keeps its last call and the whole pass): the layers above it cost
    nothing (a prototype of ``conv1`` of a ResNet-18 runs only its stem). Not for LRP, whose rules need the
    whole pass in place."""
    units = list(units)
    if layer == OUTPUT:
        yield lambda x: _select(model(x), units, layer, relevance)
        return
    resolve_layers(model, [layer], allow_output=True)
    seen: dict[str, torch.Tensor] = {}
    calls = {"n": 0, "stop": False}
    module = named_layers(model)[layer]
    # The objective keeps the original tensor and the network goes on with a copy, so that an in-place op
    # downstream (ReLU(inplace=True), or an in-place ReLU layer itself for ``pre``) cannot overwrite it.
    if pre:
        def keep_input(m, i):
            seen["out"] = i[0]
            calls["n"] += 1
            if calls["stop"]:
                raise _Reached
            return (i[0].clone(), *i[1:])
        handle = module.register_forward_pre_hook(keep_input)
    else:
        def keep_output(m, i, o):
            seen["out"] = o
            calls["n"] += 1
            if calls["stop"]:
                raise _Reached
            return o.clone()
        handle = module.register_forward_hook(keep_output)
    try:
        def f(x):
            calls["n"] = 0
            try:
                model(x)
            except _Reached:
                pass
            calls["stop"] = stop and calls["n"] == 1  # a module that ran once: later passes may end there
            if "out" not in seen:
                raise ValueError(f"layer {layer!r} did not run in the model's forward pass on these inputs; "
                                 "choose a layer the forward pass uses (see nnrules.layers(model, x))")
            out = seen.pop("out")
            return _select(out, units, layer, relevance)
        yield f
    finally:
        handle.remove()
