"""Counting kernels of ExplaiNN: the (head count × tail count) histogram of a rule and its best (l, k).

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

from ...data.packing import _popcount64
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
def _count_masks(items, words, planes, carry, out):
    """Rows where exactly v of ``items`` are on, as word masks ``out[v]`` (v = 1..|items|): a binary counter over
    bit planes (``planes``, ≥ bitlen(|items|) of them, and ``carry`` (W,) are scratch), decoded by ANDing each
    plane or its complement. O(W·|items|·log|items|), vectorised."""
    n = items.shape[0]
    W = words.shape[1]
    nb = _bitlen(n)
    for b in range(nb):
        planes[b, :] = 0
    for i in range(n):
        _add_planes(planes, nb, words, items[i], carry)
    for v in range(1, n + 1):
        for w in range(W):
            out[v, w] = _ALL
        for b in range(nb):
            flip = np.uint64(0) if (v >> b) & 1 else _ALL
            for w in range(W):
                out[v, w] &= planes[b, w] ^ flip


@numba.njit(cache=True)
def _head_masks(X, h_words, hp, carry, eqm, tot):
    """Rows whose head count is exactly a (:func:`_count_masks`) and their number ``tot[a]``."""
    _count_masks(X, h_words, hp, carry, eqm)
    for a in range(1, X.shape[0] + 1):
        c = 0
        for w in range(h_words.shape[1]):
            c += _popcount64(eqm[a, w])
        tot[a] = c


#: rows with exactly v tail items of Y: the same counter over the tail's words
_tail_masks = _count_masks


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
    _zero_rows(t_words, Y, cnt_t)


@numba.njit(cache=True)
def _zero_rows(words, items, scratch):
    """``scratch[r] = 0`` for every row r where one of ``items`` is on (a per-row scratch reset through the rows
    that were touched, not a memset of all n)."""
    for i in range(items.shape[0]):
        for w in range(words.shape[1]):
            v = words[items[i], w]
            while v:
                scratch[(w << 6) + _ctz(v)] = 0
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
