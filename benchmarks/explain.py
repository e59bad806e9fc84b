"""Time per image of each attribution method, nnrules.explain vs calling Captum directly, in one run.

Models: digits-cnn (8×8 digits, batch 64) and torchvision VGG-11 (weights=None, 224×224, batch 2).
Settings are printed with the table. LRP is nnrules' own (composite "epsilon", ε = 1e-9, winner-take-all
max-pool, to match Captum's default rules); Captum's LRP cannot take nn.Flatten, so digits-cnn has no
Captum LRP column.

Run: .venv/bin/python benchmarks/attribution.py [--quick]
"""
import sys

import captum.attr as ca
import torch
import torchvision

import nnrules
from _timing import best_of
from nnrules import attribution


def captum_calls(model, x, target, steps, samples, layer):
    xr = lambda: x.clone().requires_grad_(True)
    calls = {
        "saliency": lambda: ca.Saliency(model).attribute(xr(), target=target),
        "gradient_x_input": lambda: ca.InputXGradient(model).attribute(xr(), target=target),
        "integrated_gradients": lambda: ca.IntegratedGradients(model).attribute(
            xr(), target=target, n_steps=steps, internal_batch_size=64),
        "smoothgrad": lambda: ca.NoiseTunnel(ca.Saliency(model)).attribute(
            xr(), nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=64, target=target),
        "gradcam": lambda: ca.LayerAttribution.interpolate(
            ca.LayerGradCam(model, layer).attribute(xr(), target=target), tuple(x.shape[2:]), "bilinear"),
    }
    return calls


def ours(model, x, target, method, steps, samples):
    opts = dict(n_steps=steps, nt_samples=samples, internal_batch_size=64)
    if method == "lrp":
        opts.update(composite="epsilon", epsilon=1e-9, pool="winner")
    return lambda: attribution.attribute(model, x, target, method=method, **opts)


def main(quick: bool):
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    z = nnrules.zoo.load("digits-cnn")
    vgg = torchvision.models.vgg11(weights=None).eval()
    setups = [("digits-cnn", z.model, z.test.tensors[0][:64], z.model.conv2, 50, 25, 5),
              ("vgg11 224px", vgg, torch.rand(2 if not quick else 1, 3, 224, 224), vgg.features[18],
               16 if not quick else 4, 8 if not quick else 2, 2 if not quick else 1)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of N runs, ms per image")
    print(f"{'model':<12} {'method':<22} {'nnrules':>10} {'Captum':>10} {'ratio':>7}  settings")
    for name, model, x, layer, steps, samples, repeats in setups:
        target = 1
        captum = captum_calls(model, x, target, steps, samples, layer)
        if name.startswith("vgg"):
            captum["lrp"] = lambda: ca.LRP(model).attribute(x.clone().requires_grad_(True), target=target)
        for method in attribution.METHODS:
            t_ours = best_of(ours(model, x, target, method, steps, samples), repeats, warmup=True) / len(x) * 1e3
            if method in captum:
                t_cap = best_of(captum[method], repeats, warmup=True) / len(x) * 1e3
                cap, ratio = f"{t_cap:10.2f}", f"{t_ours / t_cap:7.2f}"
            else:
                cap, ratio = f"{'n/a':>10}", f"{'':>7}"
            settings = {"integrated_gradients": f"n_steps={steps}", "smoothgrad": f"nt_samples={samples}",
                        "lrp": "epsilon, winner pool"}.get(method, "")
            print(f"{name:<12} {method:<22} {t_ours:10.2f} {cap} {ratio}  batch {len(x)} {settings}", flush=True)


if __name__ == "__main__":
    main("--quick" in sys.argv)
