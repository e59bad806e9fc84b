import io
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nnrules
from conftest import TinyNet, hook_count, state_copy


def test_layers_table_lists_names_shapes_units(tiny, tiny_data):
    df = nnrules.layers(tiny, tiny_data[0][:1])
    assert df["name"].tolist() == ["conv", "act", "pool", "flat", "fc", "output"]
    row = df.set_index("name").loc["conv"]
    assert row["output_shape"] == (3, 6, 6) and row["n_units"] == 3 and row["kind"] == "conv"
    assert df.set_index("name").loc["fc", "n_units"] == 4
    assert hook_count(tiny) == 0


@pytest.mark.parametrize("reduce", ["max", "mean", "l1", "none"])
def test_record_reductions_match_manual_computation(reduce):
    model = TinyNet(inplace=False)
    x, y = torch.randn(10, 1, 6, 6), torch.randint(0, 4, (10,))
    acts = nnrules.record(model, (x, y), ["conv", "fc"], reduce=reduce, batch_size=3, progress=False)
    with torch.no_grad():
        conv = model.conv(x)
        logits = model(x)
    flat = conv.flatten(2)
    expected = {"max": flat.amax(2), "mean": flat.mean(2), "l1": flat.abs().sum(2),
                "none": conv.flatten(1)}[reduce]
    np.testing.assert_allclose(acts["conv"], expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.logits, logits.numpy(), rtol=1e-5, atol=1e-6)
    assert acts["fc"].shape == (10, 4)
    assert np.array_equal(acts.labels, y.numpy())
    assert np.array_equal(acts.predictions, logits.argmax(1).numpy())
    assert len(acts.unit_names["conv"]) == acts["conv"].shape[1]
    if reduce == "none":
        assert acts.unit_names["conv"][7] == "conv:c0@1,1"


def test_inplace_relu_does_not_corrupt_the_conv_record(tiny_data):
    x, y = tiny_data
    model = TinyNet(inplace=True)
    acts = nnrules.record(model, (x, y), ["conv", "act"], reduce="none", progress=False)
    with torch.no_grad():
        pre = model.conv(x).flatten(1).numpy()
    assert (pre < 0).any(), "the test needs negative pre-activations"
    np.testing.assert_allclose(acts["conv"], pre, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["act"], np.maximum(pre, 0), rtol=1e-5, atol=1e-6)


def test_model_mode_parameters_and_hooks_unchanged(tiny, tiny_data):
    tiny.train()
    tiny.fc.eval()  # a mixed state must come back as it was
    before = state_copy(tiny)
    nnrules.record(tiny, tiny_data, ["conv", "fc"], progress=False)
    assert tiny.training and tiny.conv.training and not tiny.fc.training
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert hook_count(tiny) == 0


def test_hooks_removed_and_mode_restored_when_forward_fails(tiny):
    tiny.train()
    bad = torch.randn(5, 2, 6, 6)  # two channels; the conv wants one
    with pytest.raises(ValueError, match=r"shape \(5, 2, 6, 6\)"):
        nnrules.record(tiny, bad, ["conv"], progress=False)
    assert hook_count(tiny) == 0 and tiny.training


def test_on_batch_reports_progress_and_can_cancel(tiny, tiny_data):
    seen = []
    nnrules.record(tiny, tiny_data, ["conv"], batch_size=10, progress=False,
                   on_batch=lambda done, n: seen.append((done, n)))
    assert seen == [(10, 37), (20, 37), (30, 37), (37, 37)]

    class Stop(Exception):
        pass

    def cancel(done, n):
        if done >= 20:
            raise Stop
    tiny.train()
    with pytest.raises(Stop):
        nnrules.record(tiny, tiny_data, ["conv", "fc"], batch_size=10, progress=False, on_batch=cancel)
    assert hook_count(tiny) == 0 and tiny.training


def test_unknown_layer_lists_close_matches(tiny, tiny_data):
    with pytest.raises(ValueError, match=r"'convv'.*Did you mean 'conv'.*nnrules.layers"):
        nnrules.record(tiny, tiny_data, ["convv"], progress=False)


def test_empty_dataset_and_bad_inputs(tiny):
    with pytest.raises(ValueError, match="empty"):
        nnrules.record(tiny, torch.zeros(0, 1, 6, 6), ["conv"], progress=False)
    with pytest.raises(ValueError, match="reduce"):
        nnrules.record(tiny, torch.zeros(2, 1, 6, 6), ["conv"], reduce="median", progress=False)
    with pytest.raises(TypeError, match="data must be"):
        nnrules.record(tiny, [1, 2, 3], ["conv"], progress=False)
    with pytest.raises(ValueError, match="samples but labels"):
        nnrules.record(tiny, (torch.zeros(3, 1, 6, 6), torch.zeros(2)), ["conv"], progress=False)


def test_non_finite_activations_are_reported(tiny):
    x = torch.zeros(4, 1, 6, 6)
    x[2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="'conv' produced non-finite"):
        nnrules.record(tiny, x, ["conv"], progress=False)
    assert hook_count(tiny) == 0


def test_shared_module_is_rejected():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.relu = nn.Linear(3, 3), nn.Linear(3, 2), nn.ReLU()

        def forward(self, x):
            return self.b(self.relu(self.a(self.relu(x))))

    with pytest.raises(ValueError, match="more than once"):
        nnrules.record(Shared(), torch.randn(4, 3), ["relu"], progress=False)


def test_data_forms_agree(tiny, tiny_data):
    x, y = tiny_data
    ref = nnrules.record(tiny, (x, y), ["fc"], progress=False)["fc"]
    for data in (TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=5), x, (x.numpy(), y.numpy())):
        np.testing.assert_allclose(nnrules.record(tiny, data, ["fc"], progress=False)["fc"], ref, rtol=1e-5)
    with pytest.raises(ValueError, match="shuffles"):
        nnrules.record(tiny, DataLoader(TensorDataset(x, y), shuffle=True), ["fc"], progress=False)


def test_memmap_and_save_load_roundtrip(tiny, tiny_data, tmp_path):
    acts = nnrules.record(tiny, tiny_data, ["conv", "fc"], memmap_dir=tmp_path / "mm", progress=False)
    assert isinstance(acts["conv"], np.memmap)
    acts.save(tmp_path / "a.npz")
    back = nnrules.Activations.load(tmp_path / "a.npz")
    assert back.layers == acts.layers and back.unit_names == acts.unit_names
    np.testing.assert_array_equal(back["conv"], acts["conv"])
    np.testing.assert_array_equal(back.labels, acts.labels)


def test_image_folder_and_model_file(tmp_path, tiny):
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6), 40 * i, dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    torch.save(tiny, tmp_path / "model.pt")
    torch.jit.script(tiny).save(str(tmp_path / "scripted.pt"))
    torch.save(tiny.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")

    ds = nnrules.image_folder(tmp_path / "imgs", transform=lambda im: torch.tensor(np.array(im.convert("L")), dtype=torch.float32)[None] / 255)
    for model, layer in ((nnrules.load_model(tmp_path / "model.pt", trust=True), "fc"),
                         (nnrules.load_model(tmp_path / "scripted.pt", trust=True), "output"),
                         (nnrules.load_model(tmp_path / "weights.pt", architecture=type(tiny)), "fc")):
        acts = nnrules.record(model, ds, [layer], progress=False)
        assert acts.n_samples == 6 and acts.labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(nnrules.recording.loading.UnsafeFileError, match="trust=True"):
        nnrules.load_model(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="TorchScript model cannot take forward hooks"):
        nnrules.record(nnrules.load_model(tmp_path / "scripted.pt", trust=True), ds, ["conv"], progress=False)
    with pytest.raises(nnrules.recording.loading.UnsafeFileError, match="TorchScript.*trust=True"):
        nnrules.load_model(tmp_path / "scripted.pt")
    with pytest.raises(ValueError, match="no images"):
        nnrules.image_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="state_dict.*architecture"):
        nnrules.load_model(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="do not fit"):
        nnrules.load_model(tmp_path / "weights.pt", architecture="digits-cnn")
    with pytest.raises(ValueError, match="neither a TorchScript"):
        nnrules.load_model(tmp_path / "junk.pt")


class _Evil:
    """Unpickling this runs a shell command that creates a file (what a malicious model file does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weights": _Evil(marker)}, tmp_path / "evil.pt")
    torch.save(_Evil(marker), tmp_path / "evil2.pt")
    for f in ("evil.pt", "evil2.pt"):
        for arch in (None, "resnet18"):
            with pytest.raises(nnrules.recording.loading.UnsafeFileError, match="run code"):
                nnrules.load_model(tmp_path / f, architecture=arch)
    assert not marker.exists()


def test_state_dict_with_an_architecture(tmp_path):
    from torchvision.models import resnet18

    torch.save(resnet18(num_classes=7).state_dict(), tmp_path / "r.pt")
    m = nnrules.load_model(tmp_path / "r.pt", "resnet18", num_classes=7)
    assert m.fc.out_features == 7 and not m.training
    with pytest.raises(ValueError, match="did you mean"):
        nnrules.load_model(tmp_path / "r.pt", "resnet19")
    with pytest.raises(ValueError, match="cannot import"):
        nnrules.load_model(tmp_path / "r.pt", "nonexistent_pkg_xyz:build")


def test_a_torch_export_archive_records_like_the_module(tmp_path, tiny_data):
    """``torch.export.save`` archives load as modules with the original layer names (hooks work); one whose
    pickled member holds Python objects is refused before torch.export.load could unpickle it."""
    import zipfile

    from conftest import TinyNet

    model = TinyNet(inplace=False).eval()
    x, y = tiny_data
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (x[:4],), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, tmp_path / "tiny.pt2")
    loaded = nnrules.load_model(tmp_path / "tiny.pt2")
    want = nnrules.record(model, (x, y), ["conv", "act"], batch_size=16, progress=False)
    got = nnrules.record(loaded, (x, y), ["conv", "act"], batch_size=16, progress=False)
    np.testing.assert_allclose(got["act"], want["act"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="holds its own architecture"):
        nnrules.load_model(tmp_path / "tiny.pt2", architecture="digits-cnn")
    # the same archive with a pickled Python object in its sample inputs
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(tmp_path / "tiny.pt2") as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("sample_inputs/model.pt"):
                buf = io.BytesIO()
                torch.save(_Evil(marker), buf)
                data = buf.getvalue()
            dst.writestr(item, data)
    with pytest.raises(nnrules.recording.loading.UnsafeFileError, match="unpickle"):
        nnrules.load_model(evil)
    assert not marker.exists()


def test_a_pickled_module_whose_class_is_gone_says_what_to_do(tmp_path, monkeypatch):
    """torch.save(model) of a user's own class (defined in a script or notebook), loaded where that class
    cannot be imported: the message says why and what to do, not only "Can't get attribute"."""
    import importlib
    import sys

    (tmp_path / "user_models.py").write_text(
        "import torch.nn as nn\nclass SmallCNN(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n"
        "    def forward(self, x):\n        return self.fc(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("user_models")
    torch.save(mod.SmallCNN(), tmp_path / "small.pt")
    assert isinstance(nnrules.load_model(tmp_path / "small.pt", trust=True), mod.SmallCNN)  # importable: loads
    del mod.SmallCNN  # as a class defined in another script's __main__: not here
    try:
        with pytest.raises(ValueError, match=r"SmallCNN.*import or define that class.*state_dict"):
            nnrules.load_model(tmp_path / "small.pt", trust=True)
    finally:
        sys.modules.pop("user_models", None)


def test_the_layer_table_says_what_runs_twice_and_which_blocks_have_their_own_output():
    """A torchvision ResNet reuses each block's ReLU: the table counts the calls, a block's output (the
    residual sum, after an in-place add on bn2's output) is its own, a stage returns its last block's output;
    recording the reused ReLU names the block to record instead, and the block records."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=3).eval()
    x = torch.rand(2, 3, 64, 64)
    t = nnrules.layers(model, x).set_index("name")
    assert t.loc["layer4.0.relu", "calls"] == 2 and t.loc["layer4.0.conv1", "calls"] == 1
    assert t.loc["layer4.0", "passes_on"] == "" and t.loc["layer4", "passes_on"] == "layer4.1"
    assert t.loc["layer4.0.downsample", "passes_on"] == "layer4.0.downsample.1"
    with pytest.raises(ValueError, match=r"more than once.*'layer4\.0'"):
        nnrules.record(model, x, ["layer4.0.relu"], progress=False)
    acts = nnrules.record(model, x, ["layer4.0"], reduce="none", progress=False)
    with torch.no_grad():
        want = model.layer4[0](model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(
            model.conv1(x))))))))
    np.testing.assert_allclose(acts["layer4.0"], want.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
