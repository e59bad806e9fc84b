"""Detail pictures kept on disk across sessions, so that a room's first clicks are instant.

A picture depends on the model's weights, the data, the mining settings (for a rule's exemplars) and the
drawing settings; :func:`fingerprint` digests the first two, and a :class:`PictureCache` files each detail
under a digest of everything else (``<cache>/pictures/<namespace>/<key>.json``). The files are JSON with the
PNGs in base64 — nothing a reader could be made to execute (no pickle). A write goes to a temporary file
then replaces the target, so two pages writing the same picture never leave half a file; a cache folder
that cannot be written is skipped silently (the pictures are then computed per session, as before).
``nnrules precompute`` fills it for a zoo model and miner (:mod:`.precompute`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .types import Detail

__all__ = ["PictureCache", "fingerprint", "cache_folder"]

#: Bump when the pictures' drawing changes: older files are then not read.
#: A cache entry larger than this is not read (a detail's pictures take 50–500 kB).
MAX_ENTRY_BYTES = 20 * 2 ** 20
_PNG = b"\x89PNG\r\n\x1a\n"
VERSION = 2  # 2: exemplars spread over a rule's head classes, and where else its tail fires


def fingerprint(model: nn.Module, inputs: torch.Tensor, class_names: list[str]) -> str:
    """A digest of the model's weights and buffers, the data and the class names (hex, 24 characters)."""
    h = hashlib.blake2b(digest_size=12)
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.detach().cpu().float().numpy()).tobytes())
    h.update(np.ascontiguousarray(inputs.detach().cpu().numpy()).tobytes())
    h.update(json.dumps(class_names).encode())
    return h.hexdigest()


def _digest(key: Any) -> str:
    return hashlib.blake2b(json.dumps(key, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _to_json(d: Detail) -> dict:
    png = lambda b: None if b is None else base64.b64encode(b).decode()  # noqa: E731
    return {"version": VERSION, "title": d.title, "text": d.text, "prototype": png(d.prototype),
            "exemplars": [png(b) for b in d.exemplars], "exemplar_labels": d.exemplar_labels,
            "heatmaps": {k: png(v) for k, v in d.heatmaps.items()}, "errors": d.errors,
            "elsewhere": [png(b) for b in d.elsewhere], "elsewhere_labels": d.elsewhere_labels}


def _from_json(j: dict) -> Detail:
    png = lambda t: base64.b64decode(t, validate=True)  # noqa: E731 — binascii.Error for anything else
    return Detail(title=j["title"], text=j["text"], prototype=None if j["prototype"] is None else png(j["prototype"]),
                  exemplars=[png(s) for s in j["exemplars"]], exemplar_labels=list(j["exemplar_labels"]),
                  heatmaps={k: png(v) for k, v in j["heatmaps"].items()}, errors=dict(j["errors"]),
                  elsewhere=[png(s) for s in j["elsewhere"]], elsewhere_labels=list(j["elsewhere_labels"]))


def cache_folder(variable: str, name: str) -> Path | None:
    """Where an on-disk store of the app lives: ``$<variable>`` (a folder, or ``off``: None), else ``<name>/`` in
    nnrules' cache folder (``$NNRULES_CACHE``, else ``~/.cache/nnrules``)."""
    env = os.environ.get(variable, "")
    if env.lower() == "off":
        return None
    if env:
        return Path(env)
    from nnrules.zoo.caching import cache_dir
    return cache_dir() / name


class PictureCache:
    """Details on disk under ``root`` (see :meth:`default`)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.reads = self.writes = 0

    @classmethod
    def default(cls) -> PictureCache | None:
        """``$NNRULES_PICTURES`` (a folder, or ``off``: none), else ``pictures/`` in nnrules' cache folder
        (``$NNRULES_CACHE``, else ``~/.cache/nnrules``)."""
        folder = cache_folder("NNRULES_PICTURES", "pictures")
        return None if folder is None else cls(folder)

    def _path(self, namespace: Any, key: Any) -> Path:
        return self.root / _digest(namespace) / f"{_digest(key)}.json"

    def get(self, namespace: Any, key: Any) -> Detail | None:
        """The detail filed under (namespace, key), or None (absent, unreadable, an older version, larger than
        :data:`MAX_ENTRY_BYTES`, pictures that are not base64 PNGs)."""
        path = self._path(namespace, key)
        try:
            if path.stat().st_size > MAX_ENTRY_BYTES:  # never read a planted giant whole
                return None
            j = json.loads(path.read_text())
            if j.get("version") != VERSION:
                return None
            d = _from_json(j)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            return None
        pictures = [d.prototype] if d.prototype is not None else []
        pictures += d.exemplars + d.elsewhere + list(d.heatmaps.values())
        if any(not p.startswith(_PNG) for p in pictures):  # invalid or foreign bytes are not drawn as a picture
            return None
        self.reads += 1
        return d

    def put(self, namespace: Any, key: Any, d: Detail) -> None:
        """File ``d`` (atomically); a folder that cannot be written is skipped."""
        path = self._path(namespace, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
                json.dump(_to_json(d), f)
            os.replace(f.name, path)
        except OSError:
            return
        self.writes += 1
