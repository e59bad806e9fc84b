"""Plain-numpy references of the ExplaiNN kernels: slow, dense, written from the definitions.

They are the test oracles of ``bits`` and ``_kernels`` and the baseline of the benchmark.
"""
from __future__ import annotations

import math

import numpy as np

from ...data.rules import Rule


def lb(n: int, k: int) -> float:
    return math.log2(math.comb(int(n), int(k))) if 0 <= k <= n else float("inf")


def ln_int(z: int) -> float:
    if z <= 0:
        return 0.0
    total, x = math.log2(2.865064), float(z)
    while (x := math.log2(x)) > 0:
        total += x
    return total


def lpc(n: int) -> float:
    """L_pc(n) straight from its definition Σ_k C(n,k) (k/n)^k ((n-k)/n)^(n-k), summed in log space."""
    if n == 0:
        return 0.0
    xlogy = lambda a, b: a * math.log(b) if a else 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + xlogy(k, k / n)
            + xlogy(n - k, (n - k) / n) for k in range(n + 1)]
    top = max(logs)
    return (top + math.log(sum(math.exp(v - top) for v in logs))) / math.log(2)


def and_count_reference(head: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """``|T_x ∩ T_y|`` by a dense matrix product: ``(n, p), (n, q) -> (p, q)``."""
    return head.astype(np.int64).T @ tail.astype(np.int64)


def item_costs(head: np.ndarray, tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = head.sum() + tail.sum()
    with np.errstate(divide="ignore"):
        return -np.log2(head.sum(0) / total), -np.log2(tail.sum(0) / total)


def rule_cost_reference(head: np.ndarray, tail: np.ndarray, X, Y, l: int, k: int) -> float:
    """Code length of X →_l^k Y from dense ``head (n, p)``, ``tail (n, q)`` bool, term by term."""
    n = head.shape[0]
    X, Y = list(X), list(Y)
    hc, tc = item_costs(head, tail)
    applies = head[:, X].sum(1) >= l
    cnt_t = tail[:, Y].sum(1)
    holds = applies & (cnt_t >= k)
    A, H, m = int(applies.sum()), int(holds.sum()), len(Y)
    x_plus = int((~tail[holds][:, Y]).sum())
    x_minus = int(tail[applies & ~holds][:, Y].sum())
    model = (ln_int(len(X)) + ln_int(m) + hc[X].sum() + tc[Y].sum() + ln_int(l)
             + lpc(A) + lpc(H * m) + lpc((A - H) * m))
    data = lb(A, H) + lb(H * m, x_plus) + lb((A - H) * m, x_minus)
    singles = sum(lb(n, int((tail[:, y] & ~applies).sum())) for y in Y)
    return model + data + singles


def best_rule_reference(head, tail, X, Y) -> tuple[float, int, int]:
    """(cost, l, k) minimising :func:`rule_cost_reference` by trying every l and k."""
    return min((rule_cost_reference(head, tail, X, Y, l, k), l, k)
               for l in range(1, len(X) + 1) for k in range(1, len(Y) + 1))


def codelength_reference(head: np.ndarray, tail: np.ndarray, rules: list[Rule]) -> float:
    """L(D, M) in bits of a rule set, from scratch: singletons, L_N(|M|) and every rule's cost."""
    n, p = head.shape
    q = tail.shape[1]
    in_tail = {y for r in rules for y in r.tail}
    total = (p + q) * lpc(n) + ln_int(len(rules))
    total += sum(lb(n, int(head[:, x].sum())) for x in range(p))
    total += sum(lb(n, int(tail[:, y].sum())) for y in range(q) if y not in in_tail)
    total += sum(rule_cost_reference(head, tail, r.head, r.tail, r.head_min, r.tail_min) for r in rules)
    return total


def paying_oracle(head: np.ndarray, tail: np.ndarray, planted) -> tuple[list[Rule], float]:
    """The planted rules that pay for themselves (own gain > 0: their best code, :func:`best_rule_reference`,
    is shorter than their tail's singletons) as rules, and L(D, M) of the model made of them alone — a valid
    MDL model, so an upper bound on the optimum a search should reach (issue 45). ``planted``: (head, tail)
    pairs, e.g. :attr:`nnrules.data.synthetic.PlantedData.rules`."""
    n = head.shape[0]
    paying = []
    for X, Y in planted:
        cost, l, k = best_rule_reference(head, tail, X, Y)
        if sum(lb(n, int(tail[:, y].sum())) for y in Y) > cost:
            paying.append(Rule(head=tuple(X), tail=tuple(Y), head_min=l, tail_min=k, support=0, holds=0, gain=0.0))
    return paying, codelength_reference(head, tail, paying)


def oracle_recall(found, paying) -> float:
    """The share of ``paying`` rules found: a found rule with the same tail whose head, or head ∪
    ``head_equivalents``, is the planted head."""
    by_tail = {frozenset(r.tail): r for r in found}
    hit = 0
    for p in paying:
        r = by_tail.get(frozenset(p.tail))
        hit += r is not None and frozenset(p.head) in (frozenset(r.head),
                                                       frozenset(r.head) | frozenset(r.head_equivalents))
    return hit / len(paying) if paying else 1.0
