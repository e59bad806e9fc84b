"""Layer-wise relevance propagation: rules, composites, canonization (book seed 003, Ch. 10 and 13).

A *rule* says how a layer hands the relevance of its outputs ``R_k`` down to its inputs ``R_j``. All rules
here are the book's generic rule (Ch. 10.2, eq. 13.1)

    R_j = a_j · Σ_k ρ(w_jk) · R_k / (ε_k + Σ_j' a_j' ρ(w_j'k) + ρ(b_k)),

computed with the gradient trick, plus z^B for the pixel layer. A *composite* maps each layer of a model to
a rule by a condition (first layer, lower/upper conv, dense), looked up by a short name.

The implementation propagates *relevance* through autograd: each linear layer's output is wrapped in a
function whose forward value is unchanged and whose backward turns the relevance of the outputs into the
relevance of the inputs. ReLU, flatten and dropout pass relevance through unchanged (the gradient of a ReLU
zeroes exactly the units whose relevance is zero). Everything is attached only inside :func:`lrp_context`
and undone afterwards, also on error: BatchNorm fused into the layer before it (canonization) is restored
bit for bit, in-place flags are restored, hooks are removed.

Supported: chains of ``Conv1d/2d``, ``Linear``, ``BatchNorm1d/2d``, ``ReLU``, ``MaxPool``/``AvgPool``
(incl. adaptive), ``Flatten``, ``Dropout``, ``Identity`` — VGG-style networks. A branching model (residual
additions) is rejected with a clear error: relevance would be duplicated at the sum.

Why this module is long: it is one engine — rules, composites, BatchNorm fusion and the autograd function
that applies them share private helpers. The plan (issue: attributions on residual networks) replaces the
engine with Zennit's rules and canonizers, so it is not split before that.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, cast

import torch
from torch import nn
from torch.nn import functional as F

from ..recording.hooks import named_layers

__all__ = ["LRPRule", "Zero", "Epsilon", "Gamma", "ZPlus", "ZBox", "Pass", "PoolRule", "Composite", "COMPOSITES",
           "composite", "lrp_context", "LRPError"]

_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Linear)
#: The layers a rule redistributes relevance over (their weight and bias typed, unlike ``nn.Module``'s attributes).
LinearLayer = nn.Conv1d | nn.Conv2d | nn.Linear
Pool = (nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d | nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d
        | nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_PASS = (nn.ReLU, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.Unflatten)
_TINY = 1e-9  # keeps 0/0 = 0 (book Ch. 10.2 listing)


class LRPError(ValueError):
    """The model has a layer or a data flow that LRP here cannot explain faithfully."""


def _stabilize(z: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    sign = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
    return z + (eps + _TINY) * sign


class LRPRule:
    """A rule for one linear layer: ``rho`` modifies weights and biases, ``epsilon`` stabilises."""

    name = "rule"

    def rho(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def epsilon(self, z: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def relevance(self, module: LinearLayer, a: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        """R_in (shape of ``a``) from R_out (shape of the output), by the gradient trick (Ch. 10.2)."""
        with torch.enable_grad():
            a = a.detach().requires_grad_(True)
            bias = None if module.bias is None else self.rho(module.bias)
            z = _linear(module, a, self.rho(module.weight), bias)
            s = r_out / _stabilize(z, self.epsilon(z.detach()))
            (c,) = torch.autograd.grad(z, a, grad_outputs=s.detach())
        return a.detach() * c

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class Zero(LRPRule):
    """LRP-0: ρ = identity, no stabiliser (upper layers; uniform LRP-0 equals gradient×input)."""

    name = "zero"


@dataclass(repr=False)
class Epsilon(LRPRule):
    """LRP-ε: ``epsilon`` added with the sign of z. With ``relative=True`` ε is ``epsilon`` times the
    standard deviation of the layer's pre-activations for that sample (the book's "ε = 0.25 std")."""

    epsilon_: float = 1e-6
    relative: bool = False
    name = "epsilon"

    def __post_init__(self):
        _non_negative("epsilon", self.epsilon_)

    def epsilon(self, z: torch.Tensor) -> torch.Tensor | float:
        if not self.relative:
            return self.epsilon_
        std = z.flatten(1).std(dim=1).clamp_min(_TINY)
        return self.epsilon_ * std.view(-1, *([1] * (z.dim() - 1)))


@dataclass(repr=False)
class Gamma(LRPRule):
    """LRP-γ: ρ(w) = w + γ·w⁺ on weights and biases (lower layers)."""

    gamma: float = 0.25
    name = "gamma"

    def __post_init__(self):
        _non_negative("gamma", self.gamma)

    def rho(self, w: torch.Tensor) -> torch.Tensor:
        return w + self.gamma * w.clamp_min(0)


class ZPlus(LRPRule):
    """z⁺ (= LRP-α1β0 for non-negative inputs, = γ → ∞): only positive contributions, no bias."""

    name = "zplus"

    def relevance(self, module: LinearLayer, a: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            a = a.detach().requires_grad_(True)
            z = _linear(module, a.clamp_min(0), module.weight.clamp_min(0), None) + \
                _linear(module, a.clamp_max(0), module.weight.clamp_max(0), None)
            s = r_out / _stabilize(z, 0.0)
            (c,) = torch.autograd.grad(z, a, grad_outputs=s.detach())
        return a.detach() * c


@dataclass(repr=False)
class ZBox(LRPRule):
    """z^B for the pixel layer, with box bounds ``low ≤ x ≤ high`` (scalars or tensors like one input)."""

    low: float | torch.Tensor = 0.0
    high: float | torch.Tensor = 1.0
    name = "zbox"

    def __post_init__(self):
        if bool(torch.as_tensor(self.low > self.high).any()):
            raise ValueError("ZBox needs low <= high everywhere (the input's box bounds), got low > high")

    def relevance(self, module: LinearLayer, a: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = a.detach().requires_grad_(True)
            low = (torch.zeros_like(x) + torch.as_tensor(self.low, dtype=x.dtype)).requires_grad_(True)
            high = (torch.zeros_like(x) + torch.as_tensor(self.high, dtype=x.dtype)).requires_grad_(True)
            w = module.weight
            z = _linear(module, x, w, None) - _linear(module, low, w.clamp_min(0), None) \
                - _linear(module, high, w.clamp_max(0), None)
            s = r_out / _stabilize(z, 0.0)
            gx, gl, gh = torch.autograd.grad(z, (x, low, high), grad_outputs=s.detach())
        return x.detach() * gx + low.detach() * gl + high.detach() * gh


class Pass(LRPRule):
    """Relevance passes through unchanged: for an element-wise map that is not fused into a linear layer,
    e.g. a BatchNorm after a ReLU. (Treating it as an affine layer with LRP-0/ε lets its shift absorb or
    blow up relevance wherever its output is near zero.)"""

    name = "pass"

    def relevance(self, module: LinearLayer, a: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        return r_out


@dataclass(repr=False)
class PoolRule(LRPRule):
    """Pooling layers. ``mode="sum"``: relevance goes to the inputs of each window in proportion to their
    (positive) activation, as for a sum-pool (the book's choice, Ch. 10.3); a window with no positive input
    gives it to its maximum. ``"winner"``: all of it to the maximum (winner-take-all)."""

    mode: str = "sum"
    name = "pool"

    def __post_init__(self):
        if self.mode not in ("sum", "winner"):
            raise ValueError(f"PoolRule mode must be 'sum' or 'winner', got {self.mode!r}")

    def relevance(self, module: Any, a: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
        # a pooling layer, not a LinearLayer: the one rule whose layer has no weights
        is_max = isinstance(module, _MAXPOOLS)
        with torch.enable_grad():
            x = a.detach().requires_grad_(True)
            if self.mode == "winner" and is_max:
                # the gradient of a max is 1 at the maximum: it carries the relevance itself
                (c,) = torch.autograd.grad(module.forward(x), x, grad_outputs=r_out.detach())
                return c
            if not is_max:  # an average is linear: LRP-0 on it
                z = _sum_pool(module, x)
                (c,) = torch.autograd.grad(z, x, grad_outputs=(r_out / _stabilize(z, 0.0)).detach())
                return x.detach() * c
            z = _sum_pool(module, x.clamp_min(0))
            empty = (z <= 0).to(r_out.dtype)
            (c,) = torch.autograd.grad(z, x, grad_outputs=(r_out * (1 - empty) / _stabilize(z, 0.0)).detach())
            r_in = x.detach().clamp_min(0) * c
            if is_max and bool(empty.any()):
                (win,) = torch.autograd.grad(module.forward(x), x, grad_outputs=(r_out * empty).detach())
                r_in = r_in + win
        return r_in


def _sum_pool(module: Pool, x: torch.Tensor) -> torch.Tensor:
    """A sum-pool (as an average) with the geometry of ``module`` (max- or avg-pool, adaptive or not)."""
    # An average over each window splits relevance in the same proportions as a sum (the window size cancels).
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        size: Any = module.output_size  # an int or a tuple, as the module was built
        return F.adaptive_avg_pool2d(x, size) if x.dim() == 4 else F.adaptive_avg_pool1d(x, size)
    geometry: tuple[Any, Any, Any] = (module.kernel_size, module.stride, module.padding)
    if x.dim() == 4:
        return F.avg_pool2d(x, *geometry, getattr(module, "ceil_mode", False), count_include_pad=False)
    return F.avg_pool1d(x, *geometry, getattr(module, "ceil_mode", False))


def _linear(module: LinearLayer, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(module, nn.Linear):
        return F.linear(x, weight, bias)
    if isinstance(module, nn.Conv2d):
        return F.conv2d(x, weight, bias, module.stride, module.padding, module.dilation, module.groups)
    if isinstance(module, nn.Conv1d):
        return F.conv1d(x, weight, bias, module.stride, module.padding, module.dilation, module.groups)
    raise LRPError(f"no linear form for {type(module).__name__}")


# --------------------------------------------------------------------------------------------- composites


@dataclass
class Composite:
    """Maps each layer to a rule: ``assign(layers)`` with ``layers`` the model's chain of (name, module)."""

    name: str
    first: Callable[[], LRPRule] | None  # the pixel layer
    lower_conv: Callable[[], LRPRule]
    upper_conv: Callable[[], LRPRule]
    dense: Callable[[], LRPRule]
    lower_fraction: float = 0.5  # share of conv layers (after the first) that count as "lower"
    pool: str = "sum"

    def __post_init__(self):
        if not 0 <= self.lower_fraction <= 1:
            raise ValueError(f"Composite lower_fraction must be in [0, 1], got {self.lower_fraction}")
        PoolRule(self.pool)  # checks the mode

    def assign(self, chain: list[tuple[str, nn.Module]]) -> dict[str, LRPRule]:
        linear = [(n, m) for n, m in chain if isinstance(m, _LINEAR)]
        convs = [n for n, m in linear if not isinstance(m, nn.Linear)]
        rules: dict[str, LRPRule] = {}
        rest = convs[1:] if convs and self.first and linear[0][0] == convs[0] else convs
        n_lower = math.ceil(len(rest) * self.lower_fraction)
        for i, (name, lin) in enumerate(linear):
            if i == 0 and self.first is not None:
                rules[name] = self.first()
            elif isinstance(lin, nn.Linear):
                rules[name] = self.dense()
            else:
                rules[name] = self.lower_conv() if rest.index(name) < n_lower else self.upper_conv()
        for name, module in chain:
            if isinstance(module, _POOLS):
                rules[name] = PoolRule(self.pool)
            elif isinstance(module, _BATCHNORM):
                rules[name] = Pass()
        return rules


def _box(low, high):
    return lambda: ZBox(low, high)


#: name → factory(low, high, epsilon, gamma) of the registered composites.
COMPOSITES: dict[str, Callable[..., Composite]] = {
    # Ch. 13 VGG-16 recipe: z^B first, γ lower conv, ε (× std) upper conv, LRP-0 dense.
    "book_epsilon_gamma_box": lambda low, high, epsilon=0.25, gamma=0.25: Composite(
        "book_epsilon_gamma_box", _box(low, high), lambda: Gamma(gamma), lambda: Epsilon(epsilon, relative=True), Zero),
    # Ch. 22 "LRP-*": z⁺ (α1β0) for conv, ε for dense; with z^B on the pixels.
    "book_epsilon_plus_box": lambda low, high, epsilon=1e-6, gamma=None: Composite(
        "book_epsilon_plus_box", _box(low, high), ZPlus, ZPlus, lambda: Epsilon(epsilon)),
    "book_epsilon_plus": lambda low, high, epsilon=1e-6, gamma=None: Composite(
        "book_epsilon_plus", None, ZPlus, ZPlus, lambda: Epsilon(epsilon)),
    "book_epsilon": lambda low, high, epsilon=1e-6, gamma=None: Composite(
        "book_epsilon", None, lambda: Epsilon(epsilon), lambda: Epsilon(epsilon), lambda: Epsilon(epsilon)),
    "book_gamma": lambda low, high, epsilon=None, gamma=0.25: Composite(
        "book_gamma", None, lambda: Gamma(gamma), lambda: Gamma(gamma), lambda: Gamma(gamma)),
    # uniform LRP-0 (equals gradient × input on a ReLU network; Ch. 13.2)
    "book_zero": lambda low, high, epsilon=None, gamma=None: Composite("book_zero", None, Zero, Zero, Zero),
}


def composite(name: str, low=0.0, high=1.0, pool: str = "sum", **params) -> Composite:
    """The registered composite ``name`` (see :data:`COMPOSITES`)."""
    if name not in COMPOSITES:
        raise ValueError(f"unknown LRP composite {name!r}; choose one of {sorted(COMPOSITES)}")
    if pool not in ("sum", "winner"):
        raise ValueError(f"pool must be 'sum' or 'winner', got {pool!r}")
    comp = COMPOSITES[name](low, high, **params)
    comp.pool = pool
    return comp


# --------------------------------------------------------------------------------------------- attaching


class _Relevance(torch.autograd.Function):
    """Forward: the layer's output, unchanged. Backward: R_in from R_out by the layer's rule."""

    @staticmethod
    def forward(ctx, a, out, module, rule, trace, name):
        ctx.save_for_backward(a)
        ctx.module, ctx.rule, ctx.trace, ctx.name = module, rule, trace, name
        return out.detach().clone()

    @staticmethod
    def backward(ctx, r_out):
        (a,) = ctx.saved_tensors
        r_in = ctx.rule.relevance(ctx.module, a, r_out)
        if ctx.trace is not None:
            ctx.trace[ctx.name] = (float(r_in.sum()), float(r_in.abs().sum()))
        return r_in, None, None, None, None, None


def _chain(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[str, nn.Module]], dict[str, torch.Tensor]]:
    """The leaf modules in call order; raises if the data flow is not a chain or a layer is unsupported."""
    order: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    leaves = {n: m for n, m in named_layers(model).items() if not list(m.children())}
    unsupported = sorted({type(m).__name__ for m in leaves.values()
                          if not isinstance(m, _LINEAR + _BATCHNORM + _POOLS + _PASS)})
    if unsupported:
        raise LRPError(f"LRP rules are defined for Conv, Linear, BatchNorm, ReLU, pooling, Flatten and Dropout "
                       f"layers; this model also has {unsupported}. Use a gradient method (e.g. "
                       f"method='integrated_gradients') for it.")

    def make(name):
        def hook(module, inputs, output):
            order.append((name, module, inputs[0], output))
        return hook

    handles = [m.register_forward_hook(make(n)) for n, m in leaves.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    seen = set()
    prev = x
    for name, module, inp, out in order:
        if name in seen:
            raise LRPError(f"LRP here needs a chain of layers (VGG-style), but layer {name!r} runs twice in one "
                           f"forward pass (a shared module, as in residual blocks). Use a gradient method.")
        seen.add(name)
        if inp.data_ptr() != prev.data_ptr() or inp.numel() != prev.numel():
            raise LRPError(f"LRP here needs a chain of layers (VGG-style), but {name!r} does not take the previous "
                           f"layer's output (a residual addition or a functional op between modules?). Use a "
                           f"gradient method for this model.")
        prev = out
    return [(n, m) for n, m, _, _ in order], {n: o for n, _, _, o in order}


@dataclass
class _Fusion:
    """BatchNorm ``bn`` folded into linear layer ``linear``: before it (``after=False``: lin → bn) or after it
    (``after=True``: bn → [pools/flatten] → lin, as when BatchNorm follows a ReLU)."""

    bn: str
    linear: str
    after: bool
    between: list[nn.Module] = field(default_factory=list)  # modules between bn and a following linear layer


def _fusions(chain: list[tuple[str, nn.Module]]) -> list[_Fusion]:
    """Where BatchNorm can be folded exactly into an adjacent linear layer (canonization)."""
    out = []
    for i, (name, m) in enumerate(chain):
        if not (isinstance(m, _BATCHNORM) and m.track_running_stats and m.running_var is not None):
            continue
        if i > 0 and isinstance(chain[i - 1][1], _LINEAR):
            out.append(_Fusion(name, chain[i - 1][0], after=False))
            continue
        scale = _bn_affine(m)[0]
        between: list[nn.Module] = []
        for nxt_name, nxt in chain[i + 1:]:
            if isinstance(nxt, _LINEAR):
                padded = not isinstance(nxt, nn.Linear) and any(p != 0 for p in _tuple(nxt.padding))
                if not padded:  # zero padding would see 0, not the BatchNorm's shift: not exact
                    out.append(_Fusion(name, nxt_name, after=True, between=between))
                break
            if isinstance(nxt, _MAXPOOLS) and bool((scale > 0).all()):
                between.append(nxt)  # max(s·a + t) = s·max(a) + t for s > 0
            elif isinstance(nxt, (nn.Flatten, nn.Dropout, nn.Identity)):
                between.append(nxt)
            else:
                break
    return out


def _tuple(p) -> tuple:
    return tuple(p) if isinstance(p, (tuple, list)) else (p,)


def _bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm in eval mode as ``y = scale · x + shift`` per channel."""
    if bn.running_var is None or bn.running_mean is None:
        raise LRPError("a BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    scale = 1 / torch.sqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = bn.weight * scale
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    return scale.detach(), shift.detach()


@contextlib.contextmanager
def _fused(modules: dict[str, nn.Module], fusions: list[_Fusion],
           outputs: dict[str, torch.Tensor]) -> Iterator[None]:
    """Fold each BatchNorm into its linear layer; restore the exact tensors afterwards, also on error."""
    saved: list[tuple[LinearLayer, torch.Tensor, torch.Tensor | None]] = []
    try:
        with torch.no_grad():
            for fu in fusions:  # _fusions pairs a BatchNorm with a linear layer by type
                bn = cast(nn.BatchNorm1d | nn.BatchNorm2d, modules[fu.bn])
                lin = cast(LinearLayer, modules[fu.linear])
                saved.append((lin, lin.weight.detach().clone(),
                              None if lin.bias is None else lin.bias.detach().clone()))
                scale, shift = _bn_affine(bn)
                bias = lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.weight.shape[0])
                if not fu.after:  # W' = s·W, b' = s·b + t (per output channel)
                    lin.weight.mul_(scale.view(-1, *([1] * (lin.weight.dim() - 1))))
                    new_bias = bias * scale + shift
                else:  # W' = W·s (per input), b' = b + W t, with s and t carried through the layers between
                    shape = outputs[fu.bn].shape[1:]
                    view = (1, -1) + (1,) * (len(shape) - 1)
                    s_map = scale.view(view).expand(1, *shape)
                    t_map = shift.view(view).expand(1, *shape)
                    for mod in fu.between:  # constant per channel → stays so through max-pools / flatten
                        s_map, t_map = mod(s_map), mod(t_map)
                    if isinstance(lin, nn.Linear):
                        new_bias = bias + lin.weight @ t_map.reshape(-1)
                        lin.weight.mul_(s_map.reshape(1, -1))
                    else:
                        s_c, t_c = s_map.flatten(2)[0, :, 0], t_map.flatten(2)[0, :, 0]
                        new_bias = bias + (lin.weight * t_c.view(1, -1, *([1] * (lin.weight.dim() - 2)))).flatten(1).sum(1)
                        lin.weight.mul_(s_c.view(1, -1, *([1] * (lin.weight.dim() - 2))))
                if lin.bias is None:
                    lin.bias = nn.Parameter(new_bias)
                else:
                    lin.bias.copy_(new_bias)
        yield
    finally:
        with torch.no_grad():
            for lin, w, b in saved:
                lin.weight.copy_(w)
                if b is None:
                    lin.bias = None
                elif lin.bias is not None:
                    lin.bias.copy_(b)


@contextlib.contextmanager
def lrp_context(model: nn.Module, example: torch.Tensor, comp: Composite,
                trace: dict | None = None) -> Iterator[dict[str, LRPRule]]:
    """Attach ``comp``'s rules to ``model`` for the block (BatchNorm fused, in-place ReLU off).

    Inside, a forward pass builds a graph whose backward carries relevance: differentiate the output with
    ``grad_outputs`` = the relevance to start from, and the input's gradient is its relevance. Yields the
    layer → rule map. Everything is undone on exit, also on error; ``trace`` (if a dict) receives
    ``{layer: (ΣR, Σ|R|)}`` of the relevance at each layer's input.
    """
    if not isinstance(comp, Composite):
        raise TypeError(f"comp must be a Composite (e.g. composite('book_epsilon_plus')), got {type(comp).__name__}")
    modules = named_layers(model)
    chain, outputs = _chain(model, example)
    fusions = _fusions(chain)
    fused = {fu.bn for fu in fusions}
    rules = comp.assign([(n, m) for n, m in chain if n not in fused])
    inplace = [m for _, m in chain if getattr(m, "inplace", False)]
    handles = []

    def make(name, rule):
        def hook(module, inputs, output):
            return _Relevance.apply(inputs[0], output, module, rule, trace, name)
        return hook

    def skip(module, inputs, output):  # a fused BatchNorm is the identity now
        return inputs[0]

    try:
        for m in inplace:
            setattr(m, "inplace", False)  # noqa: B010 — an attribute of some module types only
        with _fused(modules, fusions, outputs):
            for name in fused:
                handles.append(modules[name].register_forward_hook(skip))
            for name, rule in rules.items():
                handles.append(modules[name].register_forward_hook(make(name, rule)))
            yield rules
    finally:
        for h in handles:
            h.remove()
        for m in inplace:
            setattr(m, "inplace", True)  # noqa: B010
