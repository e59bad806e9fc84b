"""Overhead of nnrules.record over plain batched inference, same model, data and batch size.

Run: .venv/bin/python benchmarks/record.py
"""

import torch

import nnrules
from _timing import best_of


def main():
    z = nnrules.zoo.load("digits-cnn")
    x = z.train.tensors[0].repeat(14, 1, 1, 1)  # ~20k real digits
    y = z.train.tensors[1].repeat(14)
    bs = 512

    def plain():
        z.model.eval()
        with torch.no_grad():
            for i in range(0, len(x), bs):
                z.model(x[i:i + bs])

    rows = []
    plain()  # warm-up
    for layers in (["relu3"], ["relu1", "relu2", "relu3"]):
        for reduce in ("max", "none"):
            # plain and record measured back to back per row, so machine noise hits both alike
            t_plain = best_of(plain, 5)
            t = best_of(lambda: nnrules.record(z.model, (x, y), layers, reduce=reduce, batch_size=bs,
                                               progress=False), 5)
            rows.append((", ".join(layers), reduce, t, t_plain))
    print(f"digits-cnn, {len(x)} samples, batch {bs}, {torch.get_num_threads()} threads (best of 5)")
    print(f"{'layers':<22}{'reduce':<8}{'record s':>10}{'plain s':>10}{'ratio':>8}")
    for layers, reduce, t, t_plain in rows:
        print(f"{layers:<22}{reduce:<8}{t:>10.3f}{t_plain:>10.3f}{t / t_plain:>8.2f}")


if __name__ == "__main__":
    main()
