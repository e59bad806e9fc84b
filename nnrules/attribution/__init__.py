"""What drives a unit or a class: attribution methods and LRP, prototypes, exemplars, images."""
from . import feature_vis, lrp, prototypes, viz, zennit_lrp
from .methods import METHODS, attribute, default_composite, gradcam_layer, group_objective, last_conv_layer
from .prototypes import exemplars, maximize
from .unit_view import receptive_field, unit_crops

__all__ = ["METHODS", "attribute", "default_composite", "exemplars", "gradcam_layer", "group_objective",
           "last_conv_layer", "lrp", "maximize", "prototypes", "viz", "zennit_lrp", "feature_vis", "receptive_field",
           "unit_crops"]
