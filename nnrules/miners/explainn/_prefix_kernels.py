"""Numba kernels of ExplaiNN's heads from the tails' rows (:mod:`._heads`): the rows where a strict majority of a
tail set is on, and the best prefix head of a ranked pool for a tail set."""
from __future__ import annotations

import numba
import numpy as np

import nnrules.miners.explainn._kernels as K

from ...data.packing import _popcount64
from ._counts import _ONE, _ctz, _eval_head, _scan, _tail_masks, _zero_rows


@numba.njit(cache=True, parallel=True)
def prefix_heads(c_ptr, c_pool, y_ptr, y_idx, h_words, t_words, t_supp, h_cost, t_cost, n, tables, n_threads):
    """For each candidate c (head items ``c_pool[c_ptr[c]:c_ptr[c+1]]`` in rank order, tail ``y_idx[y_ptr[c]:
    y_ptr[c+1]]``): the best rule (first t items) →_l^k Y over every t, l and k. Returns per candidate
    (cost, t, l, k, |A|, |H|); cost is inf for an empty pool.

    Tails of up to 63 units (nearly all): row-wise, as phase 1 — each row's tail units are kept as a bit mask,
    the head grows one item at a time and only that item's rows update the (head count × tail count)
    histogram and the per-tail-unit counts, so a candidate costs O(Σ_{x∈pool} |T_x| · (1 + |Y ∩ t|) + Σ_y |T_y|
    + |pool|² · |Y|) (the (l, k) scans). Larger tails: bit-sliced per prefix (``_counts._eval_head``),
    O(|pool|² · W · (log|pool| + |Y|))."""
    C = c_ptr.shape[0] - 1
    W = h_words.shape[1]
    cost = np.full(C, np.inf)
    out_t, out_l, out_k, out_a, out_h = (np.zeros(C, np.int64), np.zeros(C, np.int64), np.zeros(C, np.int64),
                                         np.zeros(C, np.int64), np.zeros(C, np.int64))
    n_chunks = min(n_threads, max(C, 1))
    for ch in numba.prange(n_chunks):
        cnt, tbits = np.zeros(n, np.int32), np.zeros(n, np.uint64)
        hp, tp, carry = np.zeros((64, W), np.uint64), np.zeros((64, W), np.uint64), np.empty(W, np.uint64)
        for c in range(ch, C, n_chunks):
            Y = y_idx[y_ptr[c]:y_ptr[c + 1]]
            ny = Y.shape[0]
            pool = c_pool[c_ptr[c]:c_ptr[c + 1]]
            m = pool.shape[0]
            items = 0.0
            for j in range(ny):
                items += t_cost[Y[j]]
            if ny > 63:
                te = np.empty((ny + 1, W), np.uint64)
                _tail_masks(Y, t_words, tp, carry, te)
                for t in range(1, m + 1):
                    res = _eval_head(pool[:t].copy(), Y, h_words, t_words, t_supp, h_cost, t_cost, n, tables, hp, tp,
                                     carry, te, items)
                    if res[0] < cost[c] - 1e-9:
                        cost[c] = res[0]
                        out_t[c], out_l[c], out_k[c], out_a[c], out_h[c] = t, res[1], res[2], res[3], res[4]
                continue
            for j in range(ny):  # each row's tail units as bits
                bit = _ONE << np.uint64(j)
                for w in range(W):
                    v = t_words[Y[j], w]
                    while v:
                        tbits[(w << 6) + _ctz(v)] |= bit
                        v &= v - _ONE
            hist = np.zeros((m + 2, ny + 1), np.int64)
            g = np.zeros((ny, m + 2), np.int64)
            for t in range(1, m + 1):
                x = pool[t - 1]
                items += h_cost[x]
                for w in range(W):
                    v = h_words[x, w]
                    while v:
                        r = (w << 6) + _ctz(v)
                        v &= v - _ONE
                        a = cnt[r]
                        tb = tbits[r]
                        b = _popcount64(tb)
                        if a > 0:
                            hist[a, b] -= 1
                        hist[a + 1, b] += 1
                        while tb:
                            j = _ctz(tb)
                            tb &= tb - _ONE
                            if a > 0:
                                g[j, a] -= 1
                            g[j, a + 1] += 1
                        cnt[r] = a + 1
                res = _scan(t, ny, items, hist, g, Y, t_supp, n, tables)
                if res[0] < cost[c] - 1e-9:
                    cost[c] = res[0]
                    out_t[c], out_l[c], out_k[c], out_a[c], out_h[c] = t, res[1], res[2], res[3], res[4]
            _zero_rows(h_words, pool, cnt)  # reset the scratch through the rows this candidate touched
            _zero_rows(t_words, Y, tbits)
    return cost, out_t, out_l, out_k, out_a, out_h


def majority_masks(y_ptr, y_idx, t_words, n_threads):
    """Rows where a strict majority of each tail set is on: ``(C, W) uint64``."""
    sizes = np.diff(y_ptr)
    return K.applies_masks(y_ptr, y_idx, (sizes // 2 + 1).astype(np.int64), t_words, n_threads)
