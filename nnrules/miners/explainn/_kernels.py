"""Numba kernels of ExplaiNN's search: phase-1 prefix heads, grouped pair merges, head refinement, absorption.

They are built from the counting kernels of :mod:`._counts` (bit-sliced head and tail counters,
histograms, the (l, k) scan); see its docstring for the encoding and the data layout. Each parallel kernel
splits its work into ``n_threads`` interleaved chunks with one set of scratch arrays per chunk.
"""
from __future__ import annotations

import numba
import numpy as np

from ...data.packing import _popcount64

from ._counts import (_ONE, _ctz, _eval_head, _head_masks, _joint, _lb, _cost, _scan,
                               _tail_masks, _zero_rows)


@numba.njit(cache=True)
def _results(m):
    """Per-candidate outputs of a search kernel: a cost (inf) and four integer arrays."""
    return (np.full(m, np.inf), np.zeros(m, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64),
            np.zeros(m, np.int64))


@numba.njit(cache=True, parallel=True)
def phase1(order_ptr, order_idx, h_words, t_words, t_supp, h_cost, t_cost, n, tables, n_threads):
    """For each tail item y: the best rule (first t items of H_y) →_l y over all t and l.

    ``order_idx[order_ptr[y]:order_ptr[y+1]]`` is H_y sorted by confidence. Returns per y the arrays
    (cost, t, l, |A|, |H|); cost is inf where H_y is empty. Heads grow by one item at a time and a
    (head count × tail bit) histogram is updated only on the new item's rows: O(Σ_{x∈H_y} |T_x| + W·|H_y|)
    per tail item, plus O(|H_y|²) for the l scans.
    """
    q = order_ptr.shape[0] - 1
    W = h_words.shape[1]
    table, lf, ln = tables
    cost, best_t, best_l, best_a, best_h = _results(q)
    n_chunks = min(n_threads, max(q, 1))
    for ch in numba.prange(n_chunks):
        cnt = np.zeros(n, dtype=np.int32)
        for y in range(ch, q, n_chunks):
            m = order_ptr[y + 1] - order_ptr[y]
            sy = t_supp[y]
            if m == 0 or sy == 0:
                continue
            hist = np.zeros((m + 2, 2), dtype=np.int64)
            items = t_cost[y]
            for t in range(1, m + 1):
                x = order_idx[order_ptr[y] + t - 1]
                items += h_cost[x]
                for w in range(W):
                    v = h_words[x, w]
                    tw = t_words[y, w]
                    while v:
                        bit = _ctz(v)
                        v &= v - _ONE
                        r = (w << 6) + bit
                        b = (tw >> np.uint64(bit)) & _ONE
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
                    c = _cost(t, 1, items, l, A, H, H, 0, _lb(n, sy - H, lf), table, lf, ln)
                    if c < cost[y]:
                        cost[y] = c
                        best_t[y] = t
                        best_l[y] = l
                        best_a[y] = A
                        best_h[y] = H
            _zero_rows(h_words, order_idx[order_ptr[y]:order_ptr[y + 1]], cnt)  # reset the rows this tail item touched
    return cost, best_t, best_l, best_a, best_h


@numba.njit(cache=True)
def _union_inter(r_hptr, r_hidx, a, b):
    """Sorted union and intersection of the heads of rules a and b."""
    a0, a1, b0, b1 = r_hptr[a], r_hptr[a + 1], r_hptr[b], r_hptr[b + 1]
    Xu = np.empty((a1 - a0) + (b1 - b0), dtype=np.int64)
    Xi = np.empty(min(a1 - a0, b1 - b0), dtype=np.int64)
    nu = 0
    ni = 0
    i, j = a0, b0
    while i < a1 or j < b1:
        if j >= b1 or (i < a1 and r_hidx[i] < r_hidx[j]):
            Xu[nu] = r_hidx[i]
            i += 1
        elif i >= a1 or r_hidx[j] < r_hidx[i]:
            Xu[nu] = r_hidx[j]
            j += 1
        else:
            Xu[nu] = r_hidx[i]
            Xi[ni] = r_hidx[i]
            ni += 1
            i += 1
            j += 1
        nu += 1
    return Xu[:nu], Xi[:ni]


@numba.njit(cache=True, parallel=True)
def merge_groups(pa, pb, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu, h_words, t_words, h_supp, t_supp,
                 h_cost, t_cost, n, tables, n_threads):
    """Evaluate merges of rule pairs (pa[c], pb[c]): heads X1∪X2 and X1∩X2, tail Y1∪Y2.

    Pairs come in groups ``g_ptr`` whose two rules have the same two heads (e.g. all pairs of a rule with
    head {3} and one with head {3, 7}): the head masks of the union and of the intersection are computed
    once per group and shared by its pairs, so a pair costs only its tail part. Rule r's head is
    ``r_hidx[r_hptr[r]:r_hptr[r+1]]`` (sorted), its tail ``r_tidx[r_tptr[r]:...]``. Groups whose heads differ
    in more than ``mu`` items (mu < 0: no bound) get cost inf. Returns per pair (cost, use_intersection, l,
    k, |A|, |H|). Cost per group O(W·|X| log|X|), per pair O(W·(|Y| log|Y| + |X|·|Y|)) word operations.
    """
    m = pa.shape[0]
    G = g_ptr.shape[0] - 1
    W = h_words.shape[1]
    cost, out_l, out_k, out_a, out_h = _results(m)
    inter = np.zeros(m, dtype=np.bool_)
    n_chunks = min(n_threads, max(G, 1))
    for ch in numba.prange(n_chunks):
        hp = np.zeros((64, W), np.uint64)
        tp = np.zeros((64, W), np.uint64)
        carry = np.empty(W, np.uint64)
        for gi in range(ch, G, n_chunks):
            c0, c1 = g_ptr[gi], g_ptr[gi + 1]
            Xu, Xi = _union_inter(r_hptr, r_hidx, pa[c0], pb[c0])
            nu, ni = Xu.shape[0], Xi.shape[0]
            if mu >= 0 and nu - ni > mu:
                continue
            use_i = 0 < ni < nu
            eq_u = np.empty((nu + 1, W), np.uint64)
            tot_u = np.zeros(nu + 1, np.int64)
            _head_masks(Xu, h_words, hp, carry, eq_u, tot_u)
            items_u = 0.0
            for i in range(nu):
                items_u += h_cost[Xu[i]]
            eq_i = np.empty((ni + 1 if use_i else 1, W), np.uint64)
            tot_i = np.zeros(ni + 1, np.int64)
            items_i = 0.0
            if use_i:
                _head_masks(Xi, h_words, hp, carry, eq_i, tot_i)
                for i in range(ni):
                    items_i += h_cost[Xi[i]]
            for c in range(c0, c1):
                a, b = pa[c], pb[c]
                la = r_tptr[a + 1] - r_tptr[a]
                lb = r_tptr[b + 1] - r_tptr[b]
                ny = la + lb
                Y = np.empty(ny, dtype=np.int64)
                Y[:la] = r_tidx[r_tptr[a]:r_tptr[a + 1]]
                Y[la:] = r_tidx[r_tptr[b]:r_tptr[b + 1]]
                items_t = 0.0
                for j in range(ny):
                    items_t += t_cost[Y[j]]
                te = np.empty((ny + 1, W), np.uint64)
                _tail_masks(Y, t_words, tp, carry, te)
                hist = np.zeros((nu + 1, ny + 1), np.int64)
                g = np.zeros((ny, nu + 1), np.int64)
                _joint(eq_u, tot_u, nu, Y, t_words, te, hist, g)
                res = _scan(nu, ny, items_u + items_t, hist, g, Y, t_supp, n, tables)
                cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
                if use_i:
                    hist = np.zeros((ni + 1, ny + 1), np.int64)
                    g = np.zeros((ny, ni + 1), np.int64)
                    _joint(eq_i, tot_i, ni, Y, t_words, te, hist, g)
                    res = _scan(ni, ny, items_i + items_t, hist, g, Y, t_supp, n, tables)
                    if res[0] < cost[c]:
                        cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = res
                        inter[c] = True
    return cost, inter, out_l, out_k, out_a, out_h


@numba.njit(cache=True, parallel=True)
def refine_heads(p_ptr, pool, member, r_tptr, r_tidx, r_cost, h_words, t_words, h_supp, t_supp, h_cost,
                 t_cost, n, tables, n_threads, max_moves):
    """Hill-climb each rule's head: add or drop one item of its ``pool`` while the rule's code length drops.

    Rule r's pool is ``pool[p_ptr[r]:p_ptr[r+1]]`` (sorted), ``member`` marks its current head items (updated
    in place). Each step scores every single add and drop and takes the best; at most ``max_moves`` steps.
    Returns per rule (cost, l, k, |A|, |H|, moves). O(steps · |pool| · W·|X| log|X|) per rule.
    """
    R = p_ptr.shape[0] - 1
    W = h_words.shape[1]
    cost, out_l, out_k, out_a, out_h = _results(R)
    cost[:] = r_cost
    moves = np.zeros(R, np.int64)
    n_chunks = min(n_threads, max(R, 1))
    for ch in numba.prange(n_chunks):
        hp = np.zeros((64, W), np.uint64)
        tp = np.zeros((64, W), np.uint64)
        carry = np.empty(W, np.uint64)
        for r in range(ch, R, n_chunks):
            Y = r_tidx[r_tptr[r]:r_tptr[r + 1]]
            ny = Y.shape[0]
            te = np.empty((ny + 1, W), np.uint64)
            _tail_masks(Y, t_words, tp, carry, te)
            items_t = 0.0
            for j in range(ny):
                items_t += t_cost[Y[j]]
            p0, p1 = p_ptr[r], p_ptr[r + 1]
            for step in range(max_moves):
                best = (cost[r], 0, 0, 0, 0)
                best_i = -1
                for i in range(p0, p1):
                    if h_supp[pool[i]] == 0:
                        continue
                    member[i] = not member[i]  # the move: flip one item
                    nx = 0
                    for t in range(p0, p1):
                        nx += member[t]
                    if nx > 0:
                        X = np.empty(nx, np.int64)
                        c = 0
                        for t in range(p0, p1):
                            if member[t]:
                                X[c] = pool[t]
                                c += 1
                        res = _eval_head(X, Y, h_words, t_words, t_supp, h_cost, t_cost, n, tables, hp, tp,
                                         carry, te, items_t)
                        if res[0] < best[0] - 1e-9:
                            best = res
                            best_i = i
                    member[i] = not member[i]
                if best_i < 0:
                    break
                member[best_i] = not member[best_i]
                cost[r], out_l[r], out_k[r], out_a[r], out_h[r] = best
                moves[r] += 1
    return cost, out_l, out_k, out_a, out_h, moves


@numba.njit(cache=True, parallel=True)
def applies_masks(r_hptr, r_hidx, r_l, h_words, n_threads):
    """Rows where each rule applies (≥ l of its head items on), as word masks ``(R, W)``."""
    R = r_hptr.shape[0] - 1
    W = h_words.shape[1]
    out = np.zeros((R, W), np.uint64)
    n_chunks = min(n_threads, max(R, 1))
    for ch in numba.prange(n_chunks):
        hp = np.zeros((64, W), np.uint64)
        carry = np.empty(W, np.uint64)
        for r in range(ch, R, n_chunks):
            X = r_hidx[r_hptr[r]:r_hptr[r + 1]]
            nx = X.shape[0]
            eqm = np.empty((nx + 1, W), np.uint64)
            tot = np.zeros(nx + 1, np.int64)
            _head_masks(X, h_words, hp, carry, eqm, tot)
            for a in range(r_l[r], nx + 1):
                for w in range(W):
                    out[r, w] |= eqm[a, w]
    return out


@numba.njit(cache=True, parallel=True)
def extend_tails(cr, cy, r_hptr, r_hidx, r_tptr, r_tidx, h_words, t_words, h_supp, t_supp, h_cost, t_cost, n,
                 tables, n_threads):
    """Cost of rule cr[c] with tail item cy[c] added (its head unchanged, (l, k) re-optimised): the absorb
    step. Returns per candidate (cost, l, k, |A|, |H|)."""
    m = cr.shape[0]
    W = h_words.shape[1]
    cost, out_l, out_k, out_a, out_h = _results(m)
    n_chunks = min(n_threads, max(m, 1))
    for ch in numba.prange(n_chunks):
        hp = np.zeros((64, W), np.uint64)
        tp = np.zeros((64, W), np.uint64)
        carry = np.empty(W, np.uint64)
        for c in range(ch, m, n_chunks):
            r = cr[c]
            X = r_hidx[r_hptr[r]:r_hptr[r + 1]]
            ny = r_tptr[r + 1] - r_tptr[r] + 1
            Y = np.empty(ny, np.int64)
            Y[:ny - 1] = r_tidx[r_tptr[r]:r_tptr[r + 1]]
            Y[ny - 1] = cy[c]
            te = np.empty((ny + 1, W), np.uint64)
            _tail_masks(Y, t_words, tp, carry, te)
            items_t = 0.0
            for j in range(ny):
                items_t += t_cost[Y[j]]
            cost[c], out_l[c], out_k[c], out_a[c], out_h[c] = _eval_head(
                X, Y, h_words, t_words, t_supp, h_cost, t_cost, n, tables, hp, tp, carry, te, items_t)
    return cost, out_l, out_k, out_a, out_h


@numba.njit(cache=True, parallel=True)
def head_differences(pa, pb, r_hptr, r_hidx):
    """|X_a Δ X_b| of the (sorted) heads of each pair (pa[c], pb[c]): the μ bound, applied before scoring."""
    out = np.empty(pa.shape[0], np.int64)
    for c in numba.prange(pa.shape[0]):
        a0, a1, b0, b1 = r_hptr[pa[c]], r_hptr[pa[c] + 1], r_hptr[pb[c]], r_hptr[pb[c] + 1]
        i, j, same = a0, b0, 0
        while i < a1 and j < b1:
            if r_hidx[i] == r_hidx[j]:
                same += 1
                i += 1
                j += 1
            elif r_hidx[i] < r_hidx[j]:
                i += 1
            else:
                j += 1
        out[c] = (a1 - a0) + (b1 - b0) - 2 * same
    return out


@numba.njit(cache=True, parallel=True)
def nearest(rows, masks, counts, k):
    """The ``k`` rules most similar to each rule in ``rows``, by the Jaccard index of their masks
    ``(R, W)`` (``counts``: their popcounts). Returns ``(len(rows), k)`` neighbour positions (−1 where a
    rule has fewer than k others with a common bit) and their similarities, best first (ties: lower
    position). O(len(rows) · R · W) word operations, O(k) memory per row."""
    B, R, W = rows.shape[0], masks.shape[0], masks.shape[1]
    nb = np.full((B, k), -1, np.int64)
    sim = np.zeros((B, k), np.float64)
    for b in numba.prange(B):
        i = rows[b]
        filled = 0
        for j in range(R):
            if j == i:
                continue
            c = 0
            for w in range(W):
                c += _popcount64(masks[i, w] & masks[j, w])
            if c == 0:
                continue
            s = c / (counts[i] + counts[j] - c)
            if filled == k and s <= sim[b, k - 1]:
                continue
            pos = filled if filled < k else k - 1
            while pos > 0 and sim[b, pos - 1] < s:
                sim[b, pos] = sim[b, pos - 1]
                nb[b, pos] = nb[b, pos - 1]
                pos -= 1
            sim[b, pos] = s
            nb[b, pos] = j
            if filled < k:
                filled += 1
    return nb, sim


@numba.njit(cache=True, parallel=True)
def beats(rows, cols, masks, counts, floor):
    """Whether rule ``rows[b]`` is more similar (Jaccard of ``masks``) to rule ``cols[c]`` than ``floor[c]``
    (the similarity of that rule's k-th nearest neighbour): ``(len(rows), len(cols))`` bool."""
    B, Q, W = rows.shape[0], cols.shape[0], masks.shape[1]
    out = np.zeros((B, Q), np.bool_)
    for b in numba.prange(B):
        i = rows[b]
        for q in range(Q):
            j = cols[q]
            c = 0
            for w in range(W):
                c += _popcount64(masks[i, w] & masks[j, w])
            out[b, q] = c > 0 and c / (counts[i] + counts[j] - c) > floor[q]
    return out
