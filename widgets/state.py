"""The explorer's state model: what the user picked, what was mined, what is selected.

No ipywidgets here: every action is a method that calls ``nnrules`` and either updates the state or
raises :class:`UserInputError` with a message meant for the panel. The views in this package only
read this object and call its methods, so the whole app is testable without a browser.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from nnrules import explain, prototypes, viz, zoo
from nnrules.binarize import Binarizer
from nnrules.data import as_loader, image_folder, iterate_inputs, load_model
from nnrules.eric import ERIC
from nnrules.explainn import ExplaiNN
from nnrules.flow import Flow, trace
from nnrules.hooks import OUTPUT, layers as layer_table, named_layers
from nnrules.lrp import LRPError
from nnrules.patches import PatchMiner
from nnrules.recording import Activations, record

__all__ = ["ExplorerState", "MiningSettings", "Detail", "UserInputError", "Cancelled", "BINARIZERS", "MINERS",
           "REDUCTIONS", "MAX_UNITS"]

#: The miners the explorer runs (seed 000, 001, 002).
MINERS = {"explainn": "ExplaiNN rules (MDL)", "eric": "ERIC logic program", "patches": "Grad-CAM patches + Eclat"}
#: Binarization methods offered in the panel and the name of the parameter each one takes.
BINARIZERS = {"mean": None, "positive": None, "quantile": "q", "topk": "k", "threshold": "value"}
REDUCTIONS = ("max", "mean", "l1", "none")
#: More units than this in one layer makes mining slow and the views unreadable.
MAX_UNITS = 4096
RULE_COLUMNS = ["id", "pair", "rule", "text", "classes", "head", "tail", "head_idx", "tail_idx", "tail_size",
                "head_layer", "tail_layer", "kind", "head_min", "tail_min", "support", "holds", "confidence", "gain"]
#: At most this many samples of a user's image folder are loaded.
MAX_SAMPLES = 5000


class UserInputError(ValueError):
    """Something the user chose cannot work; the message says what to do instead."""


class Cancelled(Exception):
    """The user pressed Cancel while mining."""


@dataclass
class MiningSettings:
    """What the Mine button runs: record ``layers`` and mine them with ``miner`` (see MINERS)."""

    layers: list[str]
    miner: str = "explainn"
    reduce: str = "max"
    # ExplaiNN
    binarize: str = "mean"
    param: float = 0.1  # q, k or value, for the methods that take one (see BINARIZERS)
    theta: float = 0.3
    mu: int | None = None
    # ERIC
    depth: int = 5
    alpha: float = 0.01
    # Grad-CAM patches + Eclat
    patch_size: int = 0  # 0: a third of the image side
    top: int = 10
    min_support: float = 0.5
    q: int = 10


@dataclass
class Detail:
    """What the detail panel shows for the selection (PNG bytes; ``errors`` by image key)."""

    title: str
    text: str
    prototype: bytes | None = None
    exemplars: list[bytes] = field(default_factory=list)
    exemplar_labels: list[str] = field(default_factory=list)
    heatmaps: dict[str, bytes] = field(default_factory=dict)  # "LRP · class 3" → PNG
    errors: dict[str, str] = field(default_factory=dict)


def _to_user_error(err: Exception) -> UserInputError:
    return err if isinstance(err, UserInputError) else UserInputError(str(err))


class ExplorerState:
    """The explorer's model. Typical use::

        s = ExplorerState(); s.load_zoo("digits-cnn")
        s.mine(MiningSettings(["relu3", "relu2"]))
        s.select_rule(0); d = s.detail()
    """

    def __init__(self, exemplars: int = 8, prototype_steps: int = 200, scale: int = 4) -> None:
        self.n_exemplars = exemplars
        self.prototype_steps = prototype_steps
        self.scale = scale  # image upscaling in the panel (pixels per input pixel for small inputs)
        self.model_name: str = ""
        self.model: nn.Module | None = None
        self.inputs: torch.Tensor | None = None  # (n, C, H, W) the mined data set
        self.labels: torch.Tensor | None = None
        self.class_names: list[str] = []
        self.accuracy: float = float("nan")
        self.info: str = ""
        self.layer_table: pd.DataFrame = pd.DataFrame()
        self._clear_results()

    def _clear_results(self) -> None:
        self.settings: MiningSettings | None = None
        self.summary: str = ""
        self.activations: Activations | None = None
        self.flow: Flow | None = None
        self.nodes: pd.DataFrame = pd.DataFrame(columns=["id", "layer", "units", "label"])
        self.links: pd.DataFrame = pd.DataFrame(columns=["source", "target", "value", "pair", "rule"])
        self.rules: pd.DataFrame = pd.DataFrame(columns=RULE_COLUMNS)
        self.selected_rule: int | None = None
        self.selected_node: int | None = None
        self.exemplar: int = 0
        self._cache: dict = {}

    # --- model ---------------------------------------------------------------------------------
    @staticmethod
    def zoo_models() -> list[str]:
        return zoo.available()

    def load_zoo(self, name: str) -> "ExplorerState":
        """Load a zoo model; its training split is the data that rules are mined on."""
        if name not in zoo.available():
            raise UserInputError(f"unknown zoo model {name!r}; choose one of {zoo.available()}")
        try:
            z = zoo.load(name)
        except zoo.MissingPackageError as err:
            raise UserInputError(str(err)) from err
        x, y = z.train.tensors
        self._set_model(name, z.model, x, y, z.class_names, z.accuracy,
                        f"{z.info.get('data', '')} Mining data: the {len(x)} training inputs.")
        return self

    def load_files(self, model_path: str, data_path: str, size: int | None = None) -> "ExplorerState":
        """Load a user's model file (TorchScript or ``torch.save``'d module) and data: an image folder (one
        sub-folder per class; images resized to ``size`` pixels if given) or a saved data set file
        (``torch.save((inputs, labels), path)`` with inputs ``(n, C, H, W)``)."""
        if not str(model_path).strip():
            raise UserInputError("enter the path of a model file (.pt, saved with torch.save(model, path) "
                                 "or torch.jit.save)")
        if not str(data_path).strip():
            raise UserInputError("enter the path of an image folder (one sub-folder per class) or of a data "
                                 "set saved with torch.save((inputs, labels), path)")
        try:
            model = load_model(Path(model_path).expanduser())
            x, y, classes = _load_data(Path(data_path).expanduser(), size)
        except ValueError as err:
            raise UserInputError(str(err)) from err
        x = _fit_channels(model, x)
        self._set_model(Path(model_path).name, model, x, y, classes, float("nan"),
                        f"{len(x)} samples from {data_path} ({len(classes)} classes).")
        self.accuracy = float((self._predict(x) == y).float().mean())
        return self

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        loader, _ = as_loader(x, 256)
        out = []
        with torch.no_grad():
            for xb, _ in iterate_inputs(loader):
                out.append(self.model(xb).argmax(1))
        return torch.cat(out)

    def _set_model(self, name, model, x, y, class_names, accuracy, info) -> None:
        if isinstance(model, torch.jit.ScriptModule):
            raise UserInputError("a TorchScript model cannot take the forward hooks the explorer records with; "
                                 "save the module itself with torch.save(model, path) and load that file")
        try:
            table = layer_table(model, x[:1])
        except (ValueError, TypeError) as err:
            raise UserInputError(f"the model does not run on these images: {err}") from err
        out = table[table["name"] == OUTPUT]
        if out.empty or len(out.iloc[0]["output_shape"]) != 1:
            raise UserInputError("the model must return (batch, n_classes) logits")
        n_classes = int(out.iloc[0]["output_shape"][0])
        if len(class_names) != n_classes:
            class_names = [str(i) for i in range(n_classes)]
        self.model_name, self.model, self.inputs, self.labels = name, model.eval(), x, y
        self.class_names, self.accuracy, self.info = list(class_names), accuracy, info
        self.layer_table = table
        self._clear_results()

    def _need_model(self) -> None:
        if self.model is None:
            raise UserInputError("load a model first (pick one from the zoo or load your own)")

    # --- layers --------------------------------------------------------------------------------
    def chainable_layers(self) -> list[str]:
        """Layers that can be mined, deepest first (the order a chain from the output takes)."""
        self._need_model()
        t = self.layer_table
        leaves = t[(t["name"] != OUTPUT) & t["leaf"]]
        return list(reversed(leaves["name"].tolist()))

    def default_chain(self) -> list[str]:
        """The two deepest ReLU-like layers (or any two deepest layers)."""
        names = self.chainable_layers()
        t = self.layer_table.set_index("name")
        acts = [n for n in names if t.loc[n, "type"] in ("ReLU", "LeakyReLU", "GELU", "ELU", "SiLU")]
        if acts and t.loc[acts[0], "n_units"] == len(self.class_names):
            acts = acts[1:]  # a ReLU on the logits (Keras-style output activation) is the output again
        return (acts or names)[:2]

    def check_chain(self, layers: list[str], reduce: str = "max") -> list[str]:
        """The chosen layers ordered output-side first; raises UserInputError if they cannot be chained."""
        self._need_model()
        layers = [l for l in layers if l != OUTPUT]
        if not layers:
            raise UserInputError("choose at least one layer below the output to mine rules into "
                                 f"(e.g. {', '.join(self.default_chain())})")
        valid = self.chainable_layers()
        unknown = [l for l in layers if l not in valid]
        if unknown:
            raise UserInputError(f"{unknown} cannot be mined: pick from {valid}")
        if reduce not in REDUCTIONS:
            raise UserInputError(f"reduction must be one of {REDUCTIONS}")
        t = self.layer_table.set_index("name")
        for l in layers:
            shape = t.loc[l, "output_shape"]
            units = int(np.prod(shape)) if reduce == "none" else int(t.loc[l, "n_units"])
            if units > MAX_UNITS:
                raise UserInputError(f"layer {l!r} has {units} units with reduction {reduce!r}; at most {MAX_UNITS} "
                                     "can be mined here: pick reduction 'max' or a smaller layer")
        rank = {n: i for i, n in enumerate(valid)}
        ordered = sorted(layers, key=rank.__getitem__)
        values = t.loc[ordered, "output_shape"].tolist()
        for a, b, sa, sb in zip(ordered, ordered[1:], values, values[1:]):
            if int(np.prod(sa)) == int(np.prod(sb)) and t.loc[a, "type"] in ("Flatten", "Dropout", "Identity"):
                raise UserInputError(f"{a!r} holds the same values as {b!r} (a {t.loc[a, 'type']}); rules between "
                                     "them are trivial: drop one of the two")
        return ordered

    # --- mining --------------------------------------------------------------------------------
    def mine(self, settings: MiningSettings, progress: Callable[[str, float], None] | None = None,
             cancel: threading.Event | None = None) -> "ExplorerState":
        """Record the chosen layers and mine them with the chosen miner (ExplaiNN chained output → layers,
        ERIC's logic program down to the last layer, or Grad-CAM patches + Eclat on one conv layer).
        ``progress(stage, fraction)`` is called as work advances; setting ``cancel`` stops at the next batch
        or layer pair (raises :class:`Cancelled`). On error or cancel the previous results are kept."""
        self._need_model()
        if settings.miner not in MINERS:
            raise UserInputError(f"miner must be one of {list(MINERS)}")
        reduce = "l1" if settings.miner == "eric" else settings.reduce  # ERIC quantises l1 norms (seed 001)
        chain = self.check_chain(settings.layers, reduce)
        report = progress or (lambda stage, frac: None)

        def check():
            if cancel is not None and cancel.is_set():
                raise Cancelled("mining cancelled")

        def on_batch(done: int, n: int) -> None:
            report("record", done / n)
            check()

        build = {"explainn": self._explainn, "eric": self._eric, "patches": self._patches}[settings.miner]
        job = build(settings, chain)  # validates everything before the slow part
        check()
        report("record", 0.0)
        acts = record(self.model, (self.inputs, self.labels), chain, reduce=reduce,
                      class_names=self.class_names, progress=False, on_batch=on_batch)
        flow, summary = job(acts, check, report)
        report("done", 1.0)
        self._clear_results()
        self.settings, self.activations, self.flow, self.summary = settings, acts, flow, summary
        self.nodes, self.links = flow.to_sankey()
        self.rules = self._rule_frame(flow)
        return self

    def _explainn(self, settings: MiningSettings, chain: list[str]):
        if settings.binarize not in BINARIZERS:
            raise UserInputError(f"binarization must be one of {list(BINARIZERS)}")
        pname = BINARIZERS[settings.binarize]
        kw = {pname: int(settings.param) if pname == "k" else float(settings.param)} if pname else {}
        if not 0 < settings.theta < 1:
            raise UserInputError(f"theta must be between 0 and 1 (exclusive), got {settings.theta}")
        if settings.mu is not None and settings.mu < 1:
            raise UserInputError(f"mu must be at least 1 (or empty for no limit), got {settings.mu}")
        try:
            binarizer = Binarizer(settings.binarize, **kw)
            binarizer._check_params()
            miner = ExplaiNN(theta=settings.theta, mu=settings.mu)
            miner._check_params()
        except ValueError as err:
            raise UserInputError(str(err)) from err

        def job(acts, check, report):
            def on_pair(i: int, upper: str, lower: str) -> None:
                check()
                report(f"mine {upper} → {lower}", i / len(chain))
            flow = trace(acts, chain, miner, binarizer, on_pair=on_pair)
            return flow, f"ExplaiNN: {len(flow.chains())} chains"
        return job

    def _eric(self, settings: MiningSettings, chain: list[str]):
        if not 1 <= settings.depth <= 10:
            raise UserInputError(f"tree depth must be 1..10, got {settings.depth}")
        if not 0 <= settings.alpha < 1:
            raise UserInputError(f"alpha must be in [0, 1), got {settings.alpha}")

        def job(acts, check, report):
            report(f"ERIC: trees for {' → '.join(chain)}", 0.5)
            e = ERIC(depth=settings.depth, alpha=settings.alpha).fit(acts, chain)
            flow = Flow([OUTPUT] + chain, e.to_rulesets())
            return flow, (f"ERIC program: fidelity {e.fidelity(acts):.2f} on the mining data, "
                          f"{len(e.rules_)} rules, size {e.size_}")
        return job

    def _patches(self, settings: MiningSettings, chain: list[str]):
        t = self.layer_table.set_index("name")
        if len(chain) != 1 or t.loc[chain[0], "kind"] != "conv":
            raise UserInputError("Grad-CAM patch mining needs exactly one conv layer (with spatial maps), e.g. "
                                 f"{[n for n in self.chainable_layers() if t.loc[n, 'kind'] == 'conv'][:3]}")
        side = int(self.inputs.shape[-1])
        size = settings.patch_size or max(2, side // 3)
        d = int(t.loc[chain[0], "n_units"])
        miner = PatchMiner(layer=chain[0], size=size, top=min(settings.top, d), min_support=settings.min_support,
                           q=settings.q, max_len=4)  # a cap keeps any setting interactive
        try:
            miner._check(self.model, self.inputs[:1])
        except ValueError as err:
            raise UserInputError(str(err)) from err
        if size > side:
            raise UserInputError(f"patch size {size} is larger than the {side}-pixel images")

        def job(acts, check, report):
            report("Grad-CAM patches and Eclat", 0.5)
            miner.fit(self.model, self.inputs)
            rs = miner.to_ruleset(self.class_names)
            return Flow([OUTPUT, chain[0]], [rs]), (f"{len(miner.patches_)} patches, {len(miner.rules_)} rules, "
                                                   f"{len(miner.shared_)} filter sets shared by classes")
        return job

    def _rule_frame(self, flow: Flow) -> pd.DataFrame:
        df = flow.rules_frame()
        if df.empty:
            return pd.DataFrame(columns=RULE_COLUMNS)
        df = df.rename_axis("id").reset_index()
        df["rule"] = df.groupby("pair").cumcount()
        df["text"] = [flow.rulesets[p].describe(flow.rulesets[p][r]) for p, r in zip(df["pair"], df["rule"])]
        df["tail_size"] = df["tail"].map(len)
        classes = []
        for _, row in df.iterrows():
            classes.append(sorted(self._classes_of(int(row["pair"]), int(row["rule"]))))
        df["classes"] = classes
        return df

    def _classes_of(self, pair: int, rule: int) -> set[str]:
        """Classes a rule descends from: its head for the first pair, else its upstream rules' classes."""
        rs = self.flow.rulesets[pair]
        r = rs[rule]
        if pair == 0:
            return {rs.head_names[x].removeprefix("class ") for x in r.head}
        prev = self.flow.rulesets[pair - 1]
        heads = {rs.head_names[x] for x in r.head}
        out: set[str] = set()
        for j, pr in enumerate(prev):
            if heads & {prev.tail_names[y] for y in pr.tail}:
                out |= self._classes_of(pair - 1, j)
        return out

    # --- table ---------------------------------------------------------------------------------
    def rules_table(self, cls: str | None = None, layer: str | None = None, min_size: int = 1,
                    max_size: int | None = None, sort_by: str = "support", ascending: bool = False) -> pd.DataFrame:
        """Rules filtered by class (a name in ``class_names``), tail layer and tail size, sorted."""
        df = self.rules
        if df.empty:
            return df
        if sort_by not in df.columns:
            raise UserInputError(f"cannot sort by {sort_by!r}; choose one of {list(df.columns)}")
        keep = df["tail_size"] >= min_size
        if max_size is not None:
            keep &= df["tail_size"] <= max_size
        if cls:
            keep &= df["classes"].map(lambda c: cls in c)
        if layer:
            keep &= df["tail_layer"] == layer
        return df[keep].sort_values(sort_by, ascending=ascending, kind="stable")

    def export(self, fmt: str, table: pd.DataFrame | None = None) -> str:
        """The rule table (all rules, or ``table``) as CSV or JSON text."""
        df = (self.rules if table is None else table)
        cols = ["id", "head_layer", "tail_layer", "head", "tail", "head_min", "tail_min", "kind", "support",
                "holds", "confidence", "gain", "classes", "text"]
        df = df[[c for c in cols if c in df.columns]]
        if fmt == "csv":
            flat = df.copy()
            for c in ("head", "tail", "classes"):
                if c in flat:
                    flat[c] = flat[c].map(" ".join)
            return flat.to_csv(index=False)
        if fmt == "json":
            return df.to_json(orient="records", force_ascii=False)
        raise UserInputError(f"export format must be 'csv' or 'json', got {fmt!r}")

    # --- selection and detail ------------------------------------------------------------------
    def select_rule(self, rule_id: int) -> None:
        if self.rules.empty or not 0 <= rule_id < len(self.rules):
            raise UserInputError(f"no rule {rule_id}: there are {len(self.rules)} rules (mine first)")
        self.selected_rule, self.selected_node, self.exemplar = int(rule_id), None, 0

    def select_node(self, node_id: int) -> None:
        if self.nodes.empty or not 0 <= node_id < len(self.nodes):
            raise UserInputError(f"no group {node_id}: there are {len(self.nodes)} groups (mine first)")
        self.selected_node, self.selected_rule, self.exemplar = int(node_id), None, 0

    def select_link(self, link: int) -> None:
        """A Sankey link → the rule it draws."""
        row = self.links.iloc[int(link)]
        match = self.rules[(self.rules["pair"] == row["pair"]) & (self.rules["rule"] == row["rule"])]
        self.select_rule(int(match["id"].iloc[0]))

    def select_exemplar(self, i: int) -> None:
        if not 0 <= i < self.n_exemplars:
            raise UserInputError(f"exemplar must be 0..{self.n_exemplars - 1}")
        self.exemplar = int(i)

    def rule_node(self, rule_id: int) -> int:
        """The Sankey node of a rule's tail group."""
        row = self.rules.iloc[rule_id]
        match = self.links[(self.links["pair"] == row["pair"]) & (self.links["rule"] == row["rule"])]
        return int(match["target"].iloc[0])

    def _group(self) -> tuple[str, list[int], str]:
        """(layer, unit column indices, title) of the selection."""
        if self.selected_rule is not None:
            row = self.rules.iloc[self.selected_rule]
            units = [u for u, n in zip(row["tail_idx"], row["tail"]) if not n.startswith("¬")]  # ERIC: ¬ = off
            return row["tail_layer"], units or list(row["tail_idx"]), f"Rule {self.selected_rule}: {row['text']}"
        if self.selected_node is not None:
            node = self.nodes.iloc[self.selected_node]
            names = self.activations.unit_names[node["layer"]]
            units = [names.index(u) for u in node["units"]]
            return node["layer"], units, f"Group {node['label']} ({node['layer']})"
        raise UserInputError("select a rule or a group first")

    def detail(self) -> Detail:
        """Prototype and exemplars of the selected group; heatmaps of the chosen exemplar for its predicted
        class and for the group (LRP and Grad-CAM). Images are cached per group and exemplar."""
        layer, units, title = self._group()
        names = self.activations.unit_names[layer]
        text = f"{layer}: {', '.join(names[u] for u in units)}"
        if self.selected_rule is not None:
            row = self.rules.iloc[self.selected_rule]
            text += (f"\nsupport {row['support']}, confidence {row['confidence']:.2f}, l={row['head_min']}, "
                     f"k={row['tail_min']}, classes {', '.join(row['classes'])}")
        key = (layer, tuple(units), self.exemplar)
        if key not in self._cache:
            self._cache[key] = self._pictures(layer, units)
        d = self._cache[key]
        return Detail(title=title, text=f"{text}\n{d.text}", prototype=d.prototype, exemplars=d.exemplars,
                      exemplar_labels=d.exemplar_labels, heatmaps=d.heatmaps, errors=d.errors)

    def _pictures(self, layer: str, units: list[int]) -> Detail:
        names = self.activations.unit_names[layer]
        d = Detail(title="", text="")
        group = (layer, units if layer == OUTPUT else prototypes.channels_of(names, units))
        d.prototype = self._prototype(*group, d)
        ex = prototypes.exemplars(self.activations, layer, units, m=self.n_exemplars, data=self.inputs)
        preds = self.activations.predictions[ex.indices]
        d.exemplars = [viz.to_png(viz.image(img, self._scale())) for img in ex.images]
        d.exemplar_labels = [f"#{i} → {self.class_names[p]}" for i, p in zip(ex.indices, preds)]
        pick = min(self.exemplar, len(ex.indices) - 1)
        x = ex.images[pick: pick + 1]
        cls = int(preds[pick])
        d.text = f"heatmaps for exemplar #{ex.indices[pick]} (predicted {self.class_names[cls]})"
        for method, label in (("lrp", "LRP"), ("gradcam", "Grad-CAM")):
            for target, what in ((cls, f"class {self.class_names[cls]}"), (group, "group")):
                name = f"{label} · {what}"
                try:
                    kw = {}
                    if method == "gradcam":
                        kw["layer"] = _gradcam_layer(self.model, layer if target is group else OUTPUT)
                    a = explain.attribute(self.model, x, target, method, **kw)
                    d.heatmaps[name] = viz.to_png(viz.heatmap(a[0], x[0], scale=self._scale()))
                except (LRPError, ValueError, RuntimeError) as err:
                    d.errors[name] = str(err)
        return d

    def _scale(self) -> int:
        side = int(self.inputs.shape[-1])
        return max(1, min(self.scale * 32 // max(side, 1), 16)) if side < 128 else 1

    def _prototype(self, layer: str, units: list[int], d: Detail) -> bytes | None:
        side = int(self.inputs.shape[-1])
        smooth = dict(jitter=1, blur_every=4, blur_sigma=0.5) if side >= 16 else {}
        lo, hi = float(self.inputs.min()), float(self.inputs.max())
        try:
            img = prototypes.maximize(self.model, layer, units, example=self.inputs[:1], steps=self.prototype_steps,
                                      value_range=(lo, hi), **smooth)
        except (ValueError, RuntimeError) as err:
            d.errors["prototype"] = str(err)
            return None
        return viz.to_png(viz.image(img, self._scale()))


def _load_data(path: Path, size: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(inputs, labels, class names) of at most MAX_SAMPLES samples from a folder or a saved pair."""
    if path.is_file():
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"{str(path)!r} is not a data set saved with torch.save((inputs, labels), path): "
                             f"{err}") from err
        if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, torch.Tensor) for t in obj)
                and obj[0].dim() == 4 and len(obj[0]) == len(obj[1]) > 0):
            raise ValueError(f"{str(path)!r} must hold a pair (inputs (n, C, H, W), labels (n,)) of tensors")
        x, y = obj[0][:MAX_SAMPLES].float(), obj[1][:MAX_SAMPLES].long()
        return x, y, [str(c) for c in range(int(y.max()) + 1)]
    data = image_folder(path, size=size or None)
    n = min(len(data), MAX_SAMPLES)
    try:
        pairs = [data[i] for i in range(n)]
        x = torch.stack([p[0] for p in pairs])
    except RuntimeError as err:
        raise ValueError(f"the images in {str(path)!r} differ in size; give an image size so they are "
                         f"resized ({err})") from err
    return x, torch.tensor([int(p[1]) for p in pairs]), list(data.classes)


def _fit_channels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Image folders load as RGB; a model made for grey images gets their channel mean instead."""
    with torch.no_grad():
        try:
            model.eval()(x[:1])
            return x
        except RuntimeError:
            pass
        grey = x.mean(1, keepdim=True)
        try:
            model(grey[:1])
            return grey
        except RuntimeError:
            return x  # let the layer table report the model's own error


def _gradcam_layer(model: nn.Module, layer: str) -> str:
    """The last conv layer that runs before ``layer`` (module order), so its maps feed the target."""
    names = list(named_layers(model))
    stop = len(names) if layer == OUTPUT else names.index(layer) + 1
    convs = [n for n in names[:stop] if isinstance(named_layers(model)[n], (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise ValueError(f"no conv layer runs before {layer!r}; Grad-CAM needs one")
    return convs[-1]
