"""What a miner may ask of its data, whatever holds it: one protocol for bit matrices in memory and in a store.

:class:`~nnrules.data.bits.BinaryMatrix` (packed words in memory) and :class:`~nnrules.data.bits.StoredBits`
(the same words in a Zarr store, read on demand) both satisfy :class:`BitRows`; a miner that only asks for
these names runs on either (ExplaiNN counts over a stored matrix's row ranges on a Dask cluster,
:mod:`nnrules.miners.explainn._distributed`). A new backend (another array store) implements these names; no
code asks for a class by name.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["BitRows"]


@runtime_checkable
class BitRows(Protocol):
    """A binary ``(n_samples, n_units)`` matrix as packed rows, one per unit (see :mod:`nnrules.data.bits`).

    ``read(w0, w1, units)`` returns words ``[w0, w1)`` (samples ``64·w0 .. 64·w1``) of the chosen units as a
    ``(units, w1 - w0) uint64`` array; ``support()`` the samples each unit is on in, ``(n_units,) int64``;
    ``load()`` the whole matrix in memory; ``stored`` whether reading costs I/O (a store) or nothing.
    """

    n_samples: int
    names: list[str]
    layer: str
    stored: bool

    @property
    def shape(self) -> tuple[int, int]: ...

    @property
    def n_units(self) -> int: ...

    @property
    def n_words(self) -> int: ...

    def support(self) -> np.ndarray: ...

    def density(self) -> float: ...

    def select(self, units: Sequence[int]) -> "BitRows": ...

    def read(self, w0: int = 0, w1: int | None = None, units: np.ndarray | None = None) -> np.ndarray: ...

    def load(self): ...
