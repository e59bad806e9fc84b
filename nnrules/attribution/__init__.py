"""What drives a unit or a class: attribution methods and LRP, prototypes, exemplars, images."""
from . import lrp, prototypes, viz
from .methods import METHODS, attribute, group_objective, last_conv_layer
from .prototypes import exemplars, maximize

__all__ = ["METHODS", "attribute", "exemplars", "group_objective", "last_conv_layer", "lrp", "maximize", "prototypes", "viz"]
