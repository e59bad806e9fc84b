"""ERIC (seed 001): kernels quantised by their l1 norm, decision-tree rules with negated literals, and the logic
program that replays the network: :mod:`._estimator` (:class:`ERIC`), :mod:`._program` (the program exported
as ASP and Prolog)."""
from __future__ import annotations

from ._estimator import ERIC, EricRule, Literal

__all__ = ["ERIC", "EricRule", "Literal"]
