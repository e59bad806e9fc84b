"""Data types every part shares: bit-packed binary matrices, transactions, rules, binarization, planted test data.

Names are imported on first use (PEP 562): ``nnrules.data.bits`` alone does not load PyTorch (the
binarizer reads recorded activations, which do), so a Dask worker that only counts bits stays small.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_NAMES = {"Binarizer": "binarizer", "binarize": "binarizer", "BinaryMatrix": "bits", "Rule": "rules",
          "RuleSet": "rules", "Transactions": "transactions", "read_fimi": "transactions"}
__all__ = ["BinaryMatrix", "Binarizer", "Rule", "RuleSet", "Transactions", "binarize", "read_fimi"]


__getattr__ = lazy_names(__name__, _NAMES, globals())


if TYPE_CHECKING:
    from .binarizer import Binarizer, binarize  # noqa: F401
    from .bits import BinaryMatrix  # noqa: F401
    from .rules import Rule, RuleSet  # noqa: F401
    from .transactions import Transactions, read_fimi  # noqa: F401
