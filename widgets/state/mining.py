"""A mining run from the explorer through the registry: settings, validation before slow work, progress,
cancel — and its result (:class:`MiningResult`), which the rule table and the selection read."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from nnrules.miners.flow import Flow
from nnrules.recording.record import Activations, record
from nnrules.registry import BINARIZERS, MINERS, MiningContext

from .errors import Cancelled, UserInputError, to_user_error
from .loading import LoadedModel

__all__ = ["MiningSettings", "MiningResult", "prepare", "mine", "default_settings"]


@dataclass
class MiningSettings:
    """What the Mine button runs: ``miner`` (a name in ``nnrules.registry.MINERS``) with ``params`` (its
    parameters by name; the rest keep their defaults) on ``layers``; ``reduce`` and ``binarize`` (a name in
    ``BINARIZERS``, with ``binarize_params``) for miners that take them; ``classes`` (indices) and
    ``samples`` (per class) for miners that take no layers (NeuroChains)."""

    layers: list[str] = field(default_factory=list)
    miner: str = "explainn"
    params: dict[str, Any] = field(default_factory=dict)
    reduce: str = "max"
    binarize: str = "mean"
    binarize_params: dict[str, Any] = field(default_factory=dict)
    classes: list[int] = field(default_factory=list)
    samples: int = 10


@dataclass
class MiningResult:
    """What one run mined: the ``settings`` it ran with (``None``: nothing mined yet), the fitted ``miner``
    and ``binarizer``, the recorded ``activations``, the ``flow`` of rule sets (``None`` for NeuroChains,
    whose chain is only nodes and links), the layers and the Sankey's ``nodes``/``links`` tables."""

    settings: MiningSettings | None = None
    summary: str = ""
    miner: Any = None
    binarizer: Any = None  # fitted by the run when the miner uses one
    activations: Activations | None = None
    flow: Flow | None = None
    view_layers: list[str] = field(default_factory=list)
    nodes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["id", "layer", "units", "label"]))
    links: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["source", "target", "value", "pair", "rule"]))
    stored_at: str = ""  # when the result was mined, if it was opened from the store ("" for a fresh run)

    @property
    def mined(self) -> bool:
        """Whether a run finished (its result may be empty)."""
        return self.settings is not None


def prepare(loaded: LoadedModel, settings: MiningSettings) -> tuple[Any, Any, list[str], str]:
    """Validate everything before the slow part: (miner, binarizer, layers output side first, reduction).
    Raises :class:`UserInputError` with what to change."""
    loaded.need()
    try:
        entry = MINERS[settings.miner]
        miner = entry.create(**settings.params).validate()
        binarizer = None
        if "binarizer" in entry.uses:
            binarizer = BINARIZERS[settings.binarize].create(**settings.binarize_params).validate()
    except (ValueError, TypeError) as err:
        raise to_user_error(err) from err
    reduce = entry.reduce or settings.reduce
    if entry.layers == "none":
        if not settings.classes:
            raise UserInputError("choose one or more classes: the chain keeps the model's outputs on inputs "
                                 "of these classes")
        bad = [c for c in settings.classes if not 0 <= int(c) < len(loaded.class_names)]
        if bad:
            raise UserInputError(f"classes {bad} do not exist; the model has {len(loaded.class_names)}")
        if not 1 <= int(settings.samples) <= 100:
            raise UserInputError(f"samples per class must be 1..100, got {settings.samples}")
        return miner, binarizer, [], reduce
    chain = loaded.check_chain(settings.layers, reduce)
    if entry.layers == "conv":
        maps = loaded.feature_maps()
        if len(chain) != 1 or chain[0] not in maps:
            raise UserInputError(f"{entry.label} needs exactly one conv layer with maps larger than 1 × 1, e.g. "
                                 f"{', '.join(maps[:3]) or '(this model has none)'}")
    return miner, binarizer, chain, reduce


#: half-samples the app mines by default, for every miner that measures evidence: Mine stays within 2× of its time
#: without them on the zoo (benchmarks/evidence.py: digits-cnn 1.9×, cifar10-cnn 1.7×, mnist/fashion 1.1×)
APP_RESAMPLES = 2


def default_settings(loaded: LoadedModel, miner: str) -> MiningSettings:
    """What the panel preselects for ``miner`` on the loaded model — settings that ``prepare`` accepts: the
    default chain for chain miners (ExplaiNN, ERIC), the deepest feature map larger than 1 × 1 for a conv
    miner (Grad-CAM patches), the two classes the model predicts most often for a miner of classes
    (NeuroChains; a class it never predicts keeps no inputs). The miner's own parameters keep their
    defaults, but for ``resamples`` (:data:`APP_RESAMPLES` where the miner measures evidence)."""
    loaded.need()
    entry = MINERS[miner]
    params = {"resamples": APP_RESAMPLES} if any(p.name == "resamples" for p in entry.params) else {}
    if entry.layers == "none":
        return MiningSettings(miner=miner, classes=loaded.predicted_classes()[:2], params=params)
    if entry.layers == "conv":
        return MiningSettings(loaded.feature_maps()[:1], miner=miner, params=params)
    return MiningSettings(loaded.default_chain(), miner=miner, params=params)


def mine(loaded: LoadedModel, settings: MiningSettings, progress: Callable[[str, float], None] | None = None,
         cancel: threading.Event | None = None) -> MiningResult:
    """Run the chosen miner through its registry adapter on the loaded model and data. ``progress(stage,
    fraction)`` is called as work advances; setting ``cancel`` stops at the next batch or layer pair (raises
    :class:`Cancelled`). Nothing is changed here: the caller keeps the previous result on error or cancel."""
    miner, binarizer, chain, reduce = prepare(loaded, settings)
    model, inputs, labels = loaded.need()
    entry = MINERS[settings.miner]
    report = progress or (lambda stage, frac: None)
    recorded: list[Activations] = []

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("mining cancelled")

    def on_batch(done: int, n: int) -> None:
        report("record", done / n)
        check()

    def record_layers(reduce_: str, layers: list[str] | None = None) -> Activations:
        report("record", 0.0)
        acts = record(model, (inputs, labels), layers if layers is not None else chain, reduce=reduce_,
                      class_names=loaded.class_names, progress=False, on_batch=on_batch)
        recorded.append(acts)
        return acts

    ctx = MiningContext(model, inputs, labels, loaded.class_names, chain, record_layers, report, check, reduce,
                        binarizer, {"classes": [int(c) for c in settings.classes], "samples": int(settings.samples)})
    check()
    if entry.run is None:
        raise UserInputError(f"{entry.label} cannot run in the app (its registry entry has no run adapter)")
    try:
        view, summary = entry.run(ctx, miner)
    except (Cancelled, UserInputError):
        raise
    except ValueError as err:
        raise to_user_error(err) from err
    check()
    report("done", 1.0)
    flow = view if isinstance(view, Flow) else None
    nodes, links = view.to_sankey()
    layers = list(view.layers) if flow is not None else list(dict.fromkeys(nodes["layer"]))
    return MiningResult(settings, summary, miner, binarizer, recorded[-1] if recorded else None, flow, layers,
                        nodes, links)


#: The mining cost model (rough: a Mine took 0.25–1.6× its estimate on 4 zoo models and a ResNet-18 with each
#: miner's defaults, ``docs/mine-estimate-benchmark.txt``), fitted on
#: digits-cnn and cifar10-cnn with the app's defaults, in units of ``forward`` (one forward pass of one input, s,
#: measured at load): recording the data (``n`` inputs) costs RECORD_PASSES × n passes; each miner adds its term.
RECORD_PASSES = 1.5
#: seconds per input and unit of the chosen layers (ExplaiNN's and ERIC's searches, with 2 half-samples)
PER_INPUT_UNIT = {"explainn": 2.5e-6, "eric": 1.4e-5}
#: forward passes per input (Grad-CAM of every input, then Eclat) and per kept sample (NeuroChains' optimisation)
PATCH_PASSES, CHAIN_PASSES = 7.0, 400.0


def estimate_seconds(loaded: LoadedModel, settings: MiningSettings) -> float:
    """Seconds a Mine with ``settings`` is expected to take on this machine (see the constants above); the
    evidence's half-samples scale the search term by (1 + resamples) / 3."""
    model, inputs, _ = loaded.need()
    n, fwd = len(inputs), loaded.forward_seconds
    units = dict(zip(loaded.layer_table["name"], loaded.layer_table["n_units"]))
    resamples = settings.params.get("resamples", APP_RESAMPLES)
    spread = (1 + int(resamples or 0)) / (1 + APP_RESAMPLES)
    if settings.miner == "neurochains":
        return CHAIN_PASSES * fwd * max(len(settings.classes), 1) * int(settings.samples)
    record_s = RECORD_PASSES * n * fwd
    if settings.miner == "patches":
        return record_s + PATCH_PASSES * n * fwd * spread
    per = PER_INPUT_UNIT.get(settings.miner, PER_INPUT_UNIT["eric"])
    return record_s + per * n * sum(int(units.get(layer, 0)) for layer in settings.layers) * spread
