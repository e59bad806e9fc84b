"""NeuroChains: time per extraction on CPU and the sub-network sizes (seed 004 Sec. 4.1 settings: 2 classes ×
10 confidently predicted samples, λ = 0.005, λ_g = 1, T = 0.2, τ = 0.1, 300 + 50 Adam steps).

Trained zoo models give meaningful fidelities; torchvision VGG-11 / ResNet-18 with weights=None (no pretrained
weights can be downloaded here) show the cost on larger architectures only.

Run: .venv/bin/python benchmarks/neurochains.py
"""
import time

import numpy as np
import torch
import torchvision

import nnrules
from nnrules.miners.neurochains import NeuroChains


def local_samples(model, x, y, classes=(3, 8), n=10):
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    sure = (p.max(1).values >= 0.95) & (p.argmax(1) == y)
    return torch.cat([x[torch.nonzero(sure & (y == c)).flatten()[:n]] for c in classes])


def main():
    cases = []
    for name in ("digits-cnn", "mnist-cnn"):
        z = nnrules.zoo.load(name)
        cases.append((name, z.model, local_samples(z.model, *z.test.tensors), z.test.tensors[0]))
    torch.manual_seed(0)
    for name, ctor in (("vgg11 (random)", torchvision.models.vgg11), ("resnet18 (random)", torchvision.models.resnet18)):
        cases.append((name, ctor(weights=None, num_classes=10).eval(), torch.rand(20, 3, 32, 32), None))
    print(f"{'model':<18} {'kept':>6} {'of':>6} {'kept %':>7} {'layers off':>10} {'agree':>6} {'prob drop':>9} "
          f"{'Q':>6} {'faith r':>7} {'stable':>6} {'fit s':>6}")
    for name, model, x, pool in cases:
        t = time.perf_counter()
        nc = NeuroChains().fit(model, x)
        took = time.perf_counter() - t
        kept, total = nc.size_
        fid = nc.fidelity(model)
        fa = nc.faithfulness(model) if pool is not None else None
        r = np.corrcoef(fa["score"], fa["degradation"])[0, 1] if fa is not None and len(fa) > 1 else float("nan")
        stab = nc.stability(model, pool, k=5) if pool is not None else float("nan")
        off = sum(not g for g in nc.gates_.values())
        print(f"{name:<18} {kept:>6} {total:>6} {100 * kept / total:>6.1f}% {off:>4}/{len(nc.gates_):<5} "
              f"{fid['agreement']:>6.2f} {fid['prob_drop']:>9.3f} {fid['quotient']:>6.2f} {r:>7.2f} {stab:>6.2f} "
              f"{took:>6.1f}")


if __name__ == "__main__":
    main()
