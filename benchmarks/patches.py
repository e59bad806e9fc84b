"""Explanation-guided mining (seed 002) on the zoo's CNNs: zeroing curves over the fraction of filters.

For each class, the first round(f × filters) filters of a ranking are zeroed and the class accuracy measured,
f = 1 % … 50 %. Rankings: **mined** (PatchMiner.filter_ranking: the filters of the class's rules by rule
score, then by how often they top the class's patches), **top-mean** (mean activation on the class's
samples), **ablation** (each filter zeroed alone on the evaluation data, largest drop first: an oracle for
single filters that sees the test set — for sets of filters it is no bound, as the table shows), and
**random** (mean of 5 draws). The paper's single number is one
point of these curves (VGG16, 2 % of filters: 71.6 → 45.7 vs random 71.4).

digits-cnn and mnist-cnn score against the test labels; cifar10-cnn's zoo data are crops of 12 photos with no
CIFAR labels, so it scores against the model's own predictions (the share of class-c predictions that
survive) on the crops not used for mining. A plot of the curves is written to docs/zeroing-curves.png.

Run: .venv/bin/python benchmarks/patches.py [--no-plot]
"""
import sys
import time
from pathlib import Path

import numpy as np

import nnrules
from nnrules.evaluation import ablation_ranking, activation_ranking, zeroing_curves
from nnrules.miners.patches import PatchMiner

# model, layer, ω (pixels), images to mine, labels to score against
SETUPS = [("digits-cnn", "relu2", 4, 400, "data"), ("mnist-cnn", "relu2", 8, 400, "data"),
          ("cifar10-cnn", "relu4", 10, 300, "predictions")]


def main():
    curves = {}
    for name, layer, size, n, labels in SETUPS:
        z = nnrules.zoo.load(name)
        x = z.train.tensors[0][:n]
        t = time.perf_counter()
        pm = PatchMiner(layer=layer, size=size, k=3, m=50, tau=0.1, top=5, min_support=0.5, q=10).fit(z.model, x)
        mined = time.perf_counter() - t
        # cifar10-cnn's test set is its 12 source photos: score on the crops not used for mining instead
        test = z.test if labels == "data" else z.train.tensors[0][n:]
        classes = sorted(set(pm.patches_["class"]))
        t = time.perf_counter()
        rankings = {"mined": {c: pm.filter_ranking(c) for c in classes},
                    "top-mean": activation_ranking(z.model, layer, test, labels=labels),
                    "ablation": ablation_ranking(z.model, layer, test, labels=labels)}
        df = zeroing_curves(z.model, layer, rankings, test, n_random=5, labels=labels)
        took = time.perf_counter() - t
        df = df[df["class"].isin(classes)]
        table = df.groupby(["method", "fraction"])["accuracy"].mean().unstack("method")
        curves[name] = table
        n_f = int(df["n_filters"].max() / 0.5)
        print(f"\n{name} · {layer} ({n_f} filters) · {len(pm.patches_)} patches, {len(pm.rules_)} rules, mined in "
              f"{mined:.1f} s; curves in {took:.1f} s · mean class {'accuracy' if labels == 'data' else 'prediction kept'}"
              f" over {len(classes)} classes")
        print(f"{'fraction':>8} {'filters':>7} " + " ".join(f"{m:>9}" for m in ["mined", "top-mean", "ablation", "random"])
              + f" {'mined drop / ablation drop':>27}")
        base = table.loc[0.0, "model"]
        for f in table.index[1:]:
            r = table.loc[f]
            share = (base - r["mined"]) / (base - r["ablation"]) if base - r["ablation"] > 1e-9 else float("nan")
            print(f"{f:>8.2f} {max(1, round(f * n_f)):>7} " + " ".join(f"{r[m]:>9.3f}" for m in
                  ["mined", "top-mean", "ablation", "random"]) + f" {share:>26.0%}")
        print(f"{'model':>8} {'0':>7} {base:>9.3f}")
    if "--no-plot" not in sys.argv:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), constrained_layout=True)
        for ax, (name, table) in zip(np.atleast_1d(axes), curves.items()):
            for m, style in [("mined", "o-"), ("top-mean", "s--"), ("ablation", "^:"), ("random", "x-")]:
                ax.plot(100 * table.index[1:], table[m].iloc[1:], style, label=m)
            ax.axhline(table.loc[0.0, "model"], color="grey", lw=0.8)
            ax.set_xscale("log")
            ax.set_xticks([1, 2, 5, 10, 20, 50], ["1", "2", "5", "10", "20", "50"])
            ax.set(title=name, xlabel="filters zeroed (% of the layer)",
                   ylabel="class accuracy" if name != "cifar10-cnn" else "class predictions kept", ylim=(0, 1.02))
        np.atleast_1d(axes)[0].legend(loc="lower left")
        out = Path(__file__).resolve().parents[1] / "docs" / "zeroing-curves.png"
        fig.savefig(out, dpi=110)
        print(f"\nplot: {out}")


if __name__ == "__main__":
    main()
