"""Do the rules matter to the model? Weight interventions (seed 000 Sec. 3.2, "Rules carry class information")."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import as_loader, iterate_inputs
from .hooks import forward_hooks, named_layers, preserved_mode, resolve_layers
from .rules import Rule

__all__ = ["intervene", "class_layer"]


def class_layer(model: nn.Module) -> str:
    """Name of the last ``nn.Linear`` in the model (the layer producing class scores)."""
    linears = [name for name, m in named_layers(model).items() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer; intervene needs a linear class layer")
    return linears[-1]


def _class_inputs(model: nn.Module, name: str, data: Any, batch_size: int):
    """Inputs to the class layer ``(n, d)``, the model's logits ``(n, C)`` and the labels."""
    loader, n = as_loader(data, batch_size)
    feats, logits, labels = [], [], []

    def hook(module, inputs, output):
        feats.append(inputs[0].detach().flatten(1).float())

    with preserved_mode(model), torch.no_grad(), forward_hooks(model, {name: hook}):
        for x, y in iterate_inputs(loader):
            logits.append(model(x).float())
            if y is None:
                raise ValueError("intervene needs labelled data: pass (inputs, labels) or a labelled dataset")
            labels.append(y.reshape(-1))
    return torch.cat(feats), torch.cat(logits), torch.cat(labels)


def intervene(model: nn.Module, rules: Iterable[Rule], data: Any, layer: str | None = None,
              n_random: int = 100, quantile: float = 0.9, seed: int = 0,
              batch_size: int = 256) -> pd.DataFrame:
    """Zero, per class c, the weights into c from the tail units of rules whose head contains c.

    ``rules`` were mined with the output classes as head items and the units feeding the class layer
    ``layer`` (default: the last ``nn.Linear``) as tail items. For each class the accuracy on class c
    (its recall) is measured before and after, and against ``n_random`` interventions on as many
    randomly chosen incoming weights of class c, of which the ``quantile`` is reported (the paper's
    90% quantile). The model itself is never modified: scores are recomputed from the class layer's
    recorded inputs, which is exact when the class layer produces the output (checked).

    Returns one row per class with ``n_weights``, ``acc_before``, ``acc_after``, ``acc_random_q``.
    """
    name = layer if layer is not None else class_layer(model)
    resolve_layers(model, [name], allow_output=False)
    lin = named_layers(model)[name]
    if not isinstance(lin, nn.Linear):
        raise ValueError(f"layer {name!r} is a {type(lin).__name__}, not an nn.Linear")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    feats, logits, labels = _class_inputs(model, name, data, batch_size)
    W = lin.weight.detach().float()
    b = lin.bias.detach().float() if lin.bias is not None else torch.zeros(W.shape[0])
    recomputed = feats @ W.T + b
    if recomputed.shape != logits.shape or not torch.allclose(recomputed, logits, atol=1e-4, rtol=1e-4):
        raise ValueError(f"layer {name!r} does not produce the model's output directly; intervene "
                         "needs the class layer to be the last operation")
    n_classes, n_in = W.shape
    units: dict[int, set[int]] = {c: set() for c in range(n_classes)}
    for r in rules:
        for c in r.head:
            if c >= n_classes:
                raise ValueError(f"rule head item {c} is not a class of the {n_classes}-class output; "
                                 "intervene needs rules mined from the output layer")
            for y in r.tail:
                if y >= n_in:
                    raise ValueError(f"rule tail unit {y} is outside the {n_in} inputs of {name!r}")
                units[c].add(y)
    rng = np.random.default_rng(seed)

    def class_acc(c: int, zero: list[int]) -> float:
        mask = labels == c
        w = W[c].clone()
        w[zero] = 0.0
        scores = recomputed[mask].clone()
        scores[:, c] = feats[mask] @ w + b[c]
        return float((scores.argmax(1) == c).float().mean())

    rows = []
    for c in range(n_classes):
        if not (labels == c).any():
            continue
        zero = sorted(units[c])
        rand = [class_acc(c, rng.choice(n_in, size=len(zero), replace=False).tolist()) for _ in range(n_random)]
        rows.append({"class": c, "n_weights": len(zero), "acc_before": class_acc(c, []),
                     "acc_after": class_acc(c, zero),
                     "acc_random_q": float(np.quantile(rand, quantile)) if zero else class_acc(c, [])})
    return pd.DataFrame(rows, columns=["class", "n_weights", "acc_before", "acc_after", "acc_random_q"])
