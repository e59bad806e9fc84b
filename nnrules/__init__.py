"""nnrules: record a PyTorch model's activations, mine rules between groups of neurons, show them."""
from . import evaluate, explain, flow, itemsets, lrp, neurochains, patches, prototypes, synthetic, viz, zoo
from .binarize import Binarizer, binarize
from .bits import BinaryMatrix
from .data import image_folder, load_model
from .eric import ERIC
from .explainn import ExplaiNN
from .hooks import layers
from .neurochains import NeuroChains
from .recording import Activations, record
from .rules import Rule, RuleSet

__all__ = ["Activations", "BinaryMatrix", "Binarizer", "ERIC", "ExplaiNN", "NeuroChains", "Rule", "RuleSet",
           "binarize", "evaluate", "explain", "flow", "image_folder", "itemsets", "layers", "load_model", "lrp",
           "neurochains", "patches",
           "prototypes", "record", "synthetic", "viz", "zoo"]
__version__ = "0.1.0"
