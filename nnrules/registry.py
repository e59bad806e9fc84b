"""Registries: what nnrules offers, by name, with labels, parameters and help — the app builds its panels here.

Five registries — ``MINERS``, ``BINARIZERS``, ``REDUCTIONS``, ``ATTRIBUTIONS``, ``ARCHITECTURES`` — each filled by the modules
listed for it in :data:`PROVIDERS` (the one place that names the built-in entries; imported, in that order,
on the first read of the registry, whoever imported what before), then by the modules that installed packages
name under the registry's entry-point group (:data:`ENTRY_POINT_GROUPS`, e.g. a third-party miner's
``[project.entry-points."nnrules.miners"] mine = "mypkg.miner"``). Adding a miner is one module that
defines the estimator and calls ``MINERS.register(...)`` with a ``run`` adapter (:class:`MiningContext` →
result view), listed here or under the entry point; the app needs no edit beyond at most a small view.
"""
from __future__ import annotations

import importlib
import warnings
from importlib.metadata import entry_points

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .params import Param

__all__ = ["Entry", "Registry", "MiningContext", "MINERS", "BINARIZERS", "REDUCTIONS", "ATTRIBUTIONS",
           "ARCHITECTURES", "PROVIDERS", "ENTRY_POINT_GROUPS"]


@dataclass(frozen=True)
class Entry:
    """One registered thing.

    ``target``: the class or function; ``params``: its parameters as offered (defaults to
    ``target.params``); ``layers``: which layers a miner takes — ``"chain"`` (one or more, mined output
    side first), ``"conv"`` (exactly one conv layer) or ``"none"`` (no layer choice: the miner works on
    the whole model); ``reduce``: a reduction the miner requires (``None``: the user picks);
    ``run(ctx, estimator) -> (view, summary)``: how the app runs a miner (``view`` has ``to_sankey()``;
    a :class:`~nnrules.miners.flow.Flow` also fills the rule table); ``uses``: other choices the miner
    takes from the app (``"reduction"``, ``"binarizer"``).
    """

    name: str
    label: str
    target: Any
    params: tuple[Param, ...] = ()
    help: str = ""
    layers: str = "chain"
    reduce: str | None = None
    run: Callable | None = None
    uses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layers not in ("chain", "conv", "none"):
            raise ValueError(f"Entry {self.name!r}: layers must be 'chain', 'conv' or 'none', got {self.layers!r}")
        unknown = set(self.uses) - {"reduction", "binarizer"}
        if unknown:
            raise ValueError(f"Entry {self.name!r}: uses may name 'reduction' and 'binarizer', got {sorted(unknown)}")
        if self.run is not None and not callable(self.run):
            raise TypeError(f"Entry {self.name!r}: run must be callable run(ctx, estimator), got {self.run!r}")

    def create(self, **values) -> Any:
        """``target(**values)``, with only the values of the parameters it declares."""
        known = {p.name for p in self.params}
        return self.target(**{k: v for k, v in values.items() if k in known})


class Registry:
    """Named entries of one kind, in registration order."""

    def __init__(self, kind: str, providers: tuple[str, ...] = (), group: str | None = None) -> None:
        self.kind = kind
        self.providers = providers  # the modules whose import registers the built-in entries, in order
        self.group = group  # the entry-point group naming third-party providers
        self._loaded = False
        self._entries: dict[str, Entry] = {}

    def _ensure(self) -> None:
        """Import the providers before the first read: ``import nnrules`` is lazy, so ``from nnrules.registry
        import MINERS`` alone must still list the built-in miners; then the installed plugins' modules (one
        that fails to import is skipped with a warning, never the registry)."""
        if self._loaded:
            return
        self._loaded = True
        for provider in self.providers:
            importlib.import_module(provider)
        for ep in entry_points(group=self.group) if self.group else ():
            try:
                ep.load()
            except Exception as err:  # noqa: BLE001 — a broken plugin must not take the built-ins down
                warnings.warn(f"nnrules: the {self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {err}",
                              stacklevel=3)

    def register(self, name: str, label: str, target: Any = None, params: tuple[Param, ...] | None = None,
                 **options) -> Any:
        """Add an entry (``params`` default to ``target.params``); returns ``target`` (usable as a decorator
        through ``functools.partial``)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        if params is None:
            params = tuple(getattr(target, "params", ()))
        self._entries[name] = Entry(name, label, target, tuple(params), **options)
        return target

    def __getitem__(self, name: str) -> Entry:
        self._ensure()
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {list(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        return iter(self._entries)

    def __len__(self) -> int:
        self._ensure()
        return len(self._entries)

    def entries(self) -> list[Entry]:
        self._ensure()
        return list(self._entries.values())


@dataclass
class MiningContext:
    """What a miner's ``run`` adapter gets from the app: the model and its data, the chosen layers (output
    side first), the chosen reduction and binarizer, and callbacks for progress and cancel.

    ``record(reduce)`` records ``layers`` (with progress; honours cancel per batch); ``report(stage,
    fraction)`` shows progress; ``check()`` raises if the user cancelled; ``options`` holds extra
    choices such as ``classes`` (indices) for miners that take no layers.
    """

    model: Any
    inputs: Any
    labels: Any
    class_names: list[str]
    layers: list[str]
    record: Callable[[str], Any]
    report: Callable[[str, float], None] = lambda stage, fraction: None
    check: Callable[[], None] = lambda: None
    reduce: str = "max"
    binarizer: Any = None
    options: dict = field(default_factory=dict)


#: The built-in entries of each registry, in one place: the modules that register them, in offering order.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "miner": ("nnrules.miners.explainn._estimator", "nnrules.miners.eric._estimator", "nnrules.miners.patches", "nnrules.miners.neurochains"),
    "binarization": ("nnrules.data.binarizer",),
    "reduction": ("nnrules.recording.record",),
    "attribution method": ("nnrules.attribution.methods",),
    "architecture": ("nnrules.zoo",),
}
#: Entry-point groups under which installed packages name modules that register more entries.
ENTRY_POINT_GROUPS = {"miner": "nnrules.miners", "binarization": "nnrules.binarizers"}

MINERS = Registry("miner", PROVIDERS["miner"], ENTRY_POINT_GROUPS["miner"])
BINARIZERS = Registry("binarization", PROVIDERS["binarization"], ENTRY_POINT_GROUPS["binarization"])
REDUCTIONS = Registry("reduction", PROVIDERS["reduction"])
ATTRIBUTIONS = Registry("attribution method", PROVIDERS["attribution method"])
#: model architectures ``load_model(path, architecture=name)`` builds by name (the zoo's; torchvision's by its own)
ARCHITECTURES = Registry("architecture", PROVIDERS["architecture"])
