"""Frequent itemsets: nnrules.miners.itemsets.eclat vs mlxtend's fpgrowth, same data, same run, several supports.

Data: (1) random transactions, 10,000 × 60 items with per-item frequencies ~ U(0.02, 0.5); (2) patch-like
transactions, 10,000 rows each holding its top 10 of 128 "filters" (skewed popularity) plus one of 10
class items — the shape of seed 002's transaction database. Both outputs are checked to be identical.

Run: .venv/bin/python benchmarks/itemsets.py
"""
import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import fpgrowth

from _timing import best_of
from nnrules.miners.itemsets import eclat


def random_data(rng):
    return rng.random((10_000, 60)) < rng.uniform(0.02, 0.5, 60)


def patch_like(rng, n=10_000, d=128, top=10, classes=10):
    pop = rng.gamma(0.7, 1.0, d)  # a few filters are active for many patches
    X = np.zeros((n, d + classes), bool)
    for i in range(n):
        X[i, rng.choice(d, top, replace=False, p=pop / pop.sum())] = True
    X[np.arange(n), d + rng.integers(0, classes, n)] = True
    return X


def main():
    rng = np.random.default_rng(0)
    eclat(np.eye(3, dtype=bool), 0.5)  # compile once (numba caches it on disk afterwards)
    rows = []
    for name, X, supports in [("random 10k×60", random_data(rng), [0.2, 0.1, 0.05, 0.02]),
                              ("patch-like 10k×138", patch_like(rng), [0.1, 0.05, 0.02, 0.01])]:
        df = pd.DataFrame(X)
        for s in supports:
            ours = eclat(X, s)
            ref = fpgrowth(df, min_support=s)
            same = dict(zip(ours.itemsets, ours.support)) == dict(zip(ref.itemsets, ref.support))
            t_ours = best_of(lambda: eclat(X, s), repeats=3)
            t_ref = best_of(lambda: fpgrowth(df, min_support=s), repeats=1)
            rows.append((name, s, len(ours), same, t_ours, t_ref, t_ref / t_ours))
    print(f"{'data':<20} {'support':>8} {'itemsets':>9} {'same':>5} {'eclat s':>9} {'fpgrowth s':>11} {'speed-up':>9}")
    for name, s, n, same, a, b, r in rows:
        print(f"{name:<20} {s:>8} {n:>9} {str(same):>5} {a:>9.4f} {b:>11.3f} {r:>8.1f}×")


if __name__ == "__main__":
    main()
