"""A user's weights and images, read without trust: a state_dict of a zoo or torchvision architecture (ImageNet's
names and transforms for weights of the pretrained shape), an image folder or a saved data set under the data
root — every image checked from its header before it is decoded. :class:`~.loading.LoadedModel` calls these."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

import nnrules.zoo as zoo
from nnrules.recording._archives import file_kind
from nnrules.recording.images import UnreadableImage, image_size, read_image
from nnrules.recording.loading import UnsafeFileError, load_model
from nnrules.recording.pretrained import folder_classes, imagenet_names, weights_transform

from .files import DataRoot

__all__ = ["load_data", "load_weights", "pretrained", "output_width", "read_names", "fit_channels", "listing",
           "MAX_SAMPLES", "MAX_LOAD_BYTES", "MAX_NAMES_BYTES"]

#: At most this many samples of a user's image folder are loaded.
MAX_SAMPLES = 5000
#: The inputs of one load (float32) take at most this much memory; decoding adds one image at full size
#: (at most MAX_IMAGE_PIXELS × 4 bytes, 400 MB) at a time.
MAX_LOAD_BYTES = 2**30


def load_data(data_root: DataRoot, path: Path, size: int | None, prep: Callable | None = None,
               categories: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """(inputs, labels, class names, skipped files with why) of at most MAX_SAMPLES samples from a data set
    file or an image folder (scanned by the data root: no links followed, bounded). Images are checked from
    their headers first (regular files, at most MAX_IMAGE_PIXELS each, MAX_LOAD_BYTES in all); unreadable
    ones are skipped and listed, paths relative to the data root."""
    shown = data_root.show(path)
    if path.is_file():
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 — torch's text names paths and offers to unpickle: not shown
            why = "it holds pickled Python objects" if "global" in str(err).lower() else "it cannot be read"
            raise ValueError(f"{shown!r} is not a data set saved with torch.save((inputs, labels), path): "
                             f"{why}") from None
        if not (isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(t, torch.Tensor) for t in obj)
                and obj[0].dim() == 4 and len(obj[0]) == len(obj[1]) > 0):
            raise ValueError(f"{shown!r} must hold a pair (inputs (n, C, H, W), labels (n,)) of tensors")
        x, y = obj[0][:MAX_SAMPLES].float(), obj[1][:MAX_SAMPLES].long()
        return x, y, list(categories or [str(c) for c in range(int(y.max()) + 1)]), []
    skipped: list[str] = []
    files, classes = data_root.image_files(path, MAX_SAMPLES, skipped)
    if categories is not None:  # folders named after ImageNet classes: their labels are ImageNet's indices
        index = folder_classes(classes, categories)
        files, classes = [(f, index[c]) for f, c in files], list(categories)
    show = data_root.show
    # one pass over the headers (nothing decoded): sizes, the memory the inputs will take, what is unreadable
    sized = []
    for f, c in files:
        try:
            sized.append((f, c, image_size(f, show=show)))
        except UnreadableImage as err:
            skipped.append(f"{err.shown} ({err.reason})")
    if not sized:
        raise ValueError(f"no readable images in {shown!r}: " + listing(skipped))
    if prep is not None:  # the weights' transforms give every image one size (their crop)
        crop = getattr(prep, "crop_size", [224])[0]
        size, shapes = None, {(int(crop), int(crop))}
    else:
        shapes = {(int(size), int(size)) if size else wh for _, _, wh in sized}
    if len(shapes) > 1:
        raise ValueError(f"the images in {shown!r} differ in size ({', '.join(f'{w}×{h}' for w, h in sorted(shapes)[:4])}"
                         "…): give an image size so that they are resized")
    w, h = shapes.pop()
    need = len(sized) * 3 * w * h * 4
    if need > MAX_LOAD_BYTES:
        raise ValueError(f"{len(sized)} images of {w}×{h} pixels in {shown!r} would take {need / 2**30:.1f} GB as "
                         f"inputs; at most {MAX_LOAD_BYTES / 2**30:.1f} GB are loaded: give a smaller image size")
    images, labels = [], []
    for f, c, _ in sized:
        try:
            im = read_image(f, size=int(size) if size else None, show=show)
        except UnreadableImage as err:
            skipped.append(f"{err.shown} ({err.reason})")
            continue
        images.append(prep(im).float() if prep is not None else
                      torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1))
        labels.append(c)
    if not images:
        raise ValueError(f"no readable images in {shown!r}: " + listing(skipped))
    return torch.stack(images), torch.tensor(labels), classes, skipped



def pretrained(model: nn.Module, architecture: str) -> tuple[list[str] | None, Callable | None]:
    """(ImageNet's class names, the weights' transforms) for a torchvision architecture whose weights have the
    pretrained shape (1000 outputs), else (None, None)."""
    names = imagenet_names(architecture) if architecture and architecture not in zoo.ARCHITECTURES else None
    if names is None:
        return None, None
    if output_width(model) != len(names):
        return None, None
    return names, weights_transform(architecture)


def output_width(model: nn.Module) -> int:
    """The number of outputs of a classifier: its last dense layer's (or 1 × 1 conv's, SqueezeNet) width."""
    outs = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not outs:
        return 0
    return outs[-1].out_features if isinstance(outs[-1], nn.Linear) else outs[-1].out_channels


#: A names file (one class name a line) is at most this large.
MAX_NAMES_BYTES = 2 ** 20


def read_names(path: Path, shown: str, n_classes: int) -> list[str]:
    """The class names of a text file, one a line (blank lines at the end ignored), exactly ``n_classes`` of them:
    else ValueError saying how many there are and how many the model has."""
    if path.stat().st_size > MAX_NAMES_BYTES:
        raise ValueError(f"the names file {shown!r} is larger than {MAX_NAMES_BYTES // 2 ** 20} MB: one class name a "
                         "line is expected")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"the names file {shown!r} is not UTF-8 text: one class name a line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    if len(names) != n_classes:
        raise ValueError(f"the names file {shown!r} has {len(names)} names, the model has {n_classes} outputs: "
                         "one name a line, in the order of the outputs")
    if any(not n for n in names):
        raise ValueError(f"the names file {shown!r} has an empty line among its names (line "
                         f"{names.index('') + 1})")
    return names


def load_weights(path: Path, architecture: str, check: Callable[[], None] = lambda: None) -> nn.Module:
    """``load_model`` without trust; a torchvision architecture gets ``num_classes`` from the weights; ``check``
    (Cancel) stops the trial of a ``.pt2``."""
    if not architecture:
        try:
            model = load_model(path, check=check)  # refuses before loading what would run code (pickles, TorchScript)
        except UnsafeFileError as err:
            raise ValueError(f"{path.name!r} is {err.what}; the app never runs code from a file. Save the weights "
                             "with torch.save(model.state_dict(), path) and choose their architecture (a zoo or "
                             "torchvision model name)") from None
        except ValueError as err:
            raise ValueError(f"{err} — in the app: choose the architecture (a zoo or torchvision model name) "
                             "for a file of weights") from err
        return model
    n_classes: int | None = None  # a torchvision architecture is built with the weights' number of classes
    if architecture not in zoo.ARCHITECTURES and file_kind(path) in ("zip", "other"):
        try:
            weights = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 — load_model below says what is wrong with the file
            weights = None
        if isinstance(weights, dict):  # the class layer: the last dense weight, or a 1 × 1 conv's (SqueezeNet)
            last = [v for k, v in weights.items() if isinstance(v, torch.Tensor) and str(k).endswith("weight")
                    and (v.dim() == 2 or (v.dim() == 4 and tuple(v.shape[2:]) == (1, 1)))]
            if last:
                n_classes = int(last[-1].shape[0])
    try:
        if n_classes is None:
            return load_model(path, architecture)
        return load_model(path, architecture, num_classes=n_classes)
    except UnsafeFileError as err:
        raise ValueError(f"{path.name!r} is {err.what}; the app never runs code from a file. Save the weights "
                         "with torch.save(model.state_dict(), path)") from None


def listing(skipped: list[str], most: int = 5) -> str:
    """``"a.png (reason), b.png (reason) and 3 more"``."""
    more = len(skipped) - most
    return ", ".join(skipped[:most]) + (f" and {more} more" if more > 0 else "")


def fit_channels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Image folders load as RGB; a model made for grey images gets their channel mean instead."""
    with torch.no_grad():
        try:
            model.eval()(x[:1])
            return x
        except RuntimeError:
            pass
        grey = x.mean(1, keepdim=True)
        try:
            model(grey[:1])
            return grey
        except RuntimeError:
            return x  # let the layer table report the model's own error
