"""Do rules and explanations hold? Weight interventions (rules) and attribution metrics (heatmaps)."""
from .attribution_metrics import FlipCurve, model_randomization, pixel_flipping
from .interventions import FRACTIONS, ablation_ranking, activation_ranking, intervene, zero_filters, zeroing_curves
from .rule_effect import rule_effect

__all__ = ["FRACTIONS", "FlipCurve", "ablation_ranking", "activation_ranking", "intervene", "model_randomization",
           "pixel_flipping", "rule_effect", "zero_filters", "zeroing_curves"]
