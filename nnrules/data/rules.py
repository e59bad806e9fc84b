"""Plain, inspectable rule objects shared by every miner: ``Rule`` and ``RuleSet``."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = ["Rule", "RuleSet"]


@dataclass(frozen=True)
class Rule:
    """A robust rule X →_l^k Y between a head layer and a tail layer.

    ``head``/``tail`` are column indices into the head/tail matrices. The rule *applies* to a sample
    with at least ``head_min`` (l) head items and *holds* where it applies and at least ``tail_min``
    (k) tail items are on. ``support`` = |T_X^l| (samples where it applies), ``holds`` = samples
    where it holds, ``confidence`` = holds / support, ``gain`` = bits saved in the model that
    contains it (its cost against coding its tail items alone). ``negated``: tail items that must be
    *off* (ERIC's negative literals; empty for ExplaiNN). ``head_equivalents``: head-side units not in the
    head that behave like it on the data (ExplaiNN: a near-copy of a head unit adds bits and no
    information, so MDL keeps one; see ``ExplaiNN`` for the criterion) — shown as "also: …".
    """

    head: tuple[int, ...]
    tail: tuple[int, ...]
    head_min: int
    tail_min: int
    support: int
    holds: int
    gain: float = 0.0
    negated: tuple[int, ...] = ()
    head_equivalents: tuple[int, ...] = ()

    @property
    def confidence(self) -> float:
        return self.holds / self.support if self.support else 0.0

    def holds_on(self, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """Where the rule holds, ``(n,)`` bool, given the head and tail layers as bool matrices ``(n, units)``:
        at least ``head_min`` head units on and at least ``tail_min`` tail literals true (a negated unit is
        true when off)."""
        head, tail = np.asarray(head, dtype=bool), np.asarray(tail, dtype=bool)
        neg = set(self.negated)
        lit = np.stack([~tail[:, y] if y in neg else tail[:, y] for y in self.tail], 1) if self.tail else \
            np.ones((len(tail), 0), bool)
        return (head[:, list(self.head)].sum(1) >= self.head_min) & (lit.sum(1) >= self.tail_min)

    @property
    def kind(self) -> str:
        """"conjunction" (l = |X|), "disjunction" (l = 1 < |X|) or "approximate" (in between)."""
        if self.head_min == len(self.head):
            return "conjunction"
        return "disjunction" if self.head_min == 1 else "approximate"


@dataclass
class RuleSet:
    """Rules with the names of the units they index and the code lengths of the model (bits).

    ``direction`` says how a rule reads: ``"head→tail"`` (ExplaiNN: the head implies the tail) or
    ``"tail→head"`` (ERIC: the tail's literals imply the head units). Either way the head is the layer
    nearer the output, so views draw every miner's rules the same way."""

    rules: list[Rule]
    head_names: list[str] = field(default_factory=list)
    tail_names: list[str] = field(default_factory=list)
    head_layer: str = ""
    tail_layer: str = ""
    codelength: float = float("nan")
    baseline_codelength: float = float("nan")
    direction: str = "head→tail"

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __getitem__(self, i: int) -> Rule:
        return self.rules[i]

    def _names(self, idx: Sequence[int], names: list[str]) -> list[str]:
        return [names[i] if names else str(i) for i in idx]

    def _tail_names(self, rule: Rule) -> list[str]:
        neg = set(rule.negated)
        return [("¬" if y in neg else "") + n for y, n in zip(rule.tail, self._names(rule.tail, self.tail_names))]

    def describe(self, rule: Rule) -> str:
        """``{class 3, class 8} →[l=1] {fc1:4, fc1:9} [k=2]``, or for ``"tail→head"`` rules
        ``fc1:4 ∧ ¬fc1:9 → class 3``."""
        heads, tails = self._names(rule.head, self.head_names), self._tail_names(rule)
        also = (f" (also: {', '.join(self._names(rule.head_equivalents, self.head_names))})"
                if rule.head_equivalents else "")
        if self.direction == "tail→head":
            return f"{' ∧ '.join(tails) or '⊤'} → {' ∧ '.join(heads)}{also}"
        return f"{{{', '.join(heads)}}}{also} →[l={rule.head_min}] {{{', '.join(tails)}}} [k={rule.tail_min}]"

    def to_frame(self) -> pd.DataFrame:
        """One row per rule, with unit names when the inputs carried them."""
        rows = []
        for r in self.rules:
            rows.append({"head": self._names(r.head, self.head_names),
                         "head_equivalents": self._names(r.head_equivalents, self.head_names),
                         "tail": self._tail_names(r),
                         "head_idx": list(r.head), "tail_idx": list(r.tail),
                         "head_min": r.head_min, "tail_min": r.tail_min, "kind": r.kind,
                         "support": r.support, "holds": r.holds, "confidence": r.confidence,
                         "gain": r.gain, "head_layer": self.head_layer, "tail_layer": self.tail_layer})
        cols = ["head", "head_equivalents", "tail", "head_idx", "tail_idx", "head_min", "tail_min", "kind", "support",
                "holds", "confidence", "gain", "head_layer", "tail_layer"]
        return pd.DataFrame(rows, columns=cols)

    def to_json(self) -> str:
        data = asdict(self)
        data["rules"] = [asdict(r) for r in self.rules]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "RuleSet":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"text is not RuleSet JSON (as RuleSet.to_json writes it): {err}") from err
        if not isinstance(data, dict) or "rules" not in data:
            raise ValueError("text is not RuleSet JSON (as RuleSet.to_json writes it): no 'rules'")
        rules = [Rule(head=tuple(r["head"]), tail=tuple(r["tail"]), head_min=r["head_min"],
                      tail_min=r["tail_min"], support=r["support"], holds=r["holds"], gain=r["gain"],
                      negated=tuple(r.get("negated", ())), head_equivalents=tuple(r.get("head_equivalents", ())))
                 for r in data.pop("rules")]
        return cls(rules=rules, **data)
