"""nnrules: record a PyTorch model's activations, mine rules between groups of neurons, show them.

Subpackages by concern: ``data`` (binary matrices, rules, binarization), ``recording`` (hooks, activations,
loading), ``miners`` (ExplaiNN, ERIC, patches + Eclat, NeuroChains, flows), ``attribution`` (heatmaps, LRP,
prototypes), ``evaluation`` (interventions, attribution metrics), ``zoo`` (trained models), ``registry``
(what the app offers). The names below are the public API.
"""
from importlib.metadata import PackageNotFoundError, version as _version

from . import attribution, data, evaluation, miners, recording, registry, zoo
from .attribution import attribute
from .data import Binarizer, BinaryMatrix, Rule, RuleSet, binarize
from .miners import ERIC, ExplaiNN, Flow, NeuroChains, PatchMiner, association_rules, eclat, trace
from .miners.base import NotFittedError
from .recording import Activations, image_folder, layers, load_model, record

try:
    __version__ = _version("nnrules")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Activations", "BinaryMatrix", "Binarizer", "ERIC", "ExplaiNN", "Flow", "NeuroChains", "NotFittedError",
           "PatchMiner", "Rule", "RuleSet", "association_rules", "attribute", "attribution", "binarize", "data", "eclat",
           "evaluation", "image_folder", "layers", "load_model", "miners", "record", "recording", "registry", "trace", "zoo"]
