"""Two rule sets over the same layers, lined up: which rules survive, change or appear (seed 000 Sec. 3.2 reads
a vanilla and a fine-tuned VGG-S this way).

Rules are compared by unit *names* per layer pair (upper → lower), so two models with the same layer and unit
names (a model and its fine-tuned copy, two seeds of one architecture) compare directly. Matching, per pair:

1. a rule of ``a`` and a rule of ``b`` with the same head and tail are the same rule — ``"same"`` when their
   thresholds (l, k) are equal and their confidences differ by at most ``tol``, else ``"changed"``;
2. the remaining rules are paired greedily by the Jaccard index of their tails (ExplaiNN's tails are
   disjoint within a rule set, so a tail unit belongs to one rule on each side), highest first, while it is
   at least ``min_overlap`` — ``"changed"``, with the units added to and dropped from head and tail;
3. the rest is ``"only in a"`` / ``"only in b"``.

A unit's role is the set of units it is tied to by rules (its rule partners on the other layer and its
tail-mates). ``units`` lists the units whose role changed: in rules on one side only (``"gained"``,
``"lost"``), or with other partners (``"moved"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data.rules import Rule, RuleSet
from .flow import Flow

__all__ = ["compare", "Comparison"]

STATUSES = ("same", "changed", "only in a", "only in b")


@dataclass
class Comparison:
    """``rules``: one row per matched pair or unmatched rule (pair, upper, lower, status, what changed, the
    rules' positions in their RuleSets ``a_rule``/``b_rule`` (−1: none), both rules' head, tail, l, k,
    confidence); ``units``: units whose role changed (layer, unit, change, partners
    in a and in b)."""

    rules: pd.DataFrame
    units: pd.DataFrame
    names: tuple[str, str] = ("a", "b")

    def summary(self) -> dict[str, int]:
        """Rule counts per status, and the units whose role changed."""
        counts = self.rules["status"].value_counts()
        out = {s: int(counts.get(s, 0)) for s in STATUSES}
        out["units changed"] = len(self.units)
        return out

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Comparison({self.names[0]} vs {self.names[1]}: {s['same']} same, {s['changed']} changed, "
                f"{s['only in a']} only in {self.names[0]}, {s['only in b']} only in {self.names[1]}; "
                f"{s['units changed']} units changed role)")


def _pairs(x, name: str) -> list[RuleSet]:
    if isinstance(x, Flow):
        return list(x.rulesets)
    if isinstance(x, RuleSet):
        return [x]
    raise TypeError(f"{name} must be a Flow (nnrules.trace, ERIC.to_flow) or a RuleSet, got {type(x).__name__}")


def _named(rs: RuleSet, r: Rule) -> tuple[frozenset, frozenset]:
    head = frozenset(rs.head_names[i] if rs.head_names else str(i) for i in r.head)
    tail = frozenset(rs.tail_names[i] if rs.tail_names else str(i) for i in r.tail)
    return head, tail


def _jaccard(x: frozenset, y: frozenset) -> float:
    return len(x & y) / len(x | y) if x | y else 0.0


def _side(rs: RuleSet | None, r: Rule | None, prefix: str) -> dict:
    if r is None or rs is None:
        return {f"{prefix}_head": None, f"{prefix}_tail": None, f"{prefix}_l": None, f"{prefix}_k": None,
                f"{prefix}_confidence": None}
    head, tail = _named(rs, r)
    return {f"{prefix}_head": sorted(head), f"{prefix}_tail": sorted(tail), f"{prefix}_l": r.head_min,
            f"{prefix}_k": r.tail_min, f"{prefix}_confidence": r.confidence}


def _what(ha, ta, ra: Rule, hb, tb, rb: Rule, tol: float) -> str:
    parts = []
    for label, x, y in (("head", ha, hb), ("tail", ta, tb)):
        if x != y:
            parts.append(f"{label} +{sorted(y - x)} −{sorted(x - y)}".replace("'", ""))
    if (ra.head_min, ra.tail_min) != (rb.head_min, rb.tail_min):
        parts.append(f"l/k {ra.head_min}/{ra.tail_min} → {rb.head_min}/{rb.tail_min}")
    if abs(ra.confidence - rb.confidence) > tol:
        parts.append(f"confidence {ra.confidence:.2f} → {rb.confidence:.2f}")
    return "; ".join(parts)


def _roles(sets: list[RuleSet]) -> dict[tuple[str, str], frozenset]:
    """(layer, unit) → the (layer, unit)s it is tied to by rules."""
    out: dict[tuple[str, str], set] = {}
    for rs in sets:
        for r in rs.rules:
            head, tail = _named(rs, r)
            nodes = [(rs.head_layer, u) for u in head] + [(rs.tail_layer, u) for u in tail]
            for n in nodes:
                out.setdefault(n, set()).update(m for m in nodes if m != n)
    return {k: frozenset(v) for k, v in out.items()}


def compare(a, b, names: tuple[str, str] = ("a", "b"), tol: float = 0.02, min_overlap: float = 0.3) -> Comparison:
    """Line up the rules of ``a`` and ``b`` (Flows or RuleSets over the same layer names); see the module
    docstring. ``tol``: confidences closer than this are the same; ``min_overlap``: the least tail Jaccard
    index for two different rules to be the same rule changed."""
    pa, pb = _pairs(a, "a"), _pairs(b, "b")
    if not (0 <= tol <= 1) or not (0 < min_overlap <= 1):
        raise ValueError(f"tol must be in [0, 1] and min_overlap in (0, 1], got {tol!r}, {min_overlap!r}")
    if len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be two strings, got {names!r}")
    key = lambda rs: (rs.head_layer, rs.tail_layer)  # noqa: E731
    bmap = {key(rs): rs for rs in pb}
    amap = {key(rs): rs for rs in pa}
    if pa and pb and not set(amap) & set(bmap):
        raise ValueError(f"a and b share no layer pair: {sorted(amap)} vs {sorted(bmap)}; compare rules over the "
                         "same layer names")
    rows = []
    for i, k in enumerate(list(dict.fromkeys([*amap, *bmap]))):
        ra_set, rb_set = amap.get(k), bmap.get(k)
        ra = list(ra_set.rules) if ra_set else []
        rb = list(rb_set.rules) if rb_set else []
        na = [_named(ra_set, r) for r in ra] if ra_set else []
        nb = [_named(rb_set, r) for r in rb] if rb_set else []
        used_a, used_b, matched = set(), set(), []
        exact = {hb_tb: j for j, hb_tb in enumerate(nb)}
        for x, ht in enumerate(na):
            j = exact.get(ht)
            if j is not None and j not in used_b:
                matched.append((x, j))
                used_a.add(x)
                used_b.add(j)
        cands = sorted(((_jaccard(na[x][1], nb[j][1]), x, j) for x in range(len(ra)) if x not in used_a
                        for j in range(len(rb)) if j not in used_b), key=lambda t: (-t[0], t[1], t[2]))
        for s, x, j in cands:
            if s < min_overlap:
                break
            if x in used_a or j in used_b:
                continue
            matched.append((x, j))
            used_a.add(x)
            used_b.add(j)
        for x, j in matched:
            what = _what(*na[x], ra[x], *nb[j], rb[j], tol)
            rows.append({"pair": i, "upper": k[0], "lower": k[1], "status": "changed" if what else "same",
                         "what": what, "a_rule": x, "b_rule": j, **_side(ra_set, ra[x], "a"), **_side(rb_set, rb[j], "b")})
        rows += [{"pair": i, "upper": k[0], "lower": k[1], "status": "only in a", "what": "", "a_rule": x,
                  "b_rule": -1, **_side(ra_set, ra[x], "a"), **_side(rb_set, None, "b")}
                 for x in range(len(ra)) if x not in used_a]
        rows += [{"pair": i, "upper": k[0], "lower": k[1], "status": "only in b", "what": "", "a_rule": -1,
                  "b_rule": j, **_side(ra_set, None, "a"), **_side(rb_set, rb[j], "b")}
                 for j in range(len(rb)) if j not in used_b]
    cols = ["pair", "upper", "lower", "status", "what", "a_rule", "b_rule"] + [
        f"{p}_{f}" for p in "ab" for f in ("head", "tail", "l", "k", "confidence")]
    ra_roles, rb_roles = _roles(pa), _roles(pb)
    units = []
    label = lambda l, u: u if u.startswith(f"{l}:") else f"{l}:{u}"  # noqa: E731
    for node in sorted(set(ra_roles) | set(rb_roles)):
        in_a, in_b = ra_roles.get(node), rb_roles.get(node)
        change = "gained" if in_a is None else "lost" if in_b is None else "moved" if in_a != in_b else ""
        if change:
            units.append({"layer": node[0], "unit": node[1], "change": change,
                          "a_partners": sorted(label(l, u) for l, u in in_a or ()),
                          "b_partners": sorted(label(l, u) for l, u in in_b or ())})
    return Comparison(pd.DataFrame(rows, columns=cols),
                      pd.DataFrame(units, columns=["layer", "unit", "change", "a_partners", "b_partners"]),
                      (names[0], names[1]))
