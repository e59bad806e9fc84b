"""This image: one input — a sample of the data, a tensor, a PIL image or an image file — checked against the
mined rules without re-mining and without joining the data.

A photo is made *like the data* (:func:`like_data`): centre-cropped to the data's aspect, resized to its
``H × W``, grey when the data have one channel, scaled to [0, 1]; inverted when the data are light on dark
(their borders dark) and the photo is dark on light (a product photographed on white, for Fashion-MNIST's
white-on-black); and, for data outside [0, 1] (standardised inputs), matched per channel to the data's mean
and standard deviation. Each step taken is said in the returned note.

The rules that hold for the input are ordered by how specific they are to its predicted class
(:func:`specificity`): the lift of that class among the samples where the rule holds, then the rarer rule
first — not by support, which puts the rule that holds on almost every sample first.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from nnrules.recording.hooks import OUTPUT
from nnrules.recording.images import MAX_IMAGE_PIXELS, UnreadableImage, read_image, rgb
from nnrules.recording.record import Activations, record

from .errors import UserInputError
from .selection import Selection

__all__ = ["like_data", "rules_for", "specificity", "gallery", "thumbnails"]


def _border(x: torch.Tensor) -> float:
    """The median of the outer ring of pixels of ``(…, H, W)`` images."""
    ring = torch.cat([x[..., 0, :].flatten(), x[..., -1, :].flatten(), x[..., :, 0].flatten(), x[..., :, -1].flatten()])
    return float(ring.float().median())


def like_data(image: Image.Image | str | os.PathLike, inputs: torch.Tensor,
              show=str) -> tuple[torch.Tensor, str]:
    """``(x (C, H, W), note)``: ``image`` (a PIL image or an image file, read within
    :data:`~nnrules.recording.images.MAX_IMAGE_PIXELS`) made like the data ``inputs (n, C, H, W)`` (see the
    module's text); ``note`` says what was done, e.g. "resized 640×480 → 28×28, grey, inverted"."""
    c, h, w = (int(v) for v in inputs.shape[1:])
    if isinstance(image, (str, os.PathLike)):
        try:
            image = read_image(Path(image), show=show)
        except UnreadableImage as err:
            raise UserInputError(f"the image {err}: upload a PNG or JPEG photo") from None
    if not isinstance(image, Image.Image):
        raise UserInputError(f"image must be a PIL image or an image file, got {type(image).__name__}")
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise UserInputError(f"the image has {image.width * image.height / 1e6:,.0f} Mpx; at most "
                             f"{MAX_IMAGE_PIXELS / 1e6:,.0f} Mpx are read")
    if image.width < 1 or image.height < 1:
        raise UserInputError("the image is empty (0 pixels)")
    steps = [f"resized {image.width}×{image.height} → {w}×{h}"]
    im = rgb(image)
    # centre crop to the data's aspect, so that a photo is not squashed
    scale = min(im.width / w, im.height / h)
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    left, top = (im.width - cw) // 2, (im.height - ch) // 2
    if (cw, ch) != im.size:
        im = im.crop((left, top, left + cw, top + ch))
        steps[0] = f"centre-cropped {image.width}×{image.height} to {cw}×{ch}, resized to {w}×{h}"
    im = im.resize((w, h), Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    if c == 1:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        steps.append("grey")
    elif c != 3:
        raise UserInputError(f"the data have {c} channels per pixel: a photo (grey or RGB) cannot be made like them")
    data = inputs.float()
    lo, hi = float(data.min()), float(data.max())
    if lo >= -1e-3 and hi <= 1 + 1e-3:
        if _border(data[:256]) < 0.5 * hi and _border(x) > 0.5:
            x = 1 - x
            steps.append("inverted (the data are light on dark)")
    else:
        dims = (0, 2, 3)
        mean, std = data.mean(dims).view(-1, 1, 1), data.std(dims).view(-1, 1, 1)
        x = (x - x.mean((1, 2), keepdim=True)) / x.std((1, 2), keepdim=True).clamp_min(1e-6) * std + mean
        steps.append("matched to the data's mean and spread per channel (the data are not in [0, 1])")
    return x.to(inputs.dtype), ", ".join(steps)


def _holds(sel: Selection) -> np.ndarray:
    """``(rules, n)`` bool: where each rule of the table holds on the data (cached per result)."""
    if "holds" not in sel._cache:
        bits = sel.layer_bits()
        assert bits is not None
        flow = sel.result.flow
        assert flow is not None
        rows = []
        for pair, r in zip(sel.table.rules["pair"], sel.table.rules["rule"]):
            rs = flow.rulesets[int(pair)]
            rows.append(rs[int(r)].holds_on(bits[rs.head_layer], bits[rs.tail_layer]))
        sel._cache["holds"] = np.stack(rows) if rows else np.zeros((0, len(sel._activations().predictions)), bool)
    return sel._cache["holds"]


def specificity(sel: Selection, rule_ids: list[int], cls: int) -> list[int]:
    """``rule_ids`` ordered by how specific each is to class ``cls``: the lift of ``cls`` among the samples where
    the rule holds (P(cls | rule holds) / P(cls)), then the rarer rule (fewer samples) first."""
    preds = np.asarray(sel._activations().predictions)
    base = max(float((preds == cls).mean()), 1e-12)
    holds = _holds(sel)
    keys = []
    for rid in rule_ids:
        h = holds[int(rid)]
        n = int(h.sum())
        lift = float((preds[h] == cls).mean()) / base if n else 0.0
        keys.append((-lift, n, int(rid)))
    return [rid for _, _, rid in sorted(keys)]


def _record_one(sel: Selection, x: torch.Tensor) -> Activations:
    """The mined layers on one new input, recorded as the run recorded the data (same reduction)."""
    from nnrules.miners.patches import PatchMiner

    model, inputs, _ = sel.loaded.need()
    x = x.detach()
    if x.dim() == inputs.dim() - 1:
        x = x.unsqueeze(0)
    if tuple(x.shape) != (1, *inputs.shape[1:]):
        raise UserInputError(f"inputs must be one input shaped like the data, {tuple(inputs.shape[1:])} "
                             f"(or with a batch of 1), got {tuple(x.shape)}")
    if isinstance(sel.result.miner, PatchMiner):
        raise UserInputError("patch rules are read on the data's Grad-CAM patches: choose a sample of the data")
    acts = sel._activations()
    layers = [l for l in acts.values if l != OUTPUT]
    return record(model, x.to(inputs.dtype), layers, reduce=acts.reduce, class_names=sel.loaded.class_names,
                  progress=False)


def rules_for(sel: Selection, inputs) -> tuple[list[int], int]:
    """``(rule ids, predicted class)`` for one input, the rules ordered by :func:`specificity` to its predicted
    class. ``inputs``: a sample of the data (its index), an input tensor ``(C, H, W)`` / ``(1, C, H, W)`` shaped
    like the data, a PIL image or an image file (made :func:`like_data`). A rule holds where its exemplars come
    from: head and tail as the miner saw them (the run's binarizer, ERIC's literals); a patch rule holds for an
    image whose Grad-CAM patches it covers (data samples only: a new image has no patches)."""
    from nnrules.miners.patches import PatchMiner

    if sel.result.flow is None:
        raise UserInputError("mine first: 'this image' lists the mined rules that hold for it"
                             + (" (NeuroChains keeps filters, not rules)" if sel.result.mined else ""))
    rules = sel.table.rules
    acts = sel._activations()
    if isinstance(inputs, (int, np.integer)) and not isinstance(inputs, bool):
        n = len(acts.predictions)
        if not 0 <= int(inputs) < n:
            raise UserInputError(f"sample must be 0..{n - 1} (an index into the data), got {inputs}")
        i = int(inputs)
        cls = int(acts.predictions[i])
        if isinstance(sel.result.miner, PatchMiner):
            held = {int(r): sel._holding(int(r)) for r in rules["id"]}
            return [r for r, h in held.items() if h is not None and i in set(h.tolist())], cls
        bits = sel.layer_bits()
        if bits is not None:
            return specificity(sel, np.flatnonzero(_holds(sel)[:, i]).tolist(), cls), cls
    else:
        if isinstance(inputs, (str, os.PathLike)):
            inputs = sel.loaded.data_root.resolve(str(inputs), "image")
        if isinstance(inputs, (str, os.PathLike, Image.Image)):
            inputs, _ = like_data(inputs, sel.loaded.need()[1], show=sel.loaded.data_root.show)
        if not isinstance(inputs, torch.Tensor):
            raise UserInputError("inputs must be a sample index (int), an input tensor, a PIL image or an image "
                                 f"file, got {type(inputs).__name__}")
        one = _record_one(sel, inputs)
        bits = sel._bits(one)
        cls = int(one.predictions[0])
    if bits is None:
        raise UserInputError(f"{type(sel.result.miner).__name__}'s rules are read on the data's own patches: "
                             "choose a sample of the data (its index)")
    out = []
    for rid, pair, r in zip(rules["id"], rules["pair"], rules["rule"]):
        rs = sel.result.flow.rulesets[int(pair)]
        if rs[int(r)].holds_on(bits[rs.head_layer], bits[rs.tail_layer])[0]:
            out.append(int(rid))
    return specificity(sel, out, cls), cls


def gallery(sel: Selection, label=None, predicted=None, wrong: bool = False, limit: int = 48) -> pd.DataFrame:
    """Samples of the data to pick "this image" from: columns ``sample``, ``label``, ``predicted`` (class names;
    label "" where unknown), filtered by true class, predicted class (index or name) and to the wrong
    predictions; at most ``limit``, spread evenly over the matching samples."""
    from .answers import class_index

    _, x, y = sel.loaded.need()
    acts = sel.result.activations
    preds = torch.as_tensor(sel.loaded.predictions() if acts is None else np.asarray(acts.predictions))
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise UserInputError(f"limit must be a whole number ≥ 1, got {limit!r}")
    keep = torch.ones(len(x), dtype=torch.bool)
    if label is not None:
        keep &= y == class_index(sel, label)
    if predicted is not None:
        keep &= preds == class_index(sel, predicted)
    if wrong:
        keep &= (y >= 0) & (preds != y)
    idx = torch.nonzero(keep).flatten()
    if len(idx):
        idx = idx[torch.linspace(0, len(idx) - 1, min(int(limit), len(idx))).round().long()]
    names = sel.loaded.class_names
    return pd.DataFrame({"sample": idx.tolist(), "label": [names[int(y[i])] if int(y[i]) >= 0 else "" for i in idx],
                         "predicted": [names[int(preds[i])] for i in idx]})


def thumbnails(sel: Selection, samples: list[int]) -> list[bytes]:
    """PNG thumbnails of data samples, drawn as the exemplars are."""
    import nnrules.attribution.viz as viz

    _, x, _ = sel.loaded.need()
    n = len(x)
    bad = [i for i in samples if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n]
    if bad:
        raise UserInputError(f"samples must be indices 0..{n - 1}, got {bad[0]!r}")
    return [viz.to_png(viz.image(x[int(i)], sel._scale())) for i in samples]
