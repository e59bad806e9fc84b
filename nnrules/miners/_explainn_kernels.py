"""Numba kernels of ExplaiNN's search: best (l, k) of a rule, phase-1 prefix search, pair merges.

All inputs are tid-lists in CSR form (``*_ptr``, ``*_idx``: sample ids per item) or bit-packed
tail rows. The encoding implemented is documented in ``docs/explainn-encoding.md``; per rule
X →_l^k Y, with A = rows where ≥ l head items are on, H = rows of A where ≥ k tail items are on:

    cost = L_N(|X|) + L_N(|Y|) + L(X) + L(Y) + L_N(l)                 rule
         + L_pc(|A|) + L_pc(|H||Y|) + L_pc(|A∖H||Y|)                  parametric complexities
         + lb(|A|, |H|) + lb(|H||Y|, |X+|) + lb(|A∖H||Y|, |X-|)       hold set and error matrices
         + Σ_{y∈Y} lb(n, |T_y| - |T_y ∩ A|)                            tail cells outside A
"""
from __future__ import annotations

import numba
import numpy as np

from .mdl import _log_binom as log_binom
from .mdl import _universal_int as universal_int, lpc


@numba.njit(cache=True)
def rule_cost(nx, ny, item_bits, l, A, H, sum_h, sum_ah, singles, table):
    """Code length (bits) of one rule from its counts; ``sum_h`` = Σ_{t∈H} |Y∩t|, ``sum_ah`` over A∖H."""
    hy = H * ny
    ahy = (A - H) * ny
    return (universal_int(nx) + universal_int(ny) + item_bits + universal_int(l)
            + lpc(A, table) + lpc(hy, table) + lpc(ahy, table)
            + log_binom(A, H) + log_binom(hy, hy - sum_h) + log_binom(ahy, sum_ah) + singles)


@numba.njit(cache=True)
def best_rule(X, Y, h_ptr, h_idx, t_ptr, t_idx, t_supp, h_cost, t_cost, n, table):
    """Best (l, k) for head items ``X`` and tail items ``Y``: returns (cost, l, k, |A|, |H|).

    Work is O(Σ_x |T_x| + Σ_y |T_y| + |X||Y|): only rows holding a head item can be in A.
    """
    nx = X.shape[0]
    ny = Y.shape[0]
    cnt_h = np.zeros(n, dtype=np.int32)
    total = 0
    for i in range(nx):
        total += h_ptr[X[i] + 1] - h_ptr[X[i]]
    touched = np.empty(total, dtype=np.int64)
    nt = 0
    items = 0.0
    for i in range(nx):
        x = X[i]
        items += h_cost[x]
        for p in range(h_ptr[x], h_ptr[x + 1]):
            r = h_idx[p]
            if cnt_h[r] == 0:
                touched[nt] = r
                nt += 1
            cnt_h[r] += 1
    cnt_t = np.zeros(n, dtype=np.int32)
    g = np.zeros((ny, nx + 1), dtype=np.int64)  # g[j, a]: rows of T_y with exactly a head items
    for j in range(ny):
        y = Y[j]
        items += t_cost[y]
        for p in range(t_ptr[y], t_ptr[y + 1]):
            r = t_idx[p]
            cnt_t[r] += 1
            g[j, cnt_h[r]] += 1
    hist = np.zeros((nx + 1, ny + 1), dtype=np.int64)  # rows with a head items and b tail items
    for i in range(nt):
        r = touched[i]
        hist[cnt_h[r], cnt_t[r]] += 1
    col = np.zeros(ny + 1, dtype=np.int64)
    gcum = np.zeros(ny, dtype=np.int64)
    best = (np.inf, 0, 0, 0, 0)
    A = 0
    S = 0
    for l in range(nx, 0, -1):
        for b in range(ny + 1):
            col[b] += hist[l, b]
            A += hist[l, b]
            S += b * hist[l, b]
        singles = 0.0
        for j in range(ny):
            gcum[j] += g[j, l]
            singles += log_binom(n, t_supp[Y[j]] - gcum[j])
        H = 0
        sum_h = 0
        for k in range(ny, 0, -1):
            H += col[k]
            sum_h += k * col[k]
            c = rule_cost(nx, ny, items, l, A, H, sum_h, S - sum_h, singles, table)
            if c < best[0]:
                best = (c, l, k, A, H)
    return best


@numba.njit(cache=True, parallel=True)
def phase1(order_ptr, order_idx, h_ptr, h_idx, t_words, t_supp, h_cost, t_cost, n, table):
    """For each tail item y: the best rule (first t items of H_y) →_l y over all t and l.

    ``order_idx[order_ptr[y]:order_ptr[y+1]]`` is H_y sorted by confidence. Returns per y the arrays
    (cost, t, l, |A|, |H|); cost is inf where H_y is empty. Heads grow by one item at a time and a
    (head count × tail bit) histogram is updated only on the new item's rows.
    """
    q = order_ptr.shape[0] - 1
    cost = np.full(q, np.inf)
    best_t = np.zeros(q, dtype=np.int64)
    best_l = np.zeros(q, dtype=np.int64)
    best_a = np.zeros(q, dtype=np.int64)
    best_h = np.zeros(q, dtype=np.int64)
    for y in numba.prange(q):
        m = order_ptr[y + 1] - order_ptr[y]
        sy = t_supp[y]
        if m == 0 or sy == 0:
            continue
        cnt = np.zeros(n, dtype=np.int32)
        hist = np.zeros((m + 2, 2), dtype=np.int64)
        items = t_cost[y]
        for t in range(1, m + 1):
            x = order_idx[order_ptr[y] + t - 1]
            items += h_cost[x]
            for p in range(h_ptr[x], h_ptr[x + 1]):
                r = h_idx[p]
                b = (t_words[y, r >> 6] >> np.uint64(r & 63)) & np.uint64(1)
                a = cnt[r]
                if a > 0:
                    hist[a, b] -= 1
                hist[a + 1, b] += 1
                cnt[r] = a + 1
            A = 0
            H = 0
            for l in range(t, 0, -1):
                A += hist[l, 0] + hist[l, 1]
                H += hist[l, 1]
                # one tail item: H = A ∩ T_y, so X+ and X- are empty (sum_h = H, sum_ah = 0)
                c = rule_cost(t, 1, items, l, A, H, H, 0, log_binom(n, sy - H), table)
                if c < cost[y]:
                    cost[y] = c
                    best_t[y] = t
                    best_l[y] = l
                    best_a[y] = A
                    best_h[y] = H
    return cost, best_t, best_l, best_a, best_h


@numba.njit(cache=True, parallel=True)
def merge_pairs(pi, pj, head_mask, r_ptr, r_idx, mu, h_ptr, h_idx, t_ptr, t_idx, t_supp,
                h_cost, t_cost, n, table):
    """Evaluate merges of rule pairs (pi[c], pj[c]): heads X1∪X2 and X1∩X2, tail Y1∪Y2.

    ``head_mask (R, p) uint8`` marks each rule's head items, ``r_idx[r_ptr[r]:r_ptr[r+1]]`` its tail.
    Pairs whose heads differ in more than ``mu`` items (mu < 0: no bound) get cost inf.
    Returns per pair (cost, use_intersection, l, k, |A|, |H|).
    """
    m = pi.shape[0]
    p = head_mask.shape[1]
    cost = np.full(m, np.inf)
    inter = np.zeros(m, dtype=np.bool_)
    out_l = np.zeros(m, dtype=np.int64)
    out_k = np.zeros(m, dtype=np.int64)
    out_a = np.zeros(m, dtype=np.int64)
    out_h = np.zeros(m, dtype=np.int64)
    for c in numba.prange(m):
        a = pi[c]
        b = pj[c]
        Xu = np.empty(p, dtype=np.int64)  # union and intersection of the two heads, one scan
        Xi = np.empty(p, dtype=np.int64)
        n_union = 0
        n_inter = 0
        for x in range(p):
            ha = head_mask[a, x]
            hb = head_mask[b, x]
            if ha or hb:
                Xu[n_union] = x
                n_union += 1
            if ha and hb:
                Xi[n_inter] = x
                n_inter += 1
        if mu >= 0 and n_union - n_inter > mu:
            continue
        Xu = Xu[:n_union]
        Xi = Xi[:n_inter]
        la = r_ptr[a + 1] - r_ptr[a]
        lb = r_ptr[b + 1] - r_ptr[b]
        Y = np.empty(la + lb, dtype=np.int64)
        Y[:la] = r_idx[r_ptr[a]:r_ptr[a + 1]]
        Y[la:] = r_idx[r_ptr[b]:r_ptr[b + 1]]
        res = best_rule(Xu, Y, h_ptr, h_idx, t_ptr, t_idx, t_supp, h_cost, t_cost, n, table)
        cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
        if n_inter > 0 and n_inter < n_union:
            res = best_rule(Xi, Y, h_ptr, h_idx, t_ptr, t_idx, t_supp, h_cost, t_cost, n, table)
            if res[0] < cost[c]:
                cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
                inter[c] = True
    return cost, inter, out_l, out_k, out_a, out_h
