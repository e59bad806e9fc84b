"""Turning what users have (datasets, loaders, arrays, image folders, model files) into batches."""
from __future__ import annotations

import functools
import io
import os
import pickle
import stat
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ._archives import ArchiveDamaged, ArchiveRefused, ArchiveTooCostly, check_export_archive, file_kind
from ._trial import trial_load

__all__ = ["as_loader", "load_model", "image_folder", "scan_images", "IMAGE_EXTENSIONS", "UnsafeFileError",
           "MAX_SCAN_FILES", "MAX_SCAN_SECONDS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".gif", ".tif", ".tiff", ".webp")
#: A folder scan stops with a message after this many entries or seconds.
MAX_SCAN_FILES = 200_000
MAX_SCAN_SECONDS = 60.0


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
            if y.is_floating_point() and not torch.equal(y, y.round()):
                raise ValueError("labels must be class indices (integers), got fractional values")
            data = TensorDataset(x, y.long())
        elif isinstance(data, (torch.Tensor, np.ndarray)):
            data = TensorDataset(_as_tensor(data, "inputs"))
        elif not isinstance(data, Dataset):
            raise TypeError("data must be a Dataset, DataLoader, (inputs, labels) pair, a tensor or "
                            f"array of inputs, or an image folder path; got {type(data).__name__}")
        n = len(data)
        # its own generator: iterating a DataLoader draws a seed from the global RNG otherwise
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, generator=torch.Generator())
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


def scan_images(folder: str | os.PathLike, limit: int | None = None, show: Callable[[Path], str] = str,
                max_files: int = MAX_SCAN_FILES, max_seconds: float = MAX_SCAN_SECONDS,
                skipped: list[str] | None = None) -> tuple[list[tuple[Path, int]], list[str]]:
    """``(image path, class index)`` pairs from ``folder``'s class sub-folders, and the class names (sorted).

    Symbolic links are not followed (a link cycle cannot hang it, a link cannot lead out of the folder);
    class folders without any image are not classes (listed in ``skipped``, like the rest); hidden entries
    are skipped, and so are entries that are not regular files (a FIFO named ``x.png``
    would block the reader forever) — appended to ``skipped`` as ``show(path)`` if a list is given; the scan
    stops with a ``ValueError`` past ``max_files`` entries or ``max_seconds``. With ``limit``, at most that
    many images, evenly spaced so that every class keeps some. ``show`` turns a path into the text error
    messages use (the app shows paths relative to its data root).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder {show(folder)!r} does not exist or is not a folder")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.is_symlink()
                     and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"{show(folder)!r} has no class sub-folders: put the images of each class in a "
                         "sub-folder named after the class")
    start, seen, found = time.monotonic(), 0, []
    for ci, cls in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(folder / cls, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                seen += 1
                if seen > max_files or time.monotonic() - start > max_seconds:
                    raise ValueError(f"{show(folder)!r} is too large to scan (more than {max_files:,} entries or "
                                     f"{max_seconds:.0f} s): choose a smaller folder")
                p = Path(dirpath) / f
                if p.suffix.lower() not in IMAGE_EXTENSIONS or f.startswith("."):
                    continue
                try:
                    regular = stat.S_ISREG(os.lstat(p).st_mode)  # not a link, FIFO, socket or device
                except OSError:
                    regular = False
                if regular:
                    found.append((p, ci))
                elif skipped is not None and not p.is_symlink():
                    skipped.append(f"{show(p)} (not a regular file)")
    if not found:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {show(folder)!r}")
    used = sorted({c for _, c in found})
    if len(used) < len(classes):  # a folder without images (only a readme, say) is not a class
        if skipped is not None:
            skipped += [f"{show(folder / classes[c])}/ (no images: not a class)"
                        for c in range(len(classes)) if c not in used]
        index = {c: i for i, c in enumerate(used)}
        found, classes = [(p, index[c]) for p, c in found], [classes[c] for c in used]
    if limit is not None and len(found) > limit:  # keep every class: take evenly spaced images
        step = len(found) / limit
        found = [found[int(i * step)] for i in range(limit)]
    return found, classes


def image_folder(root: str | os.PathLike, transform=None, size: int | tuple[int, int] | None = None,
                 max_pixels: int | None = None):
    """A ``torchvision.datasets.ImageFolder`` (one sub-folder per class) from a bounded scan.

    The files come from :func:`scan_images` (no symbolic links followed, only regular files, entry and time
    limits), not from torchvision's walk (which follows links: a link cycle never returns). Each image is
    read by :func:`nnrules.recording.images.read_image`: its size checked from the header against
    ``max_pixels`` before decoding, transparency on white. Without ``transform``, images are converted to
    RGB tensors in [0, 1], resized to ``size`` if given (an int resizes the shorter side, as torchvision does).
    """
    from torchvision import datasets, transforms

    from .images import MAX_IMAGE_PIXELS, read_image

    files, classes = scan_images(root)
    if transform is None:
        steps = [transforms.Resize(size)] if size is not None else []
        transform = transforms.Compose(steps + [transforms.ToTensor()])
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels

    class _Scanned(datasets.ImageFolder):
        def find_classes(self, directory):
            return classes, {c: i for i, c in enumerate(classes)}

        def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
            return [(str(p), c) for p, c in files]

    return _Scanned(str(root), transform=transform, loader=functools.partial(read_image, max_pixels=limit))


class UnsafeFileError(ValueError):
    """A model file that can only be loaded by running code from it (unpickling, TorchScript), without
    ``trust=True``. ``what`` says in a few words what the file is (for messages that cannot offer trust)."""

    def __init__(self, message: str, what: str = "a file whose loading runs code from it") -> None:
        super().__init__(message)
        self.what = what


def _architecture(architecture: str | Callable[..., nn.Module], kwargs: dict) -> nn.Module:
    """A freshly built module: a zoo architecture (``"digits-cnn"``), a torchvision model name
    (``"resnet18"``) or a factory the caller passes (a callable, or ``"package.module:function"``)."""
    from ..registry import ARCHITECTURES  # the zoo registers its architectures there (nnrules.zoo)

    if isinstance(architecture, str) and architecture in ARCHITECTURES:
        model = ARCHITECTURES[architecture].target(**kwargs)
    elif callable(architecture):
        model = architecture(**kwargs)
    elif isinstance(architecture, str) and ":" in architecture:
        import importlib

        mod, _, fn = architecture.partition(":")
        try:
            model = getattr(importlib.import_module(mod), fn)(**kwargs)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"architecture {architecture!r}: cannot import {fn!r} from {mod!r} ({err})") from err
    elif isinstance(architecture, str):
        from torchvision import models

        names = models.list_models()
        if architecture not in names:
            import difflib

            close = difflib.get_close_matches(architecture, names, n=3)
            raise ValueError(f"architecture {architecture!r} is not a torchvision model"
                             + (f"; did you mean {close}?" if close else "; see torchvision.models.list_models()")
                             + " (or pass a factory function)")
        model = models.get_model(architecture, weights=None, **kwargs)
    else:
        raise TypeError(f"architecture must be a torchvision model name, 'module:function' or a callable, got "
                        f"{type(architecture).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"architecture {architecture!r} built a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(path: str | os.PathLike, architecture: str | Callable[..., nn.Module] | None = None, *,
               trust: bool = False, map_location: str | torch.device = "cpu",
               check: Callable[[], None] | None = None, **architecture_kwargs) -> nn.Module:
    """Load a model file without running code from it unless you say so.

    - A ``state_dict`` (``torch.save(model.state_dict(), path)``) with an ``architecture``: a zoo model
      name (``"digits-cnn"``), a torchvision model name (``"resnet18"``, built with ``weights=None`` and ``architecture_kwargs``, e.g.
      ``num_classes=10``), ``"package.module:function"`` or a callable that builds the module. The weights
      are read with ``torch.load(weights_only=True)``, which runs no code from the file.
    - A TorchScript archive (``torch.jit.save``) only with ``trust=True``: it holds code that runs when it is
      loaded and called. TorchScript modules take no forward hooks, so they cannot be recorded; save the
      state_dict instead. The kind of file is told from the zip's member names, before anything loads it.
    - A ``torch.export`` archive (``torch.export.save``, ``.pt2``): unflattened into a module with the
      original submodule names, so hooks and recording work. ``torch.export.load`` unpickles, evaluates and
      executes parts of an archive (see :mod:`nnrules.recording._archives`); without ``trust=True`` every
      member is checked first and an archive that is not a plain program of ATen operators on tensors is
      refused; one that passes is then loaded and run once on its sample inputs in a child process with a
      memory cap and a time limit (``check``, called while it runs, may raise to stop it: a Cancel button),
      and only then here. Export with a dynamic batch dimension (``dynamic_shapes``) to record in batches.
    - A whole pickled module (``torch.save(model, path)``) only with ``trust=True``: unpickling runs code
      from the file — only for files you made yourself. Without it the file is refused with what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist or is not a regular file")
    kind = file_kind(path)
    if kind == "export":
        if not trust:
            _check_exported(path)
        if architecture is not None:
            raise ValueError(f"{path.name!r} is a torch.export archive, which holds its own architecture: "
                             "drop architecture=")
        return _load_exported(path, trial=not trust, check=check)
    if kind == "torchscript":
        if not trust:  # torch.jit.load compiles the file's code and runs its __setstate__ methods
            raise UnsafeFileError(
                f"{path.name!r} is a TorchScript archive: its code runs when it is loaded and called, and a "
                "TorchScript module takes no forward hooks, so it cannot be recorded anyway. Save the weights — "
                "torch.save(model.state_dict(), path) — and load them with load_model(path, architecture=...); "
                "or, for a file you made yourself, pass trust=True (CLI: --trust-pickle)",
                what="a TorchScript archive (its code runs when it is loaded)")
        if architecture is not None:
            raise ValueError(f"{path.name!r} is a TorchScript archive, which holds its own architecture: "
                             "drop architecture=")
        with warnings.catch_warnings():  # torch ≥ 2.10 deprecates TorchScript; users still have such files
            warnings.simplefilter("ignore", FutureWarning)
            try:
                return torch.jit.load(str(path), map_location=map_location)
            except Exception as err:  # noqa: BLE001 — a broken archive
                raise ValueError(f"{path.name!r} is a TorchScript archive that could not be loaded: "
                                 f"{str(err).splitlines()[0]}") from err
    try:
        obj = torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():  # a broken file, not a pickle of Python objects
            raise ValueError(f"{path.name!r} is neither a TorchScript archive nor a file saved with torch.save "
                             "(or it is damaged)") from None
        if not trust:
            raise UnsafeFileError(
                f"{path.name!r} holds pickled Python objects (a whole module saved with torch.save(model, path)); "
                "loading it would run code from the file. Save the weights instead — "
                "torch.save(model.state_dict(), path) — and load them with "
                "load_model(path, architecture=<a zoo or torchvision model name, 'module:function' or a callable>); "
                "or, for a file you made yourself, pass trust=True (CLI: --trust-pickle)",
                what="a whole pickled module (unpickling runs code from the file)") from err
        try:
            obj = torch.load(str(path), map_location=map_location, weights_only=False)
        except (AttributeError, ModuleNotFoundError) as err2:  # the module's class is not importable here
            raise ValueError(
                f"{path.name!r} could not be unpickled: {err2}. A whole module saved with torch.save(model, path) "
                "needs its class importable under the same name when it is loaded (a class defined in a script's "
                "__main__ or a notebook is not): import or define that class first, or better save the weights "
                "with torch.save(model.state_dict(), path) and load them with load_model(path, "
                "architecture=YourClass)") from err2
        except Exception as err2:
            raise ValueError(f"{path.name!r} could not be unpickled: {err2}") from err2
    except Exception as err:  # noqa: BLE001 — torch's first line says what is wrong; its advice is not for users
        raise ValueError(f"{path.name!r} is neither a TorchScript archive nor a file saved with torch.save: "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if isinstance(obj, nn.Module):
        if architecture is not None:
            raise ValueError(f"{path.name!r} holds a whole module: drop architecture=")
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if architecture is None:
            raise ValueError(f"{path.name!r} holds a state_dict (weights only): name the architecture, e.g. "
                             "load_model(path, architecture='resnet18', num_classes=10) or a factory "
                             "'package.module:function' or a callable")
        model = _architecture(architecture, _heads_from_keys(architecture, obj, architecture_kwargs))
        try:
            model.load_state_dict(obj)
        except RuntimeError as err:
            raise ValueError(f"the weights in {path.name!r} do not fit architecture {architecture!r}: "
                             f"{str(err).splitlines()[0]} …") from err
        return model.to(map_location).eval()
    raise ValueError(f"{path.name!r} holds a {type(obj).__name__}, not a model or a state_dict")


#: torchvision architectures built with auxiliary classifiers by default, and the key prefix of those heads
_AUX = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}


def _heads_from_keys(architecture, weights: dict, kwargs: dict) -> dict:
    """GoogLeNet's and Inception v3's build arguments read from the weights, not guessed: ``aux_logits`` is whether
    the state_dict holds the auxiliary heads (torchvision's pretrained files do not), ``transform_input`` is True
    for the pretrained shape (1000 outputs: torchvision's ImageNet weights re-normalise their input, as their
    builder sets) and False otherwise; ``init_weights=False`` (the weights replace them). The caller's own
    ``architecture_kwargs`` win."""
    if not isinstance(architecture, str) or architecture not in _AUX:
        return kwargs
    out = {"aux_logits": any(str(k).startswith(_AUX[architecture]) for k in weights), "init_weights": False}
    fc = weights.get("fc.weight")
    out["transform_input"] = isinstance(fc, torch.Tensor) and fc.shape[0] == 1000
    return {**out, **kwargs}


def _check_exported(path: Path) -> None:
    """Refuse a ``torch.export`` archive that ``torch.export.load`` would run code from (before it reads it)."""
    try:
        check_export_archive(path)
    except ArchiveDamaged as err:
        raise ValueError(f"{path.name!r} is a torch.export archive that cannot be read: {err}") from None
    except ArchiveTooCostly as err:
        raise ValueError(f"{path.name!r} is a torch.export archive that would take too long or too much memory to "
                         f"read: {err}. Re-export the module, or save its state_dict instead") from None
    except ArchiveRefused as err:
        raise UnsafeFileError(
            f"{path.name!r} is a torch.export archive that torch.export.load would run code from: {err}. "
            "Re-export a plain module (no custom objects), save the state_dict instead, or pass trust=True "
            "for a file you made yourself", what=f"a torch.export archive that would run code when loaded ({err})"
        ) from None


def _load_exported(path: Path, trial: bool = True, check: Callable[[], None] | None = None) -> nn.Module:
    """A ``torch.export`` archive as a module with hooks (see :func:`load_model`); with ``trial`` its bytes are
    first loaded and run once in a child process with memory and time limits (:mod:`._trial`), and only bytes
    that passed are loaded here."""
    data = path.read_bytes()
    if trial:
        trial_load(data, path.name, check=check or (lambda: None))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
            return torch.export.unflatten(program)
    except Exception as err:  # noqa: BLE001 — a broken or incompatible archive
        raise ValueError(f"{path.name!r} is a torch.export archive that could not be loaded: "
                         f"{str(err).splitlines()[0]}") from err


def iterate_inputs(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    for batch in loader:
        yield split_batch(batch)
