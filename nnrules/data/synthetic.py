"""Synthetic binary data with planted rules (seed 000 Sec. 3.1) and exact-match scoring.

Protocol, with the choices the paper leaves open written down:

- n rows (10,000 in the paper); each rule has 1–5 head and 1–5 tail items (uniform), and items are
  not shared between rules (every rule owns its columns).
- A rule's rows: each row independently with probability f ~ U(.02, .08) (the rule's frequency).
- ``heads="exclusive"``: in each of the rule's rows exactly one head item (uniform) is on — mutually
  exclusive heads like class labels, a disjunction (l = 1). ``heads="cooccur"``: all head items are
  on in the rule's rows, a conjunction (l = |X|).
- In each of the rule's rows the whole tail is on with probability c ~ U(.5, 1) (the confidence).
- 5 noise columns in each layer, each on with a frequency ~ U(.02, .08), in no rule.
- Noise: a fraction ``noise`` of all cells of both matrices, chosen uniformly, is flipped.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PlantedData", "planted_rules", "match_rules"]


@dataclass
class PlantedData:
    head: np.ndarray  # (n, p) bool
    tail: np.ndarray  # (n, q) bool
    rules: list[tuple[tuple[int, ...], tuple[int, ...]]]  # planted (head items, tail items)
    confidences: list[float] = field(default_factory=list)  # each rule's c: P(whole tail on | one of its rows)
    frequencies: list[float] = field(default_factory=list)  # each rule's f: the share of rows that are its rows
    heads: str = "exclusive"
    noise: float = 0.0

    def confidence(self, i: int, head_min: int, tail_min: int) -> float:
        """The confidence that planted rule ``i`` has under this protocol, read as X →_l^k Y with l = ``head_min``,
        k = ``tail_min``: P(≥ k of Y on | ≥ l of X on) over the generator's draws, noise included (flipped head
        cells make the head apply in rows that are not the rule's, where the tail is off). What a 95 % interval
        for the rule's confidence should cover."""
        from scipy.stats import binom

        X, Y = self.rules[i]
        h, t, e = len(X), len(Y), self.noise
        f, c = self.frequencies[i], self.confidences[i]
        if self.heads == "exclusive":  # one head item on in a rule row: Bernoulli(1−e) plus Bin(h−1, e)
            a_rule = (1 - e) * binom.sf(head_min - 2, h - 1, e) + e * binom.sf(head_min - 1, h - 1, e)
        else:
            a_rule = binom.sf(head_min - 1, h, 1 - e)
        t_rule = c * binom.sf(tail_min - 1, t, 1 - e) + (1 - c) * binom.sf(tail_min - 1, t, e)
        a_other, t_other = binom.sf(head_min - 1, h, e), binom.sf(tail_min - 1, t, e)
        applies = f * a_rule + (1 - f) * a_other
        return float((f * a_rule * t_rule + (1 - f) * a_other * t_other) / applies) if applies else 0.0

    def evidence(self, found) -> tuple[np.ndarray, float]:
        """For the planted rules among ``found`` (rules with ``head``, ``tail``, ``head_min``, ``tail_min``,
        ``stability`` and ``confidence_interval``, e.g. a miner's ``rules_`` fitted with ``resamples``): their
        stabilities, and the share of their intervals that cover :meth:`confidence` (NaN when none is found)."""
        index = {(tuple(sorted(h)), tuple(sorted(t))): i for i, (h, t) in enumerate(self.rules)}
        stab, cover = [], []
        for r in found:
            i = index.get((tuple(sorted(r.head)), tuple(sorted(r.tail))))
            if i is not None:
                stab.append(r.stability)
                lo, hi = r.confidence_interval
                cover.append(lo <= self.confidence(i, r.head_min, r.tail_min) <= hi)
        return np.array(stab, dtype=float), float(np.mean(cover)) if cover else float("nan")


def planted_rules(n: int = 10_000, n_rules: int = 50, heads: str = "exclusive", noise: float = 0.001,
                  n_noise_features: int = 5, max_head: int = 5, max_tail: int = 5,
                  min_head: int = 1, seed: int = 0) -> PlantedData:
    """Data with ``n_rules`` planted rules; see the module docstring for the protocol."""
    if heads not in ("exclusive", "cooccur"):
        raise ValueError(f"heads must be 'exclusive' or 'cooccur', got {heads!r}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise must be a fraction in [0, 0.5), got {noise!r}")
    rng = np.random.default_rng(seed)
    hsize = rng.integers(min_head, max_head + 1, size=n_rules)
    tsize = rng.integers(1, max_tail + 1, size=n_rules)
    p, q = int(hsize.sum()) + n_noise_features, int(tsize.sum()) + n_noise_features
    head = np.zeros((n, p), dtype=bool)
    tail = np.zeros((n, q), dtype=bool)
    rules = []
    confidences: list[float] = []
    frequencies: list[float] = []
    hpos = tpos = 0
    for r in range(n_rules):
        X = np.arange(hpos, hpos + hsize[r])
        Y = np.arange(tpos, tpos + tsize[r])
        hpos += hsize[r]
        tpos += tsize[r]
        draws = rng.random(n)  # drawn before the frequency: the stream every seed has always given
        freq = rng.uniform(0.02, 0.08)
        frequencies.append(float(freq))
        rows = np.flatnonzero(draws < freq)
        if heads == "exclusive":
            head[rows, rng.choice(X, size=len(rows))] = True
        else:
            head[np.ix_(rows, X)] = True
        conf = rng.uniform(0.5, 1.0)
        confidences.append(float(conf))
        holds = rows[rng.random(len(rows)) < conf]
        tail[np.ix_(holds, Y)] = True
        rules.append((tuple(int(x) for x in X), tuple(int(y) for y in Y)))
    for j in range(n_noise_features):
        head[:, hpos + j] = rng.random(n) < rng.uniform(0.02, 0.08)
        tail[:, tpos + j] = rng.random(n) < rng.uniform(0.02, 0.08)
    for mat in (head, tail):
        flips = rng.random(mat.shape) < noise
        mat ^= flips
    return PlantedData(head, tail, rules, confidences, frequencies, heads, noise)


def match_rules(found, planted) -> dict[str, float]:
    """Exact-match precision and recall: a found rule matches when head and tail sets are equal.

    ``found``: rules with ``head``/``tail`` attributes or (head, tail) pairs. Also counts
    ``redundant``: found rules whose head and tail overlap a planted rule's but do not equal it.
    """
    def as_sets(r, arg):
        if isinstance(r, tuple) and len(r) == 2:
            return frozenset(r[0]), frozenset(r[1])
        if hasattr(r, "head") and hasattr(r, "tail"):
            return frozenset(r.head), frozenset(r.tail)
        raise TypeError(f"{arg} must hold rules (with head and tail) or (head, tail) pairs, got {type(r).__name__}")

    for arg, rules in (("found", found), ("planted", planted)):
        if not isinstance(rules, Iterable) or isinstance(rules, (str, bytes)):
            raise TypeError(f"{arg} must be a collection of rules, got {type(rules).__name__}")
    f = [as_sets(r, "found") for r in found]
    pl = {as_sets(r, "planted") for r in planted}
    hits = sum(1 for r in f if r in pl)
    matched = len(pl & set(f))
    redundant = sum(1 for r in f if r not in pl and any(r[1] & t for _, t in pl))
    return {"found": len(f), "planted": len(pl),
            "precision": hits / len(f) if f else 0.0, "recall": matched / len(pl) if pl else 1.0,
            "redundant": redundant}
