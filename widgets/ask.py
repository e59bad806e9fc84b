"""Direct answers in the page: one search box (a class, a unit, a rule, a layer), a class's view ("what does the
network use for a Sandal?"), and "this image" — a gallery of the data and a photo of your own.

Every answer comes from :class:`~.state.explorer.ExplorerState` (``search``, ``class_view``, ``gallery``,
``rules_for``, ``photo``); this module only lays them out and routes clicks: a class hit opens the class view,
a unit hit the unit's page, a rule hit the rule's detail, a thumbnail its rules (the most specific first).
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as W
import pandas as pd

from ._ui import image, message
from .state.explorer import ExplorerState, UserInputError
from .state.jobs import MODEL_LOCK

__all__ = ["SearchBox", "ClassPanel", "Gallery"]

THUMB = "56px"  # a gallery thumbnail's displayed width


class SearchBox:
    """One box that finds and opens a class (``on_class``), a unit (``on_unit``), a rule (``on_rule``) or a
    layer (its units are offered as hits)."""

    def __init__(self, state: ExplorerState, on_class: Callable[[int], None], on_unit: Callable[[str], None],
                 on_rule: Callable[[int], None]) -> None:
        self.state, self.on_class, self.on_unit, self.on_rule = state, on_class, on_unit, on_rule
        self.text = W.Text(placeholder="find a class, a unit (relu3:28), a rule (12) or a layer",
                           layout=W.Layout(width="340px", max_width="100%"), continuous_update=False)
        self.text.add_class("nnr-search")
        self.go = W.Button(description="Find", layout=W.Layout(width="70px"))
        self.go.add_class("nnr-search-go")
        self.go.on_click(lambda _: self.find(open_first=True))
        self.text.observe(lambda _: self.find(open_first=True), names="value")
        self.hits = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.hits.add_class("nnr-search-hits")
        self.msg = W.HTML()
        self.msg.add_class("nnr-search-msg")
        self.widget = W.VBox([W.HBox([self.text, self.go, self.msg], layout=W.Layout(flex_flow="row wrap",
                                                                                     align_items="center")),
                              self.hits])

    def find(self, open_first: bool = False) -> list:
        """Search the box's text; offer the hits as buttons and (``open_first``) open the first exact one."""
        text = self.text.value
        if not text.strip():
            self.hits.children, self.msg.value = (), ""
            return []
        try:
            found = self.state.search(text)
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return []
        if not found:
            message(self.msg, f"nothing matches {text.strip()[:60]!r}: try a class name, a unit such as "
                              f"{self._example()}, a rule number or a layer", "error")
            self.hits.children = ()
            return []
        message(self.msg, f"{len(found)} found" + (" (the first opened)" if open_first else ""), "ok")
        buttons = []
        for h in found[:12]:
            b = W.Button(description=h.label[:60], tooltip=h.label, layout=W.Layout(width="auto", max_width="100%"))
            b.add_class(f"nnr-hit-{h.kind}")
            b.on_click(lambda _, h=h: self.open(h))
            buttons.append(b)
        self.hits.children = buttons
        if open_first:
            self.open(found[0])
        return found

    def _example(self) -> str:
        acts = self.state.activations
        layers = [l for l in (acts.layers if acts is not None else []) if l != "output"]
        return f"{layers[0]}:0" if layers else "relu3:28 (after mining)"

    def open(self, hit) -> None:
        if hit.kind == "class":
            self.on_class(int(hit.target))
        elif hit.kind == "unit":
            self.on_unit(hit.label.removeprefix("unit "))
        elif hit.kind == "rule":
            self.on_rule(int(hit.target))
        else:  # a layer: its units as hits
            self.text.value = f"{hit.target}:"


def _rules_cell(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:4])) + (" …" if len(ids) > 4 else "") if ids else "—"


class ClassPanel:
    """"Class: [dropdown]": the unit groups that matter for one class, the most specific first, in one
    sentence and a table; a group's rule opens with ``on_rule``."""

    def __init__(self, state: ExplorerState, on_rule: Callable[[int], None],
                 on_class: Callable[[str], None] = lambda c: None) -> None:
        self.state, self.on_rule, self.on_class = state, on_rule, on_class
        self.cls = W.Dropdown(options=[("—", None)], value=None, description="Class",
                              tooltip="what the network uses for one class: the unit groups that fire most "
                                      "specifically on it, from the output down")
        self.cls.add_class("nnr-class-view")
        self._syncing = False
        self.cls.observe(lambda c: self.show(c["new"]) if not self._syncing else None, names="value")
        self.answer = W.HTML()
        self.answer.add_class("nnr-class-answer")
        self.table = W.HTML()
        self.table.add_class("nnr-class-table")
        self.open = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox([self.cls, self.answer, self.open, self.table])

    def refresh(self) -> None:
        self._syncing = True
        names = self.state.class_names  # the classes the data hold or the model predicts (not 1000 entries)
        self.cls.options = [("—", None)] + ([(names[i], i) for i in self.state.loaded.present_classes()]
                                            if self.state.inputs is not None else [])
        self.cls.value = None
        self._syncing = False
        self.answer.value, self.table.value, self.open.children = "", "", ()

    def show(self, cls: int | None) -> pd.DataFrame | None:
        """Draw class ``cls``'s view (None clears it)."""
        if cls is None:
            self.answer.value, self.table.value, self.open.children = "", "", ()
            return None
        if cls not in [v for _, v in self.cls.options]:
            message(self.answer, f"no class {cls!r}: the classes are 0..{len(self.state.class_names) - 1}", "error")
            return None
        if self.cls.value != cls:
            self._syncing = True
            self.cls.value = cls
            self._syncing = False
        try:
            with MODEL_LOCK:
                df = self.state.class_view(cls)
        except UserInputError as err:
            message(self.answer, str(err), "error")
            self.table.value, self.open.children = "", ()
            return None
        self.answer.value = f"<div style='margin:4px 0'><b>{html.escape(df.attrs['answer'])}</b></div>"
        shown = df.head(8)
        held = "held_out_precision" in shown
        head = ("<tr><th>layer</th><th>group (fires when)</th><th>samples</th><th>precision</th><th>recall</th>"
                "<th>lift</th>" + ("<th>held-out precision</th>" if held else "") + "<th>rules</th></tr>")
        rows = []
        for _, r in shown.iterrows():
            units = list(r["group"])
            need = int(r["need"])
            group = units[0] if len(units) == 1 else \
                f"{'any' if need == 1 else 'all' if need == len(units) else need} of {', '.join(units)}"
            bold = " style='font-weight:bold'" if r["specific"] else ""
            rows.append(f"<tr{bold}><td>{html.escape(r['layer'])}</td>"
                        f"<td style='overflow-wrap:anywhere'>{html.escape(group)}</td><td>{r['fires']}</td>"
                        f"<td>{r['precision']:.0%}</td><td>{r['recall']:.0%}</td><td>{r['lift']:.1f}</td>"
                        + (f"<td>{r['held_out_precision']:.0%}</td>" if held else "")
                        + f"<td>{html.escape(_rules_cell(list(r['rules'])))}</td></tr>")
        self.table.value = (f"<style>.nnr-class-rows td, .nnr-class-rows th {{padding:1px 8px 1px 0;text-align:left;"
                            f"vertical-align:top}}</style>"
                            f"<div style='overflow-x:auto;max-width:100%'>"  # a narrow screen scrolls the table
                            f"<table class='nnr-class-rows' style='font-size:11px;border-collapse:collapse'>{head}"
                            f"{''.join(rows)}</table></div><small>precision = P(predicted {html.escape(df.attrs['class'])} | "
                            "the group fires); recall = P(the group fires | predicted "
                            f"{html.escape(df.attrs['class'])}); lift = precision ÷ the class's share; bold: "
                            "specific (precision ≥ 50 %)</small>")
        ids = list(dict.fromkeys(i for rs in shown["rules"] for i in rs))[:6]
        buttons = []
        for rid in ids:
            b = W.Button(description=f"open rule {rid}", layout=W.Layout(width="auto"))
            b.add_class("nnr-class-rule")
            b.on_click(lambda _, rid=rid: self.on_rule(rid))
            buttons.append(b)
        self.open.children = buttons
        self.on_class(self.state.class_names[int(cls)])
        return df


class Gallery:
    """Pick "this image" from thumbnails of the data (filter by class, by predicted class, the wrong ones) or
    upload a photo of your own: its prediction and the rules that hold for it, the most specific first
    (``on_sample(i)`` for a data sample; ``on_rule(id)`` opens a photo's first rule). Nothing is re-mined."""

    def __init__(self, state: ExplorerState, on_sample: Callable[[int], None], on_rule: Callable[[int], None],
                 n: int = 24) -> None:
        self.state, self.on_sample, self.on_rule, self.n = state, on_sample, on_rule, n
        self.label = W.Dropdown(options=[("any", None)], value=None, description="Labelled")
        self.predicted = W.Dropdown(options=[("any", None)], value=None, description="Predicted")
        self.wrong = W.Checkbox(value=False, description="wrong predictions only", indent=False)
        self._syncing = False
        for w in (self.label, self.predicted, self.wrong):
            w.observe(lambda _: None if self._syncing else self.refresh(keep_filters=True), names="value")
        self.label.add_class("nnr-gallery-label")
        self.wrong.add_class("nnr-gallery-wrong")
        self.grid = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.grid.add_class("nnr-gallery")
        self.upload = W.FileUpload(accept=".png,.jpg,.jpeg", multiple=False, description="Your photo")
        self.upload.add_class("nnr-photo")
        self.upload.observe(self._uploaded, names="value")
        self.photo = W.HBox()
        self.photo_msg = W.HTML()
        self.photo_msg.add_class("nnr-photo-msg")
        self.msg = W.HTML()
        self.msg.add_class("nnr-gallery-msg")
        self.widget = W.VBox([W.HBox([self.label, self.predicted, self.wrong], layout=W.Layout(flex_flow="row wrap")),
                              self.msg, self.grid,
                              W.HBox([self.upload, self.photo, self.photo_msg], layout=W.Layout(flex_flow="row wrap",
                                                                                                align_items="center"))])

    def refresh(self, keep_filters: bool = False) -> None:
        """Thumbnails for the filters (new data: the filters reset)."""
        if not keep_filters:
            names = self.state.class_names
            options = [("any", None)] + ([(names[i], i) for i in self.state.loaded.present_classes()]
                                         if self.state.inputs is not None else [])
            self._syncing = True
            for w in (self.label, self.predicted):
                w.options, w.value = options, None
            self.wrong.value = False
            self._syncing = False
        if self.state.inputs is None:
            self.grid.children = ()
            return
        try:
            df = self.state.gallery(self.label.value, self.predicted.value, bool(self.wrong.value), self.n)
            pngs = self.state.thumbnails([int(i) for i in df["sample"]])
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return
        message(self.msg, "" if len(df) else "no sample of the data matches these filters")
        cells = []
        for (_, r), png in zip(df.iterrows(), pngs):
            b = W.Button(description=f"#{r['sample']}", tooltip=f"labelled {r['label'] or '?'}, predicted "
                         f"{r['predicted']}: its rules", layout=W.Layout(width=THUMB, padding="0"))
            b.add_class("nnr-thumb-go")
            b.on_click(lambda _, i=int(r["sample"]): self.on_sample(i))
            cells.append(W.VBox([image(png, "nnr-thumb", THUMB), b], layout=W.Layout(width=THUMB, margin="0 4px 4px 0")))
        self.grid.children = cells

    def _uploaded(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        name = f.get("name", "photo") if isinstance(f, dict) else getattr(f, "name", "photo")
        content = bytes(f.get("content", b"") if isinstance(f, dict) else getattr(f, "content", b""))
        self.show_photo(name, content)

    def show_photo(self, name: str, content: bytes) -> list[int]:
        """Check one uploaded photo against the mined rules: its prediction, its rules (the most specific
        first, which opens); a clear message for a file that is no image. The data and the rules are kept."""
        try:
            with MODEL_LOCK:
                x, note = self.state.photo(name, content)
                rules = self.state.rules_for(x)
        except UserInputError as err:
            message(self.photo_msg, str(err), "error")
            self.photo.children = ()
            return []
        import nnrules.attribution.viz as viz
        self.photo.children = [image(viz.to_png(viz.image(x, self.state.chosen._scale())), "nnr-photo-img", "84px")]
        pred = self.state.class_names[self.state.this_prediction or 0]
        words = self.state.rules.set_index("id")["words"]
        listed = "".join(f"<li>rule {r}: {html.escape(words[r])}</li>" for r in rules[:5])
        self.photo_msg.value = (f"<div class='nnr-photo-rules'><b>predicted {html.escape(pred)}</b> — "
                                f"{len(rules)} rule{'s' if len(rules) != 1 else ''} hold"
                                f"{'s' if len(rules) == 1 else ''}, the most specific to {html.escape(pred)} first"
                                f"<ol style='margin:2px 0'>{listed}</ol><small>{html.escape(name)}: "
                                f"{html.escape(note)}; not added to the data</small></div>")
        if rules:
            self.on_rule(rules[0])
        return rules
