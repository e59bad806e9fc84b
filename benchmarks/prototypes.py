"""Prototypes of cifar10-cnn rule tails: pixel-space ascent (today's method) against the Fourier-parameterised,
colour-decorrelated, transformation-robust image (nnrules.attribution.feature_vis), at equal steps.

Run: .venv/bin/python benchmarks/prototypes.py [--steps 256]   (writes docs/prototypes-cifar10.png)

The number for each picture: the group's activation (mean over its channels of the channel's largest value
over positions) and the same for the layer's other channels, measured on the final image; "selectivity" is
their ratio. The rule tails come from ExplaiNN mined relu5 → relu4 (max over positions, mean binarisation) on
the zoo's 768 training images (output → relu4 yields no rule there: 768 rows are too few to pay for one).
"""
import argparse
import time
from pathlib import Path

import torch

import nnrules
from nnrules.attribution import viz
from nnrules.attribution.feature_vis import maximize_fourier
from nnrules.attribution.prototypes import maximize

LAYER, HEAD = "relu4", "relu5"


def group_activation(model, layer, img, units):
    seen = {}
    h = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: seen.__setitem__("o", o.detach()))
    try:
        with torch.no_grad():
            model.eval()(img[None])
    finally:
        h.remove()
    per_channel = seen["o"][0].flatten(1).amax(1)
    mask = torch.zeros(len(per_channel), dtype=torch.bool)
    mask[units] = True
    return float(per_channel[mask].mean()), float(per_channel[~mask].mean())


def main(steps: int) -> None:
    z = nnrules.zoo.load("cifar10-cnn")
    model, (x, y) = z.model.eval(), z.train.tensors
    acts = nnrules.record(model, (x, y), [HEAD, LAYER], reduce="max", progress=False)
    bins = nnrules.Binarizer("mean", output="label").fit(acts).transform(acts)
    rules = sorted(nnrules.ExplaiNN().fit(bins[HEAD], bins[LAYER]).rules_, key=lambda r: -r.gain)[:3]
    lo, hi = float(x.min()), float(x.max())
    rows, pictures = [], []
    for r in rules:
        units = list(r.tail)
        t = time.perf_counter()
        pixel = maximize(model, LAYER, units, example=x[:1], steps=steps, value_range=(lo, hi), jitter=1,
                         blur_every=4, blur_sigma=0.5)
        t_pixel = time.perf_counter() - t
        t = time.perf_counter()
        fourier = maximize_fourier(model, LAYER, units, example=x[:1], steps=steps, value_range=(lo, hi))
        t_fourier = time.perf_counter() - t
        for name, img, dt in (("pixel", pixel, t_pixel), ("fourier", fourier, t_fourier)):
            g, o = group_activation(model, LAYER, img, units)
            rows.append((f"{HEAD} {list(r.head)[:3]}… → {LAYER} {units[:6]}{'…' if len(units) > 6 else ''}",
                         name, g, o, g / max(o, 1e-9), dt))
        pictures += [viz.image(pixel, 4), viz.image(fourier, 4)]
    print(f"\n## cifar10-cnn prototypes of three rule tails ({LAYER}), {steps} steps each")
    print(f"{'rule':<56}{'method':>9}{'group':>8}{'others':>8}{'select.':>9}{'sec':>6}")
    for rule, name, g, o, s, dt in rows:
        print(f"{rule:<56}{name:>9}{g:>8.2f}{o:>8.2f}{s:>9.2f}{dt:>6.1f}")
    out = Path(__file__).resolve().parents[1] / "docs" / "prototypes-cifar10.png"
    out.write_bytes(viz.to_png(viz.grid(pictures, cols=2, pad=4)))
    print(f"pictures (rows = rules, left pixel, right Fourier): {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=256)
    main(ap.parse_args().steps)
