"""What one conv unit responds to: its top samples over the whole data, each cropped to the unit's receptive
field at its strongest position (the reference images of Microscope, Summit and CRP; seed 003's exemplars).

:func:`receptive_field` measures a layer's field once, by gradients: the input pixels on which the units of
the map's centre cell depend, united over a few random inputs (so a ReLU or a max-pool that blocks one
input's gradient does not shrink it), then shifted by the layer's stride for every other cell. This holds
for any network (residual, dense, depthwise): no table of kernel sizes, strides and paddings to keep in step
with the model. :func:`unit_crops` ranks the samples by the unit's recorded activation, finds where the unit
fires most on each (its cell, for a unit recorded per position) and crops the field there.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch
from torch import nn

from ..recording.hooks import OUTPUT, forward_hooks, on_model, preserved_mode, resolve_layers
from .grid_maps import unit_positions

__all__ = ["ReceptiveField", "UnitCrops", "receptive_field", "unit_crops"]


@dataclass(frozen=True)
class ReceptiveField:
    """A conv layer's receptive field: ``size`` (h, w) input pixels, ``stride`` (input pixels per map cell),
    ``origin`` (top, left) of cell (0, 0)'s field (negative where padding reaches outside the input), the
    layer's ``map_hw`` and the ``input_hw`` it was measured on."""

    size: tuple[int, int]
    stride: tuple[float, float]
    origin: tuple[float, float]
    map_hw: tuple[int, int]
    input_hw: tuple[int, int]

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) in input pixels of cell (row, col)'s field, clipped to the input."""
        if not (0 <= row < self.map_hw[0] and 0 <= col < self.map_hw[1]):
            raise ValueError(f"cell ({row}, {col}) is outside the layer's {self.map_hw} map")
        top = int(round(self.origin[0] + row * self.stride[0]))
        left = int(round(self.origin[1] + col * self.stride[1]))
        bottom, right = min(top + self.size[0], self.input_hw[0]), min(left + self.size[1], self.input_hw[1])
        top, left = max(top, 0), max(left, 0)
        return top, left, bottom - top, right - left


def _layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    seen: dict[str, torch.Tensor] = {}

    def keep(_mod, _inp, out):
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"layer {layer!r} returns {type(out).__name__}, not a tensor")
        seen["o"] = out

    with forward_hooks(model, {layer: keep}):
        model(x)
    return seen["o"]


def receptive_field(model: nn.Module, layer: str, example: torch.Tensor, probes: int = 8,
                    seed: int = 0) -> ReceptiveField:
    """Measure ``layer``'s receptive field on inputs shaped like ``example`` (``(C, H, W)`` or a batch):
    the gradient of the centre cell's units with respect to ``probes`` random inputs (drawn from a private
    generator: the global RNG is untouched). Parameters' gradients and the model's modes are left as found."""
    if not isinstance(example, torch.Tensor) or example.dim() not in (3, 4):
        raise ValueError(f"example must be an input tensor (C, H, W) or a batch (B, C, H, W), got "
                         f"{type(example).__name__} of shape {tuple(getattr(example, 'shape', ()))}")
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be a positive integer, got {probes!r}")
    if layer == OUTPUT:
        raise ValueError("layer: the output has no spatial map; choose a conv layer")
    resolve_layers(model, [layer], allow_output=False)
    shape = tuple(example.shape[-3:])
    gen = torch.Generator().manual_seed(seed)
    x = on_model(model, torch.randn((probes, *shape), generator=gen)).requires_grad_(True)
    with torch.enable_grad(), preserved_mode(model):
        out = _layer_output(model, layer, x)
        if out.dim() != 4:
            raise ValueError(f"layer {layer!r} has no spatial map (output {tuple(out.shape[1:])}): a receptive "
                             "field needs a conv layer")
        rc, cc = out.shape[2] // 2, out.shape[3] // 2
        (grad,) = torch.autograd.grad(out[:, :, rc, cc].abs().sum(), x)
    hit = (grad.abs().sum((0, 1)) > 0).cpu().numpy()
    rows, cols = np.flatnonzero(hit.any(1)), np.flatnonzero(hit.any(0))
    if not len(rows):
        raise ValueError(f"layer {layer!r}: no input pixel reaches its centre cell (a constant layer?)")
    h_in, w_in = shape[1], shape[2]
    stride = (h_in / out.shape[2], w_in / out.shape[3])
    # measured where the field lies inside the input; where the border cuts it (deep layers, small inputs)
    # its far side is taken as the mirror of the near one about the centre cell's centre
    extent = []
    for lo, hi, n, centre in ((rows[0], rows[-1], h_in, (rc + 0.5) * stride[0] - 0.5),
                              (cols[0], cols[-1], w_in, (cc + 0.5) * stride[1] - 0.5)):
        lo, hi = float(lo), float(hi)
        if lo == 0 and hi < n - 1:
            lo = 2 * centre - hi
        elif hi == n - 1 and lo > 0:
            hi = 2 * centre - lo
        elif lo == 0 and hi == n - 1:
            half = max(centre - lo, hi - centre)
            lo, hi = centre - half, centre + half
        extent.append((lo, hi))
    (top, bottom), (left, right) = extent
    size = (int(round(bottom - top + 1)), int(round(right - left + 1)))
    origin = (top - rc * stride[0], left - cc * stride[1])
    return ReceptiveField(size, stride, origin, (int(out.shape[2]), int(out.shape[3])), (h_in, w_in))


@dataclass
class UnitCrops:
    """A unit's ``k`` top samples: ``indices`` into the data, ``scores`` (its recorded activation), the cell
    ``positions`` (row, col) where it fires most, ``boxes`` (top, left, height, width: its field there, in
    input pixels) and the cropped ``images`` (one ``(C, h, w)`` tensor each; smaller at the border)."""

    indices: np.ndarray
    scores: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    images: list[torch.Tensor]
    field: ReceptiveField


def unit_crops(model: nn.Module, data: torch.Tensor, activations, layer: str, unit: int, k: int = 9,
               field: ReceptiveField | None = None) -> UnitCrops:
    """The ``k`` samples of ``data`` (the recorded inputs, ``(n, C, H, W)``) where column ``unit`` of
    ``activations[layer]`` is largest, each cropped to the unit's receptive field at its strongest cell
    (its own cell for a unit recorded per position, ``"relu2:c5@3,4"``; else the argmax of its channel's
    map on that sample). ``field``: a :func:`receptive_field` already measured for the layer (cache it)."""
    if not hasattr(activations, "layers") or not hasattr(activations, "values"):
        raise TypeError(f"activations must be an Activations (from nnrules.record), got {type(activations).__name__}")
    if layer not in activations.layers:
        raise ValueError(f"layer {layer!r} was not recorded; recorded: {activations.layers}")
    values = np.asarray(activations[layer])
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < values.shape[1]:
        raise ValueError(f"unit must be a column index of {layer!r} (0..{values.shape[1] - 1}), got {unit!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (samples to show) must be a positive integer, got {k!r}")
    if not isinstance(data, torch.Tensor) or data.dim() != 4 or len(data) != values.shape[0]:
        raise ValueError(f"data must be the recorded inputs, a (n, C, H, W) tensor with n = {values.shape[0]}, "
                         f"got {type(data).__name__} of shape {tuple(getattr(data, 'shape', ()))}")
    ((channel, cell),) = unit_positions([activations.unit_names[layer][int(unit)]])
    field = field or receptive_field(model, layer, data[:1])
    if field.input_hw != tuple(data.shape[-2:]):
        raise ValueError(f"field was measured on {field.input_hw} inputs, the data are {tuple(data.shape[-2:])}")
    order = np.argsort(-values[:, int(unit)], kind="stable")[:k]
    images = data[torch.as_tensor(order)]
    if cell is not None:
        positions = np.tile(np.asarray(cell), (len(order), 1))
    else:
        with torch.no_grad(), preserved_mode(model):
            maps = _layer_output(model, layer, on_model(model, images))[:, channel]
        flat = maps.flatten(1).argmax(1).cpu().numpy()
        positions = np.stack(np.divmod(flat, maps.shape[-1]), 1)
    boxes = np.asarray([field.box(int(r), int(c)) for r, c in positions])
    crops = [img[..., t: t + h, l: l + w] for img, (t, l, h, w) in zip(images, boxes)]
    return UnitCrops(order, values[order, int(unit)], positions, boxes, crops, field)
