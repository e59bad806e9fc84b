"""Trained models with their data, built from assets that ship inside installed packages.

``load(name)`` returns a :class:`ZooModel`. Weights are trained once, deterministically on the CPU,
and cached in ``$NNRULES_CACHE`` (default ``~/.cache/nnrules``). Adding a model is one function
decorated with :func:`register`.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["ZooModel", "load", "available", "register", "cache_dir", "DigitsCNN"]


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
    def deco(fn: Callable[[bool], ZooModel]) -> Callable[[bool], ZooModel]:
        _REGISTRY[name] = fn
        return fn
    return deco


def available() -> list[str]:
    return list(_REGISTRY)


def load(name: str = "digits-cnn", retrain: bool = False) -> ZooModel:
    """The zoo model ``name`` (trained on first use and cached)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown zoo model {name!r}; available: {available()}")
    return _REGISTRY[name](retrain)


def cache_dir() -> Path:
    """Where trained weights are kept: ``$NNRULES_CACHE`` or ``~/.cache/nnrules``."""
    path = Path(os.environ.get("NNRULES_CACHE", Path.home() / ".cache" / "nnrules"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _evaluate(model: nn.Module, data: TensorDataset) -> float:
    model.eval()
    with torch.no_grad():
        x, y = data.tensors
        return float((model(x).argmax(1) == y).float().mean())


def train_classifier(model: nn.Module, train: TensorDataset, epochs: int, lr: float, seed: int,
                     batch_size: int = 64, weight_decay: float = 0.0) -> nn.Module:
    """Deterministic Adam training with cross-entropy (fixed seed, fixed batch order)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
    return model.eval()


def cached_weights(name: str, model: nn.Module, build: Callable[[nn.Module], nn.Module],
                   retrain: bool) -> tuple[nn.Module, bool]:
    """Load ``name``'s cached state into ``model`` or train it with ``build`` and cache it.

    A cache file that is corrupt or does not fit the model is rebuilt (with a warning), not a crash.
    Returns ``(model, trained_now)``.
    """
    path = cache_dir() / f"{name}.pt"
    if path.exists() and not retrain:
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), False
        except Exception as err:  # corrupt or stale file
            warnings.warn(f"cached weights {path} could not be loaded ({err}); retraining", stacklevel=3)
    model = build(model)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a half file under the real name
    return model.eval(), True


class DigitsCNN(nn.Module):
    """The ExplaiNN paper's MNIST shape (seed 000 Sec. 3.2): two conv layers, one dense layer, output.

    Input ``(B, 1, H, W)``; ``width`` is H = W (8 for scikit-learn digits, 28 for MNIST).
    """

    def __init__(self, width: int = 8, channels: tuple[int, int] = (16, 32), hidden: int = 64,
                 n_classes: int = 10) -> None:
        super().__init__()
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
