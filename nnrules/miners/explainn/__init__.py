"""ExplaiNN (seed 000): MDL-optimal robust rules X → Y between two layers, chained into information flows.

One package, the estimator and everything only it uses: :mod:`._estimator` (:class:`ExplaiNN`, the search's
phases in order), :mod:`._search` (refinement, absorption, shared units), :mod:`._pairs` (which merge pairs
to score), :mod:`._data` (the counts a fit asks for, in memory), :mod:`._counts` and :mod:`._kernels` (numba
kernels), :mod:`._shards` and :mod:`._distributed` (the same counts over a Zarr store's row ranges on a Dask
cluster), :mod:`.mdl` (the code's primitives), :mod:`._reference` (an independent scorer, the tests' oracle).

Names are imported on first use (PEP 562): a Dask worker that only counts imports the kernels, never the
estimator or PyTorch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_names

_NAMES = {"ExplaiNN": "_estimator", "as_binary_matrix": "_estimator"}
__all__ = ["ExplaiNN", "as_binary_matrix"]

__getattr__ = lazy_names(__name__, _NAMES, globals())

if TYPE_CHECKING:
    from ._estimator import ExplaiNN, as_binary_matrix  # noqa: F401
