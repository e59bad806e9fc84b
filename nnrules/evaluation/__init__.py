"""Do rules and explanations hold? Weight interventions (rules) and attribution metrics (heatmaps)."""
from .attribution_metrics import FlipCurve, model_randomization, pixel_flipping
from .interventions import intervene, zero_filters

__all__ = ["FlipCurve", "intervene", "model_randomization", "pixel_flipping", "zero_filters"]
