"""Compare with…: a second model mined with the last Mine's settings on this model's data, its rules lined up
with these (:func:`nnrules.compare`) and drawn as two Sankeys in one figure.

The second model is a copy of this one trained further on some classes (seed 000 Sec. 3.2 compares a model
with its fine-tuned copy) or a zoo model with the same layer names and input size. Both Sankeys put a layer's
groups in one shared order (a group drawn at the same height on both sides is the same group of units), and
colour each rule by what happened to it: grey the same, orange changed, blue only in this model, green only in
the other.
"""
from __future__ import annotations

import html
import threading

import ipywidgets as W
import plotly.graph_objects as go

import nnrules.zoo as zoo
from nnrules.miners.comparison import Comparison

from ._ui import fit_width, message
from .flow_figures import plotly_text
from .state.comparing import FINE_TUNED, Compared, compare_with
from .state.errors import Cancelled, UserInputError

__all__ = ["Compared", "compare_with", "compare_figure", "CompareView", "FINE_TUNED"]

COLORS = {"same": "rgba(120,120,120,0.35)", "changed": "rgba(230,140,0,0.65)", "only in a": "rgba(31,119,180,0.65)",
          "only in b": "rgba(44,160,44,0.65)", "noise": "rgba(190,190,190,0.3)"}
#: what a difference that resampling explains is called (and drawn as: grey)
NOISE = "within resampling noise"
GREY = " style='color:#999'"


def _status(c: Comparison) -> dict[tuple[str, tuple[str, str], int], str]:
    """(side, layer pair, rule) → its status; with evidence a difference within resampling noise is "noise"."""
    out = {}
    for row in c.rules.itertuples():
        key = (row.upper, row.lower)
        status = "noise" if c.has_null and row.status != "same" and not row.beyond_null else row.status
        if row.a_rule >= 0:
            out[("a", key, int(row.a_rule))] = status
        if row.b_rule >= 0:
            out[("b", key, int(row.b_rule))] = status
    return out


def headline(c: Comparison) -> str:
    """The comparison in one line, leading with what is beyond resampling noise when both sides carry evidence."""
    s = c.summary()
    a, b = c.names
    counts = (f"{s['same']} same, {s['changed']} changed (orange), {s['only in a']} only left (blue), "
              f"{s['only in b']} only right (green); {s['units changed']} units changed role")
    if not c.has_null:
        return f"{a} (left) vs {b} (right): {counts} — mined without resamples: no null to tell real changes"
    differ = len(c.rules) - s["same"]
    return (f"{a} (left) vs {b} (right): {s['beyond null']} of {differ} differences beyond resampling noise "
            f"({s['units beyond null']} units); the other {differ - s['beyond null']} grey, {NOISE}. All: {counts}")


def compare_figure(compared: Compared | None, height: int = 520) -> go.Figure:
    """Two Sankeys side by side (this model left, the other right), groups in a shared order per layer, rules
    coloured by status; hover says what changed."""
    fig = go.Figure()
    if compared is None:
        fig.update_layout(height=200, title=dict(text="Mine, then compare with another model", font=dict(size=12)))
        return fig
    status = _status(compared.comparison)
    what = {(("a", (r.upper, r.lower), int(r.a_rule)) if r.a_rule >= 0 else ("b", (r.upper, r.lower), int(r.b_rule))):
            r.what for r in compared.comparison.rules.itertuples()}
    sides = [("a", compared.a, *compared.a.to_sankey(), 0.0), ("b", compared.b, *compared.b.to_sankey(), 0.52)]
    layers = list(dict.fromkeys(compared.a.layers + compared.b.layers))
    order: dict[str, dict[str, int]] = {}
    for _, _, nodes, _, _ in sides:
        for layer, label in zip(nodes["layer"], nodes["label"]):
            per = order.setdefault(layer, {})
            per.setdefault(label, len(per))
    for side, flow, nodes, links, x0 in sides:
        keys = [(rs.head_layer, rs.tail_layer) for rs in flow.rulesets]
        st = [status.get((side, keys[int(p)], int(r)), "same") for p, r in zip(links["pair"], links["rule"])]
        hover = [f"{NOISE if s == 'noise' else s}{': ' + what.get((side, keys[int(p)], int(r)), '') if what.get((side, keys[int(p)], int(r))) else ''}"
                 for s, p, r in zip(st, links["pair"], links["rule"])]
        xs = [0.01 + 0.98 * layers.index(l) / max(len(layers) - 1, 1) for l in nodes["layer"]]
        ys = [0.02 + 0.96 * (order[l][lab] + 0.5) / len(order[l]) for l, lab in zip(nodes["layer"], nodes["label"])]
        fig.add_trace(go.Sankey(
            domain=dict(x=[x0, x0 + 0.48]), arrangement="fixed", visible=bool(len(links)),
            node=dict(label=[plotly_text(l) for l in nodes["label"]], x=xs, y=ys, pad=4, thickness=10, color="#8899aa"),
            link=dict(source=list(links["source"]), target=list(links["target"]), value=list(links["value"].astype(float)),
                      color=[COLORS[s] for s in st], customdata=[plotly_text(h) for h in hover],
                      hovertemplate="%{customdata}<extra></extra>")))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10),
                      title=dict(text=html.escape(headline(compared.comparison)), font=dict(size=12)))
    return fig


class CompareView:
    """The Compare tab: the other model (a fine-tuned copy on chosen classes, or a zoo model), Compare, the
    figure and a table of what changed."""

    def __init__(self, state, threaded: bool = True) -> None:
        self.state, self.threaded = state, threaded
        self.other = W.Dropdown(options=[FINE_TUNED], value=FINE_TUNED, description="Compare with",
                                style={"description_width": "initial"})
        self.classes = W.SelectMultiple(options=[], rows=4, description="on classes",
                                        style={"description_width": "initial"})
        self.button = W.Button(description="Compare", button_style="primary")
        self.button.add_class("nnr-compare")
        self.msg = W.HTML()
        self.figure = go.FigureWidget(compare_figure(None))
        self.figure._config = {**self.figure._config, "responsive": True}
        self.changes = W.HTML()
        self.compared: Compared | None = None
        self.thread: threading.Thread | None = None
        self.other.observe(lambda _: self._toggle(), names="value")
        self.button.on_click(lambda _: self.start())
        box = W.Box([self.figure], layout=W.Layout(width="100%", display="block"))
        box.add_class("nnr-compare-figure")
        self.widget = W.VBox([W.HBox([self.other, self.classes, self.button], layout=W.Layout(flex_flow="row wrap")),
                              self.msg, box, self.changes])

    def _toggle(self) -> None:
        self.classes.layout.display = "" if self.other.value == FINE_TUNED else "none"

    def refresh(self) -> None:
        """After a load or a Mine: the classes and zoo models on offer; the old comparison is gone."""
        names = list(self.state.class_names)  # the classes the data hold or the model predicts
        present = self.state.loaded.present_classes() if self.state.inputs is not None else []
        self.classes.options = [(names[i], i) for i in present]
        self.classes.value = tuple(present[:2])
        self.other.options = [FINE_TUNED] + [m for m in zoo.available() if m != self.state.model_name]
        self.compared = None
        self._draw()

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self.button.disabled = True
        message(self.msg, "mining the other model with the same settings…", "info")
        other, classes = self.other.value, [int(c) for c in self.classes.value]
        if self.threaded:
            self.thread = threading.Thread(target=self._run, args=(other, classes), daemon=True)
            self.thread.start()
        else:
            self._run(other, classes)

    def _run(self, other: str, classes: list[int]) -> None:
        try:
            self.compared = compare_with(self.state, other, classes)
            message(self.msg, "")
            self._draw()
        except (UserInputError, Cancelled) as err:
            message(self.msg, str(err), "error")
        except Exception as err:  # noqa: BLE001 — a worker thread must report, never die silently
            message(self.msg, f"Comparing failed ({type(err).__name__}): {err}", "error")
        finally:
            self.button.disabled = False

    def _draw(self) -> None:
        fig = compare_figure(self.compared)
        with self.figure.batch_update():
            self.figure.data = ()
            for tr in fig.data:
                self.figure.add_trace(tr)
            self.figure.layout.update(fig.layout.to_plotly_json(), overwrite=True)
        fit_width(self.figure)  # drawn while its tab was hidden: plotly.js measures the box again
        if self.compared is None:
            self.changes.value = ""
            return
        c = self.compared.comparison
        rows = c.rules[c.rules.status != "same"]
        if c.has_null:  # what resampling does not explain first, the rest greyed
            rows = rows.assign(_k=~rows["beyond_null"].astype(bool)).sort_values("_k", kind="stable")
        def item(r) -> str:
            noise = c.has_null and not r.beyond_null
            return (f"<li{GREY if noise else ''}><b>{html.escape(r.status)}</b>{' (' + NOISE + ')' if noise else ''} "
                    f"{html.escape(r.upper)} → {html.escape(r.lower)}: {html.escape(', '.join(r.a_tail or r.b_tail or []))}"
                    f"{' — ' + html.escape(r.what) if r.what else ''}</li>")

        items = "".join(item(r) for r in rows.head(30).itertuples())
        self.changes.value = (f"<div>{html.escape(headline(c))}</div><ul class='nnr-compare-changes'>{items}</ul>"
                              if items else "<i>every rule is the same</i>")
