"""Models on another device or dtype: every public call takes inputs where the user has them (CPU tensors),
runs on the model's device and dtype, and gives the same numbers as the float32 CPU model.

``pytest --device cuda`` runs them on a GPU; on the CPU the float64 model still checks that inputs follow the
model's dtype (a float64 model fed float32 inputs failed with "expected scalar type Double" before).
"""
import copy

import numpy as np
import pytest
import torch

import nnrules
from nnrules import NeuroChains, PatchMiner
from nnrules.attribution import attribute, exemplars, maximize
from nnrules.evaluation import intervene, model_randomization, pixel_flipping, zero_filters

from conftest import TinyNet


@pytest.fixture(params=["float32", "float64"])
def placed(request, device):
    """(reference CPU float32 model, the same model on ``device`` in the dtype, data on the CPU)."""
    ref = TinyNet().eval()
    model = copy.deepcopy(ref).to(device=device, dtype=getattr(torch, request.param))
    g = torch.Generator().manual_seed(3)
    x = torch.rand(24, 1, 6, 6, generator=g)
    y = ref(x).argmax(1).detach()  # labels the model gets right: interventions have something to lose
    return ref, model, x, y


def close(a, b, tol=1e-4):
    a = a.detach().cpu().double() if isinstance(a, torch.Tensor) else torch.tensor(np.asarray(a, float))
    b = b.detach().cpu().double() if isinstance(b, torch.Tensor) else torch.tensor(np.asarray(b, float))
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("method", ["saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "gradcam",
                                    "lrp"])
def test_attribute_on_the_models_device(placed, method):
    ref, model, x, y = placed
    got = attribute(model, x[:4], y[:4], method=method, n_steps=8, nt_samples=4)
    assert got.device == x.device  # back where the inputs were
    close(got, attribute(ref, x[:4], y[:4], method=method, n_steps=8, nt_samples=4), tol=2e-3)
    group = attribute(model, x[:4], ("conv", [0, 2]), method="saliency", abs=False)
    close(group, attribute(ref, x[:4], ("conv", [0, 2]), method="saliency", abs=False), tol=2e-3)


def test_record_prototypes_and_exemplars(placed):
    ref, model, x, y = placed
    acts = nnrules.record(model, (x, y), ["act"], progress=False)
    close(acts["act"], nnrules.record(ref, (x, y), ["act"], progress=False)["act"])
    proto = maximize(model, "act", [1], example=x[:1], steps=5, progress=False)
    close(proto, maximize(ref, "act", [1], example=x[:1], steps=5, progress=False), tol=2e-3)
    ex = exemplars(acts, "act", [0, 1], m=3, model=model, data=x, crop=3)
    assert ex.images.shape == (3, 1, 3, 3) and ex.images.device == x.device


def test_evaluation(placed):
    ref, model, x, y = placed
    rules = nnrules.ExplaiNN().fit(np.eye(4, dtype=bool)[y.numpy()],
                                   nnrules.record(ref, x, ["flat"], progress=False)["flat"] > 0).rules_
    a, b = intervene(model, rules, (x, y), n_random=5), intervene(ref, rules, (x, y), n_random=5)
    close(a[["acc_before", "acc_after"]].to_numpy(), b[["acc_before", "acc_after"]].to_numpy())
    a, b = zero_filters(model, "conv", {0: [1]}, (x, y), n_random=3), zero_filters(ref, "conv", {0: [1]}, (x, y), n_random=3)
    close(a[["acc_before", "acc_after"]].to_numpy(), b[["acc_before", "acc_after"]].to_numpy())
    close(pixel_flipping(model, x[:4], "random", y[:4], steps=4).scores,
          pixel_flipping(ref, x[:4], "random", y[:4], steps=4).scores)
    # re-initialised weights come from the device's own RNG in the model's dtype: the same seed gives the same
    # numbers on one device and dtype, not across them
    a, b = model_randomization(model, x[:4], y[:4]), model_randomization(model, x[:4], y[:4])
    assert list(a["layer"]) == ["fc", "conv"] and a["spearman"].between(-1, 1).all()
    close(a["spearman"].to_numpy(), b["spearman"].to_numpy())


def test_patches_and_neurochains(placed):
    ref, model, x, y = placed
    got = PatchMiner(layer="conv", size=3, k=2, m=5, top=2, min_support=0.3).fit(model, x)
    want = PatchMiner(layer="conv", size=3, k=2, m=5, top=2, min_support=0.3).fit(ref, x)
    assert got.patches_.equals(want.patches_)
    chain = NeuroChains(steps=20).fit(model, x[:6])
    assert chain.fidelity(model)["agreement"] >= 0.0 and len(chain.kept_) >= 0
    assert {n: s.device for n, s in chain.scores_.items()} == {n: model.conv.weight.device for n in chain.scores_}
    chain.stability(model, x)
    chain.faithfulness(model)
