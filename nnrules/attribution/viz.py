"""Pictures of attributions and images: signed heatmaps, overlays, PNG bytes (no matplotlib needed).

The heatmap follows the book seed 003 Ch. 22.A.5: the channel sum, scaled by max |e| (or a high percentile
of it), centred so that 0 is white, positive red, negative blue (a "seismic"/"bwr" map).
"""
from __future__ import annotations

import operator

import io

import numpy as np
import torch

__all__ = ["heatmap", "image", "to_png", "grid", "colorbar", "outline"]

# blue → white → red, 5 anchor colours (bwr-like, darker ends like "seismic")
_ANCHORS = np.array([[0.0, 0.0, 0.3], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])


def _colormap(v: np.ndarray) -> np.ndarray:
    """``v`` in [-1, 1] → RGB float in [0, 1], shape ``v.shape + (3,)``."""
    pos = (np.clip(v, -1, 1) + 1) / 2 * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    return _ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def image(x, scale: int = 1) -> np.ndarray:
    """An input image ``(C, H, W)`` or ``(H, W)`` with values in [0, 1] → uint8 RGB ``(H·s, W·s, 3)``."""
    a = _np(x).astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("the image contains NaN or inf")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    lo, hi = (0.0, 1.0) if a.min() >= 0 and a.max() <= 1 else (a.min(), a.max())
    a = (a - lo) / ((hi - lo) or 1.0)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return _upscale((a * 255).round().astype(np.uint8), scale)


def outline(rgb: np.ndarray, boxes, scale: int = 1, color: tuple[int, int, int] = (255, 200, 0),
            width: int = 2) -> np.ndarray:
    """A copy of the uint8 RGB picture ``rgb`` with each box ``(top, left, size)`` — in input pixels, scaled by
    ``scale`` as :func:`image` scaled the picture — drawn as a square frame ``width`` pixels wide (clipped at
    the edges). Used to show where a patch rule's patch lies in its image."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"rgb must be a uint8 RGB picture (H, W, 3), got {a.dtype} {a.shape}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    try:
        boxes = [tuple(operator.index(v) for v in box) for box in boxes]
    except TypeError:
        raise ValueError(f"boxes must be a list of (top, left, size) integer triples, got {boxes!r}") from None
    if any(len(box) != 3 for box in boxes):
        raise ValueError(f"boxes must be a list of (top, left, size) integer triples, got {boxes!r}")
    out = a.copy()
    h, w = out.shape[:2]
    for box in boxes:
        top, left, size = (v * scale for v in box)
        if size <= 0:
            raise ValueError(f"a box's size must be positive, got {box!r}")
        t, l, b, r = max(top, 0), max(left, 0), min(top + size, h), min(left + size, w)
        if t >= b or l >= r:
            continue  # outside the picture
        k = min(width, b - t, r - l)
        out[t:t + k, l:r] = out[b - k:b, l:r] = color
        out[t:b, l:l + k] = out[t:b, r - k:r] = color
    return out


def _upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    return rgb if scale <= 1 else rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def colorbar(width: int = 160, height: int = 10) -> np.ndarray:
    """The legend of :func:`heatmap`'s colours: uint8 RGB ``(height, width, 3)``, −1 (left, against the
    target) through 0 (white) to +1 (right, for the target), in units of the map's scaling percentile."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 2 or isinstance(height, bool) \
            or not isinstance(height, int) or height < 1:
        raise ValueError(f"width must be an integer ≥ 2 and height ≥ 1, got width={width!r}, height={height!r}")
    row = _colormap(np.linspace(-1, 1, width))
    return (np.repeat(row[None], height, axis=0) * 255).round().astype(np.uint8)


def heatmap(attribution, image_: torch.Tensor | np.ndarray | None = None, *, percentile: float = 99.5,
            alpha: float = 0.6, scale: int = 1) -> np.ndarray:
    """A signed attribution ``(C, H, W)`` or ``(H, W)`` → uint8 RGB ``(H·s, W·s, 3)``.

    Channels are summed; values are divided by the ``percentile`` of |e| (so a few extreme pixels do not
    wash out the map) and clipped to [-1, 1]; 0 is white. With ``image_``, the map is blended over a grey
    version of the image with weight ``alpha`` where the map is strong.
    """
    e = _np(attribution).astype(np.float64)
    if not np.isfinite(e).all():
        raise ValueError("attribution contains NaN or inf: nothing honest can be drawn")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    if e.ndim == 3:
        e = e.sum(axis=0)
    if e.ndim != 2:
        raise ValueError(f"attribution must be (C, H, W) or (H, W), got shape {e.shape}")
    top = np.percentile(np.abs(e), percentile) if e.size else 0.0
    v = e / top if top > 0 else np.zeros_like(e)
    rgb = _colormap(v)
    if image_ is not None:
        grey = image(image_).astype(np.float64).mean(axis=2, keepdims=True) / 255
        if grey.shape[:2] != rgb.shape[:2]:
            raise ValueError(f"image {grey.shape[:2]} and attribution {rgb.shape[:2]} differ in size")
        w = alpha * np.clip(np.abs(v), 0, 1)[..., None]
        rgb = (1 - w) * grey + w * rgb
    return _upscale((rgb * 255).round().astype(np.uint8), scale)


def grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized RGB arrays into one image, white gaps of ``pad`` pixels."""
    if not images:
        raise ValueError("no images to tile")
    if not (isinstance(cols, int) and cols >= 1):
        raise ValueError(f"cols must be an integer >= 1, got {cols!r}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    h, w = images[0].shape[:2]
    if any(np.shape(img) != (h, w, 3) for img in images):
        raise ValueError(f"images must all be ({h}, {w}, 3) RGB arrays, got shapes {sorted({np.shape(i) for i in images})}")
    rows = -(-len(images) // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return out


def to_png(rgb: np.ndarray) -> bytes:
    """uint8 RGB ``(H, W, 3)`` → PNG bytes (for ``ipywidgets.Image`` or a file)."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a uint8 (H, W, 3) array (see viz.image / viz.heatmap), "
                         f"got {rgb.dtype} {rgb.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return buf.getvalue()
