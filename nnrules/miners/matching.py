"""When two rules are the same rule: the one definition that stability (:mod:`.evidence`) and :func:`compare`
use, by unit *names* per layer so that two models or two resamples with the same names line up.

Two rules are **the same** when their tails name the same units and their heads do up to *head equivalents*
(units that behave like a head unit on the data; ExplaiNN keeps one of them in the head and lists the others):
every head unit of one is in the other's head or among its equivalents, both ways. Thresholds (l, k) and
confidence may differ: they are what :func:`compare` reports as a change of the same rule.
"""
from __future__ import annotations

from ..data.rules import Rule, RuleSet

__all__ = ["named", "same_rule"]


def named(rs: RuleSet, r: Rule) -> tuple[frozenset, frozenset, frozenset]:
    """The rule's head, tail and head equivalents as sets of unit names (indices as text when unnamed); a
    negated tail unit (ERIC's literal "off") is named with a leading "¬"."""
    if not isinstance(rs, RuleSet) or not isinstance(r, Rule):
        raise TypeError(f"named takes a RuleSet and one of its Rules, got {type(rs).__name__} and {type(r).__name__}")

    def names(idx, table, neg=()):
        return frozenset(("¬" if i in neg else "") + (table[i] if table else str(i)) for i in idx)
    return (names(r.head, rs.head_names), names(r.tail, rs.tail_names, set(r.negated)),
            names(r.head_equivalents, rs.head_names))


def same_rule(a: tuple[frozenset, frozenset, frozenset], b: tuple[frozenset, frozenset, frozenset]) -> bool:
    """Whether two named rules (:func:`named`) are the same rule: equal tails, heads equal up to equivalents."""
    if not all(isinstance(x, tuple) and len(x) == 3 and all(isinstance(s, frozenset) for s in x) for x in (a, b)):
        raise TypeError("same_rule compares two named rules: (head, tail, head equivalents) as frozensets of unit "
                        "names, as named(ruleset, rule) gives them")
    (ha, ta, ea), (hb, tb, eb) = a, b
    return ta == tb and ha <= hb | eb and hb <= ha | ea


Named = tuple[frozenset, frozenset, frozenset]


def by_tail(rs: RuleSet) -> dict[frozenset, list[tuple[int, Named]]]:
    """``rs``'s rules (position, :func:`named`) by their named tail: the same rule has the same tail, so a lookup
    replaces a scan (O(1) per rule instead of O(|rs|))."""
    out: dict[frozenset, list[tuple[int, Named]]] = {}
    for i, r in enumerate(rs.rules):
        key = named(rs, r)
        out.setdefault(key[1], []).append((i, key))
    return out


def found_in(rule: Named, index: dict[frozenset, list[tuple[int, Named]]]) -> int:
    """Position of the rule the same as ``rule`` in a rule set indexed by :func:`by_tail`, or −1 (the first one:
    a tail unit belongs to at most one rule of an ExplaiNN rule set)."""
    return next((i for i, other in index.get(rule[1], ()) if same_rule(rule, other)), -1)
