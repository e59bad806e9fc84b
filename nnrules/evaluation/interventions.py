"""Do the rules matter to the model? Weight interventions (seed 000 Sec. 3.2, "Rules carry class information")."""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.rules import Rule
from ..recording.hooks import class_layer, forward_hooks, named_layers, on_model, preserved_mode, resolve_layers
from ..recording.loading import as_loader, iterate_inputs

__all__ = ["intervene", "zero_filters", "zeroing_curves", "ablation_ranking", "activation_ranking", "FRACTIONS"]


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


class _Zeroing:
    """Class accuracy of ``model`` with some channels of ``layer`` zeroed (a forward hook, removed on exit).

    ``labels="data"``: the data's labels; ``"predictions"``: the unperturbed model's own predictions (for
    data without trustworthy labels: the share of class-c predictions that survive)."""

    def __init__(self, model: nn.Module, layer: str, data: Any, batch_size: int, labels: str = "data"):
        if labels not in ("data", "predictions"):
            raise ValueError(f"labels must be 'data' or 'predictions', got {labels!r}")
        resolve_layers(model, [layer], allow_output=False)
        self.model, self.layer, self.batch_size = model, layer, batch_size
        self.zero: list[int] = []
        loader, _ = as_loader(data, batch_size)
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        for x, y in iterate_inputs(loader):
            if y is None and labels == "data":
                raise ValueError("zeroing filters needs labelled data: pass (inputs, labels) or a labelled dataset, "
                                 "or labels='predictions' to score against the model's own predictions")
            xs.append(x)
            if y is not None:
                ys.append(y.reshape(-1))
        self.X = torch.cat(xs)
        self.Y = None if labels == "predictions" else torch.cat(ys)
        self._stack = contextlib.ExitStack()

    def _hook(self, module, inputs, output):
        if self.zero:
            output = output.clone()
            output[:, self.zero] = 0.0
        return output

    def __enter__(self) -> "_Zeroing":
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(preserved_mode(self.model))
        self._stack.enter_context(torch.no_grad())
        self._stack.enter_context(forward_hooks(self.model, {self.layer: self._hook}))
        self.model.eval()
        seen: dict[str, int] = {}
        with forward_hooks(self.model, {self.layer: lambda m, i, o: seen.__setitem__("c", o.shape[1])}):
            self.model(on_model(self.model, self.X[:1]))
        self.n_channels = seen["c"]
        if self.Y is None:
            self.Y = self._predict(self.X)
        self.by_class = {int(c): self.X[self.Y == c] for c in self.Y.unique()}
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(on_model(self.model, x[i: i + self.batch_size])).argmax(1).cpu()
                          for i in range(0, len(x), self.batch_size)])

    def check(self, c, fs: Sequence[int]) -> list[int]:
        fs = sorted({int(f) for f in fs})
        if fs and (min(fs) < 0 or max(fs) >= self.n_channels):
            raise ValueError(f"filters for class {c} must be channels of {self.layer!r} (0..{self.n_channels - 1}), "
                             f"got {fs}")
        return fs

    def accuracy(self, c: int, channels: Sequence[int] | np.ndarray) -> float:
        self.zero[:] = [int(f) for f in channels]
        try:
            return float((self._predict(self.by_class[c]) == c).float().mean())
        finally:
            self.zero[:] = []


def zero_filters(model: nn.Module, layer: str, filters: dict[int, Sequence[int]], data: Any, n_random: int = 10,
                 seed: int = 0, batch_size: int = 256, labels: str = "data") -> pd.DataFrame:
    """Seed 002 Sec. 4.2: for each class c in ``filters``, the accuracy on the samples labelled c with the
    activation maps of ``filters[c]`` (channels of ``layer``) set to zero, against ``n_random`` random
    sets of as many filters (mean and std). The model is unchanged afterwards (a forward hook, removed).
    ``labels="predictions"`` scores against the unperturbed model's predictions instead of the data's labels.

    Returns one row per class: ``n_filters``, ``acc_before``, ``acc_after``, ``acc_random``,
    ``acc_random_std``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    with _Zeroing(model, layer, data, batch_size, labels) as z:
        for c, fs in sorted(filters.items()):
            fs = z.check(c, fs)
            if c not in z.by_class:
                continue
            rand = [z.accuracy(c, rng.choice(z.n_channels, len(fs), replace=False)) for _ in range(n_random)] if fs else []
            rows.append({"class": c, "n_filters": len(fs), "acc_before": z.accuracy(c, []), "acc_after": z.accuracy(c, fs),
                         "acc_random": float(np.mean(rand)) if rand else z.accuracy(c, []),
                         "acc_random_std": float(np.std(rand)) if rand else 0.0})
    return pd.DataFrame(rows, columns=["class", "n_filters", "acc_before", "acc_after", "acc_random", "acc_random_std"])


#: Fractions of a layer's filters at which :func:`zeroing_curves` zeroes each ranking's first filters.
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def zeroing_curves(model: nn.Module, layer: str, rankings: dict[str, dict[int, Sequence[int]]], data: Any,
                   fractions: Sequence[float] = FRACTIONS, n_random: int = 5, seed: int = 0, batch_size: int = 256,
                   labels: str = "data") -> pd.DataFrame:
    """Seed 002's evaluation as curves: class accuracy when the first ``round(f × n_filters)`` filters of each
    ranking are zeroed, for each fraction f, against random filter sets of the same size (mean of ``n_random``).

    ``rankings``: method name → {class → filters of ``layer``, most important first} (e.g.
    :meth:`PatchMiner.filter_ranking`, :func:`ablation_ranking`, :func:`activation_ranking`). Returns one row
    per (method, fraction, class): ``method``, ``fraction``, ``n_filters``, ``class``, ``accuracy``; method
    ``"random"`` (unless ``n_random`` is 0) and fraction 0 (the unperturbed model) are added.
    Cost: (methods + n_random) × fractions × one pass over the data.
    """
    if not isinstance(rankings, dict) or not rankings:
        raise ValueError("rankings must map method names to {class: ranked filters}")
    if any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be numbers in (0, 1], got {list(fractions)!r}")
    rng = np.random.default_rng(seed)
    rows = []
    with _Zeroing(model, layer, data, batch_size, labels) as z:
        classes = sorted(z.by_class)
        for c in classes:
            rows.append(("model", 0.0, 0, c, z.accuracy(c, [])))
        for f in fractions:
            n = max(1, int(round(f * z.n_channels)))
            for method, ranking in rankings.items():
                for c in classes:
                    if c in ranking:
                        order = list(dict.fromkeys(int(x) for x in ranking[c]))
                        rows.append((method, f, n, c, z.accuracy(c, z.check(c, order[:n]))))
            for c in classes if n_random else []:
                acc = [z.accuracy(c, rng.choice(z.n_channels, n, replace=False)) for _ in range(n_random)]
                rows.append(("random", f, n, c, float(np.mean(acc))))
    return pd.DataFrame(rows, columns=["method", "fraction", "n_filters", "class", "accuracy"])


def ablation_ranking(model: nn.Module, layer: str, data: Any, batch_size: int = 256,
                     labels: str = "data") -> dict[int, list[int]]:
    """An oracle: for each class, the filters of ``layer`` ordered by how much zeroing each one alone lowers
    the class's accuracy on ``data`` (largest drop first, ties by index).
    Cost: n_filters passes over the data. It sees the evaluation data, so it bounds what a ranking can do."""
    with _Zeroing(model, layer, data, batch_size, labels) as z:
        out = {}
        base = {c: z.accuracy(c, []) for c in z.by_class}
        drops = np.array([[base[c] - z.accuracy(c, [f]) for f in range(z.n_channels)] for c in sorted(z.by_class)])
        for i, c in enumerate(sorted(z.by_class)):
            out[c] = np.argsort(-drops[i], kind="stable").tolist()
    return out


def activation_ranking(model: nn.Module, layer: str, data: Any, batch_size: int = 256,
                       labels: str = "data") -> dict[int, list[int]]:
    """A baseline: for each class, the filters of ``layer`` by their mean activation on the class's samples
    (spatial mean of each map), largest first."""
    with _Zeroing(model, layer, data, batch_size, labels) as z:
        out = {}
        for c, x in z.by_class.items():
            seen = []
            with forward_hooks(model, {layer: lambda m, i, o: seen.append(o.detach().float().cpu())}):
                z._predict(x)
            a = torch.cat(seen)
            a = a.mean(tuple(range(2, a.dim()))) if a.dim() > 2 else a
            out[c] = torch.argsort(-a.mean(0), stable=True).tolist()
    return out
