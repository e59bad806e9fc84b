"""Frequent itemsets: nnrules' eclat vs pyfim's eclat (C, Borgelt) and mlxtend's fpgrowth, same data, same run.

Data: (1) retail-like, the size of mlxtend issue #644 (33,841 baskets × 1,587 items, ~0.6 % dense, Pareto item
popularity); (2) dense activation-like, 10,000 × 128 at 30 %; (3) patch-like, seed 002's transaction shape
(10,000 rows, each its top 10 of 128 filters plus one of 10 classes). Every output is checked to be the same
itemsets with the same counts as pyfim's.

Each library gets its own input format, and its conversion is not timed: nnrules a bool matrix (the time
includes packing it) or a pre-packed BinaryMatrix; pyfim lists of item ids; mlxtend a bool DataFrame.
"ratio" = nnrules (bool input) time / pyfim time: below 1 is faster. Best of 3 (pyfim, nnrules), 1 (mlxtend).

Run: .venv/bin/python benchmarks/itemsets.py [--no-mlxtend]
"""
import sys

import numpy as np
import pandas as pd

from _timing import best_of
from nnrules import BinaryMatrix
from nnrules.miners.itemsets import eclat, min_count

try:
    import fim
except ImportError:  # pragma: no cover
    sys.exit("pyfim is the reference here: pip install pyfim (it is in the dev extra: pip install -e '.[dev]')")


def retail_like(rng, n=33_841, m=1_587, density=0.006):
    pop = np.minimum(rng.pareto(1.2, m) + 0.05, 1e9)
    pop = np.minimum(pop / pop.sum() * density * m, 0.6)
    return rng.random((n, m)) < pop


def dense(rng):
    return rng.random((10_000, 128)) < 0.3


def patch_like(rng, n=10_000, d=128, top=10, classes=10):
    pop = rng.gamma(0.7, 1.0, d)  # a few filters are active for many patches
    X = np.zeros((n, d + classes), bool)
    for i in range(n):
        X[i, rng.choice(d, top, replace=False, p=pop / pop.sum())] = True
    X[np.arange(n), d + rng.integers(0, classes, n)] = True
    return X


def main():
    with_mlxtend = "--no-mlxtend" not in sys.argv
    if with_mlxtend:
        from mlxtend.frequent_patterns import fpgrowth
    rng = np.random.default_rng(0)
    eclat(np.eye(3, dtype=bool), 0.5)  # compile once (numba caches it on disk afterwards)
    rows = []
    for name, X, supports in [("retail-like 33841×1587", retail_like(rng), [0.01, 0.005, 0.002, 0.001, 0.0005]),
                              ("dense 10000×128 (30 %)", dense(rng), [0.1, 0.05, 0.03]),
                              ("patch-like 10000×138", patch_like(rng), [0.02, 0.01, 0.005])]:
        tracts = [np.flatnonzero(r).tolist() for r in X]
        packed = BinaryMatrix.from_dense(X)
        df = pd.DataFrame(X)
        for s in supports:
            c = min_count(s, len(X))
            ours = eclat(X, s)
            ref = {frozenset(t): k for t, k in fim.eclat(tracts, supp=-c, report="a")}
            same = {t: int(round(v * len(X))) for t, v in zip(ours.itemsets, ours.support)} == ref
            t_bool = best_of(lambda: eclat(X, s), repeats=3)
            t_packed = best_of(lambda: eclat(packed, s), repeats=3)
            t_fim = best_of(lambda: fim.eclat(tracts, supp=-c, report="a"), repeats=3)
            t_mlx = best_of(lambda: fpgrowth(df, min_support=s), repeats=1) if with_mlxtend else float("nan")
            rows.append((name, s, len(ours), same, t_bool, t_packed, t_fim, t_mlx))
            print(".", end="", flush=True)
    print()
    print(f"{'data':<24} {'support':>8} {'itemsets':>9} {'= pyfim':>8} {'nnrules s':>10} {'packed s':>9} "
          f"{'pyfim s':>8} {'ratio':>6} {'fpgrowth s':>11} {'vs fpgrowth':>12}")
    for name, s, n, same, a, p, f, m in rows:
        print(f"{name:<24} {s:>8} {n:>9} {str(same):>8} {a:>10.4f} {p:>9.4f} {f:>8.4f} {a / f:>6.2f} "
              f"{m:>11.3f} {m / a:>11.0f}×")
    worst = max(a / f for _, _, _, _, a, _, f, _ in rows)
    print(f"\nslowest ratio to pyfim: {worst:.2f} (nnrules from a bool matrix, packing included); "
          f"all identical to pyfim: {all(r[3] for r in rows)}")


if __name__ == "__main__":
    main()
