"""Pretrained torchvision weights as people have them (#47), with random weights of the pretrained shape (nothing
can be downloaded here; the loading code is the one a user runs with real weights): ImageNet's names and folder
labels, the weights' own transforms, aux-free GoogLeNet and Inception v3, a 1000-class model's page."""
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from nnrules.recording.loading import load_model
from nnrules.recording.pretrained import folder_classes, imagenet_names, weights_transform
from nnrules.widgets.state.explorer import ExplorerState, UserInputError


def _photos(root, folders, n=5, size=(300, 260)):
    rng = np.random.default_rng(0)
    for name in folders:
        (root / "photos" / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(root / "photos" / name / f"{i}.jpg")


def test_imagenet_names_folders_and_transforms_come_from_torchvision():
    names = imagenet_names("resnet50")
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby" and names[207] == "golden retriever"
    assert folder_classes(["tabby", "Golden_Retriever", "0", "golden-retriever"], names) == [281, 207, 0, 207]
    with pytest.raises(ValueError, match="'tabbby' \\(closest: 'tabby'"):
        folder_classes(["tabbby"], names)
    assert imagenet_names("digits-cnn") is None and imagenet_names("no-such-net") is None
    t = weights_transform("resnet50")
    x = t(Image.new("RGB", (400, 300), (255, 255, 255)))
    assert x.shape == (3, 224, 224) and x.max() > 2  # white, normalised by ImageNet's std


@pytest.mark.parametrize("arch", ["googlenet", "inception_v3"])
def test_googlenet_and_inception_saved_without_aux_heads_load(arch, tmp_path):
    torch.manual_seed(0)
    m = torchvision.models.get_model(arch, weights=None, aux_logits=False, init_weights=False)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    got = load_model(tmp_path / "w.pt", arch, num_classes=1000)
    assert not got.aux_logits and got.transform_input  # the pretrained shape: torchvision's re-normalisation
    for k, v in m.state_dict().items():
        assert torch.equal(got.state_dict()[k], v)
    with_aux = torchvision.models.get_model(arch, weights=None, aux_logits=True, init_weights=False, num_classes=3)
    torch.save(with_aux.state_dict(), tmp_path / "aux.pt")
    assert load_model(tmp_path / "aux.pt", arch, num_classes=3).aux_logits


def test_a_1000_class_resnet50_on_photo_folders(tmp_path):
    """The issue's case: ImageNet names, labels 281 / 207 / 0, 224 × 224 inputs normalised as the weights were,
    ExplaiNN with the app's defaults; the page offers only the classes in the data or predicted on it."""
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "resnet50.pt")
    _photos(tmp_path, ["tabby", "golden retriever", "tench"])
    s = ExplorerState(pictures=None, data_root=str(tmp_path))
    s.load_files("resnet50.pt", "photos", architecture="resnet50")
    assert len(s.class_names) == 1000 and s.class_names[281] == "tabby"
    assert sorted(set(s.labels.tolist())) == [0, 207, 281]
    assert s.inputs.shape[1:] == (3, 224, 224) and s.inputs.min() < -1  # normalised, not [0, 1]
    assert "centre crop 224" in s.loaded.transform and "ImageNet's mean and std" in s.info
    present = s.loaded.present_classes()
    assert {0, 207, 281} <= set(present) and len(present) <= 3 + len(s.inputs)
    s.mine(s.default_settings())
    heads = set(s.nodes[s.nodes["layer"] == "output"]["label"]) if not s.nodes.empty else set()
    shown = {s.class_names[i] for i in present}
    assert all(any(name in label for name in shown) for label in heads), heads  # never a class absent here
    plain = ExplorerState(pictures=None, data_root=str(tmp_path))
    plain.load_files("resnet50.pt", "photos", architecture="resnet50", size=64)  # a size: the user's own choice
    assert plain.inputs.shape[2:] == (64, 64) and plain.inputs.min() >= 0 and not plain.loaded.transform


def test_pretrained_bad_input_says_what_to_do(tmp_path):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pt")
    _photos(tmp_path, ["tabby", "not a class"], n=1)
    s = ExplorerState(pictures=None, data_root=str(tmp_path))
    with pytest.raises(UserInputError, match="'not a class'.*not ImageNet classes"):
        s.load_files("r18.pt", "photos", architecture="resnet18")
    assert s.model is None  # nothing loaded half-way
    with pytest.raises(UserInputError, match="do not fit architecture 'vgg11'"):
        s.load_files("r18.pt", "photos", architecture="vgg11")
    with pytest.raises(UserInputError, match="transform must be"):
        s.load_files("r18.pt", "photos", architecture="resnet18", transform="imagenet")
    (tmp_path / "empty" / "tabby").mkdir(parents=True)
    with pytest.raises(UserInputError, match="image"):
        s.load_files("r18.pt", "empty", architecture="resnet18")


def test_a_names_file_names_the_classes_and_labels_the_folders(tmp_path):
    """A model trained on the user's own classes: a names file (one a line, in the outputs' order) names them and
    labels the folders named after them; a wrong count, a blank name or binary text is a message, nothing loaded."""
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pt")
    _photos(tmp_path, ["Sparrow", "eagle"], n=2, size=(64, 64))
    (tmp_path / "names.txt").write_text("owl\neagle\nsparrow\n\n")
    s = ExplorerState(pictures=None, data_root=str(tmp_path))
    s.load_files("r18.pt", "photos", architecture="resnet18", names="names.txt")
    assert s.class_names == ["owl", "eagle", "sparrow"] and sorted(set(s.labels.tolist())) == [1, 2]
    assert s.inputs.shape[2:] == (64, 64) and "names file" in s.info
    for text, match in (("owl\neagle\n", "has 2 names, the model has 3 outputs"),
                        ("owl\n\neagle\n", "empty line"), (b"\xff\xfe\x00", "not UTF-8")):
        (tmp_path / "bad.txt").write_bytes(text if isinstance(text, bytes) else text.encode())
        t = ExplorerState(pictures=None, data_root=str(tmp_path))
        with pytest.raises(UserInputError, match=match):
            t.load_files("r18.pt", "photos", architecture="resnet18", names="bad.txt")
        assert t.model is None


def test_the_form_offers_the_preparation_and_a_names_file(tmp_path):
    """The "Your files" form carries both choices to the load: "Prepare" as the weights were trained (ImageNet's
    crop and mean/std) or as RGB in [0, 1]; "Class names" a names file from the data folder."""
    from nnrules.widgets import Explorer

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pt")
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18-3.pt")
    _photos(tmp_path, ["tabby", "tench"], n=2, size=(96, 80))
    _photos(tmp_path / "own", ["eagle", "owl"], n=2, size=(64, 64))
    (tmp_path / "names.txt").write_text("owl\neagle\nsparrow\n")
    app = Explorer(model=None, threaded=False, data_root=str(tmp_path))
    panel = app.model_panel
    panel.source.value = "files"
    assert "names.txt" in panel.names.options and panel.prepare.value == "auto"
    panel.model_path.value, panel.architecture.value, panel.data_path.value = "r18.pt", "resnet18", "photos"
    assert panel.run_load(), panel.msg.value
    assert app.state.inputs.shape[2:] == (224, 224) and app.state.inputs.min() < -1
    assert "Prepared as the pretrained weights were" in panel.summary.value
    panel.prepare.value = "none"
    assert panel.run_load(), panel.msg.value
    assert app.state.inputs.shape[2:] == (80, 96) and app.state.inputs.min() >= 0 and not app.state.loaded.transform
    panel.model_path.value, panel.data_path.value, panel.names.value = "r18-3.pt", "own/photos", "names.txt"
    assert panel.run_load(), panel.msg.value
    assert app.state.class_names == ["owl", "eagle", "sparrow"] and sorted(set(app.state.labels.tolist())) == [0, 1]
    panel.names.value = "missing.txt"  # a names file that is not there: a message, the previous model kept
    assert not panel.run_load() and "missing.txt" in panel.msg.value
    assert app.state.class_names == ["owl", "eagle", "sparrow"]
