"""The flow's figures from the explorer's state: the rules as a plotly Sankey and as a layered graph, and which
rules a focus draws (the top ones, by gain with "other", a class's or a rule's chain, a sample's path).

Plotly reports a Sankey click to Python as one index, the same kind for a node and for a link (no
position either). So the figure's node list starts with one unlinked placeholder per link — plotly.js
does not draw nodes without links — and a click index below the number of links is a link, at or above it
a node. The positions map to rule and group ids through ``rule_ids``/``node_ids`` because the figure shows
only the strongest rules. Node x/y positions (one column per layer) are matched by plotly.js to the linked
nodes only, so they are given for the real nodes without the placeholders.
"""
from __future__ import annotations

import html

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .state.explorer import ExplorerState
from .state.query import BY_GAIN, RULE_CHAIN, SAMPLE

__all__ = ["sankey_figure", "graph_figure", "BY_GAIN", "OTHER", "RULE_CHAIN", "SAMPLE", "HIGHLIGHT"]

#: Focus values (defined with the link format in :mod:`.state.query`): ``BY_GAIN``, the top rules by gain (bits
#: saved; support where a miner has no gain), the rest of each layer pair drawn as one grey "other" link between
#: "other" nodes — how much flow the shown rules leave out; ``RULE_CHAIN + "12"``, the chain through rule 12
#: (:meth:`chain_through`); ``SAMPLE + "12"``, the path of data sample 12 ("this image"): the rules that hold for
#: it (:meth:`ExplorerState.rules_for`), the most specific ``max_rules`` of them.
#: An "other" link is drawn at most this many times as wide as the shown rules of its layer pair (its hover
#: says its real flow): on cifar10-cnn the 217 rules left out of the top 30 carry 85 % of the flow, and drawn
#: to scale they would squeeze the shown rules into a sliver.
OTHER_CAP = 0.5
#: The chosen rule's links in the Sankey.
HIGHLIGHT = "rgba(230,120,0,0.75)"
#: a rule found again in fewer half-samples than the user's threshold (ExplorerState.min_stability)
FAINT = "rgba(0,0,0,0.04)"
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


def plotly_text(text: object) -> str:
    """``text`` safe for plotly's labels, hovers and titles: plotly.js reads them as a small HTML dialect (``<a>``,
    ``<b>``, ``<span style>`` …), so ``&``, ``<`` and ``>`` from class names, folder names and unit names are
    written as entities (plotly.js shows them as the characters). Every user-derived string goes through here."""
    return html.escape(str(text), quote=False)


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


def link_color(state: ExplorerState, rule_id: int | None) -> str:
    """A rule's link colour: faint when resampling does not reproduce it (below the user's stability)."""
    return FAINT if rule_id is not None and state.faint(rule_id) else "rgba(0,0,0,0.2)"


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
    node_layers, labels = list(nd["layer"]), [plotly_text(l) for l in nd["label"]]
    colors = [_PALETTE[layers.index(l) % len(_PALETTE)] for l in node_layers]
    hover = [plotly_text(f"{l}: {', '.join(u)}") for l, u in zip(nd["layer"], nd["units"])]
    links = state.links.iloc[rows]
    src = [pos[int(a)] for a in links["source"]]
    dst = [pos[int(b)] for b in links["target"]]
    values = list(links["value"].astype(float))
    text = [plotly_text(state.rules["text"].iloc[i]) if i is not None else "weight" for i in rule_ids]
    stats = [plotly_text(f"{state.rules['words'].iloc[i]} ({state.rules['kind'].iloc[i]})")
             + (f"<br>{plotly_text(state.rules['evidence'].iloc[i])}" if state.rules['evidence'].iloc[i] else "")
             if i is not None else f"{v:.3g} (summed |weight| between the two kept filters)"
             for i, v in zip(rule_ids, links["value"])]
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
                hover.append(plotly_text(f"{l}: the groups of the rules not shown"))
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
                  color=[link_color(state, i) for i in rule_ids[:len(rows)]] + ["rgba(180,180,180,0.35)"] * len(others),
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
                      margin=dict(l=10, r=10, t=30, b=10),
                      title=dict(text=plotly_text(" → ".join(layers) + what), font=dict(size=12)))
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
                   text=[plotly_text(l) for l in nd["label"]], textposition="middle right", textfont=dict(size=9),
                   marker=dict(size=[6 + 3 * np.sqrt(len(u)) for u in nd["units"]],
                               color=[_PALETTE[layers.index(l) % len(_PALETTE)] for l in nd["layer"]]),
                   customdata=[plotly_text(f"{l}: {', '.join(u)}") for l, u in zip(nd["layer"], nd["units"])],
                   hovertemplate="%{customdata}<extra></extra>")])
    fig.update_layout(height=520, autosize=True, showlegend=False, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(tickvals=list(range(len(layers))), ticktext=[plotly_text(l) for l in layers],
                                 range=[-0.3, len(layers)]),
                      yaxis=dict(visible=False), title=dict(text="click a group", font=dict(size=12)))
    _placeholder(fig, state)
    return fig, list(xy)
