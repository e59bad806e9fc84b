"""Attributions for a class or for a group of neurons: Captum's gradient methods, Grad-CAM, and LRP.

``attribute(model, inputs, target, method=...)`` returns a tensor shaped like ``inputs``. ``target`` is a
class index (one for all, or one per sample) or a neuron group ``(layer, units)`` whose summed activation is
explained (units are channels for a conv layer, summed over positions), so a rule's tail can be explained
as a whole (seed 000 Fig. 3). Book seed 003: Ch. 9 (gradient methods), Ch. 10/13 (LRP composites).
"""
from __future__ import annotations

import contextlib
from typing import Sequence, Union

import numpy as np
import torch
from torch import nn

import nnrules.attribution.lrp as _lrp

from ..recording.hooks import OUTPUT, forward_hooks, named_layers, on_model, preserved_mode, resolve_layers
from ..registry import ATTRIBUTIONS
from .objectives import group_objective

__all__ = ["attribute", "METHODS", "group_objective", "Target", "last_conv_layer", "gradcam_layer",
           "default_composite"]

Target = Union[int, Sequence[int], torch.Tensor, tuple]

METHODS = ("saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "gradcam", "lrp")
_LABELS = {"saliency": ("Saliency", "|∂f/∂x|: where a small change moves the score most"),
           "gradient_x_input": ("Gradient × input", "∂f/∂x · x: each pixel's first-order contribution"),
           "integrated_gradients": ("Integrated gradients", "gradients averaged from a baseline to the input"),
           "smoothgrad": ("SmoothGrad", "gradients averaged over noisy copies of the input"),
           "gradcam": ("Grad-CAM", "a conv layer's maps weighted by their mean gradient (coarse)"),
           "lrp": ("LRP", "layer-wise relevance propagation with a composite of rules (conserves the score)")}
for _m in METHODS:
    ATTRIBUTIONS.register(_m, _LABELS[_m][0], _m, params=(), help=_LABELS[_m][1])


def _group(target) -> tuple[str, list[int]] | None:
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str):
        layer, units = target
        units = [int(units)] if isinstance(units, int) else [int(u) for u in units]
        if not units:
            raise ValueError("the neuron group is empty: pass at least one unit, e.g. ('fc1', [3, 17])")
        return layer, units
    return None


def _class_index(target, n: int, n_classes: int) -> torch.Tensor:
    raw = torch.as_tensor(target)
    if raw.is_floating_point() and not torch.equal(raw, raw.round()):
        raise ValueError(f"target must be a class index (an integer) or a (layer, units) group, got {target!r}")
    if raw.dtype == torch.bool:
        raise ValueError("target must be a class index (an integer), got a bool")
    t = raw.to(torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} class indices for {n} inputs; pass one, or one per input")
    if (t < 0).any() or (t >= n_classes).any():
        raise ValueError(f"target class out of range: the model has {n_classes} outputs (0..{n_classes - 1})")
    return t


def default_composite(model: nn.Module) -> str:
    """The LRP composite ``attribute`` uses when none is named: Zennit's ``epsilon_gamma_box`` for every
    architecture. Measured ΣR / f_c (median, predicted class): digits-cnn 0.98, mnist-cnn 1.01, cifar10-cnn
    1.08 (the book recipe ``book_epsilon_gamma_box``: 0.10 — its BatchNorm-after-ReLU layers), vgg11_bn 1.00,
    resnet18 0.99 (the book composites refuse residual nets)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return "epsilon_gamma_box"


def gradcam_layer(model: nn.Module, example: torch.Tensor, before: str | None = None) -> str:
    """Grad-CAM's default layer: the last conv layer (running before layer ``before``, if given) whose output
    has a spatial extent > 1 — a 1×1 map makes a flat square (cifar10-cnn's last conv). ``example``: one input
    batch to measure the output sizes."""
    names = list(named_layers(model))
    stop = len(names) if before in (None, OUTPUT) else names.index(before) + 1
    convs = [n for n in names[:stop] if isinstance(named_layers(model)[n], (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise ValueError("the model has no conv layer" + (f" before {before!r}" if before not in (None, OUTPUT) else "")
                         + "; pass layer=... for Grad-CAM")
    sizes: dict[str, int] = {}
    def size_of(n):
        def hook(m, i, o) -> None:  # returns None: the output is left alone
            sizes[n] = int(o[0, 0].numel())
        return hook
    hooks = {n: size_of(n) for n in convs}
    with torch.no_grad(), preserved_mode(model), forward_hooks(model, hooks):
        model(on_model(model, example[:1]))
    spatial = [n for n in convs if sizes.get(n, 1) > 1]
    return (spatial or convs)[-1]


def last_conv_layer(model: nn.Module) -> str:
    """Name of the last Conv layer (Grad-CAM's default)."""
    convs = [n for n, m in named_layers(model).items() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise ValueError("the model has no conv layer; pass layer=... for Grad-CAM")
    return convs[-1]


def attribute(model: nn.Module, inputs: torch.Tensor, target: Target, method: str = "gradient_x_input", *,
              composite: str | None = None, low: float | torch.Tensor | None = None,
              high: float | torch.Tensor | None = None, pool: str = "sum", epsilon: float | None = None,
              gamma: float | None = None, layer: str | None = None, baselines: torch.Tensor | float = 0.0,
              n_steps: int = 50, internal_batch_size: int | None = 64, nt_samples: int = 25,
              stdevs: float = 0.15, abs: bool = True, trace: dict | None = None, seed: int = 0,
              layer_map: list | None = None, name_map: list | None = None) -> torch.Tensor:
    """Attribution of ``target`` to ``inputs`` ``(B, ...)``, same shape as ``inputs``.

    ``method``: ``saliency`` (|∂f/∂x|, or signed with ``abs=False``), ``gradient_x_input``,
    ``integrated_gradients`` (``baselines``, ``n_steps``, ``internal_batch_size``), ``smoothgrad``
    (``nt_samples`` noisy copies, noise std ``stdevs`` × the input range; batched by
    ``internal_batch_size``), ``gradcam`` (at ``layer``, default the last conv; upsampled to the input and
    spread over its channels so that the channel sum is the map), ``lrp`` (``composite`` by name, box
    bounds ``low``/``high`` for z^B — default the batch's min/max —, ``pool`` "sum" or "winner",
    ``epsilon``/``gamma`` overriding the composite's). Composite names are Zennit's (``epsilon_gamma_box``,
    ``epsilon_plus``, ``epsilon_plus_flat``, ``epsilon_alpha2_beta1[_flat]``; default
    :func:`default_composite`), run by Zennit on a copy of the model with its canonizers (ResNets included);
    ``layer_map``/``name_map`` put the user's Zennit rules on layers by type or by name. The book's own
    engine keeps its composites as ``book_*`` (``pool`` "sum"/"winner", ``trace`` receives
    ``{layer: (ΣR, Σ|R|)}``).
    The model runs in eval mode and is left as it was.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        raise ValueError("inputs must be a batch tensor (B, ...); add a batch dimension with x[None]")
    if len(inputs) == 0:
        raise ValueError("inputs is an empty batch: give at least one input (B ≥ 1)")
    for name, count in (("n_steps", n_steps), ("nt_samples", nt_samples),
                        ("internal_batch_size", 1 if internal_batch_size is None else internal_batch_size)):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"{name} must be an integer ≥ 1, got {count!r}")
    if not isinstance(stdevs, (int, float)) or isinstance(stdevs, bool) or not stdevs >= 0:
        raise ValueError(f"stdevs (SmoothGrad's noise, × the input range) must be a number ≥ 0, got {stdevs!r}")
    if isinstance(baselines, torch.Tensor) and baselines.dim() and \
            tuple(baselines.shape) not in (tuple(inputs.shape), tuple(inputs.shape[1:]), (1, *inputs.shape[1:])):
        raise ValueError(f"baselines must be a number or a tensor shaped like the inputs {tuple(inputs.shape)} or "
                         f"one input {tuple(inputs.shape[1:])}, got {tuple(baselines.shape)}")
    inputs = inputs.detach()
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or inf; attributions of such inputs mean nothing")
    origin = inputs.device  # the result goes back where the inputs came from; the work runs on the model's
    inputs = on_model(model, inputs)
    move = lambda v: on_model(model, v) if isinstance(v, torch.Tensor) else v  # noqa: E731
    low, high, baselines = move(low), move(high), move(baselines)
    if method == "lrp":
        for name, v in (("epsilon", epsilon), ("gamma", gamma)):
            if v is not None and not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name} must be a number ≥ 0, got {v!r}")
        if low is not None and high is not None and torch.any(torch.as_tensor(low) > torch.as_tensor(high)):
            raise ValueError(f"the LRP box needs low <= high (the input range), got low={low}, high={high}")
    group = _group(target)
    with preserved_mode(model), contextlib.ExitStack() as stack:
        try:
            with torch.no_grad():
                n_classes = model(inputs[:1]).shape[1]
        except RuntimeError as err:
            raise ValueError(f"inputs of shape {tuple(inputs.shape)} do not fit the model ({err}); inputs are "
                             f"a batch (B, ...), add a batch dimension with x[None]") from err
        if method == "lrp" and composite is None:
            composite = default_composite(model)
        zennit = method == "lrp" and not (isinstance(composite, str) and composite in _lrp.COMPOSITES)
        if zennit:  # Zennit's rules, composites and canonizers, on a copy of the model
            from .zennit_lrp import zennit_composite, zennit_relevance

            if pool != "sum" or trace is not None:
                raise ValueError("pool= and trace= belong to the book composites (book_*); Zennit composites "
                                 "take layer_map= for their own rules")
            comp = zennit_composite(composite, model, inputs.min() if low is None else low,
                                    inputs.max() if high is None else high, epsilon, gamma, layer_map, name_map)
            cls = None if group is not None else _class_index(target, len(inputs), n_classes).to(inputs.device)
            if group is not None:
                resolve_layers(model, [group[0]], allow_output=True)
            return zennit_relevance(model, inputs, group, comp, cls).to(origin)
        if method == "lrp":  # rules first: the group's hook must see the rule-wrapped output
            stack.enter_context(_lrp_rules(model, inputs, composite, low, high, pool, epsilon, gamma, trace))
        if group is not None:
            f = stack.enter_context(group_objective(model, *group, relevance=method == "lrp", stop=method != "lrp"))
            cls = None
        else:
            f = model
            cls = _class_index(target, len(inputs), n_classes).to(inputs.device)
        if method == "lrp":
            return _lrp_attribution(inputs, f, cls).to(origin)
        return _captum(model, f, inputs, cls, method, layer, baselines, n_steps, internal_batch_size,
                       nt_samples, stdevs, abs, seed).to(origin)


def _captum(model, f, inputs, cls, method, layer, baselines, n_steps, ibs, nt_samples, stdevs, abs_, seed):
    import captum.attr as ca

    kw = {} if cls is None else {"target": cls}
    x = inputs.clone().requires_grad_(True)
    if method == "saliency":
        return ca.Saliency(f).attribute(x, abs=abs_, **kw).detach()
    if method == "gradient_x_input":
        return ca.InputXGradient(f).attribute(x, **kw).detach()
    if method == "integrated_gradients":
        return ca.IntegratedGradients(f).attribute(x, baselines=baselines, n_steps=n_steps,
                                                   internal_batch_size=ibs or None, **kw).detach()
    if method == "smoothgrad":
        # SmoothGrad (Smilkov et al. 2017): the mean of Captum's Saliency over noisy copies. The noise is drawn
        # here from a seeded CPU generator, not by Captum's NoiseTunnel from the device's global RNG: the same
        # seed gives the same map on the CPU and on a GPU, and the caller's RNG state is never touched.
        span = float(inputs.max() - inputs.min()) or 1.0
        gen = torch.Generator().manual_seed(seed)
        noise = (torch.randn((nt_samples, *inputs.shape), generator=gen, dtype=torch.float64) * (stdevs * span)
                 ).to(device=inputs.device, dtype=inputs.dtype)
        saliency, total, step = ca.Saliency(f), torch.zeros_like(inputs), ibs or nt_samples
        for i in range(0, nt_samples, step):
            chunk = noise[i: i + step]
            noisy = (inputs.unsqueeze(0) + chunk).reshape(-1, *inputs.shape[1:]).requires_grad_(True)
            extra = {} if cls is None else {"target": cls.repeat(len(chunk))}
            grads = saliency.attribute(noisy, abs=abs_, **extra).detach()
            total += grads.reshape(len(chunk), *inputs.shape).sum(0)
        return total / nt_samples
    # gradcam
    name = layer or gradcam_layer(model, inputs)
    resolve_layers(model, [name], allow_output=False)
    cam = ca.LayerGradCam(f, named_layers(model)[name]).attribute(x, relu_attributions=True, **kw)
    cam = ca.LayerAttribution.interpolate(cam, tuple(inputs.shape[2:]), interpolate_mode="bilinear"
                                          if inputs.dim() == 4 else "linear")
    return (cam / inputs.shape[1]).expand_as(inputs).detach().contiguous()


def _lrp_rules(model, inputs, name, low, high, pool, epsilon, gamma, trace):
    params = {k: v for k, v in {"epsilon": epsilon, "gamma": gamma}.items() if v is not None}
    low = inputs.min() if low is None else low
    high = inputs.max() if high is None else high
    comp = _lrp.composite(name, low=low, high=high, pool=pool, **params)
    return _lrp.lrp_context(model, inputs[:1], comp, trace=trace)


def _lrp_attribution(inputs, f, cls):
    x = inputs.clone().requires_grad_(True)
    with torch.enable_grad():
        # start from R = f_c(x) on the target class (book Ch. 9: r^(L) = S_c(x)), or R = a on a group
        score = f(x) if cls is None else f(x).gather(1, cls[:, None])[:, 0]
        start = torch.ones_like(score) if cls is None else score.detach()
        (relevance,) = torch.autograd.grad(score, x, grad_outputs=start)
    return relevance.detach()
