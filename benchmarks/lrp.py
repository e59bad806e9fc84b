"""LRP relevance conservation per architecture family: ΣR / f_c (median over inputs, predicted class) for the
Zennit composites and the book's own, and seconds per call.

Run: .venv/bin/python benchmarks/lrp.py

Zoo models on their shipped images; torchvision VGG-11-BN and ResNet-18 (weights=None: no download here) on
uniform noise images of 64×64. A value near 1 means the heatmap carries the score; "LRPError" means the
composite refuses the architecture (the book engine has no rule for residual additions).
"""
import time
import warnings

import torch
from torchvision import models

import nnrules
from nnrules.attribution import attribute

COMPOSITES = ["epsilon_gamma_box", "epsilon_plus_flat", "epsilon_alpha2_beta1_flat", "book_epsilon_gamma_box",
              "book_epsilon_plus_box", "book_zero"]


def main() -> None:
    warnings.filterwarnings("ignore")
    cases = {}
    for name in ("digits-cnn", "mnist-cnn", "cifar10-cnn"):
        z = nnrules.zoo.load(name)
        x = z.test.tensors[0][:8] if z.test is not None and len(z.test) else z.train.tensors[0][:8]
        cases[name] = (z.model.eval(), x)
    g = torch.Generator().manual_seed(0)
    for name, ctor in (("vgg11_bn", models.vgg11_bn), ("resnet18", models.resnet18)):
        cases[name] = (ctor(weights=None).eval(), torch.rand(2, 3, 64, 64, generator=g))
    print("## ΣR / f_c (median) and seconds per call")
    print(f"{'model':<13}" + "".join(f"{c:>28}" for c in COMPOSITES))
    for name, (m, x) in cases.items():
        with torch.no_grad():
            out = m(x)
        cls = out.argmax(1)
        f = out.gather(1, cls[:, None])[:, 0]
        row = []
        for c in COMPOSITES:
            try:
                t = time.perf_counter()
                r = attribute(m, x, cls, method="lrp", composite=c)
                row.append(f"{(r.flatten(1).sum(1) / f).median().item():.3f} ({time.perf_counter() - t:.1f} s)")
            except Exception as err:  # noqa: BLE001 — the table reports refusals
                row.append(type(err).__name__)
        print(f"{name:<13}" + "".join(f"{v:>28}" for v in row))


if __name__ == "__main__":
    main()
