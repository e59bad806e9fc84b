"""Which samples a rule's pictures show: its exemplars spread over the classes of its head (:func:`spread`),
and where a group or a rule's tail fires (:func:`fires`, :func:`tail_fires`) — for the samples where it fires
but the rule does not apply, and for a class's view."""
from __future__ import annotations

import numpy as np

__all__ = ["spread", "fires", "tail_fires"]


def fires(b: np.ndarray, units, need: int, negated=()) -> np.ndarray:
    """``(n,)`` bool: where at least ``need`` of ``units`` (columns of ``b (n, units)``) are on (a negated
    unit: off)."""
    on = b[:, list(units)].astype(bool)
    neg = [j for j, u in enumerate(units) if u in set(negated)]
    on[:, neg] = ~on[:, neg]
    return on.sum(1) >= need


def tail_fires(rule, tail: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: where at least ``tail_min`` of a rule's tail literals are true (a negated unit when off)."""
    return fires(tail, rule.tail, rule.tail_min, rule.negated)


def spread(preds, score: np.ndarray, among: np.ndarray, classes: list[int], m: int,
           names: list[str]) -> tuple[np.ndarray, str]:
    """At most ``m`` of the samples ``among`` spread over the predicted ``classes``: each class present gets
    one (the largest first, while ``m`` lasts), the rest in proportion to how many of ``among`` it holds
    (largest remainders); within a class the strongest ``score``. Returns the samples and "3 × 0, 2 × 4, …"."""
    preds, among = np.asarray(preds), np.asarray(among, dtype=np.int64)
    counts = {c: int((preds[among] == c).sum()) for c in classes}
    present = sorted((c for c in classes if counts[c]), key=lambda c: -counts[c])
    if not present:
        return among, "none of them predicted here"
    take = {c: 0 for c in present}
    for c in present[:m]:
        take[c] = 1
    left = m - sum(take.values())
    total = sum(counts[c] for c in present)
    if left > 0:
        want = {c: left * counts[c] / total for c in present}
        room = {c: counts[c] - take[c] for c in present}
        for c in present:
            add = min(int(want[c]), room[c])
            take[c] += add
        rest = m - sum(take.values())
        for c in sorted(present, key=lambda c: -(want[c] - int(want[c]))):
            if rest <= 0:
                break
            if take[c] < counts[c]:
                take[c] += 1
                rest -= 1
    out = []
    for c in present:
        rows = among[preds[among] == c]
        out.extend(rows[np.argsort(-score[rows], kind="stable")[:take[c]]].tolist())
    return np.asarray(out, dtype=np.int64), ", ".join(f"{take[c]} × {names[c]}" for c in present if take[c])
