"""LRP through Zennit, the field's LRP library: its rules, composites and canonizers (residual nets included).

Composite names are Zennit's and mean what they mean there (``epsilon_gamma_box`` is
``zennit.composites.EpsilonGammaBox``: z^B on the first layer, γ on convolutions, ε on dense layers, with
BatchNorm merged). Canonizers are chosen from the model: torchvision ResNets get Zennit's
``ResNetCanonizer`` (the residual additions become a Sum module with its own rule, BatchNorms merged), every
other model ``SequentialMergeBatchNorm``. A user may pass their own ``layer_map`` (module type → Zennit rule)
or a ready Zennit composite.

nnrules adds: relevance that starts at a neuron group (a rule's tail) instead of a class score, in-place
ReLUs made safe, and the user's model left bit-identical — Zennit works on a deep copy (its composites can
leave modified tensors behind in ``state_dict()``, Zennit issue #237).
"""
from __future__ import annotations

import contextlib
import copy
from typing import cast

import torch
from torch import nn

__all__ = ["ZENNIT_COMPOSITES", "zennit_composite", "canonizers_for", "zennit_relevance", "check_visible"]

#: nnrules name → (Zennit composite class name, whether it takes the input box low/high)
ZENNIT_COMPOSITES = {
    "epsilon_gamma_box": ("EpsilonGammaBox", True),
    "epsilon_plus": ("EpsilonPlus", False),
    "epsilon_plus_flat": ("EpsilonPlusFlat", False),
    "epsilon_alpha2_beta1": ("EpsilonAlpha2Beta1", False),
    "epsilon_alpha2_beta1_flat": ("EpsilonAlpha2Beta1Flat", False),
}


def _is_resnet(model: nn.Module) -> bool:
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    return isinstance(model, ResNet) or any(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules())


def canonizers_for(model: nn.Module) -> list:
    """Zennit canonizers for ``model``: the ResNet canonizer for residual nets, else BatchNorm merging."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    from torchvision.models.densenet import _DenseLayer

    from .lrp import LRPError

    if any(isinstance(m, _DenseLayer) for m in model.modules()):
        # BatchNorm after a concatenation has no single layer to merge into; Zennit has no DenseNet canonizer
        raise LRPError("LRP here has no canonizer for DenseNet's concatenating blocks (their BatchNorm follows a "
                       "concatenation); use a gradient method (gradient_x_input, integrated_gradients, gradcam)")
    return [ResNetCanonizer()] if _is_resnet(model) else [SequentialMergeBatchNorm()]


def zennit_composite(name, model: nn.Module, low=None, high=None, epsilon: float | None = None,
                     gamma: float | None = None, layer_map: list | None = None, name_map: list | None = None):
    """The Zennit composite for ``name`` (a key of :data:`ZENNIT_COMPOSITES`, or a Zennit composite object,
    used as is), with canonizers for ``model``. The user's rules come first: ``layer_map`` as Zennit's
    ``[(module type(s), rule), …]`` and ``name_map`` as ``[((layer name, …), rule), …]`` (a rule by layer
    name wins over one by type, which wins over the composite's own)."""
    import zennit.composites as zc

    if not isinstance(name, str):
        if isinstance(name, zc.Composite):
            return name
        raise TypeError(f"composite must be a name ({sorted(ZENNIT_COMPOSITES)}) or a zennit Composite, "
                        f"got {type(name).__name__}")
    if name not in ZENNIT_COMPOSITES:
        raise ValueError(f"unknown Zennit composite {name!r}; choose one of {sorted(ZENNIT_COMPOSITES)}")
    cls_name, boxed = ZENNIT_COMPOSITES[name]
    kw: dict = {"canonizers": canonizers_for(model)}
    if layer_map:
        kw["layer_map"] = list(layer_map)
    if epsilon is not None:
        kw["epsilon"] = epsilon
    if gamma is not None:
        if "gamma" not in getattr(zc, cls_name).__init__.__code__.co_varnames:
            raise ValueError(f"composite {name!r} has no γ; drop gamma=")
        kw["gamma"] = gamma
    if boxed:
        kw.update(low=low, high=high)
    base = getattr(zc, cls_name)(**kw)
    if not name_map:
        return base
    names = set(dict(model.named_modules()))
    unknown = [n for names_, _ in name_map for n in names_ if n not in names]
    if unknown:
        raise ValueError(f"name_map names layers that do not exist: {unknown}; see nnrules.layers(model, x)")
    return zc.MixedComposite([zc.NameMapComposite(list(name_map)), base], canonizers=canonizers_for(model))


def check_visible(model: nn.Module, example: torch.Tensor) -> None:
    """Raise :class:`~nnrules.attribution.lrp.LRPError` if ``model``'s forward pass computes with its own
    weights outside a layer module — ``F.linear(x, self.weight)``, ``x @ self.W``, a scale parameter
    multiplied in ``forward`` (ConvNeXt's layer scale), a position embedding added. LRP rules attach to
    modules (nn.Linear, nn.Conv2d, …); relevance through such an operation is its plain gradient, so the
    result is neither the composite's nor conserved. Checked on one forward pass of ``example``: every torch
    call that takes a parameter or buffer of the model must run inside a module without children."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    from .lrp import LRPError

    owned = {id(t): name for name, t in [*model.named_parameters(), *model.named_buffers()]}
    depth, found = [0], cast(list[tuple[str, str]], [])

    class _Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if not depth[0] and not found:
                for t in tree_leaves((args, kwargs)):
                    if isinstance(t, torch.Tensor) and id(t) in owned:
                        found.append((getattr(func, "__name__", str(func)), owned[id(t)]))
                        break
            return func(*args, **kwargs)

    def enter(*_):
        depth[0] += 1

    def leave(*_):
        depth[0] -= 1

    handles = []
    try:
        for m in model.modules():
            if not any(True for _ in m.children()):
                handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
        with torch.no_grad(), _Watch():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    if found:
        fn, name = found[0]
        raise LRPError(f"the model's forward computes {fn}(…) with its weight {name!r} outside a layer module: LRP "
                       "rules attach to modules (nn.Linear, nn.Conv2d, …), so relevance through that step would "
                       "be neither the composite's nor conserved. Write that step as a module, or use a gradient "
                       "method (gradient_x_input, integrated_gradients, gradcam)")


def zennit_relevance(model: nn.Module, inputs: torch.Tensor, group: tuple[str, list[int]] | None, composite,
                     cls: torch.Tensor | None) -> torch.Tensor:
    """Relevance of ``inputs`` under ``composite`` on a copy of ``model``.

    For a class (``cls`` ``(B,)``) relevance starts as the class score f_c; for a neuron ``group``
    (layer, units) as the group's activations (Σ a·sg(a), whose gradient is a), and is handed down by the
    rules of that layer and the layers below. The copy's in-place ReLUs are made out-of-place (Zennit's hooks
    need the layer outputs intact); the user's model is never touched."""
    from .objectives import group_objective

    check_visible(model, inputs)
    work = copy.deepcopy(model).eval()
    for m in work.modules():
        if getattr(m, "inplace", False):
            setattr(m, "inplace", False)  # noqa: B010 — an attribute of some module types only
    for p in work.parameters():
        p.requires_grad_(False)
    x = inputs.detach().clone().requires_grad_(True)
    with composite.context(work) as modified, torch.enable_grad(), contextlib.ExitStack() as stack:
        # the group's hook goes on after Zennit's, so that it sees the rule-wrapped layer output
        f = stack.enter_context(group_objective(modified, *group, relevance=True)) if group else modified
        out = f(x)
        if cls is None:
            score, start = out, torch.ones_like(out)
        else:
            score = out.gather(1, cls[:, None])[:, 0]
            start = score.detach()
        (relevance,) = torch.autograd.grad(score, x, grad_outputs=start)
    return relevance.detach()
