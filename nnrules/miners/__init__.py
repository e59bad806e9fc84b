"""The miners: ExplaiNN (seed 000), ERIC (001), Grad-CAM patches + Eclat (002), NeuroChains (004), flows."""
# Import order is registration order: the app offers the miners in this order.
from .explainn import ExplaiNN  # isort: skip
from .eric import ERIC  # isort: skip
from .patches import PatchMiner  # isort: skip
from .neurochains import NeuroChains  # isort: skip
from .base import Miner, NotFittedError
from .flow import Flow, trace
from .itemsets import Itemsets, association_rules, eclat, frequent_itemsets, top_rules

__all__ = ["ERIC", "ExplaiNN", "Flow", "Itemsets", "Miner", "NeuroChains", "NotFittedError", "PatchMiner",
           "association_rules", "eclat", "frequent_itemsets", "top_rules", "trace"]
