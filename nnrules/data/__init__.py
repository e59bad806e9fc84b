"""Data types every part shares: bit-packed binary matrices, rules, binarization, planted test data."""
from .binarizer import Binarizer, binarize
from .bits import BinaryMatrix
from .rules import Rule, RuleSet

__all__ = ["BinaryMatrix", "Binarizer", "Rule", "RuleSet", "binarize"]
