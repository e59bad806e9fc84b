"""Do the rules matter to the model? Weight interventions (seed 000 Sec. 3.2, "Rules carry class information")."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import as_loader, iterate_inputs
from .hooks import forward_hooks, named_layers, preserved_mode, resolve_layers
from .rules import Rule

__all__ = ["intervene", "class_layer", "pixel_flipping", "FlipCurve", "model_randomization", "zero_filters"]


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
        hits = sum(int((model(xc[i: i + batch_size]).argmax(1) == c).sum()) for i in range(0, len(xc), batch_size))
        return hits / len(xc)

    rng = np.random.default_rng(seed)
    rows = []
    with preserved_mode(model), torch.no_grad(), forward_hooks(model, {layer: hook}):
        seen = {}
        h = named_layers(model)[layer].register_forward_hook(lambda m, i, o: seen.__setitem__("c", o.shape[1]))
        try:
            model(X[:1])
        finally:
            h.remove()
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


# --------------------------------------------------------------------------- explanation quality (book seed 003)


@dataclass
class FlipCurve:
    """Pixel-flipping / region-perturbation curve: most relevant regions perturbed first."""

    fractions: np.ndarray  # (S + 1,) share of regions perturbed at each point
    scores: np.ndarray  # (B, S + 1) target score after each step (first column: unperturbed)

    @property
    def aopc(self) -> np.ndarray:
        """Area over the perturbation curve per input ``(B,)``: mean over steps of f(x) − f(x_k).
        Larger means a steeper drop, i.e. a better ordering."""
        return (self.scores[:, :1] - self.scores).mean(axis=1)

    @property
    def mean(self) -> np.ndarray:
        return self.scores.mean(axis=0)


def pixel_flipping(model: nn.Module, inputs: torch.Tensor, attributions: torch.Tensor | str, target,
                   *, steps: int = 16, patch: int = 1, fill: str | float = "uniform",
                   value_range: tuple[float, float] | None = None, seed: int = 0,
                   batch_size: int = 256) -> FlipCurve:
    """Perturb the ``patch``×``patch`` regions of ``inputs`` ``(B, C, H, W)`` in order of decreasing summed
    relevance (``attributions`` shaped like ``inputs``; or ``"random"`` for a random order) and record the
    target class score after each of ``steps`` equal shares (book Ch. 1 "perturbation analysis", Ch. 22).

    ``fill``: ``"uniform"`` noise in ``value_range`` (default: the batch's min/max; the untargeted
    perturbation the book recommends), ``"mean"`` (per-channel mean of the batch), or a constant.
    All perturbed copies of a step run as one batch.
    """
    if inputs.dim() != 4:
        raise ValueError(f"inputs must be images (B, C, H, W), got shape {tuple(inputs.shape)}")
    b, c, h, w = inputs.shape
    if h % patch or w % patch:
        raise ValueError(f"patch={patch} must divide the image size {h}×{w}")
    gen = torch.Generator().manual_seed(seed)
    gh, gw = h // patch, w // patch
    n_regions = gh * gw
    if isinstance(attributions, str):
        if attributions != "random":
            raise ValueError("attributions must be a tensor shaped like inputs, or 'random'")
        order = torch.stack([torch.randperm(n_regions, generator=gen) for _ in range(b)])
    else:
        if attributions.shape != inputs.shape:
            raise ValueError(f"attributions {tuple(attributions.shape)} must have the inputs' shape "
                             f"{tuple(inputs.shape)}")
        region = attributions.detach().sum(1).reshape(b, gh, patch, gw, patch).sum((2, 4)).reshape(b, -1)
        order = torch.argsort(region, dim=1, descending=True, stable=True)
    lo, hi = value_range or (float(inputs.min()), float(inputs.max()))
    if fill == "uniform":
        filler = lo + (hi - lo) * torch.rand(inputs.shape, generator=gen)
    elif fill == "mean":
        filler = inputs.mean(dim=(0, 2, 3), keepdim=True).expand_as(inputs)
    elif isinstance(fill, (int, float)):
        filler = torch.full_like(inputs, float(fill))
    else:
        raise ValueError(f"fill must be 'uniform', 'mean' or a number, got {fill!r}")
    counts = np.unique(np.linspace(0, n_regions, steps + 1).round().astype(int))
    cls = torch.as_tensor(target, dtype=torch.long).reshape(-1).expand(b) if np.ndim(target) == 0 else \
        torch.as_tensor(target, dtype=torch.long)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_regions).expand(b, -1))  # rank of each region per input
    rank_px = rank.reshape(b, gh, 1, gw, 1).expand(b, gh, patch, gw, patch).reshape(b, 1, h, w)
    batch = torch.cat([torch.where(rank_px < k, filler, inputs) for k in counts])
    scores = []
    with torch.no_grad(), preserved_mode(model):
        for chunk in batch.split(batch_size):
            scores.append(model(chunk))
    out = torch.cat(scores).reshape(len(counts), b, -1)
    curve = out.gather(2, cls.view(1, b, 1).expand(len(counts), b, 1))[..., 0].T
    return FlipCurve(counts / n_regions, curve.numpy())


def model_randomization(model: nn.Module, inputs: torch.Tensor, target, method: str = "gradient_x_input",
                        seed: int = 0, absolute: bool = False, **options) -> pd.DataFrame:
    """Model-randomisation sanity check (Adebayo et al., cited in book Ch. 8/14): re-initialise the layers
    with parameters from the top down (cascading) and compare each explanation with the original one by the
    Spearman rank correlation of the attributions (of their absolute values with ``absolute=True``) per
    input. A method that passes drops towards 0. (Gradient×input ranks by |·| stay high because the input
    factor alone carries the digit's shape — the effect the check was made to expose.)

    Returns one row per randomised-down-to layer: ``layer``, ``spearman`` (mean over inputs). The model
    itself is not touched (a copy is randomised).
    """
    from .explain import attribute

    def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = (a.abs(), b.abs()) if absolute else (a, b)
        ra = a.flatten(1).argsort(1).argsort(1).double()
        rb = b.flatten(1).argsort(1).argsort(1).double()
        ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
        return float(((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)).mean())

    original = attribute(model, inputs, target, method=method, **options)
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    with_params = [(n, m) for n, m in named_layers(clone).items()
                   if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    rows = []
    for name, module in reversed(with_params):
        module.reset_parameters()
        rows.append({"layer": name, "spearman": spearman(original, attribute(clone, inputs, target,
                                                                             method=method, **options))})
    return pd.DataFrame(rows)
