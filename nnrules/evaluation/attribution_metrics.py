"""Is an explanation faithful? Pixel flipping and the model-randomisation sanity check (book seed 003)."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..recording.hooks import model_device, named_layers, on_model, preserved_mode

__all__ = ["pixel_flipping", "FlipCurve", "model_randomization"]


@dataclass
class FlipCurve:
    """Pixel-flipping / region-perturbation curve: most relevant regions perturbed first."""

    fractions: np.ndarray  # (S + 1,) share of regions perturbed at each point
    scores: np.ndarray  # (B, S + 1) target score after each step (first column: unperturbed)

    @property
    def aopc(self) -> np.ndarray:
        """Area over the perturbation curve per input ``(B,)``: mean over steps of f(x) − f(x_k).
        Larger means a steeper drop, i.e. a better ordering."""
        return (self.scores[:, :1] - self.scores).mean(axis=1)

    @property
    def mean(self) -> np.ndarray:
        return self.scores.mean(axis=0)


def pixel_flipping(model: nn.Module, inputs: torch.Tensor, attributions: torch.Tensor | str, target,
                   *, steps: int = 16, patch: int = 1, fill: str | float = "uniform",
                   value_range: tuple[float, float] | None = None, seed: int = 0,
                   batch_size: int = 256) -> FlipCurve:
    """Perturb the ``patch``×``patch`` regions of ``inputs`` ``(B, C, H, W)`` in order of decreasing summed
    relevance (``attributions`` shaped like ``inputs``; or ``"random"`` for a random order) and record the
    target class score after each of ``steps`` equal shares (book Ch. 1 "perturbation analysis", Ch. 22).

    ``fill``: ``"uniform"`` noise in ``value_range`` (default: the batch's min/max; the untargeted
    perturbation the book recommends), ``"mean"`` (per-channel mean of the batch), or a constant.
    All perturbed copies of a step run as one batch.
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        raise ValueError(f"inputs must be images (B, C, H, W), got shape {tuple(getattr(inputs, 'shape', ()))}")
    inputs = inputs.detach().cpu()  # perturbations are built on the CPU; the model runs on its own device
    for name, v in (("steps", steps), ("patch", patch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    b, c, h, w = inputs.shape
    if h % patch or w % patch:
        raise ValueError(f"patch={patch} must divide the image size {h}×{w}")
    gen = torch.Generator().manual_seed(seed)
    gh, gw = h // patch, w // patch
    n_regions = gh * gw
    if isinstance(attributions, str):
        if attributions != "random":
            raise ValueError("attributions must be a tensor shaped like inputs, or 'random'")
        order = torch.stack([torch.randperm(n_regions, generator=gen) for _ in range(b)])
    else:
        if attributions.shape != inputs.shape:
            raise ValueError(f"attributions {tuple(attributions.shape)} must have the inputs' shape "
                             f"{tuple(inputs.shape)}")
        region = attributions.detach().cpu().sum(1).reshape(b, gh, patch, gw, patch).sum((2, 4)).reshape(b, -1)
        order = torch.argsort(region, dim=1, descending=True, stable=True)
    lo, hi = value_range or (float(inputs.min()), float(inputs.max()))
    if fill == "uniform":
        filler = lo + (hi - lo) * torch.rand(inputs.shape, generator=gen)
    elif fill == "mean":
        filler = inputs.mean(dim=(0, 2, 3), keepdim=True).expand_as(inputs)
    elif isinstance(fill, (int, float)):
        filler = torch.full_like(inputs, float(fill))
    else:
        raise ValueError(f"fill must be 'uniform', 'mean' or a number, got {fill!r}")
    counts = np.unique(np.linspace(0, n_regions, steps + 1).round().astype(int))
    cls = torch.as_tensor(target, dtype=torch.long).reshape(-1).expand(b) if np.ndim(target) == 0 else \
        torch.as_tensor(target, dtype=torch.long)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_regions).expand(b, -1))  # rank of each region per input
    rank_px = rank.reshape(b, gh, 1, gw, 1).expand(b, gh, patch, gw, patch).reshape(b, 1, h, w)
    batch = torch.cat([torch.where(rank_px < k, filler, inputs) for k in counts])
    scores = []
    with torch.no_grad(), preserved_mode(model):
        for chunk in batch.split(batch_size):
            scores.append(model(on_model(model, chunk)).float().cpu())
    out = torch.cat(scores).reshape(len(counts), b, -1)
    curve = out.gather(2, cls.view(1, b, 1).expand(len(counts), b, 1))[..., 0].T
    return FlipCurve(counts / n_regions, curve.numpy())


def model_randomization(model: nn.Module, inputs: torch.Tensor, target, method: str = "gradient_x_input",
                        seed: int = 0, absolute: bool = False, **options) -> pd.DataFrame:
    """Model-randomisation sanity check (Adebayo et al., cited in book Ch. 8/14): re-initialise the layers
    with parameters from the top down (cascading) and compare each explanation with the original one by the
    Spearman rank correlation of the attributions (of their absolute values with ``absolute=True``) per
    input. A method that passes drops towards 0. (Gradient×input ranks by |·| stay high because the input
    factor alone carries the digit's shape — the effect the check was made to expose.)

    Returns one row per randomised-down-to layer: ``layer``, ``spearman`` (mean over inputs). The model
    itself is not touched (a copy is randomised).
    """
    from ..attribution.methods import attribute

    def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = (a.abs(), b.abs()) if absolute else (a, b)
        ra = a.flatten(1).argsort(1).argsort(1).double()
        rb = b.flatten(1).argsort(1).argsort(1).double()
        ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
        return float(((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)).mean())

    original = attribute(model, inputs, target, method=method, **options)
    clone = copy.deepcopy(model)
    with_params = [(n, m) for n, m in named_layers(clone).items()
                   if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    rows = []
    gen = torch.Generator().manual_seed(seed)
    device = model_device(model)[0]
    for name, module in reversed(with_params):
        # reset_parameters draws from the global RNG (the CUDA one for a CUDA model): keep the caller's
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
            getattr(module, "reset_parameters")()  # with_params holds only modules that have it
        rows.append({"layer": name, "spearman": spearman(original, attribute(clone, inputs, target,
                                                                             method=method, **options))})
    return pd.DataFrame(rows)
