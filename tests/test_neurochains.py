"""NeuroChains (seed 004): planted redundancy, digits-cnn, VGG/ResNet-style models, bad input."""
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from conftest import hook_count, state_copy
from nnrules.miners.neurochains import NeuroChains, quotient


class Planted(nn.Module):
    """conv (8 filters) → ReLU → global mean → linear; the class layer reads only filters 0 and 3."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 2)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.weight[0, 0], self.fc.weight[1, 3] = 20.0, 20.0
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.act(self.conv(x)))))


def test_quotient_eq9():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    q = torch.tensor([[0.5, 0.4, 0.1], [0.2, 0.7, 0.1]])
    assert torch.allclose(quotient(p, q), torch.tensor([0.1 / 0.5, -0.5 / 0.3]))


def test_planted_only_the_used_filters_survive():
    model = Planted()
    x = torch.rand(20, 1, 6, 6)
    before = state_copy(model)
    nc = NeuroChains(lam=0.005, steps=400).fit(model, x)
    assert set(nc.kept_["filter"]) <= {0, 3} and set(nc.kept_["filter"]) & {0, 3}
    assert nc.fidelity(model)["agreement"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and hook_count(model) == 0
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    # the sub-network is the model with W ⊙ S: removed filters have zero weights
    w = nc.subnetwork_.conv.weight
    assert all(float(w[f].abs().sum()) == 0.0 for f in range(8) if f not in set(nc.kept_["filter"]))


@pytest.fixture(scope="module")
def digits_chain(digits):
    x, y = digits.test.tensors
    with torch.no_grad():
        p = torch.softmax(digits.model(x), 1)
    sure = (p.max(1).values >= 0.95) & (p.argmax(1) == y)
    pick = torch.cat([torch.nonzero(sure & (y == c)).flatten()[:10] for c in (3, 8)])
    return NeuroChains(lam=0.005).fit(digits.model, x[pick]), pick


@pytest.mark.slow
def test_digits_cnn_small_faithful_stable(digits, digits_chain):
    nc, pick = digits_chain
    kept, total = nc.size_
    assert kept < 0.5 * total  # 37 of 112 filters/neurons when this was written
    fid = nc.fidelity(digits.model)
    assert fid["agreement"] >= 0.9 and fid["quotient"] > 0.5
    fa = nc.faithfulness(digits.model)
    assert len(fa) == kept and np.corrcoef(fa["score"], fa["degradation"])[0, 1] > 0.3
    x = digits.test.tensors[0]
    assert nc.stability(digits.model, x, k=5) >= 0.8
    nodes, links = nc.to_sankey(digits.model)
    assert len(nodes) == kept and set(nodes["layer"]) <= {"conv1", "conv2", "fc1"} and len(links) > 0
    assert nodes["units"].iloc[0][0].startswith("conv1:c")
    pics = nc.pictures(digits.model, "conv2", int(nc.kept_.loc[nc.kept_["layer"] == "conv2", "filter"].iloc[0]), x[:100], m=4)
    assert pics["prototype"].shape == (1, 8, 8) and len(pics["exemplars"].indices) == 4


@pytest.mark.parametrize("ctor, gated", [(torchvision.models.vgg11, 4), (torchvision.models.resnet18, 5)])
def test_vgg_and_resnet_style(ctor, gated):
    torch.manual_seed(0)
    model = ctor(weights=None, num_classes=10).eval()
    x = torch.rand(4, 3, 32, 32)
    before = state_copy(model)
    nc = NeuroChains(steps=5, finetune_steps=2, kl_threshold=0.0).fit(model, x)
    assert len(nc.gates_) == gated  # VGG: same-shape convs; ResNet: the blocks without downsampling
    if ctor is torchvision.models.resnet18:
        assert sorted(nc.gates_) == ["layer1.0", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and hook_count(model) == 0
    # the runnable sub-network computes what the instrumented model computes
    zeros = {n: torch.zeros(()) for n in nc.gates_}
    with torch.no_grad(), nc._instrument(model, nc.scores_, zeros, nc.gates_):
        want = model(x)
    assert torch.allclose(nc.subnetwork_(x), want, atol=1e-5)
    nodes, links = nc.chain_.to_sankey()  # dense random layers: each filter shows its 8 strongest inputs
    shown = nc.kept_[nc.kept_["layer"].isin(set(nodes["layer"]))]  # layers not gated away in the sub-network
    assert len(nodes) == len(shown) > 0 and links.groupby("target").size().max() <= 8
    assert links["source"].lt(links["target"]).all()


class _ChannelsLast(nn.Module):
    """A ConvNeXt-style block: a Linear over the channels of an (N, H, W, C) tensor (H = 8 ≠ C = 6)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.mix = nn.Linear(6, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        h = self.mix(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.fc(torch.relu(h).mean((2, 3)))


def test_a_linear_layer_run_channels_last_is_scored_by_its_features():
    """ConvNeXt runs Linear layers on (N, H, W, C): a unit is an output feature (C), not dim 1 (H). Taken as
    dim 1, the scores had H entries, multiplied the wrong axis and the sub-network could not be built
    ("The size of tensor a (384) must match the size of tensor b (16)" on torchvision's convnext_tiny)."""
    torch.manual_seed(0)
    model = _ChannelsLast().eval()
    x = torch.rand(4, 3, 8, 8)
    nc = NeuroChains(steps=5, finetune_steps=2, kl_threshold=0.0).fit(model, x)
    assert nc.channels_ == {"conv": 6, "mix": 6}
    zeros = {n: torch.zeros(()) for n in nc.gates_}
    with torch.no_grad(), nc._instrument(model, nc.scores_, zeros, nc.gates_):
        want = model(x)
    assert torch.allclose(nc.subnetwork_(x), want, atol=1e-5)


def test_bad_input(digits):
    with pytest.raises(ValueError, match="do not fit the model"):
        NeuroChains(steps=1).fit(digits.model, torch.rand(3, 3, 8, 8))
    with pytest.raises(ValueError, match="lam must be"):
        NeuroChains(lam=-1).fit(digits.model, digits.test.tensors[0][:3])
    with pytest.raises(ValueError, match="no prunable layer"):
        NeuroChains(steps=1).fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), digits.test.tensors[0][:3])
    with pytest.raises(ValueError, match="non-empty batch"):
        NeuroChains().fit(digits.model, torch.rand(0, 1, 8, 8))
    assert hook_count(digits.model) == 0


def test_fidelity_target_control_on_digits(digits, digits_chain):
    """The control keeps the fewest top-scored filters that still agree with the model on every sample (within
    the probability-drop bound): fewer than the paper's fixed τ here, and it meets its own target."""
    nc, pick = digits_chain
    ctl = NeuroChains(min_agreement=1.0, max_prob_drop=0.1).fit(digits.model, digits.test.tensors[0][pick])
    fid = ctl.fidelity(digits.model)
    assert fid["agreement"] == 1.0 and fid["prob_drop"] <= 0.1 + 1e-6
    assert ctl.size_[0] < nc.size_[0] and ctl.threshold_ > nc.tau
    log = ctl.search_
    assert log["ok"].any() and log.loc[log["ok"], "kept"].min() == ctl.size_[0]
    assert not log.loc[log["kept"] < ctl.size_[0], "ok"].any()  # every smaller chain tried failed
    kept_conv, all_conv = ctl.conv_size_
    assert 0 < kept_conv <= ctl.size_[0] and all_conv == 16 + 32  # conv1 and conv2 of digits-cnn
