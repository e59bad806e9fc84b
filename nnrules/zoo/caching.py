"""Where the zoo's weights come from: the user's cache, the weights shipped inside the package, or training.

A zoo model's weights are looked up in the cache (``$NNRULES_CACHE``, else ``$XDG_CACHE_HOME/nnrules``, else
``~/.cache/nnrules``), then among the weights the package ships (:data:`SHIPPED`, for models that take
minutes to train), and only then trained by the model's deterministic recipe and cached. A model's held-out
accuracy (:func:`evaluate`) and data parsed from text (:func:`cached_arrays`) are kept there too, so that a
load reads them instead of computing them again.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

__all__ = ["cache_dir", "cached_weights", "cached_arrays", "evaluate", "check_shipped", "shipped_dir", "SHIPPED"]


#: Weights the project trained and ships inside the package (a zoo model that takes minutes to train is
#: ready in seconds on first use), stored in float16 to keep the package small (loaded into the float32
#: model; the test accuracy is unchanged); ``python -m nnrules zoo-weights NAME`` retrains one and compares.
SHIPPED = ("mnist-cnn-v1", "fashion-cnn-v1")


def shipped_dir() -> Path:
    """The package's folder of shipped weights (``$NNRULES_SHIPPED`` overrides it: tests)."""
    return Path(os.environ.get("NNRULES_SHIPPED") or Path(__file__).parent / "weights")


def cached_weights(name: str, model: nn.Module, build: Callable[[nn.Module], nn.Module],
                   retrain: bool) -> tuple[nn.Module, bool]:
    """Load ``name``'s cached state into ``model``, else the weights shipped with the package, else train it
    with ``build`` and cache it (``retrain``: train whatever is there).

    A cache file that is corrupt or does not fit the model is rebuilt (with a warning), not a crash.
    Returns ``(model, trained_now)``.
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem such as 'digits-cnn-v1', got {name!r}")
    if not isinstance(model, nn.Module) or not callable(build):
        raise TypeError("cached_weights needs a torch.nn.Module and a function build(model) -> trained model")
    path = cache_dir() / f"{name}.pt"
    if path.exists() and not retrain:
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), False
        except Exception as err:  # corrupt or stale file
            warnings.warn(f"cached weights {path} could not be loaded ({err}); retraining", stacklevel=3)
    shipped = shipped_dir() / f"{name}.pt"
    if shipped.is_file() and not retrain:
        try:
            model.load_state_dict(torch.load(shipped, map_location="cpu", weights_only=True))
            return model.eval(), False
        except Exception as err:  # noqa: BLE001 — a damaged install: train as if nothing were shipped
            warnings.warn(f"shipped weights {shipped.name} could not be loaded ({err}); retraining", stacklevel=3)
    model = build(model)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a half file under the real name
    return model.eval(), True


def check_shipped(name: str, load: Callable[..., Any]) -> dict[str, float]:
    """Retrain zoo model ``name`` from scratch with ``load(name, retrain=True)`` (deterministic: fixed seeds and
    batch order) and compare it with the weights it ships: ``{"accuracy_shipped", "accuracy_retrained",
    "max_abs_weight_diff"}``. The retrained weights are not cached. ``nnrules.zoo.check_shipped(name)`` passes
    the zoo's ``load``."""
    key = next((k for k in SHIPPED if k.rsplit("-v", 1)[0] == name), None)
    if key is None:
        raise ValueError(f"{name!r} ships no weights; shipped: {[k.rsplit('-v', 1)[0] for k in SHIPPED]}")
    path = shipped_dir() / f"{key}.pt"
    if not path.is_file():
        raise ValueError(f"the shipped weights {path.name} are missing from this install")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as tmp, _env("NNRULES_CACHE", tmp):  # the user's cache is not touched
        shipped = load(name)  # an empty cache: the shipped weights
        fresh = load(name, retrain=True)
    diff = max(float((fresh.model.state_dict()[k].float() - v.float()).abs().max()) for k, v in saved.items())
    return {"accuracy_shipped": shipped.accuracy, "accuracy_retrained": fresh.accuracy, "max_abs_weight_diff": diff}


@contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def cache_dir() -> Path:
    """Where trained weights are kept: ``$NNRULES_CACHE``, else ``$XDG_CACHE_HOME/nnrules``, else
    ``~/.cache/nnrules``."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(os.environ.get("NNRULES_CACHE") or xdg / "nnrules")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_arrays(name: str, make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``make()``'s two arrays, kept as plain ``.npy`` arrays in the cache folder (``data/<name>.npz``, read with
    ``allow_pickle=False``) after the first call; made again when the file is missing or unreadable."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name for the cache (no folders), got {name!r}")
    path = cache_dir() / "data" / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x"], z["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    x, y = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{name}.{os.getpid()}.npz")
        np.savez(part, x=np.asarray(x), y=np.asarray(y))
        os.replace(part, path)
    except OSError:
        pass
    return np.asarray(x), np.asarray(y)


def evaluate(model: nn.Module, data: TensorDataset) -> float:
    """Held-out accuracy, kept in the cache folder under a digest of the weights and the data (``accuracy/``):
    a load of a zoo model that was evaluated before reads it (fashion-cnn: 3.5 s of its 4.3 s load) instead of
    running 10,000 test images again. In batches of 1,000 (bounded memory)."""
    if not isinstance(model, nn.Module) or not isinstance(data, TensorDataset) or len(data.tensors) != 2:
        raise TypeError(f"evaluate needs a torch.nn.Module and a TensorDataset of (inputs, labels), got "
                        f"{type(model).__name__} and {type(data).__name__}")
    x, y = data.tensors
    h = hashlib.blake2b(digest_size=16)
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(x.contiguous().numpy().tobytes())
    h.update(y.contiguous().numpy().tobytes())
    path = cache_dir() / "accuracy" / f"{h.hexdigest()}.json"
    try:
        return float(json.loads(path.read_text())["accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    model.eval()
    with torch.no_grad():
        right = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    accuracy = right / max(len(x), 1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_text(json.dumps({"accuracy": accuracy}))
        os.replace(part, path)
    except OSError:
        pass  # a read-only cache: evaluated again next time
    return accuracy
