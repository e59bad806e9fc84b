"""Frequent, closed and maximal itemsets and association rules (Eclat, LCM's ppc-extension, MAFIA-style
maximal search) over bit-packed rows or transactions: :mod:`._frequent` (the public functions and the
:class:`Itemsets` result), :mod:`._eclat_kernels` and :mod:`._closed_kernels` (numba searches)."""
from __future__ import annotations

from ._frequent import (MAX_ITEMSETS, Itemsets, association_rules, eclat, frequent_itemsets, min_count,
                        top_rules)

__all__ = ["Itemsets", "frequent_itemsets", "eclat", "association_rules", "top_rules", "min_count", "MAX_ITEMSETS"]
