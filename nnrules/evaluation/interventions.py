"""Do the rules matter to the model? Weight interventions (seed 000 Sec. 3.2, "Rules carry class information")."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.rules import Rule
from ..recording.hooks import class_layer, forward_hooks, named_layers, on_model, preserved_mode, resolve_layers
from ..recording.loading import as_loader, iterate_inputs

__all__ = ["intervene", "zero_filters"]


def _class_inputs(model: nn.Module, name: str, data: Any, batch_size: int):
    """Inputs to the class layer ``(n, d)``, the model's logits ``(n, C)`` and the labels."""
    loader, n = as_loader(data, batch_size)
    feats, logits, labels = [], [], []

    def hook(module, inputs, output):
        feats.append(inputs[0].detach().flatten(1).float().cpu())

    with preserved_mode(model), torch.no_grad(), forward_hooks(model, {name: hook}):
        for x, y in iterate_inputs(loader):
            logits.append(model(on_model(model, x)).float().cpu())
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
    W = lin.weight.detach().float().cpu()  # the intervention is recomputed from the recorded inputs, on the CPU
    b = lin.bias.detach().float().cpu() if lin.bias is not None else torch.zeros(W.shape[0])
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


def zero_filters(model: nn.Module, layer: str, filters: dict[int, Sequence[int]], data: Any, n_random: int = 10,
                 seed: int = 0, batch_size: int = 256) -> pd.DataFrame:
    """Seed 002 Sec. 4.2: for each class c in ``filters``, the accuracy on the samples labelled c with the
    activation maps of ``filters[c]`` (channels of ``layer``) set to zero, against ``n_random`` random
    sets of as many filters (mean and std). The model is unchanged afterwards (a forward hook, removed).

    Returns one row per class: ``n_filters``, ``acc_before``, ``acc_after``, ``acc_random``,
    ``acc_random_std``.
    """
    resolve_layers(model, [layer], allow_output=False)
    loader, _ = as_loader(data, batch_size)
    xs, ys = [], []
    for x, y in iterate_inputs(loader):
        if y is None:
            raise ValueError("zero_filters needs labelled data: pass (inputs, labels) or a labelled dataset")
        xs.append(x)
        ys.append(y.reshape(-1))
    X, Y = torch.cat(xs), torch.cat(ys)
    zero: list[int] = []

    def hook(module, inputs, output):
        if zero:
            output = output.clone()
            output[:, zero] = 0.0
        return output

    by_class = {int(c): X[Y == c] for c in Y.unique()}

    def acc(c: int, channels: Sequence[int]) -> float:
        zero[:] = [int(f) for f in channels]
        xc = by_class[c]
        hits = sum(int((model(on_model(model, xc[i: i + batch_size])).argmax(1) == c).sum())
                   for i in range(0, len(xc), batch_size))
        return hits / len(xc)

    rng = np.random.default_rng(seed)
    rows = []
    with preserved_mode(model), torch.no_grad(), forward_hooks(model, {layer: hook}):
        seen = {}
        with forward_hooks(model, {layer: lambda m, i, o: seen.__setitem__("c", o.shape[1])}):
            model(on_model(model, X[:1]))
        n_channels = seen["c"]
        for c, fs in sorted(filters.items()):
            fs = sorted({int(f) for f in fs})
            if fs and (min(fs) < 0 or max(fs) >= n_channels):
                raise ValueError(f"filters for class {c} must be channels of {layer!r} (0..{n_channels - 1}), got {fs}")
            if not (Y == c).any():
                continue
            rand = [acc(c, rng.choice(n_channels, len(fs), replace=False)) for _ in range(n_random)] if fs else []
            rows.append({"class": c, "n_filters": len(fs), "acc_before": acc(c, []), "acc_after": acc(c, fs),
                         "acc_random": float(np.mean(rand)) if rand else acc(c, []),
                         "acc_random_std": float(np.std(rand)) if rand else 0.0})
    return pd.DataFrame(rows, columns=["class", "n_filters", "acc_before", "acc_after", "acc_random", "acc_random_std"])
