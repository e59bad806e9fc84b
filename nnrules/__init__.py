"""nnrules: record a PyTorch model's activations, mine rules between groups of neurons, show them."""
from . import evaluate, explain, flow, itemsets, lrp, patches, prototypes, synthetic, viz, zoo
from .binarize import Binarizer, binarize
from .bits import BinaryMatrix
from .data import image_folder, load_model
from .eric import ERIC
from .explainn import ExplaiNN
from .hooks import layers
from .recording import Activations, record
from .rules import Rule, RuleSet

__all__ = ["Activations", "BinaryMatrix", "Binarizer", "ERIC", "ExplaiNN", "Rule", "RuleSet", "binarize",
           "evaluate", "explain", "flow", "image_folder", "itemsets", "layers", "load_model", "lrp", "patches",
           "prototypes", "record", "synthetic", "viz", "zoo"]
__version__ = "0.1.0"
