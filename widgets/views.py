"""Flow views: the rules as a plotly Sankey and as a layered graph (``FigureWidget``s).

Plotly reports a Sankey click to Python as one index, the same kind for a node and for a link (no
position either). So the figure's node list starts with one unlinked placeholder per link — plotly.js
does not draw nodes without links — and a click index below the number of links is a link, at or above it
a node. The positions map to rule and group ids through ``rule_ids``/``node_ids`` because the figure shows
only the strongest rules. Node x/y positions (one column per layer) are matched by plotly.js to the linked
nodes only, so they are given for the real nodes without the placeholders.
"""
from __future__ import annotations

from typing import Callable, Sequence

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._ui import message
from .errors import UserInputError
from .state import ExplorerState

__all__ = ["FlowView", "sankey_figure", "graph_figure", "BY_GAIN", "OTHER", "RULE_CHAIN", "SAMPLE"]

#: Focus value: the top rules by gain (bits saved; support where a miner has no gain), the rest of each layer
#: pair drawn as one grey "other" link between "other" nodes — how much flow the shown rules leave out.
BY_GAIN = " top by gain + other"
#: An "other" link is drawn at most this many times as wide as the shown rules of its layer pair (its hover
#: says its real flow): on cifar10-cnn the 217 rules left out of the top 30 carry 85 % of the flow, and drawn
#: to scale they would squeeze the shown rules into a sliver.
OTHER_CAP = 0.5
#: Focus value prefix: ``RULE_CHAIN + "12"`` is the chain through rule 12 (:meth:`chain_through`).
RULE_CHAIN = " rule "
#: Focus value prefix: ``SAMPLE + "12"`` is the path of data sample 12 ("this image"): the rules that hold
#: for it (:meth:`ExplorerState.rules_for`), the strongest ``max_rules`` of them.
SAMPLE = " sample "
#: The chosen rule's links in the Sankey.
HIGHLIGHT = "rgba(230,120,0,0.75)"
#: The rule / group id of an aggregated "other" link or node (nothing to open).
OTHER = -1

_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
            "#9c755f", "#bab0ac"]


def _shown(state: ExplorerState, max_rules: int, focus: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(link row positions, node ids) of the ``max_rules`` rules with the largest support; with ``focus``
    :data:`BY_GAIN` of the largest gain, ``max_rules`` split evenly over the layer pairs; with ``focus``
    ``RULE_CHAIN + id`` of that rule's chain (:meth:`chain_through`); with ``focus`` a class name of that
    class's chain (:meth:`chain_of`; chains keep at most 8 rules a layer pair);
    a NeuroChains chain, which has links but no rules: its ``max_rules`` heaviest links."""
    links = state.links
    if state.flow is None and len(links):
        rows = np.sort(np.argsort(-links["value"].to_numpy(float), kind="stable")[:max_rules]).astype(int)
    elif state.rules.empty:
        return np.array([], int), np.array([], int)
    else:
        if focus == BY_GAIN:  # gains are not comparable across layer pairs: the top ones of each pair
            per_pair = max(1, max_rules // max(1, state.rules["pair"].nunique()))
            top = (state.rules.sort_values(_gain_or_support(state), ascending=False, kind="stable")
                   .groupby("pair", sort=False).head(per_pair)[["pair", "rule"]])
        elif focus and focus.startswith(SAMPLE):
            holds = state.rules[state.rules["id"].isin(state.rules_for(int(focus[len(SAMPLE):])))]
            top = holds.nlargest(max_rules, "support")[["pair", "rule"]]
        elif focus:
            per_pair = max(2, min(8, max_rules // max(1, len(state.flow.rulesets) if state.flow else 1)))
            ids = set(state.chain_through(int(focus[len(RULE_CHAIN):]), per_pair) if focus.startswith(RULE_CHAIN)
                      else state.chain_of(focus, per_pair))
            top = state.rules[state.rules["id"].isin(ids)][["pair", "rule"]]
        else:
            top = state.rules.nlargest(max_rules, "support")[["pair", "rule"]]
        keep = set(map(tuple, top.to_numpy()))
        rows = np.array([i for i, (p, r) in enumerate(zip(links["pair"], links["rule"])) if (p, r) in keep], int)
    nodes = np.unique(np.concatenate([links["source"].to_numpy()[rows], links["target"].to_numpy()[rows]]))
    return rows, nodes.astype(int)


def _gain_or_support(state: ExplorerState) -> str:
    """The column to rank rules by: ExplaiNN's gain where the rules have one, else support (ERIC, patches)."""
    return "gain" if state.rules["gain"].notna().any() else "support"


def _others(state: ExplorerState, rows: np.ndarray) -> list[tuple[str, str, float, int]]:
    """The links not in ``rows``, summed per (source layer, target layer): ``(source layer, target layer,
    summed value, number of rules)``, in layer order."""
    hidden = np.setdiff1d(np.arange(len(state.links)), rows)
    if not len(hidden):
        return []
    links = state.links.iloc[hidden]
    layer = state.nodes["layer"].to_numpy()
    df = pd.DataFrame({"a": layer[links["source"].to_numpy(int)], "b": layer[links["target"].to_numpy(int)],
                       "value": links["value"].astype(float).to_numpy(),
                       "rule": list(zip(links["pair"], links["rule"]))})
    out = df.groupby(["a", "b"], sort=False).agg(value=("value", "sum"), n=("rule", "nunique")).reset_index()
    order = {l: i for i, l in enumerate(_layers(state))}
    out = out.sort_values(["a", "b"], key=lambda c: c.map(order))
    return [(a, b, float(v), int(n)) for a, b, v, n in out.itertuples(index=False)]


def _rule_ids(state: ExplorerState, rows: np.ndarray) -> list[int | None]:
    """The rule id each shown link draws (``None``: a chain link, which is no rule)."""
    key = {(p, r): i for i, p, r in zip(state.rules["id"], state.rules["pair"], state.rules["rule"])}
    return [key.get((state.links["pair"].iloc[j], state.links["rule"].iloc[j])) for j in rows]


def _layers(state: ExplorerState) -> list[str]:
    return list(state.view_layers)


def _placeholder(fig: go.Figure, state: ExplorerState) -> None:
    if state.links.empty:
        fig.add_annotation(text="Nothing mined yet: choose a miner and press Mine" if not state.mined else
                           "Nothing found for these settings", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=14, color="#666"))


def _columns(node_layers: list[str], layers: list[str], edges: Sequence[tuple[int, int]] = (),
             last_in_column: frozenset[int] = frozenset(),
             sizes: list[float] | None = None) -> tuple[list[float], list[float]]:
    """Sankey node positions: x = the layer's column (``layers`` order, left to right), y = spread evenly
    down the column. Plotly places nodes by its own rules otherwise (a layer's groups land in other columns).
    With ``edges`` (pairs of node positions), each column after the first is ordered by the mean rank of each
    node's neighbours in the columns already placed (one barycentric sweep, fewer crossing links); a node
    with no such neighbour follows its neighbours to the right, or keeps its place at the end. Nodes in
    ``last_in_column`` (the "other" nodes) go to the bottom of their column. With ``sizes`` (each node's
    flow) a node gets room down its column in proportion to its flow, so a tall node never covers its
    neighbours (plotly.js draws node heights in proportion to flow, centred on y)."""
    cols = {l: i for i, l in enumerate(layers)}
    last = max(len(layers) - 1, 1)
    members: dict[int, list[int]] = {}
    for i, l in enumerate(node_layers):
        members.setdefault(cols.get(l, 0), []).append(i)
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    rank: dict[int, float] = {}
    for c in sorted(members):
        placed = lambda n: [rank[m] for m in nbrs.get(n, []) if m in rank]
        right = lambda n: [k for k in nbrs.get(n, []) if cols.get(node_layers[k], 0) > c]
        keys: dict[int, tuple[float, int]] = {}
        for k, n in enumerate(members[c]):
            left = placed(n)
            keys[n] = (float(np.mean(left)) if left else float("inf"), k)
        order = sorted(members[c], key=lambda n: keys[n])
        if any(np.isinf(keys[n][0]) for n in order) and c + 1 in members:  # follow the right neighbours
            nxt = {m: j for j, m in enumerate(members[c + 1])}
            order = sorted(order, key=lambda n: (keys[n][0] if not np.isinf(keys[n][0]) else
                                                 np.mean([float(nxt[m]) for m in right(n) if m in nxt] or [1e9]),
                                                 keys[n][1]))
        order = sorted(order, key=lambda n: n in last_in_column)  # stable: the rest keep their order
        for j, n in enumerate(order):
            rank[n] = j
    xs, ys = [0.0] * len(node_layers), [0.0] * len(node_layers)
    for c, nodes in members.items():
        order = sorted(nodes, key=lambda n: rank[n])
        room = [max(float(sizes[n]), 0.0) for n in order] if sizes is not None else [1.0] * len(order)
        total = sum(room) or 1.0
        before = 0.0
        for n, r in zip(order, room):
            xs[n] = 0.02 + 0.88 * c / last  # the last column keeps room for its nodes
            ys[n] = 0.01 + 0.98 * (before + r / 2) / total
            before += r
    return xs, ys


def sankey_figure(state: ExplorerState, max_rules: int = 60,
                  focus: str | None = None) -> tuple[go.Figure, list[int | None], list[int]]:
    """The Sankey (classes → groups → groups, link width = support) and its maps: link position → rule id,
    node position (after the placeholders) → group id. ``focus``: one class's chain (see :func:`_shown`).
    The height grows with the fullest column (about 22 px a node), the width follows the panel."""
    rows, nodes = _shown(state, max_rules, focus)
    pos = {int(n): i for i, n in enumerate(nodes)}
    rule_ids = _rule_ids(state, rows)
    layers = _layers(state)
    nd = state.nodes.iloc[nodes] if len(nodes) else state.nodes.iloc[:0]
    node_layers, labels = list(nd["layer"]), list(nd["label"])
    colors = [_PALETTE[layers.index(l) % len(_PALETTE)] for l in node_layers]
    hover = [f"{l}: {', '.join(u)}" for l, u in zip(nd["layer"], nd["units"])]
    links = state.links.iloc[rows]
    src = [pos[int(a)] for a in links["source"]]
    dst = [pos[int(b)] for b in links["target"]]
    values = list(links["value"].astype(float))
    text = [state.rules["text"].iloc[i] if i is not None else "weight" for i in rule_ids]
    stats = [f"{state.rules['words'].iloc[i]} ({state.rules['kind'].iloc[i]})" if i is not None else
             f"{v:.3g} (summed |weight| between the two kept filters)" for i, v in zip(rule_ids, links["value"])]
    others = _others(state, rows) if focus == BY_GAIN else []
    other_node: dict[str, int] = {}
    shown_flow: dict[tuple[str, str], float] = {}  # per (source layer, target layer), for the "other" cap
    for a, b, v in zip(links["source"], links["target"], links["value"]) if others else ():
        key = (state.nodes["layer"].iloc[int(a)], state.nodes["layer"].iloc[int(b)])
        shown_flow[key] = shown_flow.get(key, 0.0) + float(v)
    for a, b, v, n in others:  # one grey "other" node per layer, one link per layer pair
        for l in (a, b):
            if l not in other_node:
                other_node[l] = len(labels)
                node_layers.append(l)
                labels.append("other")
                colors.append("#cccccc")
                hover.append(f"{l}: the groups of the rules not shown")
        shown_here = shown_flow.get((a, b), 0.0)
        drawn = min(v, OTHER_CAP * shown_here) if shown_here > 0 else v
        src.append(other_node[a])
        dst.append(other_node[b])
        values.append(drawn)
        rule_ids.append(OTHER)
        text.append(f"{n} rules not shown")
        share = v / (v + shown_here)
        stats.append(f"their summed support {v:.3g} is {share:.0%} of this layer pair's flow"
                     + (f", drawn at {OTHER_CAP:g}× the shown rules' flow so that they stay readable"
                        if drawn < v else "") + ": raise 'Rules shown' or focus one class to see them")
    pad = [""] * len(src)  # unlinked placeholders: node click indices start after the link indices
    flow_in, flow_out = np.zeros(len(labels)), np.zeros(len(labels))
    np.add.at(flow_out, np.asarray(src, int), values)
    np.add.at(flow_in, np.asarray(dst, int), values)
    x, y = _columns(node_layers, layers, list(zip(src, dst)), frozenset(other_node.values()),
                    sizes=list(np.maximum(flow_in, flow_out)) if others else None)
    fig = go.Figure(go.Sankey(
        # fixed: with draggable nodes plotly.js swallows node clicks; empty: plotly.js cannot draw it
        arrangement="fixed", visible=bool(len(src)),
        node=dict(label=pad + labels, color=["rgba(0,0,0,0)"] * len(pad) + colors, pad=8, thickness=14,
                  # one column per layer; plotly.js matches x/y to the *linked* nodes only, so no placeholders here
                  x=x, y=y, customdata=pad + hover, hovertemplate="%{customdata}<extra></extra>"),
        link=dict(source=[len(pad) + i for i in src], target=[len(pad) + i for i in dst], value=values,
                  color=["rgba(0,0,0,0.2)"] * len(rows) + ["rgba(180,180,180,0.35)"] * len(others),
                  customdata=np.stack([text, stats], -1) if text else [],
                  hovertemplate="rule %{customdata[0]}<br>%{customdata[1]}<extra></extra>")))
    fullest = max(pd.Series(node_layers).value_counts().max() if node_layers else 0, 1)
    if state.flow is None:
        what = f" · {len(nd)} kept filters" if state.mined else ""
    elif not state.mined:
        what = ""
    elif state.rules.empty:
        what = " · no rules found"
    elif focus == BY_GAIN:
        shown = len(set(rule_ids) - {OTHER})
        what = (f" · top {shown} of {len(state.rules)} rules by {_gain_or_support(state)} (per layer pair)"
                + (f", {len(state.rules) - shown} more as 'other'" if others else ""))
    elif focus and focus.startswith(RULE_CHAIN):
        what = f" · rule {focus[len(RULE_CHAIN):]}'s chain: {len(set(rule_ids))} rules"
    elif focus and focus.startswith(SAMPLE):
        i = int(focus[len(SAMPLE):])
        n = len(state.rules_for(i))
        pred = state.class_names[int(state.activations.predictions[i])] if state.activations is not None else "?"
        what = (f" · sample #{i} (predicted {pred}): {n} of {len(state.rules)} rules hold"
                + (f", the {len(set(rule_ids))} strongest shown" if len(set(rule_ids)) < n else ""))
    elif focus:
        what = f" · class {focus}'s chain: {len(set(rule_ids))} rules"
    else:
        what = f" · top {len(set(rule_ids))} of {len(state.rules)} rules by support"
    fig.update_layout(height=int(min(1400, max(420, 60 + 22 * fullest))), autosize=True,
                      margin=dict(l=10, r=10, t=30, b=10), title=dict(text=" → ".join(layers) + what, font=dict(size=12)))
    _placeholder(fig, state)
    return fig, rule_ids, [int(n) for n in nodes] + [OTHER] * len(other_node)


def graph_figure(state: ExplorerState, max_rules: int = 60, focus: str | None = None) -> tuple[go.Figure, list[int]]:
    """Groups as markers in one column per layer, rules as lines; returns the figure and node ids."""
    rows, nodes = _shown(state, max_rules, focus)
    layers = _layers(state)
    xy: dict[int, tuple[float, float]] = {}
    for li, layer in enumerate(layers):
        ids = [int(n) for n in nodes if state.nodes["layer"].iloc[n] == layer]
        for k, n in enumerate(ids):
            xy[n] = (li, (k + 0.5) / max(len(ids), 1))
    ex, ey = [], []
    for s, t in zip(state.links["source"].iloc[rows], state.links["target"].iloc[rows]):
        ex += [xy[int(s)][0], xy[int(t)][0], None]
        ey += [xy[int(s)][1], xy[int(t)][1], None]
    nd = state.nodes.iloc[list(xy)] if xy else state.nodes.iloc[:0]
    fig = go.Figure([
        go.Scatter(x=ex, y=ey, mode="lines", line=dict(width=1, color="#bbb"), hoverinfo="skip", name="rules"),
        go.Scatter(x=[xy[n][0] for n in xy], y=[xy[n][1] for n in xy], mode="markers+text", name="groups",
                   text=list(nd["label"]), textposition="middle right", textfont=dict(size=9),
                   marker=dict(size=[6 + 3 * np.sqrt(len(u)) for u in nd["units"]],
                               color=[_PALETTE[layers.index(l) % len(_PALETTE)] for l in nd["layer"]]),
                   customdata=[f"{l}: {', '.join(u)}" for l, u in zip(nd["layer"], nd["units"])],
                   hovertemplate="%{customdata}<extra></extra>")])
    fig.update_layout(height=520, autosize=True, showlegend=False, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(tickvals=list(range(len(layers))), ticktext=layers, range=[-0.3, len(layers)]),
                      yaxis=dict(visible=False), title=dict(text="click a group", font=dict(size=12)))
    _placeholder(fig, state)
    return fig, list(xy)


def _fit(fig: go.FigureWidget) -> None:
    """Make plotly.js fit ``fig`` to its box's width now. A plotly ≥ 6 widget sizes an autosized figure when
    it is first drawn — often before the page has laid its box out, so at the default 700 px — and does not
    follow its box afterwards; a *changed* ``autosize`` makes plotly.js measure the box again (plotly.py
    issue 5208). Called after each redraw and when a view is shown."""
    fig.layout.autosize = False
    fig.layout.autosize = True


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
        self.widget = W.VBox([W.HBox([self.kind, self.max_rules, self.focus], layout=W.Layout(flex_flow="row wrap")),
                              W.HBox([self.sample, self.sample_go, self.sample_msg],
                                     layout=W.Layout(flex_flow="row wrap", align_items="center")),
                              self.sankey_box, self.graph_box, self.rule])

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
                + [(f"class {c}'s chain", c) for c in self.state.class_names])

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
        """"This image": draw the rules that hold for data sample ``i`` as its path and open the strongest
        one, ``i`` first among its exemplars (its heatmaps)."""
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
        if rules:
            best = self.state.rules.set_index("id").loc[rules, "support"].idxmax()
            self.on_rule(int(best))

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
        colors = [HIGHLIGHT if r == rule_id and r is not None else
                  "rgba(180,180,180,0.35)" if r == OTHER else "rgba(0,0,0,0.2)" for r in self.rule_ids]
        if list(self.sankey.data[0].link.color or ()) != colors:
            self.sankey.data[0].link.color = colors

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
