"""Data types every part shares: bit-packed binary matrices, transactions, rules, binarization, planted test data.

Names are imported on first use (PEP 562): ``nnrules.data.bits`` alone does not load PyTorch (the
binarizer reads recorded activations, which do), so a Dask worker that only counts bits stays small.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_NAMES = {"Binarizer": "binarizer", "binarize": "binarizer", "BinaryMatrix": "bits", "Rule": "rules",
          "RuleSet": "rules", "Transactions": "transactions", "read_fimi": "transactions"}
__all__ = ["BinaryMatrix", "Binarizer", "Rule", "RuleSet", "Transactions", "binarize", "read_fimi"]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'nnrules.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .binarizer import Binarizer, binarize  # noqa: F401
    from .bits import BinaryMatrix  # noqa: F401
    from .rules import Rule, RuleSet  # noqa: F401
    from .transactions import Transactions, read_fimi  # noqa: F401
