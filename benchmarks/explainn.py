"""ExplaiNN: recovery of planted rules (seed 000 Sec. 3.1), speed, and numba kernels vs numpy references.

Run: .venv/bin/python benchmarks/explainn.py [--quick]
"""
import argparse
import time

import numpy as np

from nnrules import ExplaiNN
from nnrules.miners import _explainn_counts as K
from nnrules.miners._reference import and_count_reference, best_rule_reference
from nnrules.data.bits import and_count, pack_columns, tidlists
from nnrules.miners.mdl import lpc_table
from nnrules.data.synthetic import match_rules, planted_rules


def tail_recall(found, planted):
    tails = {frozenset(r.tail) for r in found}
    return sum(frozenset(t) in tails for _, t in planted) / len(planted)


def recovery(quick: bool):
    print("\n## Planted rules, n = 10,000 (exact match of head and tail)")
    print(f"{'setting':<30}{'rules':>6}{'found':>7}{'prec':>7}{'recall':>8}{'tail rec':>9}{'redund':>8}{'sec':>8}")
    settings = [("exclusive", r, 0.001) for r in ((10, 50, 100) if quick else (10, 50, 100, 200, 300, 500))]
    settings += [("cooccur", 100, nz) for nz in ((0.001, 0.01) if quick else (0.001, 0.005, 0.01, 0.03, 0.05, 0.1))]
    for heads, n_rules, noise in settings:
        d = planted_rules(n=10_000, n_rules=n_rules, heads=heads, noise=noise, seed=0)
        t = time.perf_counter()
        m = ExplaiNN().fit(d.head, d.tail)
        dt = time.perf_counter() - t
        s = match_rules(m.rules_, d.rules)
        print(f"{heads + f' noise={noise:.1%}':<30}{n_rules:>6}{s['found']:>7}{s['precision']:>7.2f}"
              f"{s['recall']:>8.2f}{tail_recall(m.rules_, d.rules):>9.2f}{s['redundant']:>8}{dt:>8.2f}")


def speed(quick: bool):
    print("\n## Time against size (planted, exclusive heads, tails up to 60 items)")
    print(f"{'n':>7}{'head':>6}{'tail':>6}{'rules':>7}{'mu':>6}{'sec':>8}{'prec':>7}{'recall':>8}")
    for n, n_rules, max_tail in ((1000, 8, 20), (10_000, 8, 20), (10_000, 32, 60)):
        d = planted_rules(n=n, n_rules=n_rules, heads="exclusive", max_tail=max_tail, noise=0.001, seed=3)
        if n_rules == 32:  # pad with noise columns (5% on) to exactly 100 head × 1,000 tail items
            rng = np.random.default_rng(4)
            d.head = np.hstack([d.head, rng.random((n, 100 - d.head.shape[1])) < 0.05])
            d.tail = np.hstack([d.tail, rng.random((n, 1000 - d.tail.shape[1])) < 0.05])
        for mu in (None, 2):
            t = time.perf_counter()
            m = ExplaiNN(mu=mu).fit(d.head, d.tail)
            dt = time.perf_counter() - t
            s = match_rules(m.rules_, d.rules)
            print(f"{n:>7}{d.head.shape[1]:>6}{d.tail.shape[1]:>6}{len(m.rules_):>7}{str(mu):>6}{dt:>8.2f}"
                  f"{s['precision']:>7.2f}{s['recall']:>8.2f}")


def kernels():
    print("\n## Numba kernels vs their numpy references (same inputs, same results checked)")
    rng = np.random.default_rng(0)
    head, tail = rng.random((10_000, 100)) < 0.05, rng.random((10_000, 1000)) < 0.05
    ph, pt = pack_columns(head), pack_columns(tail)
    and_count(ph[:2], pt[:2])  # compile
    t = time.perf_counter(); fast = and_count(ph, pt); t_fast = time.perf_counter() - t
    t = time.perf_counter(); ref = and_count_reference(head, tail); t_ref = time.perf_counter() - t
    assert np.array_equal(fast, ref)
    print(f"{'kernel':<44}{'numba s':>10}{'numpy s':>10}{'speed-up':>10}")
    print(f"{'and_count 10k×100 vs 10k×1000 (int matmul)':<44}{t_fast:>10.4f}{t_ref:>10.4f}{t_ref / t_fast:>10.1f}")
    h, tl = head[:2000, :8], tail[:2000, :6]
    h[:, 0] |= tl[:, 0]
    hp, hi = tidlists(pack_columns(h), 2000)
    tp, ti = tidlists(pack_columns(tl), 2000)
    tot = h.sum() + tl.sum()
    args = (hp, hi, tp, ti, tl.sum(0).astype(np.int64), -np.log2(h.sum(0) / tot), -np.log2(tl.sum(0) / tot), 2000, lpc_table())
    X, Y = np.arange(8), np.arange(6)
    K.best_rule(X, Y, *args)
    t = time.perf_counter()
    for _ in range(100):
        c = K.best_rule(X, Y, *args)[0]
    t_fast = (time.perf_counter() - t) / 100
    t = time.perf_counter(); c_ref = best_rule_reference(h, tl, X, Y)[0]; t_ref = time.perf_counter() - t
    assert abs(c - c_ref) < 1e-6
    print(f"{'best (l,k) of an 8→6 rule, n=2000':<44}{t_fast:>10.5f}{t_ref:>10.4f}{t_ref / t_fast:>10.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    ExplaiNN().fit(np.eye(4, dtype=bool), np.eye(4, dtype=bool))  # compile the kernels outside the timings
    kernels()
    speed(a.quick)
    recovery(a.quick)
