"""Evidence for every rule: is it found again on other samples of the data, and how often does it hold on samples
it was not mined on?

A miner with ``resamples=B`` mines, besides the data, B **half-samples**: each draws ⌊n/2⌋ of the n rows without
replacement and mines them alone; the other rows are held out. This is stability selection's subsampling
(Meinshausen & Bühlmann 2010, "Stability selection", JRSS-B 72(4), Sec. 2.2: subsamples of size ⌊n/2⌋), and a
half-sample's estimate varies around the full sample's as much as the full sample's varies around the truth
(McCarthy 1969, "Pseudo-replication: half samples", a half-sample's finite-population variance is that of the
whole sample), so half-samples give both stability and an interval. Each rule of the full fit gets

- ``stability``: the share of the B half-samples whose rules contain the same rule (:func:`~.matching.same_rule`:
  the same tail, the same head up to head equivalents);
- ``confidence_interval``: a 95 % interval for its confidence on rows a rule was **not** mined on: each half-sample
  that found it again measures its own copy of the rule on its held-out rows; the interval is their mean ± t·sd
  (Student's t, 95 %, over the half-samples that found it) when at least :data:`MIN_SPREAD` found it — a held-out
  half's estimate spreads around the whole sample's as the whole sample's spreads around the truth (McCarthy) —,
  else the Wilson score interval of their mean held-out counts (one held-out half's size: wider), and ``None``
  when no half-sample found it again (nothing was measured out of sample).

Half-samples are fitted one after another: each fit already keeps the machine's cores busy through numba's
parallel kernels (ExplaiNN on cifar10-cnn's relu8 → relu7: 1.6 of 2 cores; output → relu8: 1.9), so a pool of
processes would add little here. Each miner calls its ``on_progress`` before every half-sample: the app's Cancel
ends the fit there.

The half-samples' rule sets are kept (``RuleSet.resampled``): :func:`~nnrules.compare` asks them whether a rule
one model has is found in the other model's half-samples. The rows a half-sample mines are drawn by
``numpy.random.default_rng(random_state)``; the global random state is not touched.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
from scipy.stats import t as student_t
from sklearn.base import clone

from ..data.bits import BinaryMatrix
from ..data.rules import Rule, RuleSet
from ..params import Param
from .matching import by_tail, found_in, named

__all__ = ["EVIDENCE_PARAMS", "MAX_RESAMPLES", "half_samples"]

#: the most half-samples a miner takes (each one is a fit on half the rows)
MAX_RESAMPLES = 200
#: half-samples that found a rule again, at least, for an interval from their spread
MIN_SPREAD = 5

#: the parameters every miner that returns rules declares (their checks name them: ``resamples=-1`` is refused)
EVIDENCE_PARAMS = (
    Param("resamples", int, 0, "half-samples of the rows mined again to measure each rule's stability (in how many "
          "it is found again) and its confidence on rows it was not mined on; 0 = none (each costs about half a "
          "fit)", label="resamples", low=0, high=MAX_RESAMPLES),
    Param("random_state", int, 0, "seed of the half-samples (the global random state is not touched)", low=0,
          optional=True, none_means="a fresh draw each fit", ui=False),
)


def half_samples(n: int, resamples: int, random_state: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``resamples`` pairs (mined rows, held-out rows) of sorted row indices: ⌊n/2⌋ rows drawn without
    replacement, and the others."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4:
        raise ValueError(f"half-samples need at least 4 rows (two halves of 2), got n={n!r}: mine more samples or "
                         "set resamples=0")
    rng = np.random.default_rng(random_state)
    out = []
    for _ in range(resamples):
        perm = rng.permutation(n)
        out.append((np.sort(perm[: n // 2]), np.sort(perm[n // 2:])))
    return out


def held_out_counts(rule: Rule, head: np.ndarray, tail: np.ndarray, direction: str = "head→tail",
                    rows: np.ndarray | None = None) -> tuple[int, int]:
    """(rows where ``rule`` applies, rows where it holds) on bool matrices ``head (m, p)``, ``tail (m, q)`` (only
    ``rows`` of them, when given: the rule's columns are taken first, nothing else is copied): for a
    ``"head→tail"`` rule it applies where ≥ l head units are on; for ``"tail→head"`` (ERIC) where its tail literals
    hold (≥ k), and it holds where the head is on too."""
    h = np.asarray(head[:, list(rule.head)], bool)
    t = np.asarray(tail[:, list(rule.tail)], bool)
    if rows is not None:
        h, t = h[rows], t[rows]
    neg = set(rule.negated)
    lit = (np.stack([~t[:, i] if y in neg else t[:, i] for i, y in enumerate(rule.tail)], 1) if rule.tail
           else np.ones((len(t), 0), bool))
    head_on = h.sum(1) >= rule.head_min
    tail_on = lit.sum(1) >= rule.tail_min
    applies = head_on if direction == "head→tail" else tail_on
    return int(applies.sum()), int((head_on & tail_on).sum())


def _wilson(holds: int, applies: int, z: float = 1.959964) -> tuple[float, float]:
    if applies == 0:
        return (0.0, 1.0)
    p = holds / applies
    d = 1 + z * z / applies
    c = (p + z * z / (2 * applies)) / d
    h = z * math.sqrt(p * (1 - p) / applies + z * z / (4 * applies * applies)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def _interval(counts: list[tuple[int, int]]) -> tuple[float, float] | None:
    seen = [(a, h) for a, h in counts if a > 0]
    if not seen:
        return None
    if len(seen) >= MIN_SPREAD:
        conf = np.array([h / a for a, h in seen])
        half = float(student_t.ppf(0.975, len(conf) - 1) * conf.std(ddof=1))
        return (max(0.0, float(conf.mean()) - half), min(1.0, float(conf.mean()) + half))
    a = sum(x for x, _ in seen)
    h = sum(y for _, y in seen)
    return _wilson(round(h / len(seen)), round(a / len(seen)))


def pair_evidence(miner, head: BinaryMatrix, tail: BinaryMatrix,
                  on_progress: Callable[[str, float], None] | None = None, **fit_kw) -> RuleSet:
    """``miner.rules_`` with the evidence of ``miner.resamples`` half-samples, for a miner fitted on a pair of
    bit matrices (``fit(head, tail, on_progress=…, **fit_kw)``, ExplaiNN): each half-sample is a clone fitted on
    half the rows; ``on_progress`` is called before each (an exception it raises ends the fit)."""
    H, T = head.to_dense(), tail.to_dense()
    splits = half_samples(head.n_samples, miner.resamples, miner.random_state)
    sets = []
    for b, (mined, _) in enumerate(splits):
        if on_progress is not None:
            on_progress(f"half-sample {b + 1} of {len(splits)}", b / len(splits))
        m = clone(miner).set_params(resamples=0)
        m.fit(BinaryMatrix.from_dense(H[mined], head.names, head.layer),
              BinaryMatrix.from_dense(T[mined], tail.names, tail.layer), on_progress=on_progress, **fit_kw)
        sets.append(m.rules_)
    return with_evidence(miner.rules_, sets, lambda b, r: held_out_counts(r, H, T, rows=splits[b][1]))


def with_evidence(full: RuleSet, resampled: Sequence[RuleSet],
                  held_out: Callable[[int, Rule], tuple[int, int]]) -> RuleSet:
    """``full`` with each rule's ``stability`` and ``confidence_interval`` from the half-samples' rule sets
    ``resampled`` (in order); ``held_out(b, rule)`` counts (applies, holds) of half-sample b's rule on its held-out
    rows. The half-samples' rule sets are kept in ``resampled``."""
    rules = []
    B = len(resampled)
    indexes = [by_tail(rs) for rs in resampled]
    for r in full.rules:
        key = named(full, r)
        counts = []
        found = 0
        for b, (rs, index) in enumerate(zip(resampled, indexes)):
            j = found_in(key, index)
            if j >= 0:
                found += 1
                counts.append(held_out(b, rs.rules[j]))
        rules.append(replace(r, stability=found / B if B else None,
                             confidence_interval=_interval(counts) if B else None))
    return replace(full, rules=rules, resampled=list(resampled))
