"""Numba kernels of ExplaiNN's search: best (l, k) of a rule, phase-1 prefix search, pair merges.

Data are bit-packed only: ``h_words (p, W)`` and ``t_words (q, W)`` ``uint64`` (W = ⌈n/64⌉, bit r of word
r >> 6 is sample r) — 1 bit per sample × unit, no tid-lists. The encoding is documented in
``docs/explainn-encoding.md``; per rule X →_l^k Y, with A = rows where ≥ l head items are on, H = rows of
A where ≥ k tail items are on:

    cost = L_N(|X|) + L_N(|Y|) + L(X) + L(Y) + L_N(l)                 rule
         + L_pc(|A|) + L_pc(|H||Y|) + L_pc(|A∖H||Y|)                  parametric complexities
         + lb(|A|, |H|) + lb(|H||Y|, |X+|) + lb(|A∖H||Y|, |X-|)       hold set and error matrices
         + Σ_{y∈Y} lb(n, |T_y| - |T_y ∩ A|)                            tail cells outside A

Everything (l, k) needs is the 2-D histogram hist[a, b] = #rows with a head items and b tail items on, and
g[j, a] = #rows of T_{y_j} with a head items on. Two ways to fill it, chosen per call by their cost:

- *bit-sliced* (small rules): per 64-row word, the head and tail counts are kept as binary counters over
  bit planes (a ripple-carry add per item); the rows with count a are the AND of the planes, and every
  histogram cell is a popcount. O(W · (|X| log|X| + |Y| log|Y| + |X|·|Y|)) word operations.
- *row-wise* (large rules): the rows of each item are enumerated from its words and counted in per-thread
  scratch arrays, which are reset through the list of touched rows (no per-call memset).
  O(Σ_x |T_x| + Σ_y |T_y| + W·(|X| + |Y|)).

Scratch memory per thread: 2 × n int32 + n int64 + 2 × 64 × W uint64 (≈ 17 bytes per row).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..data.bits import _popcount64
from .mdl import _LN2, _lpc_asymptotic, lpc, lpc_table
from .mdl import _log_binom as log_binom
from .mdl import _universal_int as universal_int

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _ctz(v: np.uint64) -> np.int64:
    """Index of the lowest set bit of ``v`` (v > 0)."""
    return _popcount64((v & (~v + _ONE)) - _ONE)


@numba.njit(cache=True, inline="always")
def _bitlen(x: int) -> int:
    b = 0
    while x > 0:
        b += 1
        x >>= 1
    return b


#: log2 n! is tabulated up to this n (32 MB); larger arguments fall back to lgamma.
LOG_FACTORIAL_MAX = 1 << 22
#: L_N(z) is tabulated up to this z.
UNIVERSAL_INT_MAX = 1 << 16


def tables(n: int):
    """(L_pc table, log2 n! table, L_N table) for a fit over ``n`` rows: table lookups instead of lgamma and
    log2 loops in the (l, k) scans (values equal to the direct formulas to a few ulp)."""
    size = int(min(max(4 * (n + 1), 1024), LOG_FACTORIAL_MAX))
    return _lpc_extended(lpc_table(), size), _log_factorials(size), _universal_ints(UNIVERSAL_INT_MAX)


@numba.njit(cache=True)
def _lpc_extended(table, size):
    """The exact L_pc table, continued by the asymptotic expansion up to ``size`` (what :func:`lpc` returns)."""
    out = np.empty(max(size, table.shape[0]), dtype=np.float64)
    out[:table.shape[0]] = table
    for i in range(table.shape[0], out.shape[0]):
        out[i] = lpc(i, table)
    return out


@numba.njit(cache=True)
def _log_factorials(size):
    out = np.empty(size, dtype=np.float64)
    for i in range(size):
        out[i] = math.lgamma(i + 1.0) / _LN2
    return out


@numba.njit(cache=True)
def _universal_ints(size):
    out = np.empty(size, dtype=np.float64)
    for i in range(size):
        out[i] = universal_int(i)
    return out


@numba.njit(cache=True, inline="always")
def _lb(n, k, lf):
    """log2 C(n, k) (0 for k outside (0, n)) from the log-factorial table when n is in it."""
    if k <= 0 or k >= n:
        return 0.0
    if n < lf.shape[0]:
        return lf[n] - lf[k] - lf[n - k]
    return log_binom(n, k)


@numba.njit(cache=True, inline="always")
def _lpc(z, table):
    return table[z] if z < table.shape[0] else _lpc_asymptotic(float(z))


@numba.njit(cache=True, inline="always")
def _ln(z, ln):
    return ln[z] if z < ln.shape[0] else universal_int(z)


@numba.njit(cache=True, inline="always")
def _cost(nx, ny, item_bits, l, A, H, sum_h, sum_ah, singles, table, lf, ln):
    hy = H * ny
    ahy = (A - H) * ny
    return (_ln(nx, ln) + _ln(ny, ln) + item_bits + _ln(l, ln)
            + _lpc(A, table) + _lpc(hy, table) + _lpc(ahy, table)
            + _lb(A, H, lf) + _lb(hy, hy - sum_h, lf) + _lb(ahy, sum_ah, lf) + singles)


@numba.njit(cache=True)
def rule_cost(nx, ny, item_bits, l, A, H, sum_h, sum_ah, singles, tables):
    """Code length (bits) of one rule from its counts; ``sum_h`` = Σ_{t∈H} |Y∩t|, ``sum_ah`` over A∖H;
    ``tables`` from :func:`tables`. (The kernels inline :func:`_cost`: passing the tables' arrays to a call
    costs reference counting per call.)"""
    table, lf, ln = tables
    return _cost(nx, ny, item_bits, l, A, H, sum_h, sum_ah, singles, table, lf, ln)


def new_scratch(n: int, n_words: int):
    """Per-thread work arrays for :func:`best_rule` (see the module docstring for their size)."""
    return (np.zeros(n, np.int32), np.zeros(n, np.int32), np.empty(n, np.int64),
            np.zeros((64, n_words), np.uint64), np.zeros((64, n_words), np.uint64))


@numba.njit(cache=True)
def _add_planes(planes, nb, words, item, carry):
    """planes[:nb] += bit column ``words[item]`` (a binary counter per row, one plane per bit); a ripple
    carry over whole planes, so that the word loops vectorise."""
    W = words.shape[1]
    for w in range(W):
        carry[w] = words[item, w]
    for b in range(nb):
        for w in range(W):
            t = planes[b, w] & carry[w]
            planes[b, w] ^= carry[w]
            carry[w] = t


@numba.njit(cache=True)
def _head_masks(X, h_words, hp, carry, eqm, tot):
    """Rows whose head count is exactly a, as word masks ``eqm[a]`` (a = 1..|X|), and their number ``tot[a]``.
    ``hp`` (≥ bitlen(|X|) planes) and ``carry`` (W,) are scratch. O(W·|X|·log|X|), vectorised."""
    nx = X.shape[0]
    W = h_words.shape[1]
    bh = _bitlen(nx)
    for b in range(bh):
        hp[b, :] = 0
    for i in range(nx):
        _add_planes(hp, bh, h_words, X[i], carry)
    for a in range(1, nx + 1):
        for w in range(W):
            eqm[a, w] = _ALL
        for b in range(bh):
            flip = np.uint64(0) if (a >> b) & 1 else _ALL
            for w in range(W):
                eqm[a, w] &= hp[b, w] ^ flip
        c = 0
        for w in range(W):
            c += _popcount64(eqm[a, w])
        tot[a] = c


@numba.njit(cache=True)
def _tail_masks(Y, t_words, tp, carry, te):
    """Rows with exactly v tail items of ``Y`` as word masks ``te[v]`` (v = 1..|Y|); ``tp``, ``carry`` are
    scratch. O(W·|Y| log|Y|), vectorised."""
    ny = Y.shape[0]
    W = t_words.shape[1]
    bt = _bitlen(ny)
    for b in range(bt):
        tp[b, :] = 0
    for j in range(ny):
        _add_planes(tp, bt, t_words, Y[j], carry)
    for v in range(1, ny + 1):
        for w in range(W):
            te[v, w] = _ALL
        for b in range(bt):
            flip = np.uint64(0) if (v >> b) & 1 else _ALL
            for w in range(W):
                te[v, w] &= tp[b, w] ^ flip


@numba.njit(cache=True)
def _joint(eqm, tot, nx, Y, t_words, te, hist, g):
    """``hist`` and ``g`` from the head masks (:func:`_head_masks`) and tail masks (:func:`_tail_masks`):
    O(W·|X|·2|Y|) vectorised popcounts."""
    ny = Y.shape[0]
    W = t_words.shape[1]
    if ny == 2:  # the first merge round: one pass per head count, three popcounts per word
        y0, y1 = Y[0], Y[1]
        for a in range(1, nx + 1):
            if tot[a] == 0:
                continue
            c0 = 0
            c1 = 0
            c2 = 0
            for w in range(W):
                e = eqm[a, w]
                t0 = t_words[y0, w]
                t1 = t_words[y1, w]
                c0 += _popcount64(e & t0)
                c1 += _popcount64(e & t1)
                c2 += _popcount64(e & t0 & t1)
            hist[a, 2] += c2
            hist[a, 1] += c0 + c1 - 2 * c2
            hist[a, 0] += tot[a] - (c0 + c1 - c2)
            g[0, a] += c0
            g[1, a] += c1
        return
    for a in range(1, nx + 1):
        if tot[a] == 0:
            continue
        rest = tot[a]
        for v in range(1, ny + 1):
            c = 0
            for w in range(W):
                c += _popcount64(eqm[a, w] & te[v, w])
            hist[a, v] += c
            rest -= c
        hist[a, 0] += rest
        for j in range(ny):
            c = 0
            y = Y[j]
            for w in range(W):
                c += _popcount64(eqm[a, w] & t_words[y, w])
            g[j, a] += c


@numba.njit(cache=True)
def _hist_bits(X, Y, h_words, t_words, hp, tp, hist, g):
    """Fill ``hist`` and ``g`` with bit-sliced counters (see the module docstring)."""
    nx, ny = X.shape[0], Y.shape[0]
    W = h_words.shape[1]
    carry = np.empty(W, dtype=np.uint64)
    eqm = np.empty((nx + 1, W), dtype=np.uint64)
    tot = np.zeros(nx + 1, dtype=np.int64)
    _head_masks(X, h_words, hp, carry, eqm, tot)
    te = np.empty((ny + 1, W), dtype=np.uint64)
    _tail_masks(Y, t_words, tp, carry, te)
    _joint(eqm, tot, nx, Y, t_words, te, hist, g)


@numba.njit(cache=True)
def _hist_rows(X, Y, h_words, t_words, cnt_h, cnt_t, touched, hist, g):
    """Fill ``hist`` and ``g`` by counting rows in scratch arrays; the scratch is left zeroed."""
    nx, ny = X.shape[0], Y.shape[0]
    W = h_words.shape[1]
    nt = 0
    for i in range(nx):
        for w in range(W):
            v = h_words[X[i], w]
            while v:
                r = (w << 6) + _ctz(v)
                v &= v - _ONE
                if cnt_h[r] == 0:
                    touched[nt] = r
                    nt += 1
                cnt_h[r] += 1
    for j in range(ny):
        for w in range(W):
            v = t_words[Y[j], w]
            while v:
                r = (w << 6) + _ctz(v)
                v &= v - _ONE
                cnt_t[r] += 1
                g[j, cnt_h[r]] += 1
    for i in range(nt):
        r = touched[i]
        hist[cnt_h[r], cnt_t[r]] += 1
        cnt_h[r] = 0
    for j in range(ny):
        for w in range(W):
            v = t_words[Y[j], w]
            while v:
                cnt_t[(w << 6) + _ctz(v)] = 0
                v &= v - _ONE


@numba.njit(cache=True)
def best_rule(X, Y, h_words, t_words, h_supp, t_supp, h_cost, t_cost, n, tables, scratch):
    """Best (l, k) for head items ``X`` and tail items ``Y``: returns (cost, l, k, |A|, |H|)."""
    cnt_h, cnt_t, touched, hp, tp = scratch
    nx, ny = X.shape[0], Y.shape[0]
    W = h_words.shape[1]
    hist = np.zeros((nx + 1, ny + 1), dtype=np.int64)  # rows with a head items and b tail items
    g = np.zeros((ny, nx + 1), dtype=np.int64)  # g[j, a]: rows of T_y with exactly a head items
    items = 0.0
    rows = 0
    for i in range(nx):
        items += h_cost[X[i]]
        rows += h_supp[X[i]]
    for j in range(ny):
        items += t_cost[Y[j]]
        rows += t_supp[Y[j]]
    bits_ops = W * (nx * (_bitlen(nx) + 1) * 2 + ny * _bitlen(ny) + nx * 2 * ny)
    if nx <= 63 and ny <= 63 and bits_ops < 3 * (rows + rows // 2) + W * (nx + 2 * ny):
        _hist_bits(X, Y, h_words, t_words, hp, tp, hist, g)
    else:
        _hist_rows(X, Y, h_words, t_words, cnt_h, cnt_t, touched, hist, g)
    return _scan(nx, ny, items, hist, g, Y, t_supp, n, tables)


@numba.njit(cache=True)
def _scan(nx, ny, items, hist, g, Y, t_supp, n, tables):
    """Best (cost, l, k, |A|, |H|) over all thresholds from the histograms: O(|X|·|Y|).

    A threshold l with no row of exactly l - 1 head items is skipped: l - 1 has the same counts and a
    shorter L_N(l), so it is strictly cheaper (exact pruning; most high thresholds of large heads)."""
    table, lf, ln = tables
    col = np.zeros(ny + 1, dtype=np.int64)
    gcum = np.zeros(ny, dtype=np.int64)
    best = (np.inf, 0, 0, 0, 0)
    A = 0
    S = 0
    fixed = _ln(nx, ln) + _ln(ny, ln) + items
    for l in range(nx, 0, -1):
        for b in range(ny + 1):
            col[b] += hist[l, b]
            A += hist[l, b]
            S += b * hist[l, b]
        for j in range(ny):
            gcum[j] += g[j, l]
        if l > 1:
            below = 0
            for b in range(ny + 1):
                below += hist[l - 1, b]
            if below == 0:
                continue
        singles = 0.0
        for j in range(ny):
            singles += _lb(n, t_supp[Y[j]] - gcum[j], lf)
        base = fixed + _ln(l, ln) + _lpc(A, table) + singles
        H = 0
        sum_h = 0
        for k in range(ny, 0, -1):
            H += col[k]
            sum_h += k * col[k]
            hy = H * ny
            ahy = (A - H) * ny
            c = (base + _lpc(hy, table) + _lpc(ahy, table) + _lb(A, H, lf) + _lb(hy, hy - sum_h, lf)
                 + _lb(ahy, S - sum_h, lf))
            if c < best[0]:
                best = (c, l, k, A, H)
    return best


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
    cost = np.full(q, np.inf)
    best_t = np.zeros(q, dtype=np.int64)
    best_l = np.zeros(q, dtype=np.int64)
    best_a = np.zeros(q, dtype=np.int64)
    best_h = np.zeros(q, dtype=np.int64)
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
            for i in range(m):  # reset the rows this tail item touched
                x = order_idx[order_ptr[y] + i]
                for w in range(W):
                    v = h_words[x, w]
                    while v:
                        cnt[(w << 6) + _ctz(v)] = 0
                        v &= v - _ONE
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
    cost = np.full(m, np.inf)
    inter = np.zeros(m, dtype=np.bool_)
    out_l = np.zeros(m, dtype=np.int64)
    out_k = np.zeros(m, dtype=np.int64)
    out_a = np.zeros(m, dtype=np.int64)
    out_h = np.zeros(m, dtype=np.int64)
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


@numba.njit(cache=True)
def _eval_head(X, Y, h_words, t_words, t_supp, h_cost, t_cost, n, tables, hp, tp, carry, te, items_t):
    """Best (cost, l, k, |A|, |H|) of X → Y, with Y's tail masks ``te`` already built."""
    nx, ny = X.shape[0], Y.shape[0]
    W = h_words.shape[1]
    eqm = np.empty((nx + 1, W), np.uint64)
    tot = np.zeros(nx + 1, np.int64)
    _head_masks(X, h_words, hp, carry, eqm, tot)
    hist = np.zeros((nx + 1, ny + 1), np.int64)
    g = np.zeros((ny, nx + 1), np.int64)
    _joint(eqm, tot, nx, Y, t_words, te, hist, g)
    items = items_t
    for i in range(nx):
        items += h_cost[X[i]]
    return _scan(nx, ny, items, hist, g, Y, t_supp, n, tables)


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
    cost = r_cost.copy()
    out_l = np.zeros(R, np.int64)
    out_k = np.zeros(R, np.int64)
    out_a = np.zeros(R, np.int64)
    out_h = np.zeros(R, np.int64)
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
    cost = np.full(m, np.inf)
    out_l = np.zeros(m, np.int64)
    out_k = np.zeros(m, np.int64)
    out_a = np.zeros(m, np.int64)
    out_h = np.zeros(m, np.int64)
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
