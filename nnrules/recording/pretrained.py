"""What torchvision knows of its pretrained weights, offline: ImageNet's 1000 category names and the weights' own
preprocessing (resize, centre crop, mean and std), and image folders named after ImageNet classes.

No weights are downloaded: the names and the transforms are in torchvision's weights enums (``meta["categories"]``,
``transforms()``), which ship with the package. They apply to weights *of the pretrained shape* (1000 outputs);
a torchvision architecture trained by the user on other classes keeps its own names.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Sequence

__all__ = ["imagenet_names", "weights_transform", "folder_classes", "describe_transform"]


def _default_weights(architecture: str) -> Any | None:
    """torchvision's recommended ImageNet weights enum member for ``architecture`` (None when it has none)."""
    if not isinstance(architecture, str):
        raise ValueError(f"architecture must be a torchvision model name such as 'resnet50', got {architecture!r}")
    if not architecture:
        return None
    from torchvision import models

    if architecture not in models.list_models():
        return None
    try:
        weights = models.get_model_weights(architecture)
    except (ValueError, KeyError):
        return None
    member = getattr(weights, "DEFAULT", None)
    if member is None or len(member.meta.get("categories") or ()) != 1000:
        return None
    return member


def imagenet_names(architecture: str) -> list[str] | None:
    """ImageNet's 1000 class names in the order of a torchvision ``architecture``'s pretrained outputs (``"tench"``,
    ``"goldfish"``, …), or None when torchvision has no ImageNet weights for it."""
    member = _default_weights(architecture)
    return None if member is None else list(member.meta["categories"])


def weights_transform(architecture: str) -> Callable | None:
    """The preprocessing of ``architecture``'s recommended ImageNet weights (a callable from a PIL image to a
    normalised ``(3, H, W)`` tensor: resize, centre crop, scale to [0, 1], subtract the mean, divide by the std),
    or None."""
    member = _default_weights(architecture)
    return None if member is None else member.transforms()


def describe_transform(transform: Any) -> str:
    """"resize 232, centre crop 224, ImageNet mean/std" for torchvision's ImageClassification; its repr otherwise."""
    if not callable(transform):
        raise TypeError(f"transform must be a callable (a torchvision transform), got {type(transform).__name__}")
    crop, resize = getattr(transform, "crop_size", None), getattr(transform, "resize_size", None)
    mean = getattr(transform, "mean", None)
    if crop is None or resize is None:
        return repr(transform)
    norm = "ImageNet's mean and std" if mean is not None and [round(m, 3) for m in mean] == [0.485, 0.456, 0.406] \
        else f"mean {mean}, std {getattr(transform, 'std', None)}"
    return f"resize {resize[0]}, centre crop {crop[0]}, {norm}"


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def folder_classes(folders: Sequence[str], categories: Sequence[str]) -> list[int]:
    """The category index of each folder name: a category's name (case, spaces, ``_`` and ``-`` ignored:
    ``golden_retriever`` → 207) or its index (``"281"``). ValueError naming every folder that matches nothing,
    with the closest category names."""
    index = {_key(c): i for i, c in enumerate(categories)}
    out, missing = [], []
    for name in folders:
        k = _key(name)
        if k.isdigit() and int(k) < len(categories):
            out.append(int(k))
        elif k in index:
            out.append(index[k])
        else:
            close = difflib.get_close_matches(k, list(index), n=3, cutoff=0.6)
            missing.append(f"{name!r}" + (f" (closest: {', '.join(repr(categories[index[c]]) for c in close)})"
                                          if close else ""))
    if missing:
        raise ValueError(f"folders {', '.join(missing)} are not ImageNet classes of the pretrained weights: name each "
                         "folder after its class (e.g. 'tabby', 'golden retriever') or its index (0–999)")
    return out
