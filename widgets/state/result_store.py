"""Mined results kept on disk, so that a link or a second visitor opens a view without mining it again.

What is stored is what the miner found — the :class:`~nnrules.miners.flow.Flow` of rule sets (rules, evidence,
half-samples) and the run's summary — as JSON (never a pickle), with the recorded activations beside it as plain
arrays (``.npz``, read with ``allow_pickle=False``), keyed by the model's fingerprint (weights, data,
class names: :meth:`LoadedModel.fingerprint`) and the run's settings in canonical form (every parameter filled in
from the miner's defaults, the choices the miner does not use dropped): a link naming only ``resamples=2`` and a
panel run with every parameter spelled out meet at one file. Opening a stored result reads the activations (or
records them again when their file is missing) and fits the binarizer again (the same data give the same
thresholds); nothing is mined.

Only miners whose result is that flow plus the binarizer are stored (ExplaiNN, the app's default): ERIC's fitted
quantisation, the patches' Grad-CAM boxes and a NeuroChains chain are the miner's own state and mine as before.
Only zoo models are stored: a model or data a visitor uploads is never served to another visitor. A file that
cannot be read, comes from another version of this format or names another model or other settings is ignored
(:attr:`ResultStore.problem` says why) and the run mines afresh.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnrules.miners.flow import Flow
from nnrules.data.rules import RuleSet
from nnrules.recording.record import Activations, record
from nnrules.registry import MINERS

from .loading import LoadedModel
from .mining import MiningResult, MiningSettings, prepare

__all__ = ["ResultStore", "canonical", "storable", "beyond_defaults", "link_asks", "mine_or_open", "open_stored"]

VERSION = 1


def storable(settings: MiningSettings) -> bool:
    """Whether a run with these settings is stored: a chain miner whose result is its flow and binarizer."""
    entry = MINERS[settings.miner]
    return entry.layers == "chain" and "binarizer" in entry.uses


def canonical(settings: MiningSettings) -> dict[str, Any]:
    """The settings as they determine a result: the miner's parameters with its defaults filled in (JSON-safe),
    and only the choices the miner uses (layers, reduction, binarizer; classes and samples for a miner of
    classes)."""
    entry = MINERS[settings.miner]
    params = entry.create(**settings.params).get_params()
    out: dict[str, Any] = {"miner": settings.miner, "params": json.loads(json.dumps(params, default=str))}
    if entry.layers == "none":
        out.update(classes=[int(c) for c in settings.classes], samples=int(settings.samples))
    else:
        out["layers"] = list(settings.layers)
    if "reduction" in entry.uses:
        out["reduce"] = entry.reduce or settings.reduce
    if "binarizer" in entry.uses:
        out.update(binarize=settings.binarize, binarize_params=dict(settings.binarize_params))
    return out


class ResultStore:
    """Mined results on disk under ``root`` (see :meth:`default`): :meth:`get` and :meth:`put`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.problem = ""  # why the last get found nothing usable ("" when there was simply nothing)
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> ResultStore | None:
        """``$NNRULES_RESULTS`` (a folder, or ``off``: none), else ``results/`` in nnrules' cache folder."""
        from .picture_cache import cache_folder
        folder = cache_folder("NNRULES_RESULTS", "results")
        return None if folder is None else cls(folder)

    def _path(self, fingerprint: str, key: dict) -> Path:
        digest = hashlib.blake2b(json.dumps([VERSION, fingerprint, key], sort_keys=True).encode(),
                                 digest_size=16).hexdigest()
        return self.root / f"{digest}.json"

    def get(self, fingerprint: str, settings: MiningSettings) -> tuple[Flow, str, str, Activations | None] | None:
        """``(flow, summary, saved at, activations or None)`` stored for this model and these settings, or None."""
        self.problem = ""
        if not storable(settings):
            return None
        key = canonical(settings)
        path = self._path(fingerprint, key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != VERSION:
                self.problem = f"the stored result is from another version of the store ({data.get('version')!r})"
                return None
            if data.get("fingerprint") != fingerprint or data.get("settings") != key:
                self.problem = "the stored file names another model or other settings"
                return None
            flow = Flow(list(data["layers"]), [RuleSet._from_dict(rs) for rs in data["rulesets"]])
            return flow, str(data["summary"]), str(data["saved"]), self._activations(path, data.get("activations"))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            self.problem = f"the stored result could not be read ({type(err).__name__})"
            return None

    def _activations(self, path: Path, meta: dict | None) -> Activations | None:
        """The run's recorded activations from ``<digest>.npz`` (plain arrays, ``allow_pickle=False``) and their
        names and shapes from the JSON; None when absent or not as described (then they are recorded again)."""
        arrays = path.with_suffix(".npz")
        if not meta or not arrays.is_file():
            return None
        try:
            with np.load(arrays, allow_pickle=False) as z:
                values = {layer: z[f"v{i}"] for i, layer in enumerate(meta["layers"])}
                labels = z["labels"] if "labels" in z.files else None
                acts = Activations(values, {k: list(v) for k, v in meta["unit_names"].items()}, z["predictions"],
                                   labels, list(meta["class_names"]), {k: tuple(v) for k, v in meta["shapes"].items()},
                                   str(meta["reduce"]))
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            return None
        return acts

    def put(self, fingerprint: str, settings: MiningSettings, flow: Flow, summary: str,
            activations: Activations | None = None) -> Path | None:
        """Store a run's flow and summary, and its recorded ``activations`` beside them (``.npz``): each file
        written whole, then moved into place. None where the folder is not writable (the run is kept in memory
        all the same)."""
        if not storable(settings):
            return None
        key = canonical(settings)
        path = self._path(fingerprint, key)
        data = {"version": VERSION, "fingerprint": fingerprint, "settings": key, "summary": summary,
                "saved": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "layers": list(flow.layers),
                "rulesets": [rs._to_dict() for rs in flow.rulesets]}
        try:
            with self._lock:
                self.root.mkdir(parents=True, exist_ok=True)
                tag = f"{os.getpid()}.{threading.get_ident()}.part"
                if activations is not None and activations.store is None:  # in memory (not a Zarr store)
                    layers = list(activations.values)
                    data["activations"] = {"layers": layers, "unit_names": activations.unit_names,
                                           "class_names": list(activations.class_names), "reduce": activations.reduce,
                                           "shapes": {k: list(v) for k, v in activations.shapes.items()}}
                    arrays = {f"v{i}": np.asarray(activations.values[l]) for i, l in enumerate(layers)}
                    arrays["predictions"] = np.asarray(activations.predictions)
                    if activations.labels is not None:
                        arrays["labels"] = np.asarray(activations.labels)
                    part = path.with_name(f".{path.stem}.{tag}.npz")
                    with open(part, "wb") as f:
                        np.savez(f, **arrays)  # type: ignore[arg-type]
                    os.replace(part, path.with_suffix(".npz"))
                part = path.with_name(f".{path.name}.{tag}")
                part.write_text(json.dumps(data))
                os.replace(part, path)
        except OSError:
            return None
        return path


def open_stored(loaded: LoadedModel, settings: MiningSettings, store: ResultStore,
                progress: Callable[[str, float], None] | None = None,
                check: Callable[[], None] = lambda: None) -> MiningResult | None:
    """The stored result of these settings on the loaded model as a :class:`MiningResult` — its layers recorded
    again and its binarizer fitted again, nothing mined — or None when nothing usable is stored."""
    found = store.get(loaded.fingerprint(), settings)
    if found is None:
        return None
    flow, summary, saved, acts = found
    miner, binarizer, chain, reduce = prepare(loaded, settings)
    model, inputs, labels = loaded.need()
    report = progress or (lambda stage, frac: None)

    def on_batch(done: int, n: int) -> None:
        report("record", done / n)
        check()

    if acts is None or len(acts.predictions) != len(inputs) or not set(chain) <= set(acts.values):
        report("record", 0.0)
        acts = record(model, (inputs, labels), chain, reduce=reduce, class_names=loaded.class_names,
                      progress=False, on_batch=on_batch)
    if binarizer is not None:
        binarizer.fit(acts)
    check()
    nodes, links = flow.to_sankey()
    return MiningResult(settings, f"{summary} · stored result from {saved} (Mine again to recompute)", miner,
                        binarizer, acts, flow, list(flow.layers), nodes, links, stored_at=saved)


def mine_or_open(loaded: LoadedModel, settings: MiningSettings, store: ResultStore | None,
                 progress: Callable[[str, float], None] | None = None, cancel=None,
                 stored: bool = False) -> tuple[MiningResult, str]:
    """``(result, note)``: with ``stored``, the result stored for these settings (:func:`open_stored`), else a
    fresh run (:func:`.mining.mine`), then stored for the next link or visitor. ``note`` says why a stored file
    was not used ("" when there was none, or it was)."""
    from .errors import Cancelled
    from .mining import mine

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("mining cancelled")
    note = ""
    if stored and store is not None:
        found = open_stored(loaded, settings, store, progress, check)
        note = store.problem
        if found is not None:
            return found, note
    result = mine(loaded, settings, progress, cancel)
    if store is not None and result.flow is not None:
        store.put(loaded.fingerprint(), settings, result.flow, result.summary, result.activations)
    return result, note


def _costlier(value: Any, default: Any) -> bool:
    """Whether a parameter's value may cost more than the page's default: a larger number (more steps, depth,
    half-samples), a bound removed (a number → None), any other change of a choice (a search, a method); a
    smaller number or a bound added is never a reason to wait."""
    if value == default:
        return False
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if num(value) and num(default):
        return value > default
    if num(value) and default is None:
        return False
    return True


def beyond_defaults(settings: MiningSettings, default: MiningSettings) -> list[str]:
    """What a link's ``settings`` ask beyond the page's ``default`` for the same miner — parameters that differ,
    more layers, more samples per class — as "name=value" strings; [] when it asks nothing more."""
    a, b = canonical(settings), canonical(default)
    out = [f"{k}={v!r}" for k, v in sorted(a["params"].items()) if _costlier(v, b["params"].get(k))]
    if len(settings.layers) > max(len(default.layers), 2):
        out.append(f"{len(settings.layers)} layers")
    if "samples" in a and int(settings.samples) > int(default.samples):
        out.append(f"samples={int(settings.samples)}")
    return out


def link_asks(loaded: LoadedModel, store: ResultStore | None, settings: MiningSettings) -> str:
    """Why a link's ``settings`` wait for a click instead of mining on their own ("" when they do not): a link
    starts without a click only what the page's defaults would start, or what is stored (opening costs nothing)."""
    from .mining import default_settings

    extra = beyond_defaults(settings, default_settings(loaded, settings.miner))
    if not extra or (store is not None and loaded.zoo_name is not None
                     and store.get(loaded.fingerprint(), settings) is not None):
        return ""
    return (f"This link asks for more than the page's defaults ({', '.join(extra)}), which may take long: the "
            "settings are filled in, press Mine to run them.")
