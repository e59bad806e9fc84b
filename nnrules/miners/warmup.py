"""Compile the miners' numba kernels ahead of the first Mine.

numba compiles a kernel on its first call (~15 s for all of ExplaiNN's and Eclat's on 2 cores) and keeps
the machine code in its on-disk cache (``cache=True``); a later process loads it in well under a second.
:func:`warm_up` runs the miners on a tiny planted data set so that this happens before a user presses
Mine: ``make`` calls it after installing (``python -m nnrules warmup``) and the app runs it in the
background once a model is loaded.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["warm_up"]


def warm_up() -> float:
    """Run ExplaiNN (both count paths) and Eclat once on ~200 planted rows; returns the seconds it took.
    Uses its own random generator: the global RNG states are untouched."""
    from ..data.synthetic import planted_rules
    from .explainn._estimator import ExplaiNN
    from .itemsets._frequent import association_rules, eclat

    start = time.perf_counter()
    data = planted_rules(n=256, n_rules=3, seed=0)
    ExplaiNN().fit(data.head, data.tail)
    ExplaiNN(theta=0.1).fit(data.head, data.tail)
    basket = np.concatenate([data.head, data.tail], axis=1)
    association_rules(eclat(basket, min_support=0.05, max_len=3), min_threshold=0.5)
    return time.perf_counter() - start
