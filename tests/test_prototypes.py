"""Prototypes by activation maximisation, dataset exemplars and heatmap pictures."""
import numpy as np
import pytest
import torch

import nnrules
from nnrules.attribution import prototypes, viz
from nnrules.attribution.prototypes import _total_variation
from conftest import hook_count, state_copy


@pytest.fixture(scope="module")
def acts(digits):
    return nnrules.record(digits.model, digits.test, ["relu3", "relu2"], reduce="max")


def _group_value(model, x, layer, units):
    with nnrules.attribution.group_objective(model, layer, units) as f, torch.no_grad():
        return f(x)


def test_prototype_beats_every_real_digit_and_is_deterministic(digits, acts):
    model = digits.model
    units = [int(u) for u in np.argsort(-acts["relu3"].mean(0))[[0, 5, 10]]]  # units that do fire on digits
    before = state_copy(model)
    grads = [p.grad for p in model.parameters()]
    proto = prototypes.maximize(model, "relu3", units, example=digits.example_input, steps=150, seed=3)
    assert proto.shape == (1, 8, 8) and float(proto.min()) >= 0 and float(proto.max()) <= 1
    best_real = float(_group_value(model, digits.test.tensors[0], "relu3", units).max())
    assert float(_group_value(model, proto[None], "relu3", units)) > best_real
    again = prototypes.maximize(model, "relu3", units, example=digits.example_input, steps=150, seed=3)
    assert torch.equal(proto, again)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert hook_count(model) == 0
    assert all(p.grad is g and p.requires_grad for p, g in zip(model.parameters(), grads))


def test_class_prototype_by_log_softmax_is_classified_as_that_class(digits):
    for cls in (0, 7):
        img = prototypes.maximize(digits.model, "output", [cls], objective="logsoftmax", example=digits.example_input,
                                  steps=100)
        with torch.no_grad():
            assert int(digits.model(img[None]).argmax()) == cls


def test_priors_smooth_the_prototype(digits):
    kw = dict(example=digits.example_input, steps=100, seed=0)
    plain = prototypes.maximize(digits.model, "relu2", [4], **kw)
    smooth = prototypes.maximize(digits.model, "relu2", [4], tv=0.5, blur_every=4, blur_sigma=0.8, jitter=1,
                                 grad_blur_sigma=0.5, **kw)
    assert float(_total_variation(smooth)) < float(_total_variation(plain))


def test_prototype_bad_input(digits):
    with pytest.raises(ValueError, match="logsoftmax"):
        prototypes.maximize(digits.model, "relu3", [1], objective="logsoftmax", example=digits.example_input)
    with pytest.raises(ValueError, match="shape"):
        prototypes.maximize(digits.model, "relu3", [1])
    with pytest.raises(ValueError, match="relu4"):
        prototypes.maximize(digits.model, "relu4", [1], example=digits.example_input, steps=1)


def test_exemplars_are_the_most_activating_samples(digits, acts):
    units = [2, 9]
    ex = prototypes.exemplars(acts, "relu3", units, m=9, data=digits.test.tensors[0])
    total = acts["relu3"][:, units].sum(1)
    assert list(ex.indices) == list(np.argsort(-total, kind="stable")[:9])
    assert np.all(np.diff(ex.scores) <= 0) and ex.images.shape == (9, 1, 8, 8)
    assert torch.equal(ex.images[0], digits.test.tensors[0][ex.indices[0]])


def test_exemplar_crops_centre_the_most_active_region(digits, acts):
    units = [0, 3]
    ex = prototypes.exemplars(acts, "relu2", units, m=4, data=digits.test.tensors[0], model=digits.model, crop=4)
    assert ex.images.shape == (4, 1, 4, 4) and ex.boxes.shape == (4, 4)
    channels = prototypes.channels_of(acts.unit_names["relu2"], units)
    assert channels == [0, 3]
    with pytest.raises(ValueError, match="spatial"):
        prototypes.exemplars(acts, "relu3", [0], m=2, data=digits.test.tensors[0], model=digits.model, crop=4)
    with pytest.raises(ValueError, match="not recorded"):
        prototypes.exemplars(acts, "conv1", [0])


def test_heatmap_colours_and_png():
    e = torch.zeros(1, 4, 4)
    e[0, 0, 0], e[0, 3, 3] = 1.0, -1.0
    rgb = viz.heatmap(e, percentile=100)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[1, 1]) == (255, 255, 255)  # zero is white
    assert rgb[0, 0, 0] > 100 and rgb[0, 0, 1] < 30 and rgb[0, 0, 2] < 30  # positive is red
    assert rgb[3, 3, 2] > 50 and rgb[3, 3, 0] < 30 and rgb[3, 3, 1] < 30  # negative is blue
    e[0, 0, 1] = 0.5
    assert tuple(viz.heatmap(e, percentile=100)[0, 1]) == (255, 0, 0)  # half-way up: bright red
    over = viz.heatmap(e, torch.full((1, 4, 4), 0.5), scale=3)
    assert over.shape == (12, 12, 3) and tuple(over[4, 4]) == (128, 128, 128)  # grey image where e = 0
    png = viz.to_png(viz.grid([rgb, rgb, rgb], cols=2))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="differ in size"):
        viz.heatmap(e, torch.zeros(1, 5, 5))


def test_fourier_prototype_drives_its_group_and_leaves_the_model_alone():
    """The Fourier-parameterised prototype is deterministic, in range, raises the group's activation well above
    a random image's, and leaves the model's parameters and hooks as they were."""
    import copy

    from nnrules.attribution.feature_vis import maximize_fourier

    z = nnrules.zoo.load("cifar10-cnn")
    model = z.model.eval()
    before = copy.deepcopy(model.state_dict())
    x = z.train.tensors[0][:1]
    a = maximize_fourier(model, "relu4", [3, 7], example=x, steps=24, seed=1)
    b = maximize_fourier(model, "relu4", [3, 7], example=x, steps=24, seed=1)
    assert a.shape == x.shape[1:] and torch.equal(a, b) and a.min() >= 0 and a.max() <= 1

    def group(img):
        seen = {}
        h = model.relu4.register_forward_hook(lambda m, i, o: seen.__setitem__("o", o))
        try:
            with torch.no_grad():
                model(img[None])
        finally:
            h.remove()
        return float(seen["o"][0, [3, 7]].sum())
    noise = torch.rand(x.shape[1:], generator=torch.Generator().manual_seed(0))
    assert group(a) > 2 * group(noise)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_the_ascent_stops_at_its_layer_and_keeps_the_value_of_a_module_called_twice():
    """``stop=True`` ends later passes at the group's layer (the layers above cost nothing) with the same value;
    a module that runs twice per pass (a ResNet block's ReLU) is never cut short: its last call counts."""
    import torchvision

    from nnrules.attribution.objectives import group_objective

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3).eval()
    x = torch.rand(2, 3, 32, 32)
    fc_calls = []
    handle = model.fc.register_forward_hook(lambda m, i, o: fc_calls.append(1))
    try:
        for layer, twice in (("layer1.0.conv1", False), ("layer1.0.relu", True), ("layer2", False)):
            with group_objective(model, layer, [0, 3]) as full:
                expected = [full(x), full(x)]
            fc_calls.clear()
            with group_objective(model, layer, [0, 3], stop=True) as f:
                got = [f(x), f(x), f(x)]
            for g in got:
                torch.testing.assert_close(g, expected[0])
            assert len(fc_calls) == (3 if twice else 1), (layer, len(fc_calls))
    finally:
        handle.remove()
    a = prototypes.maximize(model, "layer1.0.conv1", [1], example=x[:1], steps=5)
    assert a.shape == (3, 32, 32) and torch.isfinite(a).all() and not model.fc.weight.requires_grad is False
