"""Data types every part shares: bit-packed binary matrices, transactions, rules, binarization, planted test data."""
from .binarizer import Binarizer, binarize
from .bits import BinaryMatrix
from .rules import Rule, RuleSet
from .transactions import Transactions, read_fimi

__all__ = ["BinaryMatrix", "Binarizer", "Rule", "RuleSet", "Transactions", "binarize", "read_fimi"]
