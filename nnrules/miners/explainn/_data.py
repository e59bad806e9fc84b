"""The data of an ExplaiNN fit: supports, item codes (Sec. 2.2) and the counting calls the search makes — every
one a sum over rows — answered from bit-packed words in memory. :class:`nnrules.miners.explainn._distributed.ShardedData`
answers the same calls from a Zarr store on Dask workers."""
from __future__ import annotations

import numba
import numpy as np

import nnrules.miners.explainn._counts as C
import nnrules.miners.explainn._kernels as K

from ...data.bits import BinaryMatrix, and_count
from ...data.packing import _popcount_rows
from ._prefix_kernels import majority_masks, prefix_heads
from .mdl import log_binom

__all__: list[str] = []


class _Data:
    """Supports, item codes and the counting calls of a fit, on bit-packed words in memory (no copies: a
    memmapped BinaryMatrix stays on disk). :class:`nnrules.miners.explainn._distributed.ShardedData` answers the same calls
    by summing counts over the row ranges of a Zarr store on Dask workers."""

    def __init__(self, head: BinaryMatrix, tail: BinaryMatrix) -> None:
        self.h_words = head.words
        self.t_words = tail.words
        self._setup(head.n_samples, head.support(), tail.support())

    def _setup(self, n: int, h_supp: np.ndarray, t_supp: np.ndarray) -> None:
        self.n = n
        self.h_supp = h_supp
        self.t_supp = t_supp
        total = float(self.h_supp.sum() + self.t_supp.sum())
        # item code L(x) = -log2(|T_x| / Σ_I |T_I|), over both layers (Sec. 2.2); dead units: inf
        with np.errstate(divide="ignore"):
            self.h_cost = -np.log2(self.h_supp / total) if total else np.full(len(self.h_supp), np.inf)
            self.t_cost = -np.log2(self.t_supp / total) if total else np.full(len(self.t_supp), np.inf)
        self.tables = C.tables(self.n)
        # confidences σ_xy (head × tail) and where a head item may predict a tail item: set by phase 1
        self.sigma = np.zeros((0, 0))
        self.ok = np.zeros((0, 0), bool)

    def singleton(self, y: int) -> float:
        return log_binom(self.n, int(self.t_supp[y]))

    def rule_args(self):
        return (self.h_words, self.t_words, self.h_supp, self.t_supp, self.h_cost, self.t_cost, self.n,
                self.tables)

    # --- the counting calls of the search (each a sum over rows; see nnrules.miners.explainn._distributed)
    @property
    def n_words(self) -> int:
        return int(self.t_words.shape[1])

    def and_count(self) -> np.ndarray:
        """|T_x ∩ T_y| for every head × tail unit: ``(p, q) int64``."""
        return and_count(self.h_words, self.t_words)

    def phase1(self, ptr, order, todo):
        """:func:`_kernels.phase1` for the tail units ``todo`` (their H_y prefixes in ``ptr``/``order``)."""
        t_words = self.t_words if len(todo) == len(self.t_supp) else np.ascontiguousarray(self.t_words[todo])
        return K.phase1(ptr, order, self.h_words, t_words, self.t_supp[todo], self.h_cost, self.t_cost[todo],
                        self.n, self.tables, numba.get_num_threads())

    def merge_groups(self, pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu):
        return K.merge_groups(pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu, *self.rule_args(),
                              numba.get_num_threads())

    def refine_heads(self, p_ptr, pool, member, r_tptr, r_tidx, r_cost, max_moves):
        """:func:`_kernels.refine_heads` (``member`` is updated in place)."""
        return K.refine_heads(p_ptr, pool, member, r_tptr, r_tidx, r_cost, *self.rule_args(),
                              numba.get_num_threads(), max_moves)

    def extend_tails(self, cr, cy, r_hptr, r_hidx, r_tptr, r_tidx):
        return K.extend_tails(cr, cy, r_hptr, r_hidx, r_tptr, r_tidx, *self.rule_args(), numba.get_num_threads())

    def applies_count(self, r_hptr, r_hidx, r_l, tail_units=None) -> np.ndarray:
        """Rows where each rule applies ∩ each head unit (``tail_units`` None) or each of ``tail_units``:
        ``(R, m) int64``."""
        masks = K.applies_masks(r_hptr, r_hidx, r_l, self.h_words, numba.get_num_threads())
        other = self.h_words if tail_units is None else np.ascontiguousarray(self.t_words[tail_units])
        return and_count(masks, other)

    def majority_count(self, y_ptr, y_idx) -> tuple[np.ndarray, np.ndarray]:
        """Rows where a strict majority of each tail set is on, ∩ each head unit ``(C, p) int64``, and their
        number ``(C,)`` (:mod:`._heads`)."""
        masks = majority_masks(y_ptr, y_idx, self.t_words, numba.get_num_threads())
        return and_count(masks, self.h_words), _popcount_rows(masks)

    def prefix_heads(self, c_ptr, c_pool, y_ptr, y_idx):
        """:func:`._heads.prefix_heads`: the best prefix head of each candidate's ranked pool for its tail."""
        return prefix_heads(c_ptr, c_pool, y_ptr, y_idx, self.h_words, self.t_words, self.t_supp, self.h_cost,
                            self.t_cost, self.n, self.tables, numba.get_num_threads())

    def tail_sample(self, step: int) -> np.ndarray:
        """Every ``step``-th word of each tail unit: ``(q, ceil(W / step)) uint64``."""
        return np.ascontiguousarray(self.t_words[:, ::step])
