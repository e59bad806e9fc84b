"""Models in, activations out: layer lookup and forward hooks, recording, loading models and images."""
from .hooks import OUTPUT, class_layer, forward_hooks, layers, named_layers, preserved_mode, resolve_layers
from .loading import image_folder, load_model
from .record import REDUCTIONS, Activations, RecordingError, record

__all__ = ["OUTPUT", "REDUCTIONS", "Activations", "RecordingError", "class_layer", "forward_hooks", "image_folder",
           "layers", "load_model", "named_layers", "preserved_mode", "record", "resolve_layers"]
