import copy
"""Attributions and LRP (book seed 003 Ch. 9, 10, 13): fixtures, references, conservation, cleanliness."""
import gc
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from nnrules import attribution, evaluation, zoo
from nnrules.attribution import lrp
from conftest import hook_count, state_copy


class Chain(nn.Module):
    """A small VGG-style chain: conv → ReLU → max-pool → conv → ReLU → flatten → dense → ReLU → dense."""

    def __init__(self, bias: bool = True, seed: int = 0, flatten_module: bool = True):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1, bias=bias)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, bias=bias)
        self.relu2 = nn.ReLU()
        self.flat = nn.Flatten() if flatten_module else None
        self.fc1 = nn.Linear(8 * 4 * 4, 16, bias=bias)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(16, 3, bias=bias)

    def forward(self, x):
        x = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
        x = self.flat(x) if self.flat is not None else torch.flatten(x, 1)
        return self.fc2(self.relu3(self.fc1(x)))


def _x(n=4, seed=1):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- equivalences and references

def test_uniform_lrp0_equals_gradient_x_input_on_bias_free_relu_net():
    net, x = Chain(bias=False), _x()
    a = attribution.attribute(net, x, 1, method="lrp", composite="book_zero", pool="winner")
    g = attribution.attribute(net, x, 1, method="gradient_x_input")
    assert g.abs().max() > 1e-3
    torch.testing.assert_close(a, g, rtol=1e-4, atol=1e-6)
    # the book's sum-pool handling of max-pooling differs from the gradient (a real alternative, not a no-op)
    s = attribution.attribute(net, x, 1, method="lrp", composite="book_zero", pool="sum")
    assert not torch.allclose(s, g, atol=1e-4)


def test_epsilon_lrp_matches_captum_lrp_on_a_vgg_style_net():
    from captum.attr import LRP

    net, x = Chain(flatten_module=False), _x()  # Captum's LRP cannot take nn.Flatten
    ours = attribution.attribute(net, x, 2, method="lrp", composite="book_epsilon", epsilon=1e-9, pool="winner")
    theirs = LRP(net).attribute(x.clone().requires_grad_(True), target=2).detach()
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5)


def _dense(bias=True):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 7, bias=bias), nn.ReLU(), nn.Linear(7, 2, bias=bias)).double()
    return net


def _ref_rule(a, w, b, r_out, rho=lambda t: t):
    """R_j = a_j Σ_k ρ(w_jk) R_k / Σ_j' a_j' ρ(w_j'k) + ρ(b_k), plain float64 matrices (w: (out, in))."""
    z = a @ rho(w).T + rho(b)
    return a * ((r_out / z) @ rho(w))


def test_gamma_and_zbox_rules_match_plain_matrix_references():
    net = _dense()
    x = torch.rand(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w1, b1, w2, b2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach(), net[2].bias.detach()
    h = torch.relu(x @ w1.T + b1)
    out = h @ w2.T + b2
    r2 = torch.zeros_like(out)
    r2[:, 0] = out[:, 0]
    gam = lambda t: t + 0.25 * t.clamp_min(0)
    # uniform γ = 0.25
    r0 = _ref_rule(x, w1, b1, _ref_rule(h, w2, b2, r2, gam), gam)
    got = attribution.attribute(net, x, 0, method="lrp", composite="book_gamma", gamma=0.25)
    torch.testing.assert_close(got, r0, rtol=1e-6, atol=1e-9)  # the 1e-9 stabiliser
    # z^B on the first layer (box [-1, 2]), LRP-0 on the dense top
    r1 = _ref_rule(h, w2, b2, r2)
    lo, hi = -1.0, 2.0
    zb = x[:, None, :] * w1 - lo * w1.clamp_min(0) - hi * w1.clamp_max(0)  # (B, out, in)
    r0 = (zb / zb.sum(2, keepdim=True) * r1[:, :, None]).sum(1)
    got = attribution.attribute(net, x, 0, method="lrp", composite="book_epsilon_gamma_box", low=lo, high=hi)
    torch.testing.assert_close(got, r0, rtol=1e-6, atol=1e-9)  # the 1e-9 stabiliser


# ----------------------------------------------------------------------------- the book's toy fixtures (§3b)

class Fn(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)[:, None]


def test_book_toy_linear_model():
    f = Fn(lambda x: 1.05 * x[:, 0] + 1.50 * x[:, 1])
    x = torch.tensor([[100000.0, 10000.0]], dtype=torch.float64)
    torch.testing.assert_close(attribution.attribute(f, x, 0, method="saliency", abs=False)[0],
                               torch.tensor([1.05, 1.50], dtype=torch.float64))
    gi = attribution.attribute(f, x, 0, method="gradient_x_input")[0]
    torch.testing.assert_close(gi, torch.tensor([105000.0, 15000.0], dtype=torch.float64))
    assert float(gi.sum()) == pytest.approx(120000.0)


def test_book_toy_sqrt_gradient_x_input_vs_ig():
    f = Fn(lambda x: x[:, 0] + torch.sqrt(x[:, 1]))
    x = torch.tensor([[4.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(attribution.attribute(f, x, 0, method="gradient_x_input")[0],
                               torch.tensor([4.0, 1.0], dtype=torch.float64))
    ig = attribution.attribute(f, x, 0, method="integrated_gradients", n_steps=400)[0]
    torch.testing.assert_close(ig, torch.tensor([4.0, 2.0], dtype=torch.float64), atol=1e-2, rtol=0)


def test_book_toy_relu_product_ig_satisfies_completeness():
    f = Fn(lambda x: torch.relu(x[:, 0] - 1) * torch.relu(x[:, 1]))
    x = torch.tensor([[3.0, 2.0]], dtype=torch.float64)
    ig = attribution.attribute(f, x, 0, method="integrated_gradients", n_steps=600)[0]
    torch.testing.assert_close(ig, torch.tensor([8 / 3, 4 / 3], dtype=torch.float64), atol=2e-2, rtol=0)
    assert float(ig.sum()) == pytest.approx(4.0, abs=2e-2)


def test_book_toy_max_jumps():
    f = Fn(lambda x: torch.maximum(x[:, 0], x[:, 1]))
    eps = 1e-3
    a = attribution.attribute(f, torch.tensor([[2.0, 2.0 + eps]], dtype=torch.float64), 0, method="gradient_x_input")[0]
    b = attribution.attribute(f, torch.tensor([[2.0, 2.0 - eps]], dtype=torch.float64), 0, method="gradient_x_input")[0]
    torch.testing.assert_close(a, torch.tensor([0.0, 2.0 + eps], dtype=torch.float64))
    torch.testing.assert_close(b, torch.tensor([2.0, 0.0], dtype=torch.float64))


# ----------------------------------------------------------------------------- on the real digits network

def test_ig_completeness_on_digits(digits):
    x = digits.test.tensors[0][:6]
    ig = attribution.attribute(digits.model, x, 4, method="integrated_gradients", n_steps=200, internal_batch_size=400)
    with torch.no_grad():
        delta = digits.model(x)[:, 4] - digits.model(torch.zeros_like(x))[:, 4]
    np.testing.assert_allclose(ig.sum((1, 2, 3)).numpy(), delta.numpy(), rtol=0.02, atol=0.05)


def test_lrp_and_gradient_x_input_beat_random_order_in_pixel_flipping(digits):
    x = digits.test.tensors[0][:64]
    with torch.no_grad():
        pred = digits.model(x).argmax(1)
    rand = evaluation.pixel_flipping(digits.model, x, "random", pred, steps=16, fill=0.0).aopc.mean()
    for method in ("lrp", "gradient_x_input"):
        a = attribution.attribute(digits.model, x, pred, method=method)
        curve = evaluation.pixel_flipping(digits.model, x, a, pred, steps=16, fill=0.0)
        assert curve.scores.shape == (64, 17) and curve.fractions[-1] == 1.0
        np.testing.assert_allclose(curve.scores[:, 0], digits.model(x).gather(1, pred[:, None])[:, 0].detach(),
                                   rtol=1e-5)
        assert curve.aopc.mean() > rand + 1.0, (method, curve.aopc.mean(), rand)


def test_model_randomization_changes_explanations(digits):
    x = digits.test.tensors[0][:8]
    for method, absolute in (("saliency", True), ("gradient_x_input", False), ("lrp", False)):
        table = evaluation.model_randomization(digits.model, x, 3, method=method, absolute=absolute)
        assert list(table.layer) == ["fc2", "fc1", "conv2", "conv1"]
        assert table.spearman.iloc[-1] < 0.5, (method, table)
    # |gradient × input| keeps the digit's shape under randomisation: the check sees through it
    gi = evaluation.model_randomization(digits.model, x, 3, method="gradient_x_input", absolute=True)
    assert gi.spearman.iloc[-1] > 0.7
    same = attribution.attribute(digits.model, x, 3, method="lrp")
    torch.testing.assert_close(same, attribution.attribute(digits.model, x, 3, method="lrp"))


def test_group_target_explains_the_summed_units(digits):
    x = digits.test.tensors[0][:5]
    for method in ("gradient_x_input", "lrp", "saliency"):
        torch.testing.assert_close(attribution.attribute(digits.model, x, ("output", [3]), method=method),
                                   attribution.attribute(digits.model, x, 3, method=method))
    # a group in a hidden layer of a bias-free chain: LRP (z⁺ convs) hands down exactly its activation
    net, xs = Chain(bias=False), _x()
    with torch.no_grad():
        acts = net.relu3(net.fc1(torch.flatten(net.relu2(net.conv2(net.pool(net.relu1(net.conv1(xs))))), 1)))
    r = attribution.attribute(net, xs, ("relu3", [2, 5, 7]), method="lrp", composite="book_epsilon_plus", epsilon=0.0)
    np.testing.assert_allclose(r.sum((1, 2, 3)).numpy(), acts[:, [2, 5, 7]].sum(1).numpy(), rtol=1e-4, atol=1e-6)


def test_gradcam_is_a_nonnegative_map_of_the_input_size(digits):
    x = digits.test.tensors[0][:3]
    cam = attribution.attribute(digits.model, x, 2, method="gradcam")
    assert cam.shape == x.shape and float(cam.min()) >= 0 and float(cam.max()) > 0
    assert attribution.last_conv_layer(digits.model) == "conv2"


# ----------------------------------------------------------------------------- conservation and canonization

def test_conservation_layer_by_layer_on_bias_free_chain():
    net, x = Chain(bias=False), _x(1)
    with torch.no_grad():
        f = float(net(x)[0, 0])
    for comp in ("book_zero", "book_epsilon_plus_box"):
        trace = {}
        r = attribution.attribute(net, x, 0, method="lrp", composite=comp, epsilon=0.0, low=0.0, high=1.0,
                              trace=trace) if comp != "book_zero" else \
            attribution.attribute(net, x, 0, method="lrp", composite=comp, trace=trace)
        assert set(trace) == {"fc2", "fc1", "conv2", "pool", "conv1"}
        for layer, (total, _) in trace.items():
            assert total == pytest.approx(f, rel=1e-4), (comp, layer)
        assert float(r.sum()) == pytest.approx(f, rel=1e-4)


def test_batchnorm_after_relu_is_fused_exactly_and_restored():
    cifar = zoo.load("cifar10-cnn")
    model, x = cifar.model, cifar.test.tensors[0][:3]
    before = state_copy(model)
    with torch.no_grad():
        ref = model(x)
    comp = lrp.composite("book_epsilon_plus_box")
    with lrp.lrp_context(model, x[:1], comp) as rules:
        with torch.no_grad():
            inside = model(x)
        assert not any(name.startswith("bn") for name in rules)  # all six folded into the next conv / dense
    torch.testing.assert_close(inside, ref, rtol=1e-4, atol=1e-4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    trace = {}
    r = attribution.attribute(model, x[:1], 3, method="lrp", composite="book_epsilon_plus_box", low=0, high=1, trace=trace)
    # z⁺ conv layers conserve what the dense layers hand down
    below_dense = trace["conv6"][0]
    assert trace["conv2"][0] == pytest.approx(below_dense, rel=1e-3)
    assert float(r.abs().sum()) < 10 * float(ref[0, 3])


def test_composite_rules_land_on_the_right_layers_of_vgg11():
    import torchvision

    vgg = torchvision.models.vgg11(weights=None).eval()
    comp = lrp.composite("book_epsilon_gamma_box")
    with lrp.lrp_context(vgg, torch.zeros(1, 3, 64, 64), comp) as rules:
        pass
    convs = [n for n, m in vgg.named_modules() if isinstance(m, nn.Conv2d)]
    assert isinstance(rules[convs[0]], lrp.ZBox)
    rest = convs[1:]  # 7 convs: the lower half (4) γ, the upper ε (× std)
    assert [type(rules[n]).__name__ for n in rest] == ["Gamma"] * 4 + ["Epsilon"] * 3
    assert all(rules[n].relative for n in rest[4:])
    assert [type(rules[n]).__name__ for n in ("classifier.0", "classifier.3", "classifier.6")] == ["Zero"] * 3
    assert isinstance(rules["features.2"], lrp.PoolRule) and isinstance(rules["avgpool"], lrp.PoolRule)
    assert hook_count(vgg) == 0


def test_unsupported_models_get_a_clear_error():
    """The book composites (our own engine) refuse residual nets with a pointer to Zennit's; PReLU has no rule."""
    import torchvision

    resnet = torchvision.models.resnet18(weights=None).eval()
    with pytest.raises(lrp.LRPError, match="VGG-style"):
        attribution.attribute(resnet, torch.rand(1, 3, 32, 32), 0, method="lrp", composite="book_epsilon_gamma_box")
    assert hook_count(resnet) == 0
    prelu = nn.Sequential(nn.Linear(4, 3), nn.PReLU(), nn.Linear(3, 2))
    with pytest.raises(lrp.LRPError, match="PReLU"):
        attribution.attribute(prelu, torch.rand(2, 4), 0, method="lrp", composite="book_epsilon")
    # gradient methods still work on both
    assert attribution.attribute(resnet, torch.rand(1, 3, 32, 32), 0).shape == (1, 3, 32, 32)


def test_resnet18_lrp_through_zennit_conserves_and_leaves_the_model_bit_identical():
    """Zennit's ResNet canonizer: attribute(resnet18, x, 3, method="lrp") runs with a named composite, keeps the
    score within ε/bias losses (measured 0.987) and the user's model is untouched (Zennit works on a copy)."""
    import torchvision

    resnet = torchvision.models.resnet18(weights=None).eval()
    before = state_copy(resnet)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert attribution.attribute(resnet, x, 3, method="lrp", composite="epsilon_gamma_box").shape == x.shape
    with torch.no_grad():
        out = resnet(x)
    cls = out.argmax(1)
    r = attribution.attribute(resnet, x, cls, method="lrp", composite="epsilon_gamma_box")
    ratio = r.flatten(1).sum(1) / out.gather(1, cls[:, None])[:, 0]
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio  # biases and ε take or add a little
    group = attribution.attribute(resnet, x, ("layer3.1.relu", [0, 5]), method="lrp")
    assert group.shape == x.shape and group.abs().sum() > 0
    with pytest.raises(ValueError, match="out of range"):
        attribution.attribute(resnet, x, ("layer3", [999]), method="lrp")
    for k, v in resnet.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert hook_count(resnet) == 0 and all(p.grad is None for p in resnet.parameters())


def test_epsilon_gamma_box_is_zennits_on_vgg11_bn():
    """Composite names mean what they mean in Zennit: nnrules' epsilon_gamma_box equals Zennit's
    EpsilonGammaBox with BatchNorm merged, run by Zennit's own Gradient attributor (float64, 1e-6)."""
    import torchvision
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonGammaBox

    vgg = torchvision.models.vgg11_bn(weights=None).double().eval()
    g = torch.Generator().manual_seed(1)
    for m in vgg.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    x = torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
    ours = attribution.attribute(vgg, x, 7, method="lrp", composite="epsilon_gamma_box", low=0.0, high=1.0)
    ref_model = copy.deepcopy(vgg)
    comp = EpsilonGammaBox(low=0.0, high=1.0, canonizers=[SequentialMergeBatchNorm()])
    with Gradient(ref_model, comp) as attributor:
        out, grad = attributor(x.clone().requires_grad_(True), lambda y: torch.eye(1000, dtype=y.dtype)[[7, 7]] * y)
    torch.testing.assert_close(ours, grad, rtol=1e-6, atol=1e-12 * grad.abs().max().item())


def test_cifar_default_heatmap_keeps_the_logit():
    """The default composite (Zennit's epsilon_gamma_box) keeps ≥ 50 % of the logit on cifar10-cnn, median
    over the shipped test images (the book recipe kept 10 %: its BatchNorm-after-ReLU layers)."""
    z = zoo.load("cifar10-cnn")
    x = z.test.tensors[0][:16]
    with torch.no_grad():
        out = z.model(x)
    cls = out.argmax(1)
    r = attribution.attribute(z.model, x, cls, method="lrp")
    ratio = (r.flatten(1).sum(1) / out.gather(1, cls[:, None])[:, 0]).median()
    assert 0.5 <= ratio <= 1.5, ratio


def test_model_is_bit_identical_after_lrp_also_on_error(digits, tiny, tiny_data):
    model, x = digits.model, digits.test.tensors[0][:4]
    before = state_copy(model)
    grads = [p.grad for p in model.parameters()]
    attribution.attribute(model, x, 1, method="lrp")
    with pytest.raises(ValueError, match="out of range"):
        attribution.attribute(model, x, ("fc1", [999]), method="lrp")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert hook_count(model) == 0 and all(p.grad is g for p, g in zip(model.parameters(), grads))
    assert not model.training
    # in-place ReLU: switched off inside, restored after
    attribution.attribute(tiny, tiny_data[0][:2], 0, method="lrp", composite="book_epsilon_gamma_box")
    assert tiny.act.inplace and hook_count(tiny) == 0
    attribution.attribute(tiny, tiny_data[0][:2], 0, method="lrp")  # Zennit: on a copy
    assert tiny.act.inplace and hook_count(tiny) == 0


def test_bad_input_messages(digits):
    x = digits.test.tensors[0][:2]
    with pytest.raises(ValueError, match="unknown method"):
        attribution.attribute(digits.model, x, 0, method="deconv")
    with pytest.raises(ValueError, match="10 outputs"):
        attribution.attribute(digits.model, x, 10)
    with pytest.raises(ValueError, match="add a batch dimension"):
        attribution.attribute(digits.model, x[0, 0], 0)
    with pytest.raises(ValueError, match="unknown Zennit composite"):
        attribution.attribute(digits.model, x, 0, method="lrp", composite="fancy")
    with pytest.raises(ValueError, match="relu33"):
        attribution.attribute(digits.model, x, ("relu33", [1]))


def test_no_hooks_threads_or_tensors_left_after_many_calls(digits):
    model, x = digits.model, digits.test.tensors[0][:4]

    def run():
        for method in attribution.METHODS:
            attribution.attribute(model, x, 2, method=method, n_steps=8, nt_samples=4)
        attribution.attribute(model, x, ("relu3", [1, 2]), method="lrp")

    def n_tensors():
        gc.collect()
        with warnings.catch_warnings():  # isinstance on torch.distributed's deprecated aliases warns
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

    run()
    tensors, threads = n_tensors(), len(os.listdir("/proc/self/task"))
    for _ in range(10):
        run()
    assert hook_count(model) == 0
    assert n_tensors() <= tensors + 2
    assert len(os.listdir("/proc/self/task")) <= threads + 2


def test_gradcam_default_layer_has_spatial_extent():
    """cifar10-cnn's last conv gives 1×1 maps (a flat square): Grad-CAM takes the last conv with maps > 1×1."""
    z = zoo.load("cifar10-cnn")
    x = z.test.tensors[0][:2]
    name = attribution.gradcam_layer(z.model, x)
    seen = {}
    h = dict(z.model.named_modules())[name].register_forward_hook(lambda m, i, o: seen.setdefault("o", o))
    try:
        z.model(x)
    finally:
        h.remove()
    assert seen["o"].shape[-1] * seen["o"].shape[-2] > 1
    cam = attribution.attribute(z.model, x, 0, method="gradcam")
    assert cam[0].std() > 0  # not a flat square


def test_book_engine_paths_linear_batchnorm_bias_free_and_functional_ops():
    """The book engine's less travelled paths: a BatchNorm after a Linear is folded exactly (same relevance as
    the hand-fused layer), a bias-free net conserves the score exactly under ε = 0, and a functional op between
    modules is refused with a clear error instead of a silently wrong map."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, generator=g, dtype=torch.float64)
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.5, 0.5, generator=g)
        m[1].running_var.uniform_(0.5, 2.0, generator=g)
        m[1].weight.uniform_(0.5, 1.5, generator=g)
        fused = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
        scale = m[1].weight / torch.sqrt(m[1].running_var + m[1].eps)
        fused[0].weight.copy_(m[0].weight * scale[:, None])
        fused[0].bias.copy_((m[0].bias - m[1].running_mean) * scale + m[1].bias)
        fused[2].load_state_dict(m[3].state_dict())
    for comp in ("book_epsilon", "book_zero"):
        torch.testing.assert_close(attribution.attribute(m, x, 0, method="lrp", composite=comp),
                                   attribution.attribute(fused, x, 0, method="lrp", composite=comp))
    nobias = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False)).double().eval()
    r = attribution.attribute(nobias, x, 1, method="lrp", composite="book_epsilon", epsilon=0.0)
    torch.testing.assert_close(r.sum(1), nobias(x)[:, 1].detach())

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, v):
            return self.b(torch.tanh(self.a(v)) * 2)
    with pytest.raises(lrp.LRPError, match="functional op"):
        attribution.attribute(Functional(), x.float(), 0, method="lrp", composite="book_epsilon")


def test_users_map_their_own_rules_by_layer_name():
    """name_map puts a Zennit rule on named layers: z⁺ on fc1 of digits-cnn changes its relevance; an unknown
    name is a clear error."""
    from zennit.rules import ZPlus

    z = zoo.load("digits-cnn")
    x = z.test.tensors[0][:4]
    plain = attribution.attribute(z.model, x, 3, method="lrp", composite="epsilon_plus")
    mapped = attribution.attribute(z.model, x, 3, method="lrp", composite="epsilon_plus",
                                   name_map=[(("fc1", "fc2"), ZPlus())])
    assert not torch.allclose(plain, mapped)
    with pytest.raises(ValueError, match="fc9"):
        attribution.attribute(z.model, x, 3, method="lrp", name_map=[(("fc9",), ZPlus())])


def test_lrp_refuses_weights_used_outside_modules_and_is_zennits_on_the_module_version():
    """A forward that computes F.conv2d(x, self.k) (or F.linear, x @ W, a scale parameter) outside a layer
    module gets no LRP rule there: refused with LRPError, not a map that conserves nothing. The same network
    written with modules gets exactly Zennit's relevance (its own Gradient attributor, float64), which differs
    from gradient × input (what the functional step would silently have been)."""
    import torch.nn.functional as F
    import torchvision
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonGammaBox

    from nnrules.attribution.lrp import LRPError

    g = torch.Generator().manual_seed(3)
    k, kb, w, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((4, 1, 3, 3), (4,), (3, 64), (3,)))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.k, self.kb = nn.Parameter(k.clone()), nn.Parameter(kb.clone())
            self.fc = nn.Linear(64, 3).double()
            with torch.no_grad():
                self.fc.weight.copy_(w), self.fc.bias.copy_(b)

        def forward(self, x):
            return self.fc(F.relu(F.conv2d(x, self.k, self.kb)).flatten(1))

    modules = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).double().eval()
    with torch.no_grad():
        modules[0].weight.copy_(k), modules[0].bias.copy_(kb), modules[3].weight.copy_(w), modules[3].bias.copy_(b)
    x = torch.rand(3, 1, 6, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(Functional().eval()(x), modules(x))
    with pytest.raises(LRPError, match=r"conv2d\(…\) with its weight 'k' outside a layer module"):
        attribution.attribute(Functional().eval(), x, 1, method="lrp", composite="epsilon_gamma_box")
    with pytest.raises(LRPError, match="DenseNet"):
        attribution.attribute(torchvision.models.densenet121(weights=None).eval(), torch.rand(1, 3, 32, 32), 0,
                              method="lrp")
    ours = attribution.attribute(modules, x, 1, method="lrp", composite="epsilon_gamma_box", low=0.0, high=1.0)
    with Gradient(copy.deepcopy(modules), EpsilonGammaBox(low=0.0, high=1.0)) as attributor:
        _, ref = attributor(x.clone().requires_grad_(True), lambda y: torch.eye(3, dtype=y.dtype)[[1, 1, 1]] * y)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    plain = attribution.attribute(modules, x, 1, method="gradient_x_input")
    assert not torch.allclose(ours, plain)  # the z^B rule on the first layer: what a functional conv skips


def test_smoothgrad_is_the_mean_saliency_over_seeded_noise():
    """SmoothGrad draws its noise from a seeded CPU generator (the same map on every device): no noise gives
    Saliency exactly, the same seed the same map, another seed another, batching changes nothing."""
    from conftest import TinyNet

    model, x = TinyNet().eval(), torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    sal = attribution.attribute(model, x, 2, method="saliency")
    torch.testing.assert_close(attribution.attribute(model, x, 2, method="smoothgrad", stdevs=0.0, nt_samples=3), sal)
    a = attribution.attribute(model, x, 2, method="smoothgrad", nt_samples=6, seed=1)
    b = attribution.attribute(model, x, 2, method="smoothgrad", nt_samples=6, seed=1, internal_batch_size=4)
    c = attribution.attribute(model, x, 2, method="smoothgrad", nt_samples=6, seed=2)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c) and not torch.allclose(a, sal)
