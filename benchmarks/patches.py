"""Explanation-guided mining (seed 002) on the zoo's CNNs, in the shape of the paper's Table 1: class accuracy
when the filters found for each class are zeroed ("Ours-N": N−1 = top filters per transaction), against as many
random filters (mean of 10 draws) and the unperturbed model, with the mining time.

Run: .venv/bin/python benchmarks/patches.py
"""
import time

import nnrules
from nnrules.evaluation import zero_filters
from nnrules.miners.patches import PatchMiner

SETUPS = [("digits-cnn", "relu2", 4, 400), ("mnist-cnn", "relu2", 8, 400)]  # model, layer, ω, images


def main():
    print(f"{'model':<11} {'layer':<6} {'N-1':>4} {'patches':>8} {'rules':>6} {'shared':>7} {'filters/class':>14} "
          f"{'acc base':>9} {'acc ours':>9} {'acc random':>11} {'mine s':>7}")
    for name, layer, size, n in SETUPS:
        z = nnrules.zoo.load(name)
        x = z.train.tensors[0][:n]
        for top in (5, 10):  # with 32–64 filters, N−1 = 25 makes nearly every subset frequent
            t = time.perf_counter()
            pm = PatchMiner(layer=layer, size=size, k=3, m=50, tau=0.1, top=top, min_support=0.5, q=10).fit(z.model, x)
            took = time.perf_counter() - t
            iv = zero_filters(z.model, layer, {c: pm.filters_for(c) for c in range(10)}, z.test, n_random=10)
            print(f"{name:<11} {layer:<6} {top:>4} {len(pm.patches_):>8} {len(pm.rules_):>6} {len(pm.shared_):>7} "
                  f"{iv['n_filters'].mean():>14.1f} {iv['acc_before'].mean():>9.3f} {iv['acc_after'].mean():>9.3f} "
                  f"{iv['acc_random'].mean():>11.3f} {took:>7.1f}")


if __name__ == "__main__":
    main()
