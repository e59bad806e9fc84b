"""What a group of neurons responds to: prototype images by activation maximisation, and real exemplars.

``maximize`` follows the book seed 003 Ch. 4: gradient ascent on the input (eq. 4.2) in operator form
(eq. 4.5: a regulariser step r(x) each iteration — clipping to the input range, optional periodic Gaussian
blur), with the priors as options: random jitter before every step, L2 decay, total variation, blurring the
gradient image. The objective is the *summed* activation of a unit group (seed 000 Fig. 3: the prototype of
a rule's tail), or a class's log-softmax (Table 4.1 (c), the well-behaved choice).
``exemplars`` returns the m samples that activate a group most (seed 001 Sec. 3.3, the book's top-9).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .objectives import group_objective
from ..recording.hooks import OUTPUT, forward_hooks, named_layers, on_model, preserved_mode, resolve_layers

__all__ = ["maximize", "exemplars", "Exemplars", "channels_of", "gaussian_blur"]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``(B, C, H, W)`` per channel with a Gaussian of std ``sigma`` pixels (reflect padding);
    ``sigma = 0`` leaves ``x`` as it is."""
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a number of pixels >= 0, got {sigma!r}")
    if not (isinstance(x, torch.Tensor) and x.dim() == 4):
        raise ValueError(f"x must be a (B, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if sigma == 0:
        return x
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    k, radius = k[radius - pad: radius + pad + 1], pad
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@contextlib.contextmanager
def ascent_objective(model: nn.Module, layer: str, units: list[int]) -> Iterator:
    """The group objective for gradient ascent on the input (:func:`maximize` and
    :func:`~nnrules.attribution.feature_vis.maximize_fourier`): eval mode, no gradient buffers on the model's
    parameters (their flags restored, also on error), and for a ReLU layer its pre-activation (same maximiser
    where the units are on, so a group that is off at the start still gets a gradient)."""
    params = [p for p in model.parameters() if p.requires_grad]
    pre = layer != OUTPUT and isinstance(named_layers(model).get(layer), nn.ReLU)
    with preserved_mode(model), group_objective(model, layer, units, pre=pre, stop=True) as f:
        for p in params:
            p.requires_grad_(False)
        try:
            yield f
        finally:
            for p in params:
                p.requires_grad_(True)


def maximize(model: nn.Module, layer: str, units: Sequence[int] | int, *, shape: Sequence[int] | None = None,
             example: torch.Tensor | None = None, objective: str = "activation", steps: int = 200,
             lr: float = 0.05, value_range: tuple[float, float] = (0.0, 1.0), jitter: int = 0, l2: float = 0.0,
             tv: float = 0.0, blur_every: int = 0, blur_sigma: float = 0.5, grad_blur_sigma: float = 0.0,
             seed: int = 0, progress: bool = False,
             callback: Callable[[int], bool | None] | None = None) -> torch.Tensor:
    """A prototype image ``(C, H, W)`` maximising the summed activation of ``units`` of ``layer``.

    ``objective``: ``"activation"`` (Table 4.1 (a), summed over the group and, for conv units, over
    positions) or ``"logsoftmax"`` (Table 4.1 (c); ``layer`` must be ``"output"`` and ``units`` the
    class). The image is optimised with Adam (step ``lr``) for ``steps`` steps from uniform noise around
    the middle of ``value_range`` and clipped to it after each step. Priors: ``jitter`` (random shift by up
    to that many pixels before each step), ``l2`` (decay weight), ``tv`` (total-variation weight),
    ``blur_every``/``blur_sigma`` (Gaussian blur of the image every k steps), ``grad_blur_sigma`` (blur of
    the gradient image). Deterministic for a given ``seed``. ``shape`` or ``example`` gives the input shape.
    For a ReLU layer the ascent runs on its pre-activation (same maximiser where the units are on), so a
    group that is off at the start still gets a gradient. ``callback(step)`` runs after each step: a true
    result ends the ascent there (a time budget), an exception stops it (Cancel).
    """
    units = [int(units)] if isinstance(units, (int, np.integer)) else [int(u) for u in units]
    if objective not in ("activation", "logsoftmax"):
        raise ValueError(f"objective must be 'activation' or 'logsoftmax', got {objective!r}")
    if objective == "logsoftmax" and (layer != OUTPUT or len(units) != 1):
        raise ValueError("objective='logsoftmax' explains one class: use layer='output' and units=[class]")
    if steps < 1 or lr <= 0:
        raise ValueError(f"steps must be ≥ 1 and lr > 0 (got steps={steps}, lr={lr})")
    try:
        lo_, hi_ = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be (low, high) numbers, got {value_range!r}") from None
    if not lo_ < hi_:
        raise ValueError(f"value_range must be (low, high) with low < high (the input range), got {value_range!r}")
    if shape is None:
        if example is None:
            raise ValueError("give the input shape, e.g. shape=(1, 28, 28), or an example input")
        shape = tuple(example.shape[-3:] if example.dim() == 4 else example.shape)
    lo, hi = value_range
    gen = torch.Generator().manual_seed(seed)
    x = (lo + hi) / 2 + (hi - lo) * 0.1 * (torch.rand((1, *shape), generator=gen) - 0.5)  # same start on any device
    x = on_model(model, x).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr * (hi - lo))
    from tqdm.auto import tqdm

    with ascent_objective(model, layer, units) as f:
        for step in tqdm(range(steps), disable=not progress, desc=f"prototype {layer}{units}"):
            opt.zero_grad()
            xin = x
            if jitter:
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
                xin = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
            if objective == "logsoftmax":
                score = torch.log_softmax(model(xin), dim=1)[:, units[0]].sum()
            else:
                score = f(xin).sum()
            loss = -score
            if l2:
                loss = loss + l2 * ((x - (lo + hi) / 2) ** 2).sum()
            if tv:
                loss = loss + tv * _total_variation(x) * x[0].numel()
            loss.backward()
            if grad_blur_sigma > 0 and x.grad is not None:
                x.grad.copy_(gaussian_blur(x.grad, grad_blur_sigma))
            opt.step()
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0 and step + 1 < steps:
                    x.copy_(gaussian_blur(x, blur_sigma))
                x.clamp_(lo, hi)
            if callback is not None and callback(step):
                break
    return x.detach()[0]


@dataclass
class Exemplars:
    """The ``m`` samples that activate a group most, best first."""

    indices: np.ndarray  # (m,) sample indices into the recorded data
    scores: np.ndarray  # (m,) summed group activation
    images: torch.Tensor | None = None  # (m, C, H, W) inputs, cropped if asked
    boxes: np.ndarray | None = None  # (m, 4) top, left, height, width of each crop in input pixels


def channels_of(unit_names: Sequence[str], units: Sequence[int]) -> list[int]:
    """Channel index of each recorded unit (``"conv2:c5"`` or ``"conv2:c5@1,3"`` → 5; ``"fc1:3"`` → 3)."""
    out = []
    for u in units:
        if not 0 <= u < len(unit_names):
            raise ValueError(f"unit {u} is out of range: the layer has {len(unit_names)} units (0..{len(unit_names) - 1})")
        tail = unit_names[u].rsplit(":", 1)[-1]
        tail = tail.split("@")[0]
        out.append(int(tail[1:] if tail.startswith("c") else tail))
    return sorted(set(out))


def exemplars(activations, layer: str, units: Sequence[int], m: int = 9, data: torch.Tensor | None = None,
              model: nn.Module | None = None, crop: int | None = None,
              among: Sequence[int] | np.ndarray | None = None) -> Exemplars:
    """The ``m`` samples of ``activations`` (an :class:`~nnrules.Activations`) whose summed activation
    over ``units`` (column indices of ``activations[layer]``, e.g. a rule's tail) is largest — chosen
    ``among`` these sample indices if given (e.g. where a rule holds).

    With ``data`` (the recorded inputs, ``(n, C, H, W)``) the images come along. With ``crop`` (pixels)
    and ``model``, each image is cropped to a ``crop``×``crop`` window centred on the most active position
    of the group's channels (the map upsampled to the input), as kernel visualisation does (seed 001 Sec.
    3.3).
    """
    if not hasattr(activations, "layers") or not hasattr(activations, "values"):
        raise TypeError(f"activations must be an Activations (from nnrules.record), got {type(activations).__name__}")
    if layer not in activations.layers:
        raise ValueError(f"layer {layer!r} was not recorded; recorded: {activations.layers}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m (exemplars to return) must be a positive integer, got {m!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise ValueError(f"crop must be a positive number of pixels or None, got {crop!r}")
    values = np.asarray(activations[layer])
    units = [int(u) for u in units]
    if not units or max(units) >= values.shape[1] or min(units) < 0:
        raise ValueError(f"units must be column indices of {layer!r} (0..{values.shape[1] - 1}), got {units}")
    if m < 1:
        raise ValueError(f"m must be ≥ 1, got {m}")
    score = values[:, units].sum(axis=1)
    if among is not None:
        pool = np.unique(np.asarray(among, dtype=np.int64))
        if len(pool) == 0:
            raise ValueError("among is empty: no sample to choose exemplars from")
        if pool.min() < 0 or pool.max() >= len(score):
            raise ValueError(f"among must be sample indices 0..{len(score) - 1}")
        order = pool[np.argsort(-score[pool], kind="stable")[:m]]
    else:
        order = np.argsort(-score, kind="stable")[:m]
    ex = Exemplars(order, score[order])
    if data is None:
        return ex
    images = data[torch.as_tensor(order)]
    ex.images = images
    if crop is None:
        return ex
    if model is None:
        raise ValueError("cropping to the most active region needs the model: pass model=...")
    resolve_layers(model, [layer], allow_output=False)
    channels = channels_of(activations.unit_names[layer], units)
    seen: dict[str, torch.Tensor] = {}
    with torch.no_grad(), preserved_mode(model), \
            forward_hooks(model, {layer: lambda mod, i, o: seen.__setitem__("o", o.detach())}):
        model(on_model(model, images))
    out = seen["o"].to(images.device)
    if out.dim() != 4:
        raise ValueError(f"layer {layer!r} has no spatial maps (output {tuple(out.shape[1:])}); crop needs a "
                         f"conv layer")
    h, w = images.shape[-2:]
    maps = F.interpolate(out[:, channels].sum(1, keepdim=True), size=(h, w), mode="bilinear",
                         align_corners=False)[:, 0]
    crop = min(crop, h, w)
    crops, boxes = [], []
    for img, heat in zip(images, maps):
        cy, cx = divmod(int(heat.argmax()), w)
        top = min(max(cy - crop // 2, 0), h - crop)
        left = min(max(cx - crop // 2, 0), w - crop)
        crops.append(img[..., top: top + crop, left: left + crop])
        boxes.append((top, left, crop, crop))
    ex.images, ex.boxes = torch.stack(crops), np.asarray(boxes)
    return ex
