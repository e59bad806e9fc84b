"""This unit: one unit's top samples over the whole data for the detail panel — a conv unit's cropped to its
receptive field where it fires most (:mod:`nnrules.attribution.unit_view`), a dense unit's whole."""
from __future__ import annotations

import nnrules.attribution.prototypes as prototypes
import nnrules.attribution.viz as viz
from nnrules.attribution.unit_view import receptive_field, unit_crops
from nnrules.recording.hooks import OUTPUT

from .errors import UserInputError
from .selection import Selection
from .picture_budget import PictureBudget
from .types import Detail

__all__ = ["unit_view", "unit_page"]


def unit_view(sel: Selection, layer: str, unit: int, k: int = 8) -> Detail:
    """One unit's ``k`` top samples over the whole data: a conv unit's cropped to its receptive field at
    its strongest cell (:func:`nnrules.attribution.unit_crops`; the field is measured once per
    layer), a dense unit's whole. Cached per unit."""
    key = ("unit", layer, int(unit), k)
    if key in sel._cache:
        return sel._cache[key]
    model, inputs, _ = sel.loaded.need()
    acts = sel._activations()
    if layer not in acts.layers or not 0 <= int(unit) < len(acts.unit_names[layer]):
        raise UserInputError(f"no unit {unit} in layer {layer!r}")
    name = acts.unit_names[layer][int(unit)]
    scale = sel._scale()
    d = Detail(title=f"Unit {name}", text="")
    labels = acts.labels
    if len(acts.shapes.get(layer, ())) == 3 and layer != OUTPUT:
        fkey = ("field", layer)
        if fkey not in sel._cache:
            sel._cache[fkey] = receptive_field(model, layer, inputs[:1])
        crops = unit_crops(model, inputs, acts, layer, int(unit), k, sel._cache[fkey])
        f = crops.field
        d.text = (f"top {len(crops.indices)} of {len(inputs)} samples by {name}'s activation, each cropped to "
                  f"its receptive field ({f.size[0]}×{f.size[1]} input pixels) where it fires most")
        d.exemplars = [viz.to_png(viz.image(c, scale)) for c in crops.images]
        indices, positions = crops.indices, [f" @{r},{c}" for r, c in crops.positions]
    else:
        ex = prototypes.exemplars(acts, layer, [int(unit)], m=k, data=inputs)
        if ex.images is None:  # never: the data were passed
            raise UserInputError("the exemplars came without their images")
        d.text = f"top {len(ex.indices)} of {len(inputs)} samples by {name}'s activation (a dense unit: whole inputs)"
        d.exemplars = [viz.to_png(viz.image(img, scale)) for img in ex.images]
        indices, positions = ex.indices, [""] * len(ex.indices)
    d.exemplar_labels = [sel._exemplar_label(int(i), int(acts.predictions[i]),
                                              None if labels is None else int(labels[i])) + at
                         for i, at in zip(indices, positions)]
    rules = sel.table.rules
    if not rules.empty:  # the rules that name this unit, head or tail
        full = name if name.startswith(f"{layer}:") else f"{layer}:{name}"
        named = [int(i) for i, h, t, hl, tl in zip(rules["id"], rules["head"], rules["tail"], rules["head_layer"],
                                                   rules["tail_layer"])
                 if (hl == layer and full in h) or (tl == layer and (full in t or f"¬{full}" in t))]
        d.text += (f"\nin {len(named)} rule{'s' if len(named) != 1 else ''}: " + ", ".join(map(str, named[:12]))
                   + (" …" if len(named) > 12 else "")) if named else "\nin no mined rule"
    sel._cache[key] = d
    return d


def unit_page(sel: Selection, layer: str, unit: int, k: int = 8) -> Detail:
    """A page for one unit of any recorded layer: its top samples (:func:`unit_view`), the rules that name it and
    its prototype (activation maximisation of the unit's channel; cached per group like a rule's)."""
    d = unit_view(sel, layer, unit, k)
    names = sel._activations().unit_names[layer]
    group = [int(unit)] if layer == OUTPUT else prototypes.channels_of(names, [int(unit)])
    pkey = ("prototype", layer, tuple(group))
    if pkey not in sel._cache:
        proto = Detail(title="", text="")
        budget = PictureBudget(sel.loaded.picture_budget, sel.loaded.forward_seconds)
        proto.prototype = sel._prototype(layer, group, proto, budget)
        sel._cache[pkey] = (proto.prototype, proto.errors.get("prototype"), budget.degraded.get("prototype"))
    out = Detail(title=d.title, text=d.text, exemplars=d.exemplars, exemplar_labels=d.exemplar_labels)
    out.prototype, error, how = sel._cache[pkey]
    if error:
        out.errors["prototype"] = error
    if how:
        out.degraded["prototype"] = how
    return out
