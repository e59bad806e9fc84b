"""NeuroChains (seed 004) on the zoo's trained CNNs: the paper's fixed threshold vs the fidelity-target
control, per class pair, and a λ × steps sweep that shows what sets the chain's size.

Local samples: for each class of a pair, the 10 inputs the model predicts as that class most confidently
(digits/mnist: the test set; cifar10-cnn: its 768 zoo crops of 12 photos, which carry no CIFAR labels, so
the pairs are predicted classes). Settings as the paper's Sec. 4.1 (λ = 0.005, λ_g = 1, T = 0.2, τ = 0.1, 300 + 50 Adam steps);
the control keeps the fewest filters with agreement ≥ 1.00 and a mean probability drop ≤ 0.2.
"conv %" counts conv filters only, as the paper does.

Run: .venv/bin/python benchmarks/neurochains.py [--no-sweep]
"""
import sys
import time

import torch

import nnrules
from nnrules.miners.neurochains import NeuroChains


def local_samples(model, x, classes, n=10):
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    picked = []
    for c in classes:
        idx = torch.nonzero(p.argmax(1) == c).flatten()
        picked.append(x[idx[torch.argsort(-p[idx, c])[:n]]])
    return torch.cat(picked)


def row(label, nc, model, took):
    kept, total = nc.size_
    ck, ct = nc.conv_size_
    fid = nc.fidelity(model)
    print(f"{label:<34} {ck:>5}/{ct:<5} {100 * ck / ct:>6.1f}% {kept:>5}/{total:<5} {fid['agreement']:>6.2f} "
          f"{fid['prob_drop']:>9.3f} {nc.threshold_:>7.3f} {took:>6.1f}")


def main():
    setups = [("cifar10-cnn", [(3, 5), (1, 9), (2, 6), (0, 8)]), ("mnist-cnn", [(3, 8), (4, 9)]),
              ("digits-cnn", [(3, 8)])]
    print(f"{'model · classes · rule':<34} {'conv kept':>11} {'conv %':>7} {'all kept':>11} {'agree':>6} "
          f"{'prob drop':>9} {'thresh':>7} {'fit s':>6}")
    for name, pairs in setups:
        z = nnrules.zoo.load(name)
        for pair in pairs:
            x = local_samples(z.model, (z.train if name == "cifar10-cnn" else z.test).tensors[0], pair)
            names = "/".join(z.class_names[c] for c in pair)
            for label, kw in [("τ = 0.1 (paper)", {}), ("agreement ≥ 1.00, drop ≤ 0.2", {"min_agreement": 1.0})]:
                t = time.perf_counter()
                nc = NeuroChains(**kw).fit(z.model, x)
                row(f"{name} · {names} · {label}", nc, z.model, time.perf_counter() - t)
    if "--no-sweep" in sys.argv:
        return
    print("\nWhat sets the size (paper's fixed τ = 0.1): conv filters kept, cifar10-cnn, cat/dog")
    z = nnrules.zoo.load("cifar10-cnn")
    x = local_samples(z.model, z.train.tensors[0], (3, 5))
    steps_grid = (150, 300, 600)
    print(f"{'λ':>8} " + " ".join(f"{f'steps {s}':>10}" for s in steps_grid) + f" {'control (steps 300)':>20}")
    for lam in (1e-4, 1e-3, 5e-3, 1e-2):
        cells = [NeuroChains(lam=lam, steps=s).fit(z.model, x).conv_size_[0] for s in steps_grid]
        ctl = NeuroChains(lam=lam, min_agreement=1.0).fit(z.model, x).conv_size_[0]
        print(f"{lam:>8g} " + " ".join(f"{c:>10}" for c in cells) + f" {ctl:>20}")


if __name__ == "__main__":
    main()
