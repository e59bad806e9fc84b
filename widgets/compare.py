"""Compare with…: a second model mined with the last Mine's settings on this model's data, its rules lined up
with these (:func:`nnrules.compare`) and drawn as one aligned table — a diff, not two pictures.

The second model is a copy of this one trained further on some classes (seed 000 Sec. 3.2 compares a model
with its fine-tuned copy) or a zoo model that has the chosen layers and runs on these inputs. Each row is one
matched pair of rules (or a rule of one side only) on one layer pair: this model's rule on the left, the other's
on the right, what changed between them in the middle, a colour per status (grey same, orange changed, blue only
in this model, green only in the other). With evidence on both sides, what resampling does not explain comes
first and the rest is greyed "within resampling noise". Text is wrapped to its column at the width the figure
is drawn (``width``), so no two labels overlap: a row grows instead.
"""
from __future__ import annotations

import html
import textwrap
import threading

import ipywidgets as W
import plotly.graph_objects as go

from nnrules.miners.comparison import Comparison

from ._ui import fit_width, message
from .flow_figures import plotly_text
from .state.comparing import FINE_TUNED, Compared, comparable_models, compare_with
from .state.errors import Cancelled, UserInputError

__all__ = ["Compared", "compare_with", "compare_figure", "CompareView", "FINE_TUNED", "diff_rows"]

COLORS = {"same": "rgba(120,120,120,0.35)", "changed": "rgba(230,140,0,0.65)", "only in a": "rgba(31,119,180,0.65)",
          "only in b": "rgba(44,160,44,0.65)", "noise": "rgba(190,190,190,0.3)"}
#: what a difference that resampling explains is called (and drawn as: grey)
NOISE = "within resampling noise"
GREY = " style='color:#999'"
#: the table's columns (header, share of the width) and the text's metrics: px per character at FONT px
COLUMNS = [("", 0.04), ("layers", 0.13), ("left", 0.31), ("what changed", 0.21), ("right", 0.31)]
FONT, CHAR_PX, LINE_PX = 11, 6.7, 15


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


def _units(names, layer: str) -> str:
    """Unit names without their layer (the row names it): "c3, c5, ¬c9"."""
    return ", ".join(str(u).replace(f"{layer}:", "") for u in names or [])


def _rule(r, side: str) -> str:
    tail = getattr(r, f"{side}_tail")
    if tail is None:
        return ""
    head = _units(getattr(r, f"{side}_head"), r.upper)
    stab = getattr(r, f"{side}_stability")
    found = "" if stab is None or stab != stab else f"; found again {stab:.0%}"
    k, lk = (int(getattr(r, f"{side}_{t}")) for t in ("k", "l"))  # thresholds (a table of both sides: floats)
    return f"{_units(tail, r.lower)} → {head} (k={k}, l={lk}; conf {getattr(r, f'{side}_confidence'):.2f}{found})"


def _order(c: Comparison):
    """Rows in reading order: beyond the null first, then changed, only left, only right; within-noise and same
    rows last."""
    rank = {"changed": 1, "only in a": 2, "only in b": 3, "same": 5}
    rows = c.rules.copy()
    noise = ~rows["beyond_null"].astype(bool) if c.has_null else rows["status"] == "__never__"
    rows["rank_"] = [0 if c.has_null and not n and st != "same" else 4 if n and st != "same" else rank[st]
                     for st, n in zip(rows["status"], noise)]
    rows["noise_"] = noise & (rows["status"] != "same")
    return rows.sort_values(["rank_", "pair"], kind="stable")


def diff_rows(c: Comparison, width: int = 1000) -> list[dict]:
    """The table's rows: ``status`` (its colour key), ``cells`` (text of each column, wrapped with ``<br>`` to
    the column's width at a figure ``width`` px wide), ``lines`` (the most lines of a cell)."""
    out = []
    for r in _order(c).itertuples():
        status = "noise" if r.noise_ else r.status
        what = r.what or {"same": "same", "only in a": "only left", "only in b": "only right"}.get(r.status, "")
        if r.noise_:
            what = f"{what} ({NOISE})"
        elif c.has_null and r.status != "same":
            what = f"{what} (beyond resampling noise)"
        texts = ["", f"{r.upper} → {r.lower}", _rule(r, "a"), what, _rule(r, "b")]
        cells = []
        for text, (_, share) in zip(texts, COLUMNS):
            chars = max(int(share * width / CHAR_PX) - 1, 4)
            cells.append(textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) or [""])
        out.append({"status": status, "cells": cells, "lines": max(len(x) for x in cells)})
    return out


def compare_figure(compared: Compared | None, width: int = 1000, height: int = 560) -> go.Figure:
    """The aligned diff: one table row per pair of rules (see the module text), the headline as title."""
    fig = go.Figure()
    if compared is None:
        fig.update_layout(height=200, title=dict(text="Mine, then compare with another model", font=dict(size=12)))
        return fig
    c = compared.comparison
    rows = diff_rows(c, width)
    fills = [[COLORS[r["status"]] for r in rows]] + [["white"] * len(rows)] * (len(COLUMNS) - 1)
    fonts = [["#999" if r["status"] == "noise" else "#222" for r in rows]] * len(COLUMNS)
    values = [["<br>".join(plotly_text(line) for line in r["cells"][i]) for r in rows] for i in range(len(COLUMNS))]
    header = ["", "layers", f"{c.names[0]} (left)", "what changed", f"{c.names[1]} (right)"]
    fig.add_trace(go.Table(
        columnwidth=[share for _, share in COLUMNS],
        header=dict(values=[plotly_text(h) for h in header], align="left", font=dict(size=FONT + 1),
                    fill_color="#eef1f5", height=LINE_PX + 8),
        cells=dict(values=values, align="left", font=dict(size=FONT, color=fonts), fill_color=fills,
                   height=LINE_PX + 6)))
    lines = textwrap.wrap(headline(c), max(int(width / 6.2), 40))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=16 + 16 * len(lines), b=10),
                      title=dict(text="<br>".join(plotly_text(line) for line in lines), font=dict(size=12)))
    return fig


class CompareView:
    """The Compare tab: the other model (a fine-tuned copy on chosen classes, or a zoo model that has the chosen
    layers), Compare with progress and Cancel, the aligned diff and a list of what changed."""

    def __init__(self, state, threaded: bool = True) -> None:
        self.state, self.threaded = state, threaded
        self.other = W.Dropdown(options=[FINE_TUNED], value=FINE_TUNED, description="Compare with",
                                style={"description_width": "initial"})
        self.classes = W.SelectMultiple(options=[], rows=4, description="on classes",
                                        style={"description_width": "initial"})
        self.button = W.Button(description="Compare", button_style="primary")
        self.button.add_class("nnr-compare")
        self.cancel_button = W.Button(description="Cancel", disabled=True)
        self.cancel_button.add_class("nnr-compare-cancel")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(display="none", width="95%"))
        self.bar.add_class("nnr-compare-progress")
        self.msg = W.HTML()
        self.figure = go.FigureWidget(compare_figure(None))
        self.figure._config = {**self.figure._config, "responsive": True}
        self.changes = W.HTML()
        self.compared: Compared | None = None
        self.thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.other.observe(lambda _: self._toggle(), names="value")
        self.button.on_click(lambda _: self.start())
        box = W.Box([self.figure], layout=W.Layout(width="100%", display="block"))
        box.add_class("nnr-compare-figure")
        self.widget = W.VBox([W.HBox([self.other, self.classes, self.button, self.cancel_button],
                                     layout=W.Layout(flex_flow="row wrap")), self.bar, self.msg, box, self.changes])

    def _toggle(self) -> None:
        self.classes.layout.display = "" if self.other.value == FINE_TUNED else "none"

    def refresh(self) -> None:
        """After a load or a Mine: the classes and the zoo models that share the chosen layers; the old comparison
        is gone."""
        names = list(self.state.class_names)  # the classes the data hold or the model predicts
        present = self.state.loaded.present_classes() if self.state.inputs is not None else []
        self.classes.options = [(names[i], i) for i in present]
        self.classes.value = tuple(present[:2])
        self.other.options = [FINE_TUNED] + comparable_models(self.state)
        self.compared = None
        self._draw()

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self.button.disabled, self.cancel_button.disabled = True, False
        self._cancel = threading.Event()
        self.bar.value, self.bar.layout.display = 0.0, ""
        message(self.msg, "mining the other model with the same settings…", "info")
        other, classes = self.other.value, [int(c) for c in self.classes.value]
        if self.threaded:
            self.thread = threading.Thread(target=self._run, args=(other, classes, self._cancel), daemon=True)
            self.thread.start()
        else:
            self._run(other, classes, self._cancel)

    def cancel(self) -> None:
        """Stop the comparison at its next epoch, batch or layer pair; the previous one stays."""
        self._cancel.set()
        message(self.msg, "cancelling…", "info")

    def _progress(self, stage: str, fraction: float) -> None:
        self.bar.value = min(max(float(fraction), 0.0), 1.0)
        message(self.msg, f"{stage}…", "info")

    def _run(self, other: str, classes: list[int], cancel: threading.Event) -> None:
        try:
            self.compared = compare_with(self.state, other, classes, progress=self._progress, cancel=cancel)
            message(self.msg, "")
            self._draw()
        except Cancelled:
            message(self.msg, "Comparing cancelled; nothing changed.", "info")
        except UserInputError as err:
            message(self.msg, str(err), "error")
        except Exception as err:  # noqa: BLE001 — a worker thread must report, never die silently
            message(self.msg, f"Comparing failed ({type(err).__name__}): {err}", "error")
        finally:
            self.button.disabled, self.cancel_button.disabled = False, True
            self.bar.layout.display, self.bar.value = "none", 0.0

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
        rows = _order(c)
        rows = rows[rows.status != "same"]

        def item(r) -> str:
            text = _rule(r, "a") or _rule(r, "b")
            parts = [p for p in (f"{html.escape(r.upper)} → {html.escape(r.lower)}: {html.escape(text)}",
                                 html.escape(r.what) if r.what else "") if p]
            return (f"<li{GREY if r.noise_ else ''}><b>{html.escape(r.status)}</b>"
                    f"{' (' + NOISE + ')' if r.noise_ else ''} {' — '.join(parts)}</li>")

        items = "".join(item(r) for r in rows.head(30).itertuples())
        self.changes.value = (f"<div>{html.escape(headline(c))}</div><ul class='nnr-compare-changes'>{items}</ul>"
                              if items else "<i>every rule is the same</i>")
