"""Flow views: the Sankey and the layered graph as ``FigureWidget``s (drawn by :mod:`.flow_figures`), the focus,
the rule chooser and "this image"; clicks go to the app as rule and group ids (see :mod:`.flow_figures` for
how a Sankey click index maps to them).
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ._ui import fit_width as _fit, keep_state, message
from .state.errors import UserInputError
from .flow_figures import (BY_GAIN, HIGHLIGHT, OTHER, link_color, RULE_CHAIN, SAMPLE, _gain_or_support, _shown, graph_figure,
                           sankey_figure)
from .state.explorer import ExplorerState

__all__ = ["FlowView", "sankey_figure", "graph_figure", "BY_GAIN", "OTHER", "RULE_CHAIN", "SAMPLE", "HIGHLIGHT"]


def _show(box: W.Box, on: bool) -> None:
    """Show or fold away one of the two views. Folded = zero height and invisible, not ``display: none``:
    plotly.js sizes a figure drawn inside a ``display: none`` box at its default 700 px and never again,
    so the view shown later would not fill the panel."""
    box.layout.height = None if on else "0px"
    box.layout.visibility = "visible" if on else "hidden"
    box.layout.overflow = "visible" if on else "hidden"


class FlowView:
    """Sankey and graph views with a rule chooser; selections go to ``on_rule``/``on_node``."""

    def __init__(self, state: ExplorerState, on_rule: Callable[[int], None], on_node: Callable[[int], None],
                 max_rules: int = 60) -> None:
        self.state, self.on_rule, self.on_node = state, on_rule, on_node
        self.on_focus: Callable[[], None] = lambda: None  # after the focus changed (the app's link follows)
        self.max_rules = W.IntSlider(value=max_rules, min=5, max=300, step=5, description="Rules shown",
                                     style={"description_width": "initial"})
        self.kind = W.ToggleButtons(options=["Sankey", "Graph"], value="Sankey")
        self.focus = W.Dropdown(options=[("top rules by support", "")], value="", description="Focus",
                                tooltip="which rules the flow shows: the top ones (by support, or by gain with "
                                        "the rest summed into grey 'other' links), or one class's chain: the "
                                        "strongest rules from the class down through the layers")
        self.focus.add_class("nnr-focus")
        self.focus.layout = W.Layout(width="460px", max_width="100%")  # its longest choice is never cut
        self.sample = W.BoundedIntText(value=0, min=0, max=0, description="This image: sample #",
                                       style={"description_width": "initial"}, layout=W.Layout(width="210px"))
        self.sample_go = W.Button(description="Its rules", tooltip="the rules that hold for this sample of the "
                                  "data, drawn as its path; its heatmaps come first in the detail")
        self.sample_go.add_class("nnr-sample-go")
        self.sample.add_class("nnr-sample")
        self.stable = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="Faint below stability",
                                    tooltip="rules found again in fewer of the half-samples than this are drawn "
                                            "faint: resampling the data does not reproduce them",
                                    style={"description_width": "initial"})
        self.stable.add_class("nnr-flow-stability")
        self.stable.observe(self._restable, names="value")
        self.sample_msg = W.HTML("")
        self.sample_msg.add_class("nnr-sample-msg")
        self.sample_go.on_click(lambda _: self.show_sample(int(self.sample.value)))
        self.rule_ids: list[int | None]
        self.node_ids: list[int]
        self.graph_ids: list[int]
        fig, self.rule_ids, self.node_ids = sankey_figure(state, max_rules)
        gfig, self.graph_ids = graph_figure(state, max_rules)
        self.sankey = go.FigureWidget(fig)
        self.graph = go.FigureWidget(gfig)
        for fig in (self.sankey, self.graph):  # plotly.js re-fits the figure to its box when the window resizes
            fig._config = {**fig._config, "responsive": True}
        self.sankey.data[0].on_click(self._sankey_click)
        self.graph.data[1].on_click(self._graph_click)
        self.sankey_box = W.Box([self.sankey])
        self.graph_box = W.Box([self.graph])
        _show(self.graph_box, False)
        self.sankey_box.add_class("nnr-sankey")
        self.graph_box.add_class("nnr-graph")
        self.rule = W.Dropdown(options=[], description="Rule", layout=W.Layout(width="95%"))
        self.rule.add_class("nnr-rule-choice")
        self.link_rows = np.array([], int)
        self._syncing = False
        self.kind.observe(self._switch, names="value")
        self.max_rules.observe(lambda _: self.refresh(), names="value")
        self.focus.observe(self._refocus, names="value")
        self.rule.observe(self._chosen, names="value")
        for box in (self.sankey_box, self.graph_box):
            # a block box, not a flex row: plotly.js sizes an autosized figure by its div, which a flex row
            # shrinks to the figure's default 700 px — the view then never follows the panel's width
            box.layout.width, box.layout.display = "100%", "block"
        self.widget = W.VBox([W.HBox([self.kind, self.max_rules, self.focus, self.stable],
                                     layout=W.Layout(flex_flow="row wrap")),
                              W.HBox([self.sample, self.sample_go, self.sample_msg],
                                     layout=W.Layout(flex_flow="row wrap", align_items="center")),
                              self.sankey_box, self.graph_box, self.rule])

    def _restable(self, _change: object) -> None:
        self.state.min_stability = float(self.stable.value)
        self.refresh()

    def _switch(self, change) -> None:
        sankey = change["new"] == "Sankey"
        _show(self.sankey_box, sankey)
        _show(self.graph_box, not sankey)
        _fit(self.sankey if sankey else self.graph)

    def _focus_options(self) -> list[tuple[str, str]]:
        """Top rules, top by gain + other, the chosen rule's chain (once a rule is chosen), each class's chain."""
        if self.state.flow is None:
            return [("top rules by support", "")]
        rule = self.state.selected_rule
        chosen = [(f"rule {rule}'s chain (the chosen rule)", f"{RULE_CHAIN}{rule}")] if rule is not None else []
        sample = self.state.chosen.sample
        if sample is not None:
            chosen.append((f"sample #{sample}'s rules (this image)", f"{SAMPLE}{sample}"))
        return ([("top rules by support", ""),
                 (f"top rules by {_gain_or_support(self.state)}, the rest as 'other'", BY_GAIN)] + chosen
                + [(f"class {self.state.class_names[i]}'s chain", self.state.class_names[i])
                   for i in self.state.loaded.present_classes()])

    def _offer(self, options: list[tuple[str, str]], keep: bool) -> None:
        """Set the focus choices without redrawing; ``keep``: keep the current focus if still offered."""
        if list(self.focus.options) == options:
            return
        value = self.focus.value if keep and self.focus.value in [v for _, v in options] else ""
        self._syncing = True
        self.focus.options = options
        self.focus.value = value
        self._syncing = False

    def _refocus(self, _change: object) -> None:
        if not self._syncing:  # the focus list is being rebuilt, not chosen by the user
            self.state.focus = self.focus.value
            self.refresh()
            self.on_focus()

    def refresh(self) -> None:
        """Redraw from the state (after mining or a change of the number of rules shown)."""
        self._offer(self._focus_options(), keep=self.state.mined and self.focus.value != "")
        if self.state.focus != self.focus.value and self.state.focus in [v for _, v in self.focus.options]:
            self._syncing = True  # a focus set on the state (a link's view) is drawn
            self.focus.value = self.state.focus
            self._syncing = False
        self.state.focus = self.focus.value
        self.stable.layout.display = "" if self.state.has_evidence else "none"
        focus = self.focus.value or None
        fig, self.rule_ids, self.node_ids = sankey_figure(self.state, self.max_rules.value, focus)
        self.link_rows = _shown(self.state, self.max_rules.value, focus)[0]
        gfig, self.graph_ids = graph_figure(self.state, self.max_rules.value, focus)
        for target, source in ((self.sankey, fig), (self.graph, gfig)):
            with target.batch_update():  # same traces, new values: no trace deletion on the front end
                for old, new in zip(target.data, source.data):
                    old.update(new.to_plotly_json(), overwrite=True)
                target.layout.update(source.layout.to_plotly_json(), overwrite=True)
                target.layout.annotations = source.layout.annotations  # update() keeps old ones
            _fit(target)
        self.rule.layout.display = "none" if self.state.mined and self.state.flow is None else ""  # a chain: no rules
        if self.state.activations is not None:
            self.sample.max = len(self.state.activations.predictions) - 1
        if self.state.chosen.sample is None:
            self.sample_msg.value = ""
        self._syncing = True
        self.rule.options = [(f"{i}: {t}"[:160], int(i)) for i, t in zip(self.state.rules["id"], self.state.rules["text"])]
        self.rule.value = self.state.selected_rule if self.state.selected_rule in self.rule_ids else None
        self._syncing = False
        self._highlight(self.state.selected_rule)

    def show_sample(self, i: int) -> None:
        """"This image": draw the rules that hold for data sample ``i`` as its path and open the one most
        specific to its predicted class, ``i`` first among its exemplars (its heatmaps)."""
        try:
            self.state.select_sample(i)
            rules = self.state.rules_for(i)
        except UserInputError as err:
            message(self.sample_msg, str(err), "error")
            return
        message(self.sample_msg, f"{len(rules)} rules hold for sample #{i}" if rules else
                f"no rule holds for sample #{i}: its path is empty")
        self._offer(self._focus_options(), keep=True)
        if self.focus.value == f"{SAMPLE}{i}":
            self.refresh()
        else:
            self.focus.value = f"{SAMPLE}{i}"  # redraws (see _refocus)
        if rules:  # the most specific to its predicted class (rules_for's order), not the most common
            self.on_rule(int(rules[0]))

    def show_rule(self, rule_id: int | None) -> None:
        """Reflect a selection made elsewhere, without firing it again; offer the chosen rule's chain."""
        if rule_id is not None and rule_id not in self.rule_ids and self.state.flow is not None:
            self._offer(self._focus_options(), keep=True)
            self.focus.value = f"{RULE_CHAIN}{rule_id}"  # not drawn under this focus: its chain is (redraws)
        self._syncing = True
        self.rule.value = rule_id
        self._syncing = False
        if not (self.focus.value or "").startswith(RULE_CHAIN):  # within a rule's chain, the chain stays
            self._offer(self._focus_options(), keep=True)
        self._highlight(rule_id)

    def _highlight(self, rule_id: int | None) -> None:
        """The chosen rule's links in orange, the others as drawn."""
        colors = [HIGHLIGHT if r == rule_id and r is not None else "rgba(180,180,180,0.35)" if r == OTHER else
                  link_color(self.state, r) for r in self.rule_ids]
        if list(self.sankey.data[0].link.color or ()) != colors:
            self.sankey.data[0].link.color = colors
            keep_state(self.sankey)

    def _chosen(self, change) -> None:
        if not self._syncing and change["new"] is not None:
            self.on_rule(int(change["new"]))

    def _sankey_click(self, trace, points, state) -> None:
        if not points.point_inds:
            return
        i = points.point_inds[0]
        if i >= len(self.rule_ids):  # see the module docstring
            if self.node_ids[i - len(self.rule_ids)] != OTHER:  # an "other" node has nothing to open
                self.on_node(self.node_ids[i - len(self.rule_ids)])
        elif self.rule_ids[i] == OTHER:
            return
        elif self.rule_ids[i] is not None:
            self.on_rule(self.rule_ids[i])
        else:  # a chain link: show the filter it leads to
            self.on_node(int(self.state.links["target"].iloc[self.link_rows[i]]))

    def _graph_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.on_node(self.graph_ids[points.point_inds[0]])
