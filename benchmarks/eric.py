"""ERIC on digits-cnn: accuracy, fidelity and program size per tree depth and logical entry point
(seed 001 Table 1 / Fig. 4–5), with the extraction time. Train = the 1,437 training digits, test = 360.

Run: .venv/bin/python benchmarks/eric.py
"""
import time

import numpy as np

import nnrules


def main():
    z = nnrules.zoo.load("digits-cnn")
    layers = ["relu3", "pool", "relu2"]
    tr = nnrules.record(z.model, z.train, layers, reduce="l1", class_names=z.class_names, progress=False)
    te = nnrules.record(z.model, z.test, layers, reduce="l1", class_names=z.class_names, progress=False)
    print(f"model accuracy: train {np.mean(tr.predictions == tr.labels):.3f}, test {np.mean(te.predictions == te.labels):.3f}; "
          f"majority-class fidelity (chance): {np.bincount(te.predictions).max() / te.n_samples:.3f}")
    print(f"{'entry point (chain)':<22} {'d':>2} {'acc tr':>7} {'acc te':>7} {'fid tr':>7} {'fid te':>7} "
          f"{'rules':>6} {'size':>6} {'vars':>5} {'fit s':>6}")
    for chain, alpha in ((["relu3"], 0.01), (["pool"], 0.01), (["relu2"], 0.01), (["relu3", "pool"], 0.1)):
        for d in range(1, 6):
            t = time.perf_counter()
            e = nnrules.ERIC(depth=d, alpha=alpha).fit(tr, chain)
            fit = time.perf_counter() - t
            print(f"{' → '.join(chain) + f' (α={alpha})':<22} {d:>2} {e.accuracy(tr):>7.3f} {e.accuracy(te):>7.3f} "
                  f"{e.fidelity(tr):>7.3f} {e.fidelity(te):>7.3f} {len(e.rules_):>6} {e.size_:>6} {e.variables_:>5} "
                  f"{fit:>6.2f}")


if __name__ == "__main__":
    main()
