"""ExplaiNN's merge scoring split in two, for counting over row ranges (:mod:`nnrules.miners.explainn._distributed`).

:func:`_kernels.merge_groups` fills each pair's (head count × tail count) histograms and scans
them for the best (l, k) in one pass. The histograms are sums over rows, so the pass splits:

1. :func:`merge_layout` — where each pair's histograms sit in one flat int64 buffer (driver).
2. :func:`merge_counts` — the histograms over a range of rows (a worker's row range of the store), written
   into that buffer; buffers of several ranges are added.
3. :func:`merge_scan` — the best (l, k) of each pair from the summed buffer (driver): the same arithmetic, in
   the same order, as ``merge_groups``, so the results are equal to the last bit.

A pair with union head of size u, intersection i (used when 0 < i < u) and tail of size y takes
(u + 1)(2y + 1) (+ (i + 1)(2y + 1)) entries: ``hist`` (u + 1, y + 1) then ``g`` (y, u + 1).
"""
from __future__ import annotations

import numba
import numpy as np

from ._counts import _head_masks, _joint, _scan, _tail_masks
from ._kernels import _results, _union_inter


@numba.njit(cache=True)
def merge_layout(pa, pb, g_ptr, r_hptr, r_hidx, r_tptr, mu):
    """Per pair: the offset of its histograms (−1: heads differ in more than ``mu`` items, not scored), the
    size of its union head and of its intersection head (0 when the intersection is not tried); and the
    buffer's size."""
    m = pa.shape[0]
    off = np.full(m, -1, np.int64)
    nu_a = np.zeros(m, np.int64)
    ni_a = np.zeros(m, np.int64)
    pos = 0
    for gi in range(g_ptr.shape[0] - 1):
        c0, c1 = g_ptr[gi], g_ptr[gi + 1]
        Xu, Xi = _union_inter(r_hptr, r_hidx, pa[c0], pb[c0])
        nu, ni = Xu.shape[0], Xi.shape[0]
        if mu >= 0 and nu - ni > mu:
            continue
        use_i = 0 < ni < nu
        for c in range(c0, c1):
            ny = (r_tptr[pa[c] + 1] - r_tptr[pa[c]]) + (r_tptr[pb[c] + 1] - r_tptr[pb[c]])
            off[c] = pos
            nu_a[c] = nu
            pos += (nu + 1) * (2 * ny + 1)
            if use_i:
                ni_a[c] = ni
                pos += (ni + 1) * (2 * ny + 1)
    return off, nu_a, ni_a, pos


@numba.njit(cache=True, inline="always")
def _pair_tail(pa, pb, c, r_tptr, r_tidx):
    a, b = pa[c], pb[c]
    la = r_tptr[a + 1] - r_tptr[a]
    lb = r_tptr[b + 1] - r_tptr[b]
    Y = np.empty(la + lb, dtype=np.int64)
    Y[:la] = r_tidx[r_tptr[a]:r_tptr[a + 1]]
    Y[la:] = r_tidx[r_tptr[b]:r_tptr[b + 1]]
    return Y


@numba.njit(cache=True, parallel=True)
def merge_counts(pa, pb, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, off, ni_a, size, h_words, t_words, n_threads):
    """The histograms of every scored pair over the rows of ``h_words`` / ``t_words`` (a row range), in the
    layout of :func:`merge_layout`. O(W·|X| log|X|) per group and O(W·(|Y| log|Y| + |X|·|Y|)) per pair."""
    G = g_ptr.shape[0] - 1
    W = h_words.shape[1]
    buf = np.zeros(size, np.int64)
    n_chunks = min(n_threads, max(G, 1))
    for ch in numba.prange(n_chunks):
        hp = np.zeros((64, W), np.uint64)
        tp = np.zeros((64, W), np.uint64)
        carry = np.empty(W, np.uint64)
        for gi in range(ch, G, n_chunks):
            c0, c1 = g_ptr[gi], g_ptr[gi + 1]
            if off[c0] < 0:
                continue
            Xu, Xi = _union_inter(r_hptr, r_hidx, pa[c0], pb[c0])
            nu, ni = Xu.shape[0], Xi.shape[0]
            use_i = ni_a[c0] > 0
            eq_u = np.empty((nu + 1, W), np.uint64)
            tot_u = np.zeros(nu + 1, np.int64)
            _head_masks(Xu, h_words, hp, carry, eq_u, tot_u)
            eq_i = np.empty((ni + 1 if use_i else 1, W), np.uint64)
            tot_i = np.zeros(ni + 1, np.int64)
            if use_i:
                _head_masks(Xi, h_words, hp, carry, eq_i, tot_i)
            for c in range(c0, c1):
                Y = _pair_tail(pa, pb, c, r_tptr, r_tidx)
                ny = Y.shape[0]
                te = np.empty((ny + 1, W), np.uint64)
                _tail_masks(Y, t_words, tp, carry, te)
                o = off[c]
                hist = buf[o: o + (nu + 1) * (ny + 1)].reshape((nu + 1, ny + 1))
                o += (nu + 1) * (ny + 1)
                g = buf[o: o + ny * (nu + 1)].reshape((ny, nu + 1))
                o += ny * (nu + 1)
                _joint(eq_u, tot_u, nu, Y, t_words, te, hist, g)
                if use_i:
                    hist = buf[o: o + (ni + 1) * (ny + 1)].reshape((ni + 1, ny + 1))
                    o += (ni + 1) * (ny + 1)
                    g = buf[o: o + ny * (ni + 1)].reshape((ny, ni + 1))
                    _joint(eq_i, tot_i, ni, Y, t_words, te, hist, g)
    return buf


@numba.njit(cache=True, parallel=True)
def merge_scan(pa, pb, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, off, nu_a, ni_a, buf, h_cost, t_cost, t_supp, n,
               tables, n_threads):
    """Per pair (cost, use_intersection, l, k, |A|, |H|) from the summed histograms: what
    ``merge_groups`` returns on all rows."""
    m = pa.shape[0]
    G = g_ptr.shape[0] - 1
    cost, out_l, out_k, out_a, out_h = _results(m)
    inter = np.zeros(m, dtype=np.bool_)
    n_chunks = min(n_threads, max(G, 1))
    for ch in numba.prange(n_chunks):
        for gi in range(ch, G, n_chunks):
            c0, c1 = g_ptr[gi], g_ptr[gi + 1]
            if off[c0] < 0:
                continue
            Xu, Xi = _union_inter(r_hptr, r_hidx, pa[c0], pb[c0])
            nu, ni = nu_a[c0], ni_a[c0]
            items_u = 0.0
            for i in range(nu):
                items_u += h_cost[Xu[i]]
            items_i = 0.0
            for i in range(ni):
                items_i += h_cost[Xi[i]]
            for c in range(c0, c1):
                Y = _pair_tail(pa, pb, c, r_tptr, r_tidx)
                ny = Y.shape[0]
                items_t = 0.0
                for j in range(ny):
                    items_t += t_cost[Y[j]]
                o = off[c]
                hist = buf[o: o + (nu + 1) * (ny + 1)].reshape((nu + 1, ny + 1))
                o += (nu + 1) * (ny + 1)
                g = buf[o: o + ny * (nu + 1)].reshape((ny, nu + 1))
                o += ny * (nu + 1)
                res = _scan(nu, ny, items_u + items_t, hist, g, Y, t_supp, n, tables)
                cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
                if ni > 0:
                    hist = buf[o: o + (ni + 1) * (ny + 1)].reshape((ni + 1, ny + 1))
                    o += (ni + 1) * (ny + 1)
                    g = buf[o: o + ny * (ni + 1)].reshape((ny, ni + 1))
                    res = _scan(ni, ny, items_i + items_t, hist, g, Y, t_supp, n, tables)
                    if res[0] < cost[c]:
                        cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
                        inter[c] = True
    return cost, inter, out_l, out_k, out_a, out_h
