"""The miners: ExplaiNN (seed 000), ERIC (001), Grad-CAM patches + Eclat (002), NeuroChains (004), flows,
comparisons.

Names are imported on first use (PEP 562): ExplaiNN's counting kernels (``explainn._counts``, ``._kernels``, ``._shards``) load without
PyTorch, so a Dask worker that only counts stays small (~150 MB instead of ~900 MB). The app's registry
imports the miner modules itself, in the order it offers them (``nnrules.registry.PROVIDERS``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_NAMES = {"ExplaiNN": "explainn", "ERIC": "eric", "PatchMiner": "patches", "NeuroChains": "neurochains",
          "Miner": "base", "NotFittedError": "base", "Flow": "flow", "trace": "flow", "Comparison": "comparison",
          "compare": "comparison", "Itemsets": "itemsets", "association_rules": "itemsets", "eclat": "itemsets",
          "frequent_itemsets": "itemsets", "top_rules": "itemsets"}
__all__ = ["Comparison", "ERIC", "ExplaiNN", "Flow", "Itemsets", "Miner", "NeuroChains", "NotFittedError",
           "PatchMiner", "association_rules", "compare", "eclat", "frequent_itemsets", "top_rules", "trace"]


__getattr__ = lazy_names(__name__, _NAMES, globals())


if TYPE_CHECKING:
    from .base import Miner, NotFittedError  # noqa: F401
    from .comparison import Comparison, compare  # noqa: F401
    from .eric import ERIC  # noqa: F401
    from .explainn import ExplaiNN  # noqa: F401
    from .flow import Flow, trace  # noqa: F401
    from .itemsets import Itemsets, association_rules, eclat, frequent_itemsets, top_rules  # noqa: F401
    from .neurochains import NeuroChains  # noqa: F401
    from .patches import PatchMiner  # noqa: F401
