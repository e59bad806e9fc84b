"""Prototypes that read as pictures on natural images: a decorrelated Fourier parameterisation and
transformation robustness (book seed 003, the feature-visualisation chapter; the recipe of Lucid/Lucent).

Pixel-space ascent (:func:`~nnrules.attribution.prototypes.maximize`) on a CIFAR network makes high-frequency
"rainbow noise": every pixel is a free parameter and the gradient is largest at the highest frequencies. Here
the image is the inverse FFT of a spectrum whose coefficients are scaled by 1/frequency (so all frequencies
start with equal energy and low ones are as easy to change as high ones), its colours are a fixed
decorrelating transform of three channels (ImageNet's colour covariance square root, as Lucid ships it), and
a sigmoid keeps it in the value range. Each step sees a randomly jittered, scaled and rotated copy, so that a
pattern only survives if it drives the units wherever it lands.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..recording.hooks import model_device
from .prototypes import ascent_objective

__all__ = ["maximize_fourier"]

#: Lucid's colour decorrelation (square root of ImageNet's RGB covariance), columns normalised.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64)
_COLOR_SQRT = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def maximize_fourier(model: nn.Module, layer: str, units: Sequence[int] | int, *,
                     shape: Sequence[int] | None = None, example: torch.Tensor | None = None, steps: int = 256,
                     lr: float = 0.05, value_range: tuple[float, float] = (0.0, 1.0), jitter: int = 4,
                     scale: tuple[float, float] = (0.9, 1.1), degrees: float = 8.0, decorrelate: bool = True,
                     seed: int = 0) -> torch.Tensor:
    """A prototype image ``(C, H, W)`` maximising the summed activation of ``units`` of ``layer`` (channels of
    a conv layer, summed over positions), from a Fourier-parameterised, colour-decorrelated image.

    Each of ``steps`` Adam steps (``lr``) scores a random transform of the image: a shift by up to ``jitter``
    pixels, a zoom in ``scale``, a rotation by up to ``degrees``. ``decorrelate`` applies the colour transform
    (3-channel inputs only). Deterministic for a given ``seed``; runs on the model's device and dtype.
    """
    units = [int(units)] if isinstance(units, (int, np.integer)) else [int(u) for u in units]
    if shape is None:
        if example is None:
            raise ValueError("give the input shape, e.g. shape=(3, 32, 32), or an example input")
        shape = tuple(example.shape[-3:] if example.dim() == 4 else example.shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {tuple(shape)}")
    if not (isinstance(steps, int) and steps >= 1) or not lr > 0:
        raise ValueError(f"steps must be ≥ 1 and lr > 0 (got steps={steps}, lr={lr})")
    lo, hi = (float(v) for v in value_range)
    if not lo < hi:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    c, h, w = (int(v) for v in shape)
    device, dtype = model_device(model)
    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(seed)  # draws on the CPU: the same picture on every device
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freq_scale = 1.0 / torch.clamp(torch.sqrt(fx ** 2 + fy ** 2), min=1.0 / max(h, w))
    freq_scale = (freq_scale * math.sqrt(h * w)).to(device=device, dtype=dtype)
    spectrum = (0.01 * torch.randn((2, c, h, w // 2 + 1), generator=gen)).to(device=device, dtype=dtype)
    spectrum.requires_grad_(True)
    color = torch.as_tensor(_COLOR_SQRT, device=device, dtype=dtype)

    def image() -> torch.Tensor:
        img = torch.fft.irfft2(torch.complex(spectrum[0], spectrum[1]) * freq_scale, s=(h, w))  # 1/(hw) · √(hw), as Lucid
        if decorrelate and c == 3:
            img = torch.einsum("ij,jhw->ihw", color, img)
        return lo + (hi - lo) * torch.sigmoid(img)

    def transformed(img: torch.Tensor) -> torch.Tensor:
        r = torch.rand(4, generator=gen).tolist()
        zoom = scale[0] + (scale[1] - scale[0]) * r[0]
        angle = math.radians(degrees * (2 * r[1] - 1))
        shift = [(2 * r[2] - 1) * jitter * 2 / w, (2 * r[3] - 1) * jitter * 2 / h]
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[cos, -sin, shift[0]], [sin, cos, shift[1]]], device=device, dtype=dtype)[None]
        grid = F.affine_grid(theta, [1, c, h, w], align_corners=False)
        return F.grid_sample(img[None], grid, padding_mode="reflection", align_corners=False)

    opt = torch.optim.Adam([spectrum], lr=lr)
    with ascent_objective(model, layer, units) as f:
        for _ in range(steps):
            opt.zero_grad()
            loss = -f(transformed(image())).sum()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return image().detach()
