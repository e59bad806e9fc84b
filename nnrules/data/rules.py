"""Plain, inspectable rule objects shared by every miner: ``Rule`` and ``RuleSet``."""
from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = ["Rule", "RuleSet"]


def _units(value, name: str) -> tuple[int, ...]:
    """Distinct unit indices ≥ 0 as a tuple of ints (lists and integer arrays accepted)."""
    try:
        out = tuple(operator.index(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of unit indices (integers ≥ 0), got {value!r}") from None
    if any(v < 0 for v in out) or any(isinstance(v, (bool, np.bool_)) for v in value):
        raise ValueError(f"{name} must be a sequence of unit indices (integers ≥ 0), got {value!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names a unit twice: {out}")
    return out


def _count(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer ≥ 0, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer ≥ 0, got {value!r}") from None
    if out < 0:
        raise ValueError(f"{name} must be an integer ≥ 0, got {out}")
    return out


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

    Evidence (a miner fitted with ``resamples=B``, :mod:`nnrules.miners.evidence`; ``None`` without):
    ``stability`` — the share of B half-samples of the rows in which the same rule is found again;
    ``confidence_interval`` — (low, high), a 95 % interval for its confidence on rows it was not mined on.
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
    stability: float | None = None
    confidence_interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("head", "tail", "negated", "head_equivalents"):
            object.__setattr__(self, name, _units(getattr(self, name), name))
        for name in ("head_min", "tail_min", "support", "holds"):
            object.__setattr__(self, name, _count(getattr(self, name), name))
        if not self.head:
            raise ValueError("head must name at least one unit")
        if not 1 <= self.head_min <= len(self.head):
            raise ValueError(f"head_min (l) must be in 1..{len(self.head)} (the head's size), got {self.head_min}")
        if self.tail and not 1 <= self.tail_min <= len(self.tail):
            raise ValueError(f"tail_min (k) must be in 1..{len(self.tail)} (the tail's size), got {self.tail_min}")
        if not self.tail and self.tail_min:
            raise ValueError(f"tail_min (k) must be 0 for an empty tail, got {self.tail_min}")
        if self.holds > self.support:
            raise ValueError(f"holds ({self.holds}) cannot exceed support ({self.support}): a rule holds only "
                             "where it applies")
        if not set(self.negated) <= set(self.tail):
            raise ValueError(f"negated units {sorted(set(self.negated) - set(self.tail))} are not in the tail")
        if set(self.head_equivalents) & set(self.head):
            raise ValueError("head_equivalents must be units outside the head")
        try:
            gain = float(self.gain)
        except (TypeError, ValueError):
            raise ValueError(f"gain must be a number of bits, got {self.gain!r}") from None
        if np.isnan(gain):
            raise ValueError("gain must be a number of bits, got NaN")
        object.__setattr__(self, "gain", gain)
        if self.stability is not None:
            if isinstance(self.stability, (bool, np.bool_)) or not isinstance(self.stability, (int, float, np.number)) \
                    or not 0 <= float(self.stability) <= 1:
                raise ValueError(f"stability must be a share in [0, 1] (or None), got {self.stability!r}")
            object.__setattr__(self, "stability", float(self.stability))
        if self.confidence_interval is not None:
            try:
                lo, hi = (float(v) for v in self.confidence_interval)
            except (TypeError, ValueError):
                raise ValueError(f"confidence_interval must be (low, high) in [0, 1] (or None), got "
                                 f"{self.confidence_interval!r}") from None
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"confidence_interval must be (low, high) with 0 ≤ low ≤ high ≤ 1, got ({lo}, {hi})")
            object.__setattr__(self, "confidence_interval", (lo, hi))

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
    #: the rule sets of the half-samples the evidence was measured on (``resamples=B``; empty without)
    resampled: list["RuleSet"] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.rules, (str, bytes)) or not hasattr(self.rules, "__iter__"):
            raise TypeError(f"rules must be a list of Rule, got {type(self.rules).__name__}")
        self.rules = list(self.rules)
        bad = [type(r).__name__ for r in self.rules if not isinstance(r, Rule)]
        if bad:
            raise TypeError(f"rules must be a list of Rule, got a {bad[0]}")
        self.resampled = list(self.resampled)
        if any(not isinstance(rs, RuleSet) for rs in self.resampled):
            raise TypeError("resampled must be a list of RuleSet (the half-samples' rule sets)")
        if self.direction not in ("head→tail", "tail→head"):
            raise ValueError(f"direction must be 'head→tail' or 'tail→head', got {self.direction!r}")
        for side, names in (("head", self.head_names), ("tail", self.tail_names)):
            if not names:
                continue
            for i, r in enumerate(self.rules):
                units = (r.head + r.head_equivalents) if side == "head" else (r.tail + r.negated)
                if units and max(units) >= len(names):
                    raise ValueError(f"rule {i} uses {side} unit {max(units)}, but {side}_names has only "
                                     f"{len(names)} units")

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
                         "gain": r.gain, "stability": r.stability,
                         "ci_low": None if r.confidence_interval is None else r.confidence_interval[0],
                         "ci_high": None if r.confidence_interval is None else r.confidence_interval[1],
                         "head_layer": self.head_layer, "tail_layer": self.tail_layer})
        cols = ["head", "head_equivalents", "tail", "head_idx", "tail_idx", "head_min", "tail_min", "kind", "support",
                "holds", "confidence", "gain", "stability", "ci_low", "ci_high", "head_layer", "tail_layer"]
        return pd.DataFrame(rows, columns=cols)

    def to_json(self) -> str:
        return json.dumps(self._to_dict())

    def _to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("rules", "resampled")}
        data["rules"] = [asdict(r) for r in self.rules]
        data["resampled"] = [rs._to_dict() for rs in self.resampled]
        return data

    @classmethod
    def from_json(cls, text: str) -> "RuleSet":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"text is not RuleSet JSON (as RuleSet.to_json writes it): {err}") from err
        return cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data, depth: int = 0) -> "RuleSet":
        if not isinstance(data, dict) or "rules" not in data:
            raise ValueError("text is not RuleSet JSON (as RuleSet.to_json writes it): no 'rules'")
        if depth > 1:
            raise ValueError("text is not RuleSet JSON (as RuleSet.to_json writes it): resampled rule sets nest "
                             "only once")
        try:
            data = dict(data)
            rules = [Rule(head=tuple(r["head"]), tail=tuple(r["tail"]), head_min=r["head_min"],
                          tail_min=r["tail_min"], support=r["support"], holds=r["holds"], gain=r["gain"],
                          negated=tuple(r.get("negated", ())), head_equivalents=tuple(r.get("head_equivalents", ())),
                          stability=r.get("stability"),
                          confidence_interval=None if r.get("confidence_interval") is None
                          else tuple(r["confidence_interval"]))
                     for r in data.pop("rules")]
            resampled = [cls._from_dict(x, depth + 1) for x in data.pop("resampled", [])]
            return cls(rules=rules, resampled=resampled, **data)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"text is not RuleSet JSON (as RuleSet.to_json writes it): {type(err).__name__} "
                             f"{err}") from None
