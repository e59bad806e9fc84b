"""ERIC (seed 001) at the paper's setting and at a dense layer, on digits-cnn and mnist-cnn.

1. **Table 1's protocol**: every triple of 5 classes (the 10 combinations of classes 0–4), the logical entry
   point at the last conv layer after pooling (``pool``), depth d = 5, α = 0.01. The paper trains a VGG16
   per triple; here the zoo's 10-class model is read as a 3-class one (``Activations.subset(classes=…)``:
   the argmax of those three logits), on the train and test samples of those classes. Columns as the
   paper's: model M and program M* accuracy on train and test, the gap M − M*, variables, rules, size —
   for one-vs-rest output trees (the paper) and one multi-class output tree (``output="multiclass"``).
2. **All 10 classes** at the entry points ``pool`` (kernels) and ``relu3`` (the dense layer), depth 1→5.

Run: .venv/bin/python benchmarks/eric.py [digits-cnn|mnist-cnn ...]
"""
import sys
import time
from itertools import combinations

import numpy as np

import nnrules


def table1(name, tr, te):
    print(f"\n{name}: seed 001 Table 1 protocol (entry pool, d=5, α=0.01), accuracies in %")
    print(f"{'classes':<8} {'M tr':>5} {'M te':>5} | {'one-vs-rest: M* tr':>18} {'te':>5} {'gap te':>6} {'vars':>4} "
          f"{'rules':>5} {'size':>4} | {'multiclass: M* tr':>17} {'te':>5} {'gap te':>6} {'rules':>5} {'size':>4}")
    gaps = {"one-vs-rest": [], "multiclass": []}
    for cls in combinations(range(5), 3):
        a = tr.subset(np.isin(tr.labels, cls), classes=cls)
        b = te.subset(np.isin(te.labels, cls), classes=cls)
        m_tr, m_te = 100 * a.accuracy(), 100 * b.accuracy()
        cells = []
        for output in ("one-vs-rest", "multiclass"):
            e = nnrules.ERIC(depth=5, alpha=0.01, output=output).fit(a, ["pool"])
            p_tr, p_te = 100 * e.accuracy(a), 100 * e.accuracy(b)
            gaps[output].append(m_te - p_te)
            cells.append((p_tr, p_te, m_te - p_te, e.variables_, len(e.program_), e.size_))
        (o_tr, o_te, o_gap, o_vars, o_rules, o_size), (c_tr, c_te, c_gap, _, c_rules, c_size) = cells
        print(f"{','.join(map(str, cls)):<8} {m_tr:>5.1f} {m_te:>5.1f} | {o_tr:>18.1f} {o_te:>5.1f} {o_gap:>6.1f} "
              f"{o_vars:>4} {o_rules:>5} {o_size:>4} | {c_tr:>17.1f} {c_te:>5.1f} {c_gap:>6.1f} {c_rules:>5} {c_size:>4}")
    print(f"mean test gap M − M*: one-vs-rest {np.mean(gaps['one-vs-rest']):.1f} points, multiclass "
          f"{np.mean(gaps['multiclass']):.1f} points (paper, VGG16 on places365 roads: 9.5)")


def all_classes(name, tr, te):
    print(f"\n{name}: all 10 classes; chance fidelity (majority class) {np.bincount(te.predictions).max() / te.n_samples:.3f}")
    print(f"{'entry':<6} {'output':<12} {'d':>2} {'acc tr':>7} {'acc te':>7} {'fid tr':>7} {'fid te':>7} {'gap te':>7} "
          f"{'rules':>6} {'size':>6} {'fit s':>6}  {'program decides (te): one / none / several':>44}")
    for entry in ("pool", "relu3"):
        for output in ("one-vs-rest", "multiclass"):
            for d in (1, 3, 5):
                t = time.perf_counter()
                e = nnrules.ERIC(depth=d, alpha=0.01, output=output).fit(tr, [entry])
                fit = time.perf_counter() - t
                print(f"{entry:<6} {output:<12} {d:>2} {e.accuracy(tr):>7.3f} {e.accuracy(te):>7.3f} "
                      f"{e.fidelity(tr):>7.3f} {e.fidelity(te):>7.3f} {te.accuracy() - e.accuracy(te):>7.3f} "
                      f"{len(e.program_):>6} {e.size_:>6} {fit:>6.2f}  "
                      + "{one:>32.2f} / {none:.2f} / {several:.2f}".format(**e.decisions(te)))


def main():
    for name in sys.argv[1:] or ["digits-cnn", "mnist-cnn"]:
        z = nnrules.zoo.load(name)
        layers = ["relu3", "pool"]
        tr = nnrules.record(z.model, z.train, layers, reduce="l1", class_names=z.class_names, progress=False)
        te = nnrules.record(z.model, z.test, layers, reduce="l1", class_names=z.class_names, progress=False)
        print(f"\n== {name}: model accuracy train {tr.accuracy():.3f}, test {te.accuracy():.3f}")
        table1(name, tr, te)
        all_classes(name, tr, te)


if __name__ == "__main__":
    main()
