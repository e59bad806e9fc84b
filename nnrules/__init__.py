"""nnrules: record a PyTorch model's activations, mine rules between groups of neurons, show them."""
from . import zoo
from .binarize import Binarizer, binarize
from .bits import BinaryMatrix
from .data import image_folder, load_model
from .hooks import layers
from .recording import Activations, record

__all__ = ["Activations", "BinaryMatrix", "Binarizer", "binarize", "image_folder", "layers",
           "load_model", "record", "zoo"]
__version__ = "0.1.0"
