"""The rule table: filter by class, layer, tail size and stability, sort, choose a rule, export CSV/JSON."""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import pandas as pd

from ._ui import download_link
from .state.explorer import ExplorerState

__all__ = ["RuleTable"]

_SORTS = ["support", "confidence", "gain", "stability", "tail_size", "id"]
_COLUMNS = ["id", "classes", "head_layer", "tail_layer", "kind", "head_min", "tail_min", "support", "confidence",
            "gain", "stability", "held-out", "text"]


class RuleTable:
    def __init__(self, state: ExplorerState, on_rule: Callable[[int], None], rows: int = 100) -> None:
        self.state, self.on_rule, self.rows = state, on_rule, rows
        self.cls = W.Dropdown(options=[("all", "")], description="Class")
        self.layer = W.Dropdown(options=[("all", "")], description="Tail layer")
        self.size = W.IntRangeSlider(value=(1, 1), min=1, max=1, description="Tail size")
        self.sort = W.Dropdown(options=_SORTS, value="support", description="Sort by")
        self.ascending = W.Checkbox(value=False, description="ascending")
        self.stable = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="Stability ≥",
                                    tooltip="only rules found again in at least this share of the half-samples",
                                    style={"description_width": "initial"})
        self.stable.add_class("nnr-min-stability")
        self.choose = W.Select(options=[], rows=8, description="Rule", layout=W.Layout(width="95%"))
        self.choose.add_class("nnr-rule-select")
        self.table = W.HTML()
        self.table.add_class("nnr-rule-table")
        self.export = W.HTML()
        self._syncing = False
        for w in (self.cls, self.layer, self.size, self.sort, self.ascending, self.stable):
            w.observe(lambda _: self.update(), names="value")
        self.choose.observe(self._chosen, names="value")
        self.widget = W.VBox([W.HBox([self.cls, self.layer]), W.HBox([self.size, self.sort, self.ascending]),
                              self.stable, self.choose, self.export, self.table])

    def refresh(self) -> None:
        """New mining results: reset the filters' choices, then show."""
        s = self.state
        self._syncing = True
        names = s.class_names  # the classes the data hold or the model predicts
        self.cls.options = [("all", "")] + ([(names[i], names[i]) for i in s.loaded.present_classes()]
                                            if s.inputs is not None else [])
        self.cls.value = ""
        layers = list(dict.fromkeys(s.rules["tail_layer"])) if not s.rules.empty else []
        self.layer.options = [("all", "")] + [(l, l) for l in layers]
        self.layer.value = ""
        top = int(s.rules["tail_size"].max()) if not s.rules.empty else 1
        self.size.max = max(top, 1)
        self.size.value = (1, max(top, 1))
        self.stable.value = 0.0
        self.stable.layout.display = "" if s.has_evidence else "none"  # mined without resamples: no stability
        self._syncing = False
        self.update()

    def frame(self) -> pd.DataFrame:
        lo, hi = self.size.value
        return self.state.rules_table(self.cls.value or None, self.layer.value or None, lo, hi,
                                      self.sort.value, self.ascending.value, self.stable.value)

    def update(self) -> None:
        if self._syncing:
            return
        df = self.frame()
        self._syncing = True
        keep = self.choose.value
        self.choose.options = [(f"{i}: {t}"[:160], int(i)) for i, t in zip(df.get("id", []), df.get("text", []))]
        self.choose.value = keep if keep in set(df.get("id", [])) else None
        self._syncing = False
        if df.empty:
            self.table.value = "<i>no rules (mine first, or relax the filters)</i>"
            self.export.value = ""
            return
        shown = df.assign(**{"held-out": [f"{lo:.2f}–{hi:.2f}" if lo == lo else "—"
                                          for lo, hi in zip(df["ci_low"], df["ci_high"])]})[_COLUMNS].head(self.rows)
        shown = shown.copy()
        shown["stability"] = shown["stability"].map(lambda s: "—" if s != s else f"{s:.2f}")
        shown["classes"] = shown["classes"].map(", ".join)
        shown["confidence"] = shown["confidence"].map("{:.2f}".format)
        shown["gain"] = shown["gain"].map(lambda g: "—" if g != g else f"{g:.1f}")  # no gain: ERIC, patches
        more = f"<small>showing {len(shown)} of {len(df)}</small>" if len(df) > len(shown) else ""
        self.table.value = (f"<div style='max-height:360px;overflow:auto;font-size:11px'>"
                            f"{shown.to_html(index=False, escape=True)}</div>{more}")
        self.export.value = (f"Export {len(df)} rules: "
                             + download_link(self.state.export("csv", df), "rules.csv", "text/csv", "CSV") + " · "
                             + download_link(self.state.export("json", df), "rules.json", "application/json", "JSON"))

    def show_rule(self, rule_id: int | None) -> None:
        self._syncing = True
        self.choose.value = rule_id if rule_id in {v for _, v in self.choose.options} else None
        self._syncing = False

    def _chosen(self, change) -> None:
        if not self._syncing and change["new"] is not None:
            self.on_rule(int(change["new"]))
