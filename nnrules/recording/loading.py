"""Turning what users have (datasets, loaders, arrays, image folders, model files) into batches."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["as_loader", "load_model", "image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def as_loader(data: Any, batch_size: int = 256) -> tuple[DataLoader, int]:
    """A DataLoader over ``data`` in a fixed order, and its number of samples.

    ``data`` may be a ``Dataset`` (items ``x`` or ``(x, y)``), a ``DataLoader`` (used as is; it must
    not shuffle), a pair ``(inputs, labels)`` of tensors/arrays, a single tensor/array of inputs, or
    a path to a folder of images (see :func:`image_folder`).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(data, (str, os.PathLike)):
        data = image_folder(data)
    if isinstance(data, DataLoader):
        try:
            n = len(data.dataset)  # type: ignore[arg-type]
        except TypeError as err:
            raise TypeError("the DataLoader's dataset must have a length (an iterable-style dataset "
                            "cannot be preallocated); pass a map-style Dataset") from err
        if isinstance(data.sampler, torch.utils.data.RandomSampler):
            raise ValueError("the DataLoader shuffles; recorded rows would not match dataset order. "
                             "Pass shuffle=False or the dataset itself")
        loader = data
    else:
        if isinstance(data, tuple) and len(data) == 2:
            x, y = _as_tensor(data[0], "inputs"), _as_tensor(data[1], "labels")
            if len(x) != len(y):
                raise ValueError(f"inputs have {len(x)} samples but labels have {len(y)}")
            data = TensorDataset(x, y.long())
        elif isinstance(data, (torch.Tensor, np.ndarray)):
            data = TensorDataset(_as_tensor(data, "inputs"))
        elif not isinstance(data, Dataset):
            raise TypeError("data must be a Dataset, DataLoader, (inputs, labels) pair, a tensor or "
                            f"array of inputs, or an image folder path; got {type(data).__name__}")
        n = len(data)  # type: ignore[arg-type]
        loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    if n == 0:
        raise ValueError("the data set is empty: record needs at least one sample")
    return loader, n


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(inputs, labels-or-None)`` from a batch as a DataLoader yields it."""
    if isinstance(batch, (list, tuple)):
        if len(batch) == 1:
            return batch[0], None
        return batch[0], torch.as_tensor(batch[1])
    return batch, None


def image_folder(root: str | os.PathLike, transform=None, size: int | tuple[int, int] | None = None):
    """A ``torchvision.datasets.ImageFolder`` (one sub-folder per class) with a checked layout.

    Without ``transform``, images are converted to tensors in [0, 1], resized to ``size`` if given.
    """
    from torchvision import datasets, transforms

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a folder")
    n_images = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if n_images == 0:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(root)!r}; "
                         "expected one sub-folder per class holding image files")
    if transform is None:
        steps = [transforms.Resize(size)] if size is not None else []
        transform = transforms.Compose(steps + [transforms.ToTensor()])
    try:
        return datasets.ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, RuntimeError) as err:
        raise ValueError(f"{str(root)!r} is not an image folder with one sub-folder per class: {err}") from err


def load_model(path: str | os.PathLike, map_location: str = "cpu") -> nn.Module:
    """Load a TorchScript file or a whole module saved with ``torch.save(model, path)``.

    Only load files you trust: a pickled module runs code when it is loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch ≥ 2.10 deprecates TorchScript; users still have such files
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=map_location)
    except Exception:  # not TorchScript: try a pickled module
        pass
    try:
        obj = torch.load(str(path), map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"{str(path)!r} is neither a TorchScript file nor a torch.save'd model: {err}") from err
    if isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} holds a state_dict, not a model: build the module in Python "
                         "and call module.load_state_dict(torch.load(path)), then pass the module")
    if not isinstance(obj, nn.Module):
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj


def iterate_inputs(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    for batch in loader:
        yield split_batch(batch)
