"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT): 70,000 real 28×28 grey photos of 10 kinds of products,
read from the four standard IDX files — Debian's ``dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``; any folder with them works through ``$NNRULES_FASHION_MNIST``.
Nothing is downloaded.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["fashion_mnist_dir", "read_idx", "load_fashion_mnist", "FASHION_CLASSES"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
          "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class FashionMnistMissing(ImportError, ValueError):
    """The data are not where they were looked for (an ImportError as for a missing package; a ValueError for a
    folder given that lacks them)."""


def fashion_mnist_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding the four files: ``folder``, else ``$NNRULES_FASHION_MNIST`` if set, else Debian's; an
    error that says how to get them if it lacks them."""
    env = str(folder) if folder is not None else os.environ.get("NNRULES_FASHION_MNIST")
    folder = Path(env).expanduser() if env else DEBIAN_DIR
    missing = [f for f in _FILES.values() if not ((folder / f).is_file() or (folder / f"{f}.gz").is_file())]
    if missing:
        where = repr(env) if env else str(DEBIAN_DIR)
        raise FashionMnistMissing(
            f"fashion-cnn needs the Fashion-MNIST files, and {where} lacks {', '.join(missing)}(.gz). On Debian/Ubuntu: "
            "sudo apt-get install dataset-fashion-mnist (make does it where it may); elsewhere put the four IDX files "
            "(github.com/zalandoresearch/fashion-mnist, data/fashion) in a folder and set NNRULES_FASHION_MNIST to it")
    return folder


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (``.gz`` or raw) as a uint8 array of the shape its header gives; a clear error for anything
    else (wrong magic, a type other than unsigned bytes, a size that does not match)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"IDX file {str(p)!r} does not exist or is not a regular file")
    try:
        raw = gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError) as err:
        raise ValueError(f"{p.name!r} cannot be read: {type(err).__name__}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise ValueError(f"{p.name!r} is not an IDX file of unsigned bytes (magic 0x0000080N)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{p.name!r} is damaged: its header says {dims} ({int(np.prod(dims))} bytes), "
                         f"it holds {len(body)}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def load_fashion_mnist(folder: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train images (60000, 1, 28, 28) float32 in [0, 1], train labels int64, test images, test labels)``."""
    root = fashion_mnist_dir(folder)

    def one(key: str) -> np.ndarray:
        f = root / _FILES[key]
        return read_idx(f if f.is_file() else f.with_name(f.name + ".gz"))

    xtr, ytr, xte, yte = (one(k) for k in ("train_x", "train_y", "test_x", "test_y"))
    if xtr.shape[1:] != (28, 28) or xte.shape[1:] != (28, 28) or len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(f"the Fashion-MNIST files in {str(root)!r} do not fit together: images {xtr.shape} / "
                         f"{xte.shape}, labels {ytr.shape} / {yte.shape}")
    img = lambda a: (a.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    return img(xtr), ytr.astype(np.int64), img(xte), yte.astype(np.int64)
