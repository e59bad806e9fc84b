"""Real photos as CIFAR-10-sized inputs: scikit-image's photos resized and cropped (the cifar10-cnn's data)."""
from __future__ import annotations

import numpy as np

def photo(img: np.ndarray, size: int = 32) -> np.ndarray:
    """An RGB uint8 photo (H, W, 3) or grey (H, W) → float32 (3, size, size) in [0, 1] (bilinear, antialiased)."""
    from PIL import Image

    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    small = Image.fromarray(np.ascontiguousarray(img[..., :3])).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def photo_crops(img: np.ndarray, n: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """``n`` random square crops (side 25–100% of the short side) of a photo, each resized to ``size``."""
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.25, 1.0) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = img[top: top + side, left: left + side]
        out.append(photo(crop[:, ::-1] if rng.random() < 0.5 else crop, size))
    return np.stack(out)


# scikit-image's photos, with their CIFAR-10 class where they have one (-1: none).
SKIMAGE_PHOTOS = {"chelsea": 3, "astronaut": -1, "coffee": -1, "rocket": -1, "camera": -1, "coins": -1,
                   "clock": -1, "moon": -1, "grass": -1, "gravel": -1, "brick": -1}


