"""Why a rule matters: what zeroing its tail units does, next to zeroing as many random units of the same layer.

For a rule whose head is the output (classes), the measure is the probability the model gives the head's classes
(softmax, summed over them) on the samples it predicts as one of them; for a rule between hidden layers, the mean
activation of the head units (a conv unit's map averaged over positions). The tail units are zeroed by a forward
hook on the tail layer (removed afterwards, also on error); the model is not changed. ``n_random`` draws of as
many other units of the tail layer give the null: a rule's drop far beyond the random drops is one the network
uses. Run it on samples the rule was not mined on (a test split).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.activations import OUTPUT
from ..data.rules import RuleSet
from ..recording.hooks import forward_hooks, on_model, preserved_mode, resolve_layers
from ..recording.loading import as_loader, iterate_inputs

__all__ = ["rule_effect"]


def _zeroed(units: np.ndarray, n_units: int):
    """A forward hook that zeroes ``units`` of the layer's output: channels of a ``(B, C, …)`` map when the layer
    was recorded per channel (``n_units == C``), flat positions when it was recorded per position."""
    idx = torch.as_tensor(units, dtype=torch.long)

    def hook(module, inputs, output):
        if not len(idx):
            return output
        out = output.clone()
        if out.dim() > 2 and out.shape[1] != n_units:
            flat = out.flatten(1)
            flat[:, idx.to(flat.device)] = 0.0
            return flat.view_as(out)
        out[:, idx.to(out.device)] = 0.0
        return out
    return hook


def rule_effect(model: nn.Module, rules: RuleSet, rule: int, data: Any, n_random: int = 10, seed: int = 0,
                batch_size: int = 256) -> dict[str, Any]:
    """Zero rule ``rule`` of ``rules`` (its tail units in ``rules.tail_layer``) on ``data`` and measure its head
    (see the module docstring), against ``n_random`` (≥ 10 recommended) sets of as many random units of the tail
    layer. Returns ``measure`` (what was measured, in words), ``samples``, ``before``, ``after``, ``drop``
    (before − after), ``random_drop`` and ``random_drop_std`` (mean and spread of the random drops)."""
    if not isinstance(rules, RuleSet):
        raise TypeError(f"rules must be a RuleSet (a Flow's rulesets[i], a miner's rules_), got {type(rules).__name__}")
    if isinstance(rule, bool) or not isinstance(rule, (int, np.integer)) or not 0 <= rule < len(rules):
        raise ValueError(f"rule must be a rule's position in 0..{len(rules) - 1}, got {rule!r}")
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random must be an integer ≥ 1 (random unit sets for the null), got {n_random!r}")
    if not rules.tail_layer or not rules.head_layer or not rules.tail_names:
        raise ValueError("the rules must name their layers and tail units (mined by nnrules.trace or a miner's fit "
                         "on recorded activations)")
    r = rules[int(rule)]
    if not r.tail:
        raise ValueError(f"rule {rule} has no tail units to zero (ERIC's ⊤ → {', '.join(rules.head_names[c] for c in r.head)}"
                         ": it holds whatever the layer does); choose a rule with a tail")
    resolve_layers(model, [rules.tail_layer] + ([] if rules.head_layer == OUTPUT else [rules.head_layer]),
                   allow_output=True)
    loader, n = as_loader(data, batch_size)
    xs = torch.cat([x for x, _ in iterate_inputs(loader)])
    n_units = len(rules.tail_names)
    head = list(r.head)
    seen: dict[str, torch.Tensor] = {}

    def keep_head(module, inputs, output):
        seen["head"] = output.detach()

    def measure(zero: np.ndarray, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-sample measure, predictions) with ``zero`` units zeroed."""
        hooks = {rules.tail_layer: _zeroed(zero, n_units)}
        if rules.head_layer != OUTPUT:
            hooks[rules.head_layer] = keep_head
        vals, preds = [], []
        with preserved_mode(model), torch.no_grad(), forward_hooks(model, hooks):
            model.eval()
            x_all = xs if rows is None else xs[rows]
            for i in range(0, len(x_all), batch_size):
                logits = model(on_model(model, x_all[i: i + batch_size])).float().cpu()
                preds.append(logits.argmax(1))
                if rules.head_layer == OUTPUT:
                    vals.append(logits.softmax(1)[:, head].sum(1))
                else:
                    h = seen.pop("head").float().cpu()
                    h = h.flatten(2).mean(2) if h.dim() > 2 and h.shape[1] != len(rules.head_names) else h.flatten(1)
                    vals.append(h[:, head].mean(1))
        return torch.cat(vals), torch.cat(preds)

    base, preds = measure(np.zeros(0, np.int64))
    rows = None
    if rules.head_layer == OUTPUT:
        rows = torch.isin(preds, torch.as_tensor(head))
        if not bool(rows.any()):
            raise ValueError(f"no sample of data is predicted as the rule's head classes "
                             f"({', '.join(rules.head_names[c] for c in head)}): pass samples of them")
        base = base[rows]
    tail = np.asarray(r.tail, np.int64)
    after = measure(tail, rows)[0]
    others = np.setdiff1d(np.arange(n_units), tail)
    rng = np.random.default_rng(seed)
    drops = [float(base.mean() - measure(rng.choice(others, min(len(tail), len(others)), replace=False), rows)[0].mean())
             for _ in range(n_random)] if len(others) else [0.0]
    names = ", ".join(rules.head_names[c] for c in head)
    return {"measure": (f"probability of {names}" if rules.head_layer == OUTPUT else f"mean activation of {names}"),
            "samples": int(len(base)), "before": float(base.mean()), "after": float(after.mean()),
            "drop": float(base.mean() - after.mean()), "random_drop": float(np.mean(drops)),
            "random_drop_std": float(np.std(drops)), "n_random": int(n_random), "n_tail": int(len(tail))}
