"""Direct answers from a mined result: which unit groups a class uses (:func:`class_view`), and one box that
finds a class, a unit, a rule or a layer (:func:`search`).

The class view does not change what was mined: ExplaiNN's heads merge classes that share tails (MDL's choice,
seed 000 Sec. 2), so a rule rarely names one class. For one class ``c`` the view scores every group the rules
name (each rule's tail, and its head where that is a layer of units) and every single unit of the chosen layers
on the recorded bits (the data as the miner saw them: the run's binarizer, ERIC's quantisation), against the
samples the network predicts as ``c``:

- ``precision`` = P(predicted c | the group fires), ``recall`` = P(the group fires | predicted c),
  ``lift`` = precision / P(predicted c); a group "fires" where at least its k (``need``) units are on;
- and, per layer, the units that fire *together* on the class (:func:`_conjunction`: greedy, each unit
  raising the precision of "all of them fire" while half the class keeps them) — groups the rules imply
  (each of those units is one a class-merging rule names) but no single rule states;
- ``low`` = the Wilson 95 % lower bound of the precision (a group firing on 3 samples is not ranked by its
  3 of 3 above one firing on 400 of 420).

Every group is chosen and measured on the mining data; where the model has a held-out split (a zoo model's test
photos) each is measured again there (``held_out_precision``, ``held_out_recall``): what the choice alone
flatters shows as the gap.

Rows run from the output down the chosen layers; within a layer the *specific* groups (precision ≥ 0.5: most
samples where the group fires are of the class) come first, each tier by ``low``. Cost: one pass over the
bits per group, O(n · units) per group; a layer's single units in one matrix product.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from nnrules.recording.hooks import OUTPUT

from .errors import UserInputError
from .exemplar_rows import fires as group_fires
from .selection import Selection

__all__ = ["class_view", "class_index", "search", "unit_aliases", "unit_id", "Hit", "SPECIFIC", "CLASS_VIEW_COLUMNS"]

#: A group is specific to a class when at least this share of the samples where it fires are of the class.
SPECIFIC = 0.5
CLASS_VIEW_COLUMNS = ["layer", "group", "need", "fires", "of_class", "precision", "recall", "lift", "low", "specific",
                      "rules", "source"]  # + held_out_precision, held_out_recall where the model has a test split
_Z = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def class_index(sel: Selection, cls: int | str) -> int:
    """A class given by index or by name → its index; :class:`UserInputError` naming the classes otherwise."""
    names = sel.loaded.class_names
    if isinstance(cls, str):
        if cls in names:
            return names.index(cls)
        low = [n.lower() for n in names]
        if cls.strip().lower() in low:
            return low.index(cls.strip().lower())
        raise UserInputError(f"no class {cls!r}; the classes are {', '.join(names[:12])}"
                             + (f" … ({len(names)})" if len(names) > 12 else ""))
    if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)):
        raise UserInputError(f"class must be a class index or name, got {type(cls).__name__}")
    if not 0 <= int(cls) < len(names):
        raise UserInputError(f"class index must be 0..{len(names) - 1}, got {cls}")
    return int(cls)


def _wilson_low(hits: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The Wilson score interval's lower bound of hits / n (0 where n = 0)."""
    n = n.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, hits / np.maximum(n, 1), 0.0)
        centre = p + _Z ** 2 / (2 * n)
        half = _Z * np.sqrt(p * (1 - p) / n + _Z ** 2 / (4 * n ** 2))
        low = (centre - half) / (1 + _Z ** 2 / n)
    return np.where(n > 0, np.clip(low, 0, 1), 0.0)


def _groups(sel: Selection) -> dict[tuple[str, tuple[int, ...], int, tuple[int, ...]], list[int]]:
    """(layer, units, need, negated units) → ids of the rules that name this group (as tail, or as a head of
    units)."""
    out: dict[tuple[str, tuple[int, ...], int, tuple[int, ...]], list[int]] = {}
    flow = sel.result.flow
    assert flow is not None
    for rid, pair, r in zip(sel.table.rules["id"], sel.table.rules["pair"], sel.table.rules["rule"]):
        rs = flow.rulesets[int(pair)]
        rule = rs[int(r)]
        if rule.tail:
            out.setdefault((rs.tail_layer, tuple(rule.tail), rule.tail_min, tuple(rule.negated)), []).append(int(rid))
        if rs.head_layer != OUTPUT:
            out.setdefault((rs.head_layer, tuple(rule.head), rule.head_min, ()), []).append(int(rid))
    return out


def class_view(sel: Selection, cls: int | str, per_layer: int = 10) -> pd.DataFrame:
    """The unit groups that matter for one class, from the output down the chosen layers (columns
    ``CLASS_VIEW_COLUMNS``; at most ``per_layer`` rows a layer). ``df.attrs["answer"]`` says it in one
    sentence — which group is most specific, or plainly that none is; ``df.attrs["class"]`` is the class
    name."""
    if sel.result.flow is None:  # a run with no rules still has its layers' bits: only no run, or a chain, fails
        raise UserInputError("mine first: the class view reads the recorded layers and the groups the rules name"
                             + (" (NeuroChains keeps filters, not rules: mine with ExplaiNN or ERIC)"
                                if sel.result.mined else ""))
    if isinstance(per_layer, bool) or not isinstance(per_layer, (int, np.integer)) or per_layer < 1:
        raise UserInputError(f"per_layer must be a whole number ≥ 1, got {per_layer!r}")
    c = class_index(sel, cls)
    name = sel.loaded.class_names[c]
    bits = sel.layer_bits()
    if bits is None:
        raise UserInputError(f"{type(sel.result.miner).__name__}'s rules are read on Grad-CAM patches, not on the "
                             "recorded layers: filter the rule table by class instead")
    acts = sel._activations()
    is_c = np.asarray(acts.predictions) == c
    n_c = int(is_c.sum())
    if n_c == 0:
        frame = pd.DataFrame(columns=CLASS_VIEW_COLUMNS)
        frame.attrs.update({"class": name, "answer": f"The network predicts {name} for none of the "
                                                     f"{len(is_c)} samples: no group can be measured for it."})
        return frame
    rows = []
    groups = _groups(sel)
    rules_of: dict[tuple[str, int], set[int]] = {}  # (layer, unit) → the rules naming a group that holds it
    for (layer, units, _, _), rids in groups.items():
        for u in units:
            rules_of.setdefault((layer, u), set()).update(rids)
    for (layer, units, need, negated), rids in groups.items():
        on = group_fires(bits[layer], units, need, negated)
        rows.append((layer, units, need, negated, int(on.sum()), int((on & is_c).sum()), rids, "rule"))
    named = {(r[0], r[1], r[2], r[3]) for r in rows}
    for layer in sel.result.view_layers:
        if layer == OUTPUT or layer not in bits:
            continue
        b = bits[layer]
        fires, hits = b.sum(0), b[is_c].sum(0)
        for u in range(b.shape[1]):
            if (layer, (u,), 1, ()) in named:
                continue
            rows.append((layer, (u,), 1, (), int(fires[u]), int(hits[u]), sorted(rules_of.get((layer, u), ())), "unit"))
        together = _conjunction(b, is_c)
        if together is not None:
            units, f, h = together
            rows.append((layer, units, len(units), (), f, h, sorted(set().union(*(rules_of.get((layer, u), set())
                                                                               for u in units))), "units together"))
    df = _frame(rows, acts.unit_names, n_c, len(is_c))
    held = _held_out(sel)
    if held is not None:  # the groups measured again on samples nothing was mined or chosen on
        hb, hpreds = held
        h_is_c = hpreds == c
        hf = np.array([int(group_fires(hb[r[0]], r[1], r[2], r[3]).sum()) for r in rows], dtype=np.int64)
        hh = np.array([int((group_fires(hb[r[0]], r[1], r[2], r[3]) & h_is_c).sum()) for r in rows], dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            df["held_out_precision"] = np.where(hf > 0, hh / np.maximum(hf, 1), np.nan)
            df["held_out_recall"] = hh / max(int(h_is_c.sum()), 1)
    order = {l: i for i, l in enumerate(sel.result.view_layers)}
    df["_layer"] = df["layer"].map(order)
    df = df.sort_values(["_layer", "specific", "low", "recall"], ascending=[True, False, False, False], kind="stable")
    df = df.groupby("_layer", sort=False).head(per_layer).drop(columns="_layer").reset_index(drop=True)
    df.attrs.update({"class": name, "answer": _answer(df, name, n_c)})
    return df


def _held_out(sel: Selection) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """(bits, predictions) of the loaded model's held-out samples (a zoo model's test split), the mined layers
    recorded and binarised as the run did; None without a held-out split. Cached per result."""
    if "held_out_bits" not in sel._cache:
        from nnrules.recording.record import record

        out = None
        if sel.loaded.held_out is not None and sel.result.activations is not None:
            model = sel.loaded.need()[0]
            acts = sel.result.activations
            x = sel.loaded.held_out[0]
            rec = record(model, x.to(sel.loaded.need()[1].dtype), [l for l in acts.layers if l != OUTPUT],
                         reduce=acts.reduce, class_names=sel.loaded.class_names, progress=False)
            bits = sel._bits(rec)
            out = None if bits is None else (bits, np.asarray(rec.predictions))
        sel._cache["held_out_bits"] = out
    return sel._cache["held_out_bits"]


def _conjunction(b: np.ndarray, is_c: np.ndarray, min_recall: float = 0.5, most: int = 8,
                 ) -> tuple[tuple[int, ...], int, int] | None:
    """Units of one layer that fire *together* on the class: greedily add the unit that most raises the Wilson
    lower bound of the precision of "all of them fire", among units keeping the recall ≥ ``min_recall``; at
    most ``most`` units. ``(units, fires, of_class)`` when it takes at least two units, else None. Each step is
    two column sums over the samples still covered, O(n · units)."""
    n_c = int(is_c.sum())
    on = np.ones(len(b), bool)
    chosen: list[int] = []
    best = 0.0
    for _ in range(most):
        fires = b[on].sum(0).astype(np.int64)
        hits = b[on & is_c].sum(0).astype(np.int64)
        low = np.where(hits >= min_recall * n_c, _wilson_low(hits, fires), -1.0)
        low[chosen] = -1.0
        u = int(np.argmax(low))
        if low[u] <= best + 1e-9:
            break
        best = float(low[u])
        chosen.append(u)
        on &= b[:, u]
    if len(chosen) < 2:
        return None
    return tuple(sorted(chosen)), int(on.sum()), int((on & is_c).sum())


def _frame(rows: list, unit_names: dict[str, list[str]], n_c: int, n: int) -> pd.DataFrame:
    fires = np.array([r[4] for r in rows], dtype=np.int64)
    hits = np.array([r[5] for r in rows], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(fires > 0, hits / np.maximum(fires, 1), 0.0)
    groups = [[("¬" if u in neg else "") + unit_names[layer][u] for u in units] for layer, units, _, neg, *_ in rows]
    return pd.DataFrame({
        "layer": [r[0] for r in rows], "group": groups, "need": [r[2] for r in rows], "fires": fires,
        "of_class": hits, "precision": precision, "recall": hits / n_c, "lift": precision / (n_c / n),
        "low": _wilson_low(hits, fires), "specific": precision >= SPECIFIC, "rules": [r[6] for r in rows],
        "source": [r[7] for r in rows]}, columns=CLASS_VIEW_COLUMNS)


def _answer(df: pd.DataFrame, name: str, n_c: int) -> str:
    """One sentence: the most specific group of the top layer with a specific group, or that none is."""
    spec = df[df["specific"]]
    if spec.empty:
        return (f"No group of the chosen layers is specific to {name}: wherever one fires, most samples are "
                f"predicted as other classes (the {n_c} samples predicted {name} share their groups).")
    top = spec.iloc[0]
    need, units = int(top["need"]), list(top["group"])
    group = units[0] if len(units) == 1 else \
        f"{'any' if need == 1 else 'all' if need == len(units) else need} of {{{', '.join(units)}}}"
    came = f"rule {', '.join(map(str, top['rules'][:3]))}" if top["rules"] else "no mined rule (a single unit)"
    verb = "fire together" if need > 1 else "fires"
    return (f"For {name}: {group} ({top['layer']}) — where {'they' if need > 1 else 'it'} {verb}, "
            f"{top['precision']:.0%} of the {top['fires']} samples are predicted {name}; on {top['recall']:.0%} of "
            f"the {n_c} samples predicted {name} {'they' if need > 1 else 'it'} {verb} (lift {top['lift']:.1f}; "
            f"from {came})" + (f"; on held-out samples {top['held_out_precision']:.0%} and {top['held_out_recall']:.0%}."
                                if top.get("held_out_precision") == top.get("held_out_precision")
                                and "held_out_precision" in top else "."))


def unit_aliases(layer: str, unit: str) -> list[str]:
    """The names a unit is found by: ``relu2:c5`` (its name, with its layer) and, for a channel, ``relu2:5``."""
    full = unit if unit.startswith(f"{layer}:") else f"{layer}:{unit}"
    tail = full[len(layer) + 1:]
    return [full] + ([f"{layer}:{tail[1:]}"] if re.fullmatch(r"c\d+", tail) else [])


@dataclass(frozen=True)
class Hit:
    """One search result: ``kind`` is "class", "unit", "rule" or "layer"; ``target`` the class index, the
    ``(layer, unit column)``, the rule id or the layer name; ``label`` what the page shows."""

    kind: str
    target: object
    label: str


def search(sel: Selection, text: str, limit: int = 20) -> list[Hit]:
    """Classes, units, rules and layers matching ``text``, exact matches first (a class by name, a unit by its
    name ``relu3:28`` / ``conv2:c14``, a rule by ``12`` / ``rule 12`` / ``#12``, a layer by name), then
    names that start with it, then names that contain it; at most ``limit``. Empty when nothing matches."""
    if not isinstance(text, str):
        raise UserInputError(f"search text must be a string, got {type(text).__name__}")
    q = text.strip().lower()
    if not q:
        return []
    exact: list[Hit] = []
    loose: list[tuple[int, Hit]] = []

    def offer(name: str | list[str], hit: Hit) -> None:
        names = [n.lower() for n in ([name] if isinstance(name, str) else name)]
        if q in names:
            exact.append(hit)
        elif any(n.startswith(q) for n in names):
            loose.append((0, hit))
        elif any(q in n for n in names):
            loose.append((1, hit))

    for i, name in enumerate(sel.loaded.class_names):
        offer(name, Hit("class", i, f"class {name}"))
    rules = sel.table.rules
    m = re.fullmatch(r"(?:rule\s*|#)?(\d+)", q)
    if m and not rules.empty and int(m.group(1)) < len(rules):
        rid = int(m.group(1))
        exact.append(Hit("rule", rid, f"rule {rid}: {rules['words'].iloc[rid]}"))
    acts = sel.result.activations
    if acts is not None:
        for layer in acts.layers:
            if layer == OUTPUT:
                continue
            offer(layer, Hit("layer", layer, f"layer {layer} ({len(acts.unit_names[layer])} units)"))
            if ":" in q and not q.startswith(layer.lower() + ":"):
                continue  # "relu3:28" looks in relu3 only: a layer of 2,048 units is not scanned for "3:2"
            for u, unit in enumerate(acts.unit_names[layer]):
                names = unit_aliases(layer, unit)
                offer(names, Hit("unit", (layer, u), f"unit {names[0]}"))
    loose.sort(key=lambda t: t[0])
    return (exact + [h for _, h in loose])[:max(0, int(limit))]


def unit_id(sel: Selection, name: str) -> tuple[str, int]:
    """``(layer, column)`` of a unit named like ``relu3:28`` / ``relu2:c5`` (or ``relu2:5``) in a recorded layer."""
    if not isinstance(name, str):
        raise UserInputError(f"a unit is named like relu3:28, got {type(name).__name__}")
    acts = sel.result.activations
    want = name.strip().lower()
    for h in search(sel, name, limit=50) if acts is not None else []:
        if h.kind != "unit" or acts is None:
            continue
        layer, unit = cast(tuple[str, int], h.target)
        if want in [a.lower() for a in unit_aliases(layer, acts.unit_names[layer][unit])]:
            return layer, unit
    layers = [l for l in (acts.layers if acts is not None else []) if l != OUTPUT]
    raise UserInputError(f"no unit {name[:80]!r}" + (f" in the recorded layers ({', '.join(layers)}); a unit is named "
                                                     f"layer:index, e.g. {layers[0]}:0" if layers else
                                                     ": mine first (units are read from the recorded layers)"))
