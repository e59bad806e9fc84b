"""Two rule sets over the same layers, lined up: which rules survive, change or appear (seed 000 Sec. 3.2 reads
a vanilla and a fine-tuned VGG-S this way).

Rules are compared by unit *names* per layer pair (upper → lower), so two models with the same layer and unit
names (a model and its fine-tuned copy, two seeds of one architecture) compare directly. Matching, per pair:

1. a rule of ``a`` and a rule of ``b`` that are the same rule (:func:`~.matching.same_rule`: the same tail, the
   same head up to head equivalents) are paired — ``"same"`` when their heads are equal, their thresholds (l, k)
   are equal and their confidences differ by at most ``tol``, else ``"changed"``;
2. the remaining rules are paired greedily by the Jaccard index of their tails (ExplaiNN's tails are
   disjoint within a rule set, so a tail unit belongs to one rule on each side), highest first, while it is
   at least ``min_overlap`` — ``"changed"``, with the units added to and dropped from head and tail;
3. the rest is ``"only in a"`` / ``"only in b"``.

A unit's role is the set of units it is tied to by rules (its rule partners on the other layer and its
tail-mates). ``units`` lists the units whose role changed: in rules on one side only (``"gained"``,
``"lost"``), or with other partners (``"moved"``).

**Against the null.** Two fits of the same model on different samples differ too (the same model on two halves
of its data: about half of the rules "changed"). When both sides carry evidence (mined with ``resamples``,
:mod:`.evidence`), each row not ``"same"`` says whether it is ``beyond_null``, a difference resampling does not
explain: a rule of one side that is **stable** there (found again in ≥ :data:`STABLE` of its half-samples) and
**rare** in the other side's half-samples (≤ :data:`RARE`), or the same rule on both sides (same tail, same head
up to equivalents) with held-out confidence intervals that do not overlap. Two different rules paired by their
tails differ in confidence anyway: for them only stability counts. A rule that comes and goes between half-samples of one model is within resampling
noise, whatever the other model shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data.rules import Rule, RuleSet
from .flow import Flow
from .matching import by_tail, found_in, named, same_rule

__all__ = ["compare", "Comparison"]

STATUSES = ("same", "changed", "only in a", "only in b")
#: a rule found again in at least this share of its own model's half-samples is stable
STABLE = 0.8
#: and rare in the other model's half-samples when found in at most this share of them
RARE = 0.2


@dataclass
class Comparison:
    """``rules``: one row per matched pair or unmatched rule (pair, upper, lower, status, what changed, the
    rules' positions in their RuleSets ``a_rule``/``b_rule`` (−1: none), both rules' head, tail, l, k,
    confidence); ``units``: units whose role changed (layer, unit, change, partners
    in a and in b)."""

    rules: pd.DataFrame
    units: pd.DataFrame
    names: tuple[str, str] = ("a", "b")

    @property
    def has_null(self) -> bool:
        """Whether both sides carried evidence (``rules`` then has the boolean column ``beyond_null`` and
        ``units`` the column ``beyond_null``)."""
        return "beyond_null" in self.rules.columns

    def summary(self) -> dict[str, int]:
        """Rule counts per status, and the units whose role changed; with evidence also ``"beyond null"``
        (rows not "same" that resampling does not explain) and ``"units beyond null"``."""
        counts = self.rules["status"].value_counts()
        out = {s: int(counts.get(s, 0)) for s in STATUSES}
        out["units changed"] = len(self.units)
        if self.has_null:
            out["beyond null"] = int(self.rules["beyond_null"].sum())
            out["units beyond null"] = int(self.units["beyond_null"].sum())
        return out

    def __repr__(self) -> str:
        s = self.summary()
        null = (f"{s['beyond null']} of {len(self.rules) - s['same']} differences beyond resampling noise; "
                if self.has_null else "")
        return (f"Comparison({self.names[0]} vs {self.names[1]}: {null}{s['same']} same, {s['changed']} changed, "
                f"{s['only in a']} only in {self.names[0]}, {s['only in b']} only in {self.names[1]}; "
                f"{s['units changed']} units changed role)")


def _pairs(x, name: str) -> list[RuleSet]:
    if isinstance(x, Flow):
        return list(x.rulesets)
    if isinstance(x, RuleSet):
        return [x]
    raise TypeError(f"{name} must be a Flow (nnrules.trace, ERIC.to_flow) or a RuleSet, got {type(x).__name__}")


def _named(rs: RuleSet, r: Rule) -> tuple[frozenset, frozenset]:
    return named(rs, r)[:2]


def _share(rule: tuple[frozenset, frozenset, frozenset], rs: RuleSet | None) -> float:
    """The share of ``rs``'s half-samples that hold the same rule (0 when it has none)."""
    if rs is None or not rs.resampled:
        return 0.0
    return sum(found_in(rule, by_tail(x)) >= 0 for x in rs.resampled) / len(rs.resampled)


def _evidence(rs: RuleSet | None) -> bool:
    return rs is None or (bool(rs.resampled) and all(r.stability is not None for r in rs.rules))


def _beyond(row: dict, ra_set: RuleSet | None, rb_set: RuleSet | None, ra: Rule | None, rb: Rule | None) -> bool:
    """Whether a row's difference is beyond what resampling explains (see the module docstring)."""
    if row["status"] == "same":
        return False
    for r, own, other in ((ra, ra_set, rb_set), (rb, rb_set, ra_set)):
        if r is not None and own is not None and (r.stability or 0.0) >= STABLE \
                and _share(named(own, r), other) <= RARE:
            return True
    if ra is not None and rb is not None and ra.confidence_interval and rb.confidence_interval \
            and ra_set is not None and rb_set is not None and same_rule(named(ra_set, ra), named(rb_set, rb)):
        (al, ah), (bl, bh) = ra.confidence_interval, rb.confidence_interval
        return ah < bl or bh < al  # the same rule, with confidences on held-out rows that do not overlap
    return False


def _jaccard(x: frozenset, y: frozenset) -> float:
    return len(x & y) / len(x | y) if x | y else 0.0


def _side(rs: RuleSet | None, r: Rule | None, prefix: str) -> dict:
    if r is None or rs is None:
        return {f"{prefix}_head": None, f"{prefix}_tail": None, f"{prefix}_l": None, f"{prefix}_k": None,
                f"{prefix}_confidence": None, f"{prefix}_stability": None}
    head, tail = _named(rs, r)
    return {f"{prefix}_head": sorted(head), f"{prefix}_tail": sorted(tail), f"{prefix}_l": r.head_min,
            f"{prefix}_k": r.tail_min, f"{prefix}_confidence": r.confidence, f"{prefix}_stability": r.stability}


def _what(ha, ta, ra: Rule, hb, tb, rb: Rule, tol: float) -> str:
    parts = []
    for label, x, y in (("head", ha, hb), ("tail", ta, tb)):
        if x != y:  # only the parts that are there: "tail +c3, c9", "head −7", never "+[]"
            moved = [f"{sign}{', '.join(sorted(units))}" for sign, units in (("+", y - x), ("−", x - y)) if units]
            parts.append(f"{label} {' '.join(moved)}")
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
            nodes = [(rs.head_layer, u) for u in head] + [(rs.tail_layer, u.removeprefix("¬")) for u in tail]
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
    with_null = all(_evidence(rs) for rs in pa + pb) and bool(pa + pb)
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
        fa = [named(ra_set, r) for r in ra] if ra_set else []
        fb = [named(rb_set, r) for r in rb] if rb_set else []
        used_a, used_b, matched = set(), set(), []
        for x in range(len(ra)):  # the same rule (same tail, heads equal up to equivalents)
            j = next((j for j in range(len(rb)) if j not in used_b and same_rule(fa[x], fb[j])), None)
            if j is not None:
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
        null = with_null and _evidence(ra_set) and _evidence(rb_set)
        found = matched + [(x, -1) for x in range(len(ra)) if x not in used_a] + \
            [(-1, j) for j in range(len(rb)) if j not in used_b]
        for x, j in found:  # positions, −1: none
            r_a = ra[x] if x >= 0 else None
            r_b = rb[j] if j >= 0 else None
            what = _what(*na[x], r_a, *nb[j], r_b, tol) if r_a is not None and r_b is not None else ""
            status = ("changed" if what else "same") if r_a is not None and r_b is not None else \
                "only in a" if r_a is not None else "only in b"
            row = {"pair": i, "upper": k[0], "lower": k[1], "status": status, "what": what, "a_rule": x,
                   "b_rule": j, **_side(ra_set, r_a, "a"), **_side(rb_set, r_b, "b")}
            if with_null:
                row["beyond_null"] = _beyond(row, ra_set, rb_set, r_a, r_b) if null else False
            rows.append(row)
    cols = ["pair", "upper", "lower", "status", "what", "a_rule", "b_rule"] + [
        f"{p}_{f}" for p in "ab" for f in ("head", "tail", "l", "k", "confidence", "stability")] + \
        (["beyond_null"] if with_null else [])
    ra_roles, rb_roles = _roles(pa), _roles(pb)
    beyond_units: set[tuple[str, str]] = set()
    if with_null:
        for row in rows:
            if row["beyond_null"]:
                for p in "ab":
                    for side, layer in (("head", row["upper"]), ("tail", row["lower"])):
                        beyond_units.update((layer, u.removeprefix("¬")) for u in row[f"{p}_{side}"] or ())
    units = []
    label = lambda l, u: u if u.startswith(f"{l}:") else f"{l}:{u}"  # noqa: E731
    for node in sorted(set(ra_roles) | set(rb_roles)):
        in_a, in_b = ra_roles.get(node), rb_roles.get(node)
        change = "gained" if in_a is None else "lost" if in_b is None else "moved" if in_a != in_b else ""
        if change:
            units.append({"layer": node[0], "unit": node[1], "change": change,
                          "a_partners": sorted(label(l, u) for l, u in in_a or ()),
                          "b_partners": sorted(label(l, u) for l, u in in_b or ()),
                          "beyond_null": node in beyond_units})
    ucols = ["layer", "unit", "change", "a_partners", "b_partners"] + (["beyond_null"] if with_null else [])
    return Comparison(pd.DataFrame(rows, columns=cols), pd.DataFrame(units, columns=ucols), (names[0], names[1]))
