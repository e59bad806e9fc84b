"""The explorer's selection (:class:`Selection`: a rule, a group, an exemplar) and its detail pictures:
prototype, exemplars, heatmaps of a group."""
from __future__ import annotations

from typing import Callable

import numpy as np

import nnrules.attribution.grid_maps as grid_maps
import nnrules.attribution.methods as attribution
import nnrules.attribution.prototypes as prototypes
import nnrules.attribution.viz as viz
from nnrules.attribution.lrp import LRPError
from nnrules.miners.eric import ERIC
from nnrules.miners.patches import PatchMiner
from nnrules.recording.hooks import OUTPUT
from nnrules.recording.record import Activations

from .errors import UserInputError
from .loading import LoadedModel
from .mining import MiningResult
from .results import RuleRows
from .exemplar_rows import spread, tail_fires
from .picture_budget import MIN_STEPS, PictureBudget
from .types import Detail

__all__ = ["Selection", "Detail"]


class Selection:
    """What is selected in one mining result, and the pictures of it (cached per part: see :meth:`detail`).

    Reads the ``loaded`` model and data, the mining ``result`` and its rule ``table``; a new result gets a
    new selection. ``n_exemplars`` exemplars per group, ``prototype_steps`` steps of activation
    maximisation, pictures upscaled by ``scale`` (for small inputs)."""

    def __init__(self, loaded: LoadedModel, result: MiningResult, table: RuleRows, n_exemplars: int = 8,
                 prototype_steps: int = 200, scale: int = 4, disk=None) -> None:
        self.loaded, self.result, self.table = loaded, result, table
        self.disk = disk  # a PictureCache (details across sessions) or None
        self.n_exemplars, self.prototype_steps, self.scale = n_exemplars, prototype_steps, scale
        self.selected_rule: int | None = None
        self.selected_node: int | None = None
        self.exemplar: int = 0
        self.sample: int | None = None  # "this image": a data sample shown first among the exemplars
        self._cache: dict = {}

    def _activations(self) -> Activations:
        if self.result.activations is None:
            raise UserInputError("mine first: the pictures come from the recorded activations")
        return self.result.activations

    def _exemplar_label(self, i: int, pred: int, label: int | None) -> str:
        """"#12 · predicted cat" — and the true class where the data have one ("labelled dog" when they
        differ): unlabelled data (photo crops) are never named as if a class were known."""
        text = f"#{i} · predicted {self.loaded.class_names[pred]}"
        if label is not None and label >= 0 and label != pred:
            text += f" (labelled {self.loaded.class_names[label]})"
        return text

    def select_rule(self, rule_id: int) -> None:
        if self.table.rules.empty or not 0 <= rule_id < len(self.table.rules):
            raise UserInputError(f"no rule {rule_id}: there are {len(self.table.rules)} rules (mine first)")
        self.selected_rule, self.selected_node, self.exemplar = int(rule_id), None, 0

    def select_node(self, node_id: int) -> None:
        if self.result.nodes.empty or not 0 <= node_id < len(self.result.nodes):
            raise UserInputError(f"no group {node_id}: there are {len(self.result.nodes)} groups (mine first)")
        self.selected_node, self.selected_rule, self.exemplar = int(node_id), None, 0

    def select_link(self, link: int) -> None:
        """A Sankey link → the rule it draws (a NeuroChains link, which is no rule: its target filter)."""
        row = self.result.links.iloc[int(link)]
        if row["pair"] < 0:
            self.select_node(int(row["target"]))
            return
        match = self.table.rules[(self.table.rules["pair"] == row["pair"]) & (self.table.rules["rule"] == row["rule"])]
        self.select_rule(int(match["id"].iloc[0]))

    def select_sample(self, i: int | None) -> None:
        """Show data sample ``i`` ("this image") first among the exemplars of the rules that hold for it
        (its heatmaps then come first); ``None`` for none."""
        n = len(self._activations().predictions) if i is not None else 0
        if i is not None and not 0 <= int(i) < n:
            raise UserInputError(f"sample must be 0..{n - 1} (an index into the data), got {i}")
        self.sample, self.exemplar = (None if i is None else int(i)), 0

    def select_exemplar(self, i: int) -> None:
        if not 0 <= i < self.n_exemplars:
            raise UserInputError(f"exemplar must be 0..{self.n_exemplars - 1}")
        self.exemplar = int(i)

    def rule_node(self, rule_id: int) -> int:
        """The Sankey node of a rule's tail group."""
        row = self.table.rules.iloc[rule_id]
        match = self.result.links[(self.result.links["pair"] == row["pair"]) & (self.result.links["rule"] == row["rule"])]
        return int(match["target"].iloc[0])

    def current(self) -> tuple[int | None, int | None, int]:
        """(rule, group, exemplar) selected now: a background job works on this snapshot, not on what the
        user clicks meanwhile."""
        return self.selected_rule, self.selected_node, self.exemplar

    def _group(self, rule: int | None, node: int | None) -> tuple[str, list[int], str]:
        """(layer, unit column indices, title) of the selection."""
        if rule is not None:
            row = self.table.rules.iloc[rule]
            if not len(row["tail_idx"]):  # ERIC's "⊤ → head": no literal to show, so its head's units
                return row["head_layer"], list(row["head_idx"]), f"Rule {rule}: {row['words']} (its head's units)"
            units = [u for u, n in zip(row["tail_idx"], row["tail"]) if not n.startswith("¬")]  # ERIC: ¬ = off
            return row["tail_layer"], units or list(row["tail_idx"]), f"Rule {rule}: {row['words']}"
        if node is not None:
            group = self.result.nodes.iloc[node]
            names = self._activations().unit_names[group["layer"]]
            units = [names.index(u) for u in group["units"]]
            return group["layer"], units, f"Group {group['label']} ({group['layer']})"
        raise UserInputError("select a rule or a group first")

    def detail(self, selection: tuple[int | None, int | None, int] | None = None,
               check: Callable[[], None] = lambda: None,
               partial: Callable[[Detail, str], None] | None = None, full: bool = False,
               prototype: bool = True) -> Detail:
        """Prototype and exemplars of the selected group; heatmaps of the chosen exemplar for its predicted
        class and for the group (LRP and Grad-CAM). ``selection`` (default: the current one, see
        :meth:`current`); ``check()`` raises to cancel between pictures. The cheap parts come first:
        ``partial(detail so far, what comes next)`` is called after the exemplars and after the heatmaps,
        before the prototype. Each part is cached on its own: the prototype per group, exemplars and
        heatmaps per group, rule and exemplar. All parts together stay within ``loaded.picture_budget``
        seconds (:mod:`.picture_budget`): past it a heatmap is skipped and the prototype stops early, each
        said in ``degraded``; ``full=True`` draws those parts again in full (only full parts go to disk).
        ``prototype=False`` leaves the prototype out (``nnrules precompute`` draws the cheap parts first)."""
        rule, node, exemplar = selection if selection is not None else self.current()
        layer, units, title = self._group(rule, node)
        names = self._activations().unit_names[layer]
        shown = [names[u] if names[u].startswith(f"{layer}:") else f"{layer}:{names[u]}" for u in units]
        text = ", ".join(shown)  # unit names already carry their layer ("relu3:c4")
        if rule is not None:  # the title says it in words; the notation comes first here
            row = self.table.rules.iloc[rule]
            text = f"{row['text']}\n{text}"
            text += (f"\nsupport {row['support']}, confidence {row['confidence']:.2f}, l={row['head_min']}, "
                     f"k={row['tail_min']}, classes {', '.join(row['classes'])}")
            if row.get("evidence"):
                text += f"\nEvidence: {row['evidence']}."

        def whole(d: Detail) -> Detail:
            return Detail(title=title, text=f"{text}\n{d.text}", prototype=d.prototype, exemplars=d.exemplars,
                          exemplar_labels=d.exemplar_labels, heatmaps=dict(d.heatmaps), errors=dict(d.errors),
                          elsewhere=d.elsewhere, elsewhere_labels=d.elsewhere_labels, degraded=dict(d.degraded))

        budget = PictureBudget(None if full else self.loaded.picture_budget, self.loaded.forward_seconds)
        key = (layer, tuple(units), rule, exemplar, self.sample)
        if key not in self._cache or (full and self._cache[key].degraded):
            found = None if full else self._stored("pictures", key)
            if found is None:
                found = self._pictures(layer, units, self._holding(rule), exemplar, check,
                                       None if partial is None else lambda d, nxt: partial(whole(d), nxt),
                                       self._patch_boxes(rule), self.sample, self._head_classes(rule), budget)
                self._elsewhere(found, layer, units, rule)
                if not found.degraded:
                    self._store("pictures", key, found)
            self._cache[key] = found
        d = self._cache[key]
        group = (layer, units if layer == OUTPUT else prototypes.channels_of(names, units))
        pkey = ("prototype", layer, tuple(group[1]))
        if not prototype:
            return whole(d)
        # per group, not per exemplar: choosing another exemplar keeps it
        if pkey not in self._cache or (full and self._cache[pkey][2]):
            proto = None if full else self._stored("prototype", pkey)
            if proto is None:
                check()
                proto = Detail(title="", text="")
                proto.prototype = self._prototype(*group, proto, budget, check)
                if "prototype" not in budget.degraded:
                    self._store("prototype", pkey, proto)
            self._cache[pkey] = (proto.prototype, proto.errors.get("prototype"), budget.degraded.get("prototype"))
        out = whole(d)
        out.prototype, error, how = self._cache[pkey]
        if error:
            out.errors["prototype"] = error
        if how:
            out.degraded["prototype"] = how
        return out

    def _space(self, kind: str) -> list:
        """What a stored picture depends on besides its key: the model and data, the mining settings (a rule's
        exemplars), the drawing settings."""
        if kind == "prototype":
            return [kind, self.loaded.fingerprint(), self.prototype_steps, self._scale()]
        settings = self.result.settings
        return [kind, self.loaded.fingerprint(), None if settings is None else vars(settings), self.n_exemplars,
                self._scale()]

    def _stored(self, kind: str, key: tuple) -> Detail | None:
        return None if self.disk is None else self.disk.get(self._space(kind), list(key))

    def _store(self, kind: str, key: tuple, d: Detail) -> None:
        if self.disk is not None:
            self.disk.put(self._space(kind), list(key), d)

    def _holding(self, rule_id: int | None) -> np.ndarray | None:
        """Sample indices where the selected rule holds (``None`` for a group): its head and tail literals on
        the data as the miner saw them (ExplaiNN: the binarizer; ERIC: its quantisation); for a patch rule the
        images of the patches it covers."""
        if rule_id is None or self.result.flow is None:
            return None
        row = self.table.rules.iloc[rule_id]
        rs = self.result.flow.rulesets[int(row["pair"])]
        rule = rs[int(row["rule"])]
        if isinstance(self.result.miner, PatchMiner):
            rows = self.result.miner.rule_table_["rows"].iloc[int(row["rule"])]
            return np.unique(self.result.miner.patches_["image"].to_numpy()[np.asarray(rows, dtype=np.int64)])
        bits = self.layer_bits()
        if bits is None:
            return None
        return np.flatnonzero(rule.holds_on(bits[rs.head_layer], bits[rs.tail_layer]))

    def _head_classes(self, rule_id: int | None) -> list[int] | None:
        """The classes of a rule's head when it is the output layer with several classes (its exemplars are
        spread over them), else None."""
        if rule_id is None or self.result.flow is None:
            return None
        row = self.table.rules.iloc[rule_id]
        if row["head_layer"] != OUTPUT or len(row["head_idx"]) < 2:
            return None
        return [int(c) for c in row["head_idx"]]

    def _elsewhere(self, d: Detail, layer: str, units: list[int], rule_id: int | None, k: int = 4) -> None:
        """Add to ``d`` up to ``k`` samples where the rule's tail fires but the rule does not apply (one per
        predicted class first, the strongest activations): what else its units respond to."""
        if rule_id is None or self.result.flow is None or isinstance(self.result.miner, PatchMiner):
            return
        bits, held = self.layer_bits(), self._holding(rule_id)
        row = self.table.rules.iloc[rule_id]
        rs = self.result.flow.rulesets[int(row["pair"])]
        rule = rs[int(row["rule"])]
        if bits is None or held is None or not rule.tail:
            return
        tail = tail_fires(rule, bits[rs.tail_layer])
        tail[held] = False
        rows = np.flatnonzero(tail)
        if not len(rows):
            d.text += "\nits tail fires nowhere else: every sample where it fires is one where the rule applies"
            return
        acts = self._activations()
        values, preds = np.asarray(acts[layer]), np.asarray(acts.predictions)
        order = rows[np.argsort(-values[rows][:, units].sum(1), kind="stable")]  # strongest first
        _, first = np.unique(preds[order], return_index=True)  # the strongest sample of each predicted class
        pick = [int(i) for i in order[np.sort(first)]][:k]
        pick += [int(i) for i in order if int(i) not in pick][:k - len(pick)]
        inputs = self.loaded.need()[1]
        d.elsewhere = [viz.to_png(viz.image(inputs[i], self._scale())) for i in pick]
        labels = acts.labels
        d.elsewhere_labels = [self._exemplar_label(i, int(acts.predictions[i]), None if labels is None
                                                   else int(labels[i])) + " · rule does not apply"
                              for i in pick]
        d.text += (f"\nwhere else: its tail fires on {len(rows)} samples where the rule does not apply "
                   f"({len(set(preds[rows].tolist()))} predicted classes); {len(pick)} shown")

    def layer_bits(self) -> dict[str, np.ndarray] | None:
        """The recorded layers as the miner saw them (:meth:`_bits` of the data; cached per result)."""
        if "bits" not in self._cache:
            self._cache["bits"] = self._bits(self._activations())
        return self._cache["bits"]

    def _bits(self, acts: Activations) -> dict[str, np.ndarray] | None:
        """The layers as the miner saw them, ``(n, units)`` bool: ERIC's quantisation or the run's binarizer."""
        if isinstance(self.result.miner, ERIC):
            return self.result.miner.quantise(acts)
        if self.result.binarizer is not None:
            return {k: v.to_dense() for k, v in self.result.binarizer.transform(acts).items()}
        return None

    def _patch_boxes(self, rule_id: int | None) -> dict[int, list[tuple[int, int, int]]] | None:
        """For a patch rule: sample index → its patches ``(top, left, size)`` in input pixels; else None."""
        if rule_id is None or self.result.flow is None or not isinstance(self.result.miner, PatchMiner):
            return None
        rows = self.result.miner.rule_table_["rows"].iloc[int(self.table.rules.iloc[rule_id]["rule"])]
        boxes: dict[int, list[tuple[int, int, int]]] = {}
        for r in rows:
            i, top, left, _ = self.result.miner.patches_.iloc[int(r)]
            boxes.setdefault(int(i), []).append((int(top), int(left), int(self.result.miner.size_)))
        return boxes

    def _pictures(self, layer: str, units: list[int], among: np.ndarray | None = None, exemplar: int = 0,
                  check: Callable[[], None] = lambda: None,
                  partial: Callable[[Detail, str], None] | None = None,
                  boxes: dict[int, list[tuple[int, int, int]]] | None = None,
                  first: int | None = None, head_classes: list[int] | None = None,
                  budget: PictureBudget | None = None) -> Detail:
        """Exemplars (among the samples where the rule holds; a patch rule's patches outlined, ``boxes``;
        sample ``first`` in front where it is among them: "this image") and the chosen exemplar's heatmaps."""
        model, inputs, _ = self.loaded.need()
        acts = self._activations()
        names = acts.unit_names[layer]
        d = Detail(title="", text="")
        group = (layer, units if layer == OUTPUT else prototypes.channels_of(names, units))
        check()
        note = ""
        if among is not None and len(among) == 0:
            among, note = None, " — the rule holds on none of these samples; exemplars by activation instead"
        elif among is not None:
            note = f" — among the {len(among)} samples where the rule holds"
        held = among  # where the rule holds ("this image" is shown first when it is one of them)
        if head_classes is not None and among is not None:  # a head of several classes: each shown, in proportion
            among, said = spread(acts.predictions, np.asarray(acts[layer])[:, units].sum(1), among, head_classes,
                                  self.n_exemplars, self.loaded.class_names)
            note += f"; spread over its head's classes ({said})"
        ex = prototypes.exemplars(acts, layer, units, m=self.n_exemplars, data=inputs, among=among)
        if first is not None and (held is None or first in set(np.asarray(held).tolist())):
            keep = [first] + [int(i) for i in ex.indices if int(i) != first][:self.n_exemplars - 1]
            ex = prototypes.Exemplars(np.asarray(keep), np.asarray(acts[layer][keep])[:, units].sum(1), inputs[keep])
            note += f"; sample #{first} (this image) first"
        if ex.images is None:  # never: the data were passed
            raise UserInputError("the exemplars came without their images")
        preds = acts.predictions[ex.indices]
        scale = self._scale()
        pictures = [viz.image(img, scale) for img in ex.images]
        if boxes is not None and among is not None:
            pictures = [viz.outline(p, boxes.get(int(i), []), scale) for p, i in zip(pictures, ex.indices)]
            note += "; the rule's patches outlined"
        d.exemplars = [viz.to_png(p) for p in pictures]
        labels = acts.labels
        d.exemplar_labels = [self._exemplar_label(int(i), int(p), None if labels is None else int(labels[i]))
                             for i, p in zip(ex.indices, preds)]
        pick = min(exemplar, len(ex.indices) - 1)
        x = ex.images[pick: pick + 1]
        cls = int(preds[pick])
        d.text = f"exemplars{note}\nheatmaps for exemplar #{ex.indices[pick]} (predicted {self.loaded.class_names[cls]})"
        budget = budget or PictureBudget(None, self.loaded.forward_seconds)
        if partial is not None:
            partial(d, f"heatmaps (≈ {budget.estimate('heatmaps'):.0f} s)")
        lrp_label = f"LRP ({attribution.default_composite(model)})"  # say which composite drew it
        for method, label in (("lrp", lrp_label), ("gradcam", "Grad-CAM")):
            for target, what in ((cls, f"class {self.loaded.class_names[cls]}"), (group, "group")):
                check()
                name = f"{label} · {what}"
                if not budget.allows("heatmap"):  # past the budget: said, and drawn by "Compute in full"
                    d.errors[name] = f"not drawn: past the {budget.seconds:.0f} s picture budget"
                    d.degraded["heatmaps"] = "some skipped at the budget"
                    continue
                try:
                    at = attribution.gradcam_layer(model, x, layer if target is group else OUTPUT) \
                        if method == "gradcam" else None
                    if at is not None and target is group and at == layer:
                        # a group on a conv layer: Grad-CAM there weights the group's own maps by a constant
                        # gradient, i.e. it is "where the units fire" (drawn beside); nothing else to draw
                        d.errors[name] = (f"Grad-CAM of a group at its own conv layer ({layer}) is the group's own "
                                          "activation map: see 'where the units fire'")
                        continue
                    try:
                        a = attribution.attribute(model, x, target, method, layer=at)
                    except LRPError as refused:  # a model LRP cannot explain faithfully: gradients still show
                        name = f"Gradient × input · {what}"
                        a = attribution.attribute(model, x, target, "gradient_x_input")
                        if "LRP not available" not in d.text:
                            d.text += f"\nLRP not available for this model ({refused}); gradient × input drawn instead"
                    d.heatmaps[name] = viz.to_png(viz.heatmap(a[0], x[0], scale=self._scale()))
                except (LRPError, ValueError, RuntimeError) as err:
                    d.errors[name] = str(err)
        self._grid_pictures(d, model, x, layer, [names[u] for u in units], acts.shapes.get(layer, ()))
        if partial is not None:
            est = budget.estimate("prototype", self.prototype_steps)
            left = budget.left()
            partial(d, f"the prototype (≈ {est:.0f} s" + (f"; stops at the budget in {left:.0f} s)" if est > left else ")"))
        return d

    def _grid_pictures(self, d: Detail, model, x, layer: str, names: list[str], shape: tuple) -> None:
        """A conv group's units on the input grid (receptive-field centres, when recorded per position) and
        where they fire on the exemplar (their activations at their cells, upsampled), beside the heatmaps."""
        if layer == OUTPUT or len(shape) != 3 or not names:
            return
        scale = self._scale()
        try:
            positions = grid_maps.unit_positions(names)
            if any(p is not None for _, p in positions):
                centres = grid_maps.grid_centres(names, shape[1:], x.shape[-2:])
                cell = x.shape[-1] / shape[-1]
                d.heatmaps["units on the grid"] = viz.to_png(grid_maps.mark_units(viz.image(x[0], scale), centres, scale,
                                                                                 size=cell))
            where = grid_maps.firing_map(model, x, layer, names)
            d.heatmaps["where the units fire"] = viz.to_png(viz.heatmap(where, x[0], percentile=100, scale=scale))
        except ValueError as err:  # e.g. units without a channel name: no grid to draw
            d.errors["units on the grid"] = str(err)

    def group_units(self) -> tuple[str, list[tuple[int, str]]]:
        """(layer, [(column, unit name)]) of the selected rule's or group's units."""
        rule, node, _ = self.current()
        layer, units, _ = self._group(rule, node)
        names = self._activations().unit_names[layer]
        return layer, [(int(u), names[u]) for u in units]

    def _scale(self) -> int:
        side = int(self.loaded.need()[1].shape[-1])
        return max(1, min(self.scale * 32 // max(side, 1), 16)) if side < 128 else 1

    def _prototype(self, layer: str, units: list[int], d: Detail, budget: PictureBudget,
                   check: Callable[[], None] = lambda: None) -> bytes | None:
        model, inputs, _ = self.loaded.need()
        side = int(inputs.shape[-1])
        smooth = side >= 16  # priors against high-frequency noise on larger inputs
        lo, hi = float(inputs.min()), float(inputs.max())
        steps = self.prototype_steps
        if not budget.allows("prototype", MIN_STEPS):  # not even a rough one fits: said, with the full cost
            budget.degraded["prototype"] = f"not drawn (≈ {budget.estimate('prototype', steps):.0f} s in full)"
            d.errors["prototype"] = (f"not drawn within the {budget.seconds:.0f} s picture budget "
                                     f"(≈ {budget.estimate('prototype', steps):.0f} s): Compute in full")
            return None
        try:
            img = prototypes.maximize(model, layer, units, example=inputs[:1], steps=steps,
                                      value_range=(lo, hi), jitter=1 if smooth else 0,
                                      blur_every=4 if smooth else 0, blur_sigma=0.5 if smooth else 0.0,
                                      callback=budget.prototype_stop(steps, check))
        except (ValueError, RuntimeError) as err:
            d.errors["prototype"] = str(err)
            return None
        return viz.to_png(viz.image(img, self._scale()))

