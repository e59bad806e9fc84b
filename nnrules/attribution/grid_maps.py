"""Conv units on the input grid (seed 000's MNIST reading: a rule's tail units sit close together on the image).

A unit of a conv layer recorded per position (``reduce="none"``) is named ``"layer:c5@3,4"``: channel 5 at
row 3, column 4 of the layer's ``(H, W)`` map. Its receptive-field centre on an ``(H_in, W_in)`` input is
the centre of that cell scaled to the input, ``((r + ½)·H_in/H − ½, (c + ½)·W_in/W − ½)`` (exact for the
"same"-padded convolutions and stride-2 pools of these networks; a shift of at most the layers' padding
otherwise). :func:`mark_units` draws the centres on a picture; :func:`firing_map` shows where the units
fire on one input: their activations placed at their cells, upsampled to the input (units of a channel
without a position — ``reduce="max"`` — contribute their whole activation map).
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["unit_positions", "grid_centres", "mark_units", "firing_map"]

_NAME = re.compile(r":c(\d+)(?:@(\d+),(\d+))?$")


def unit_positions(names: Sequence[str]) -> list[tuple[int, tuple[int, int] | None]]:
    """``"relu2:c5@3,4"`` → ``(5, (3, 4))``; ``"relu2:c5"`` → ``(5, None)``; a clear error for other names
    (dense units have no place on the grid)."""
    out: list[tuple[int, tuple[int, int] | None]] = []
    for name in names:
        m = _NAME.search(str(name))
        if m is None:
            raise ValueError(f"unit {name!r} is not a conv unit ('layer:c<channel>' or 'layer:c<channel>@<row>,<col>'"
                             "): only conv layers' units have a place on the input grid")
        out.append((int(m.group(1)), None if m.group(2) is None else (int(m.group(2)), int(m.group(3)))))
    return out


def grid_centres(names: Sequence[str], map_hw: Sequence[int], input_hw: Sequence[int]) -> np.ndarray:
    """Receptive-field centres ``(k, 2)`` (row, col in input pixels) of the units with a position."""
    (h, w), (hi, wi) = (int(v) for v in map_hw), (int(v) for v in input_hw)
    if min(h, w, hi, wi) < 1:
        raise ValueError(f"map_hw and input_hw must be positive sizes, got {tuple(map_hw)} and {tuple(input_hw)}")
    pts = [p for _, p in unit_positions(names) if p is not None]
    for r, c in pts:
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"position {(r, c)} is outside the layer's {h}×{w} map")
    return np.array([((r + 0.5) * hi / h - 0.5, (c + 0.5) * wi / w - 0.5) for r, c in pts], dtype=np.float64).reshape(-1, 2)


def mark_units(rgb: np.ndarray, centres: np.ndarray, scale: int = 1, size: float = 1.0,
               color: tuple[int, int, int] = (0, 190, 255)) -> np.ndarray:
    """A copy of the picture ``rgb`` (an input drawn by :func:`viz.image` at ``scale``) with a filled square of
    ``size`` input pixels (the layer's cell: input size / map size) at each centre."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"rgb must be a uint8 RGB picture (H, W, 3), got {a.dtype} {a.shape}")
    out = a.copy()
    half = max(size * scale / 2, 0.5)
    for r, c in np.asarray(centres, dtype=np.float64).reshape(-1, 2):
        cy, cx = (r + 0.5) * scale, (c + 0.5) * scale  # the centre in picture pixels
        y0, y1 = int(np.floor(cy - half)), int(np.ceil(cy + half))
        x0, x1 = int(np.floor(cx - half)), int(np.ceil(cx + half))
        out[max(y0, 0): max(y1, 0), max(x0, 0): max(x1, 0)] = color
    return out


def firing_map(model: nn.Module, x: torch.Tensor, layer: str, names: Sequence[str]) -> np.ndarray:
    """Where the units ``names`` of conv layer ``layer`` fire on the single input ``x (1, C, H, W)``: an
    ``(H, W)`` map of their (positive) activations, each at its cell, upsampled bilinearly to the input."""
    from ..recording.record import record

    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be one input as a (1, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    units = unit_positions(names)
    acts = record(model, (x, torch.zeros(1, dtype=torch.long)), [layer], reduce="none", progress=False)
    shape = acts.shapes[layer]
    if len(shape) != 3:
        raise ValueError(f"layer {layer!r} is not a conv layer (output shape {shape}): its units have no grid")
    fmap = np.asarray(acts.values[layer][0], dtype=np.float64).reshape(shape)
    placed = np.zeros(shape[1:], dtype=np.float64)
    for ch, pos in units:
        if not 0 <= ch < shape[0]:
            raise ValueError(f"channel {ch} is outside layer {layer!r}'s {shape[0]} channels")
        if pos is None:
            placed += np.maximum(fmap[ch], 0)
        else:
            placed[pos] += max(fmap[ch][pos], 0.0)
    up = torch.nn.functional.interpolate(torch.from_numpy(placed)[None, None], size=tuple(x.shape[-2:]),
                                         mode="bilinear", align_corners=False)
    return up[0, 0].numpy()
