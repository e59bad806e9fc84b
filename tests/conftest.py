import os

import pytest
import torch
from torch import nn

import nnrules

# the tests time and order the pictures' computation: no detail is read from an earlier run's disk cache
# (the cache's own tests pass it a folder of their own)
os.environ.setdefault("NNRULES_PICTURES", "off")


@pytest.fixture(scope="session")
def digits():
    """The real embedded default: digits-cnn trained on scikit-learn's handwritten digits."""
    return nnrules.zoo.load("digits-cnn")


class TinyNet(nn.Module):
    """Conv → in-place ReLU → pool → linear: small enough to check by hand."""

    def __init__(self, inplace: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveMaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.act(self.conv(x)))))


@pytest.fixture
def tiny():
    return TinyNet()


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(37, 1, 6, 6, generator=g), torch.randint(0, 4, (37,), generator=g)


def state_copy(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for the device tests (e.g. cuda)")


@pytest.fixture(scope="session")
def device(request):
    """The device the device tests put models on: ``pytest --device cuda`` on a GPU machine."""
    name = request.config.getoption("--device")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"--device {name} was asked for but torch sees no CUDA device")
    return dev
