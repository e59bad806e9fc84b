"""What evidence costs and what it says (nnrules.miners.evidence), measured in one run.

1. **Cost**: each miner's time with ``resamples`` 0, 2 (the app's default), 5 and 20 half-samples, as ratios to
   ``resamples=0`` — ExplaiNN and ERIC through the app's Mine (record, binarize, trace; the app's default layers)
   on every zoo model, the patches miner on 200 digits. Each half-sample is a fit on half the rows; ExplaiNN's
   and ERIC's kernels use the machine's cores inside each fit (numba), so half-samples run one after another.
2. **The null**: compare() of a model with itself on two disjoint halves of its data, and with its copy fine-tuned
   on classes 3 and 8 (seed 000 Sec. 3.2), ExplaiNN relu3 → relu2, mean thresholds, 20 half-samples: rows
   "changed"/"only in" against rows beyond the null.
3. **Planted rules** (the paper's generator, exclusive heads, 0.1 % noise, 20 half-samples): share of found planted
   rules with stability ≥ 0.9, coverage of the 95 % held-out intervals; the permuted null.

Run: .venv/bin/python benchmarks/evidence.py [--quick]
"""
import sys
from dataclasses import replace

import numpy as np

from nnrules import Binarizer, ExplaiNN, PatchMiner, compare, record, trace, zoo
from nnrules.data.synthetic import planted_rules

from _timing import best_of

QUICK = "--quick" in sys.argv


def cost():
    from nnrules.widgets.state import ExplorerState

    print("1. cost: seconds with resamples=0, and ratios for 2 (the app's default), 5, 20")
    print(f"{'miner / model':<28} {'0':>7} {'×2':>6} {'×5':>6} {'×20':>6}")
    for name in (["digits-cnn"] if QUICK else ["digits-cnn", "mnist-cnn", "fashion-cnn", "cifar10-cnn"]):
        try:
            st = ExplorerState(pictures=None)
            st.load_zoo(name)
        except Exception as err:  # noqa: BLE001 — a zoo model whose data is not installed here
            print(f"{'ExplaiNN Mine ' + name:<28} skipped: {err}")
            continue
        for miner in ("explainn", "eric"):
            base = st.default_settings(miner)
            st.mine(replace(base, params={"resamples": 0}))  # warm
            t = {b: best_of(lambda: st.mine(replace(base, params={"resamples": b})), 3 if b < 5 else 1)
                 for b in (0, 2, 5, 20)}
            print(f"{miner + ' Mine ' + name:<28} {t[0]:>7.2f} " + " ".join(f"{t[b] / t[0]:>6.2f}" for b in (2, 5, 20)))
    z = zoo.load("digits-cnn")
    x = z.train.tensors[0]
    PatchMiner().fit(z.model, x[:200])  # warm
    t = {b: best_of(lambda: PatchMiner(resamples=b).fit(z.model, x[:200]), 2) for b in (0, 2, 5, 20)}
    print(f"{'patches digits-cnn (200)':<28} {t[0]:>7.2f} " + " ".join(f"{t[b] / t[0]:>6.2f}" for b in (2, 5, 20)))


def null(name):
    z = zoo.load(name)
    x, y = z.train.tensors
    perm = np.random.default_rng(0).permutation(len(x))
    a, b = np.sort(perm[: len(x) // 2]), np.sort(perm[len(x) // 2:])

    def flow(model, rows=None):
        xs, ys = (x, y) if rows is None else (x[rows], y[rows])
        acts = record(model, (xs, ys), ["relu3", "relu2"], progress=False)
        return trace(acts, ["relu3", "relu2"], ExplaiNN(), Binarizer("mean"), resamples=20, random_state=0)

    halves = compare(flow(z.model, a), flow(z.model, b)).summary()
    tuned = compare(flow(z.model), flow(zoo.fine_tune(z, [3, 8]).model)).summary()
    for label, s in (("same model, two halves", halves), ("vs fine-tuned on 3, 8", tuned)):
        rows = sum(s[k] for k in ("same", "changed", "only in a", "only in b"))
        differ = rows - s["same"]
        print(f"{name:<12} {label:<24} rows {rows:>4}  differ {differ:>4} ({differ / rows:>4.0%})  "
              f"beyond null {s['beyond null']:>3} ({s['beyond null'] / rows:>4.1%})  units changed "
              f"{s['units changed']:>4}, beyond null {s['units beyond null']:>3}")


def planted():
    print("\n3. planted rules (exclusive heads, 0.1 % noise, n = 10,000, 50 rules, 20 half-samples)")
    for seed in (0, 1, 2):
        d = planted_rules(n=10_000, n_rules=50, heads="exclusive", noise=0.001, seed=seed)
        stab, cover = d.evidence(ExplaiNN(resamples=20, random_state=seed).fit(d.head, d.tail).rules_)
        rng = np.random.default_rng(seed)
        head, tail = d.head.copy(), d.tail.copy()
        for mat in (head, tail):
            for j in range(mat.shape[1]):
                mat[:, j] = mat[rng.permutation(len(mat)), j]
        n0 = len(ExplaiNN(resamples=20, random_state=seed).fit(head, tail).rules_)
        print(f"seed {seed}: {len(stab)}/50 planted found, stability ≥ 0.9: {np.mean(stab >= 0.9):.0%}, "
              f"intervals covering: {cover:.0%}; permuted columns: {n0} rules mined")


if __name__ == "__main__":
    cost()
    print("\n2. compare() against its own null (ExplaiNN relu3 → relu2, mean thresholds, 20 half-samples)")
    for name in (["digits-cnn"] if QUICK else ["digits-cnn", "mnist-cnn", "fashion-cnn"]):
        try:
            null(name)
        except Exception as err:  # noqa: BLE001 — Fashion-MNIST not installed here
            print(f"{name}: skipped ({err})")
    planted()
