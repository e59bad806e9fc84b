"""The rules inside ExplaiNN's search (seed 000 Sec. 2), before they become :class:`~nnrules.data.rules.Rule`."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SearchRule"]


@dataclass(frozen=True)
class SearchRule:
    """A rule X → Y while the search runs: ``head`` X and ``tail`` Y (sorted unit indices of the head and tail
    layers); it applies where at least ``l`` of X are on (``A`` rows) and holds where at least ``k`` of Y are on
    there too (``H`` of those rows). ``cost``: its bits in the model and the data it codes (a seed: its tail's
    singleton code); ``gain``: phase 1's saving against the singletons; a **seed** (the pruned search's
    single-tail candidate that does not pay alone) keeps its own cost as a rule in ``rcost``."""

    head: tuple[int, ...]
    tail: tuple[int, ...]
    l: int  # noqa: E741 — the paper's name
    k: int
    A: int
    H: int
    cost: float = 0.0
    gain: float = 0.0
    rcost: float | None = None
    seed: bool = False

    @property
    def rule_cost(self) -> float:
        """The rule's own code length: ``rcost`` for a seed, else ``cost``."""
        return self.cost if self.rcost is None else self.rcost
