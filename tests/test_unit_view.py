"""This unit: receptive fields measured by gradients equal the hand-computed ones; top samples cropped there."""
import numpy as np
import pytest
import torch
import torchvision

from nnrules import record, zoo
from nnrules.attribution.unit_view import receptive_field, unit_crops


@pytest.fixture(scope="module")
def digits():
    z = zoo.load("digits-cnn")
    x, y = z.train.tensors
    return z.model, x, y


def test_receptive_fields_equal_the_hand_computed_ones(digits):
    """digits-cnn: two 3×3 'same' convs (3, then 5 pixels), a 2×2 max-pool (6, stride 2). torchvision's
    ResNet-18 (7×7/2 conv, 3×3/2 pool, basic blocks): 7, 11, 43, 99, 211 pixels, centred on their cells."""
    model, x, _ = digits
    for layer, size, stride, origin in (("conv1", 3, 1, -1), ("relu2", 5, 1, -2), ("pool", 6, 2, -2)):
        f = receptive_field(model, layer, x[:1])
        assert (f.size, f.stride, f.origin) == ((size, size), (stride, stride), (origin, origin)), (layer, f)
    resnet = torchvision.models.resnet18().eval()
    rng = torch.get_rng_state()
    for layer, size, stride in (("conv1", 7, 2), ("maxpool", 11, 4), ("layer1", 43, 4), ("layer2", 99, 8),
                                ("layer3", 211, 16)):
        f = receptive_field(resnet, layer, torch.zeros(3, 224, 224))
        assert f.size == (size, size) and f.stride == (stride, stride), (layer, f)
        top, left, h, w = f.box(f.map_hw[0] // 2, f.map_hw[1] // 2)  # the centre cell: its whole field
        assert (h, w) == (size, size) and abs(top + (size - 1) / 2 - (f.map_hw[0] // 2) * stride) < 1
    assert torch.equal(rng, torch.get_rng_state())  # a private generator
    assert all(p.grad is None for p in resnet.parameters()) and not resnet.training


def test_unit_crops_are_the_field_at_the_strongest_cell(digits):
    model, x, y = digits
    acts = record(model, (x, y), ["relu2"], progress=False)  # channels (max over positions)
    unit = 5
    crops = unit_crops(model, x, acts, "relu2", unit, k=6)
    values = np.asarray(acts["relu2"])[:, unit]
    assert list(crops.indices) == list(np.argsort(-values, kind="stable")[:6])
    assert np.all(np.diff(crops.scores) <= 0)
    with torch.no_grad():
        maps = torch.relu(model.conv2(torch.relu(model.conv1(x[torch.as_tensor(crops.indices)]))))[:, unit]
    for i, ((r, c), (top, left, h, w), img) in enumerate(zip(crops.positions, crops.boxes, crops.images)):
        assert maps[i, r, c] == maps[i].max()  # its strongest cell
        assert maps[i, r, c] == pytest.approx(values[crops.indices[i]], rel=1e-5)  # = the recorded max
        assert (top, left) == (max(r - 2, 0), max(c - 2, 0))  # the 5×5 field centred there, cut by the border
        assert (h, w) == (min(r + 3, 8) - top, min(c + 3, 8) - left)
        assert torch.equal(img, x[crops.indices[i], :, top: top + h, left: left + w])
    per_position = record(model, (x, y), ["pool"], reduce="none", progress=False)
    names = per_position.unit_names["pool"]
    u = names.index("pool:c3@1,2")
    cell = unit_crops(model, x, per_position, "pool", u, k=3)
    assert (cell.positions == [1, 2]).all() and (cell.boxes == [0, 2, 6, 6]).all()  # rows 0..5, columns 2..7


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(layer="fc1"), ValueError, "not recorded"),
    (dict(unit=99), ValueError, "column index"),
    (dict(unit=True), ValueError, "column index"),
    (dict(k=0), ValueError, "positive integer"),
    (dict(data="x"), ValueError, "recorded inputs"),
    (dict(activations=[1]), TypeError, "Activations"),
])
def test_unit_crops_bad_input_names_the_argument(digits, kwargs, error, match):
    model, x, y = digits
    args = dict(model=model, data=x, activations=record(model, (x[:50], y[:50]), ["relu2"], progress=False),
                layer="relu2", unit=0, k=3)
    args["data"] = x[:50]
    args.update(kwargs)
    with pytest.raises(error, match=match):
        unit_crops(**args)
    with pytest.raises(ValueError, match="no spatial map"):
        receptive_field(model, "fc1", x[:1])
    with pytest.raises(ValueError, match="example must be an input tensor"):
        receptive_field(model, "relu2", x[0, 0])
