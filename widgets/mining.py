"""Mining from the explorer through the registry: settings, validation before slow work, progress, cancel."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from nnrules.miners.flow import Flow
from nnrules.recording.record import record
from nnrules.registry import BINARIZERS, MINERS, MiningContext

from .errors import Cancelled, UserInputError, to_user_error

__all__ = ["MiningSettings", "MiningMixin"]


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


class MiningMixin:
    """``mine`` of :class:`~nnrules.widgets.state.ExplorerState`."""

    def prepare(self, settings: MiningSettings) -> tuple[Any, Any, list[str], str]:
        """Validate everything before the slow part: (miner, binarizer, layers output side first, reduction).
        Raises :class:`UserInputError` with what to change."""
        self._need_model()
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
            bad = [c for c in settings.classes if not 0 <= int(c) < len(self.class_names)]
            if bad:
                raise UserInputError(f"classes {bad} do not exist; the model has {len(self.class_names)}")
            if not 1 <= int(settings.samples) <= 100:
                raise UserInputError(f"samples per class must be 1..100, got {settings.samples}")
            return miner, binarizer, [], reduce
        chain = self.check_chain(settings.layers, reduce)
        if entry.layers == "conv":
            t = self.layer_table.set_index("name")
            convs = [n for n in self.chainable_layers() if t.loc[n, "kind"] == "conv"]
            if len(chain) != 1 or chain[0] not in convs:
                raise UserInputError(f"{entry.label} needs exactly one conv layer (with spatial maps), e.g. "
                                     f"{convs[:3]}")
        return miner, binarizer, chain, reduce

    def mine(self, settings: MiningSettings, progress: Callable[[str, float], None] | None = None,
             cancel: threading.Event | None = None) -> "MiningMixin":
        """Run the chosen miner through its registry adapter. ``progress(stage, fraction)`` is called as work
        advances; setting ``cancel`` stops at the next batch or layer pair (raises :class:`Cancelled`). On
        error or cancel the previous results are kept."""
        miner, binarizer, chain, reduce = self.prepare(settings)
        entry = MINERS[settings.miner]
        report = progress or (lambda stage, frac: None)
        recorded: list = []

        def check() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("mining cancelled")

        def on_batch(done: int, n: int) -> None:
            report("record", done / n)
            check()

        def record_layers(reduce_: str, layers: list[str] | None = None):
            report("record", 0.0)
            acts = record(self.model, (self.inputs, self.labels), layers if layers is not None else chain,
                          reduce=reduce_, class_names=self.class_names, progress=False, on_batch=on_batch)
            recorded.append(acts)
            return acts

        ctx = MiningContext(self.model, self.inputs, self.labels, self.class_names, chain, record_layers, report,
                            check, reduce, binarizer,
                            {"classes": [int(c) for c in settings.classes], "samples": int(settings.samples)})
        check()
        try:
            view, summary = entry.run(ctx, miner)
        except (Cancelled, UserInputError):
            raise
        except ValueError as err:
            raise to_user_error(err) from err
        check()
        report("done", 1.0)
        self._clear_results()
        self.settings, self.summary, self.miner, self.binarizer = settings, summary, miner, binarizer
        self.activations = recorded[-1] if recorded else None
        self.flow = view if isinstance(view, Flow) else None
        self.view_layers = list(view.layers) if isinstance(view, Flow) else \
            list(dict.fromkeys(view.to_sankey()[0]["layer"]))
        self.nodes, self.links = view.to_sankey()
        self.rules = self._rule_frame(self.flow)
        return self
