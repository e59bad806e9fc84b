"""Information flow: rules chained layer by layer, output first (seed 000 Sec. 3.2, Fig. 5).

Rules are mined between the output and the first named layer; the units in their tails become the
head items for mining towards the next layer, and so on. A chain X → Y → Z exists where a rule of the
second pair has a head that overlaps the tail Y of a rule of the first pair.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..data.activations import OUTPUT, Activations
from ..data.binarizer import Binarizer
from ..data.rules import RuleSet
from ..params import Parametrized
from ..registry import MINERS

__all__ = ["Flow", "trace"]


@dataclass
class Flow:
    """Layers (output first) and, per adjacent pair, the mined ``RuleSet`` in original unit indices."""

    layers: list[str]
    rulesets: list[RuleSet] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.layers, str) or not all(isinstance(l, str) for l in self.layers):
            raise TypeError(f"layers must be a list of layer names (output first), got {self.layers!r}")
        self.layers, self.rulesets = list(self.layers), list(self.rulesets)
        named = [l for l in self.layers if l]  # "" stands for an unnamed layer (rules mined on plain arrays)
        if len(set(named)) != len(named):
            raise ValueError(f"layers names a layer twice: {self.layers}")
        if len(self.rulesets) > max(len(self.layers) - 1, 0):
            raise ValueError(f"{len(self.rulesets)} rule sets for {len(self.layers)} layers: one per adjacent pair")
        for i, rs in enumerate(self.rulesets):
            if not isinstance(rs, RuleSet):
                raise TypeError(f"rulesets[{i}] must be a RuleSet, got {type(rs).__name__}")
            for side, layer in (("head", rs.head_layer), ("tail", rs.tail_layer)):
                want = self.layers[i + (side == "tail")]
                if layer and layer != want:
                    raise ValueError(f"rulesets[{i}] has {side} layer {layer!r}, but pair {i} is "
                                     f"{self.layers[i]!r} → {self.layers[i + 1]!r}")

    def rules_frame(self) -> pd.DataFrame:
        """All rules, one row each, with a ``pair`` column (0 = output → first layer)."""
        frames = [rs.to_frame().assign(pair=i) for i, rs in enumerate(self.rulesets)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def chains(self) -> list[tuple[int, ...]]:
        """Rule-index paths ``(r0, r1, …)`` through consecutive pairs, linked by overlapping units."""
        if not self.rulesets:
            return []
        paths: list[tuple[int, ...]] = [(i,) for i in range(len(self.rulesets[0]))]
        for depth in range(1, len(self.rulesets)):
            prev, cur = self.rulesets[depth - 1], self.rulesets[depth]
            longer = [p + (j,) for p in paths for j, r in enumerate(cur)
                      if set(prev[p[-1]].tail) & set(r.head)]
            if not longer:
                break
            paths = longer
        return paths

    def to_sankey(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Node and link tables for a Sankey view.

        Nodes: the head groups of the first pair (classes) and every rule's tail group, with ``layer``,
        ``units`` (names) and ``label``. Links: ``source``/``target`` node ids, ``value`` (rule
        support; for deeper pairs split over the upstream tail groups the head overlaps, by overlap
        size), ``pair`` and ``rule`` (index in that pair's RuleSet).
        """
        nodes: list[dict] = []
        links: list[dict] = []
        index: dict[tuple[str, tuple[str, ...]], int] = {}

        def node(layer: str, names: list[str]) -> int:
            key = (layer, tuple(names))
            if key not in index:
                index[key] = len(nodes)
                label = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} +{len(names) - 3}"
                nodes.append({"id": len(nodes), "layer": layer, "units": list(names), "label": label})
            return index[key]

        tail_nodes: list[list[int]] = []
        for depth, rs in enumerate(self.rulesets):
            ids = []
            for ri, r in enumerate(rs):
                tgt = node(rs.tail_layer, [rs.tail_names[y] for y in r.tail])
                ids.append(tgt)
                if depth == 0:
                    src = node(rs.head_layer, [rs.head_names[x] for x in r.head])
                    links.append({"source": src, "target": tgt, "value": r.support, "pair": depth, "rule": ri})
                    continue
                prev = self.rulesets[depth - 1]
                head_names = {rs.head_names[x] for x in r.head}
                ups = [(tail_nodes[depth - 1][pj], len(head_names & {prev.tail_names[y] for y in pr.tail}))
                       for pj, pr in enumerate(prev)]
                ups = [(s, w) for s, w in ups if w > 0]
                total = sum(w for _, w in ups)
                for src, w in ups:
                    links.append({"source": src, "target": tgt, "value": r.support * w / total,
                                  "pair": depth, "rule": ri})
            tail_nodes.append(ids)
        return pd.DataFrame(nodes, columns=["id", "layer", "units", "label"]), \
            pd.DataFrame(links, columns=["source", "target", "value", "pair", "rule"])


def _remap(rs: RuleSet, head_units: np.ndarray, head_names: list[str]) -> RuleSet:
    """Express rules mined on a column subset of the head layer in that layer's unit indices."""
    rules = [replace(r, head=tuple(int(head_units[x]) for x in r.head),
                     head_equivalents=tuple(int(head_units[x]) for x in r.head_equivalents)) for r in rs]
    return RuleSet(rules, head_names, rs.tail_names, rs.head_layer, rs.tail_layer, rs.codelength,
                   rs.baseline_codelength, rs.direction, [_remap(x, head_units, head_names) for x in rs.resampled])


def trace(activations: Activations, layers: Sequence[str], miner: Parametrized | None = None,
          binarizer: Binarizer | None = None,
          on_pair: Callable[[int, str, str], None] | None = None,
          on_progress: Callable[[str, float], None] | None = None, resamples: int | None = None,
          random_state: int | None = None) -> Flow:
    """Mine output → layers[0] → layers[1] → … (``layers`` may start with ``"output"``).

    ``miner`` (an nnrules miner, :class:`~nnrules.miners.base.Miner`; default ``ExplaiNN()``, found through the
    registry: this module sits below the miners) is cloned, never changed. A pair miner (``fits_on == "pair"``,
    ExplaiNN) is fitted per adjacent pair on binary matrices: ``binarizer`` (default
    ``Binarizer("positive")``) binarizes hidden layers, the output layer is the one-hot predicted class
    (see :class:`Binarizer`'s ``output``), and ``on_pair(i, upper, lower)`` is called before pair ``i``
    (progress; raise in it to stop); ``on_progress(stage, fraction)`` is passed to a pair miner's ``fit``
    (ExplaiNN reports per block of merge pairs, so a Cancel is seen within a long pair too). A chain
    miner (``"chain"``, ERIC) is fitted once on the activations and the whole chain (record with what it needs, e.g. ``reduce="l1"`` for ERIC).
    ``resamples``/``random_state`` (when given) are set on the miner: every rule then carries its evidence
    (:mod:`nnrules.miners.evidence`).
    """
    if not isinstance(activations, Activations):
        raise TypeError("activations must be an nnrules.Activations (from nnrules.record)")
    if isinstance(layers, str):
        layers = [layers]
    miner = clone(miner) if miner is not None else MINERS["explainn"].create()
    evidence = {k: v for k, v in (("resamples", resamples), ("random_state", random_state)) if v is not None}
    if evidence:
        missing = [k for k in evidence if k not in miner.get_params()]
        if missing:
            raise ValueError(f"{type(miner).__name__} takes no {missing[0]}: it does not measure evidence by "
                             "resampling")
        miner.set_params(**evidence)
    if not isinstance(miner, Parametrized) or getattr(miner, "fits_on", None) not in ("pair", "chain"):
        raise TypeError(f"miner must be an nnrules miner that mines recorded activations (ExplaiNN, ERIC), got "
                        f"{type(miner).__name__}; miners of a model (PatchMiner, NeuroChains) are fitted with "
                        f".fit(model, inputs)")
    chain = list(layers)
    if not chain or chain[0] != OUTPUT:
        chain = [OUTPUT] + chain
    if len(chain) < 2:
        raise ValueError("name at least one layer below the output to trace into")
    missing = [l for l in chain if l not in activations.values]
    if missing:
        raise ValueError(f"layers {missing} were not recorded; recorded: {activations.layers}")
    if len(set(chain)) != len(chain):
        raise ValueError(f"a layer appears twice in the chain {chain}")
    if miner.fits_on == "chain":
        if on_pair is not None:
            on_pair(0, chain[0], chain[-1])
        return miner.fit(activations, chain).to_flow()
    bins = (binarizer if binarizer is not None else Binarizer("positive")).fit_transform(activations)
    flow = Flow(chain)
    head_units = np.arange(bins[chain[0]].n_units)
    for i, (upper, lower) in enumerate(zip(chain[:-1], chain[1:])):
        if len(head_units) == 0:
            break  # nothing to chain from: the previous pair found no rules
        if on_pair is not None:
            on_pair(i, upper, lower)
        head_full = bins[upper]
        kw = {"on_progress": on_progress} if on_progress is not None else {}  # ExplaiNN: within a pair
        m = clone(miner).fit(head_full.select(head_units), bins[lower], **kw)
        flow.rulesets.append(_remap(m.rules_, head_units, head_full.names))
        head_units = np.array(sorted({y for r in m.rules_ for y in r.tail}), dtype=np.int64)
    return flow
