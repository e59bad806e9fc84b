"""Registries: what nnrules offers, by name, with labels, parameters and help — the app builds its panels here.

Four registries, each filled by the module that implements its entries (imported on the first read of the registry):
``MINERS`` (``nnrules.miners``), ``BINARIZERS`` (``nnrules.data.binarizer``), ``REDUCTIONS``
(``nnrules.recording.record``) and ``ATTRIBUTIONS`` (``nnrules.attribution.methods``). Adding a miner
is one module that defines the estimator and calls ``MINERS.register(...)`` with a ``run`` adapter
(:class:`MiningContext` → result view); the app needs no edit beyond at most a small view.
"""
from __future__ import annotations

import importlib

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .params import Param

__all__ = ["Entry", "Registry", "MiningContext", "MINERS", "BINARIZERS", "REDUCTIONS", "ATTRIBUTIONS"]


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

    def __init__(self, kind: str, provider: str | None = None) -> None:
        self.kind = kind
        self.provider = provider  # the module whose import registers the built-in entries
        self._entries: dict[str, Entry] = {}

    def _ensure(self) -> None:
        """Import the provider before the first read: ``import nnrules`` is lazy, so ``from nnrules.registry
        import MINERS`` alone must still list the built-in miners."""
        if self.provider is not None:
            provider, self.provider = self.provider, None
            importlib.import_module(provider)

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


MINERS = Registry("miner", "nnrules.miners")
BINARIZERS = Registry("binarization", "nnrules.data.binarizer")
REDUCTIONS = Registry("reduction", "nnrules.recording.record")
ATTRIBUTIONS = Registry("attribution method", "nnrules.attribution.methods")
