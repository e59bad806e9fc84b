"""Numba kernels of :mod:`nnrules.miners.itemsets`: item pair supports, and Eclat over all frequent itemsets.

Item bitsets have the library's layout (:mod:`nnrules.data.bits`): one row of ``uint64`` words per item,
bit ``t % 64`` of word ``t // 64`` set when transaction ``t`` holds the item.
"""
from __future__ import annotations

import numba
import numpy as np

from ..data.bits import _popcount64


@numba.njit(cache=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@numba.njit(cache=True)
def pair_counts(indptr: np.ndarray, rows: np.ndarray, m: int, budget: float) -> np.ndarray:
    """Support of every item pair, ``(m, m) int32`` upper triangle (``i < j``), in one pass over the
    transactions (a row of L items adds L(L-1)/2 pairs); a ``(0, 0)`` array when that is more than
    ``budget`` additions (dense data)."""
    n = indptr.shape[0] - 1
    work = 0.0
    for t in range(n):
        L = indptr[t + 1] - indptr[t]
        work += 0.5 * L * (L - 1)
    if work > budget:
        return np.zeros((0, 0), dtype=np.int32)
    C = np.zeros((m, m), dtype=np.int32)
    for t in range(n):
        for p in range(indptr[t], indptr[t + 1]):
            a = rows[p]
            for q in range(p + 1, indptr[t + 1]):
                C[a, rows[q]] += 1
    return C


@numba.njit(cache=True, inline="always")
def _child(citem, csupp, ckind, coff, c: int, item: int, count: int, kind: int, off: int) -> None:
    """Write candidate ``c``: its item, support, storage kind and offset."""
    citem[c] = item
    csupp[c] = count
    ckind[c] = kind
    coff[c] = off


@numba.njit(cache=True)
def eclat_kernel(B: np.ndarray, supp0: np.ndarray, indptr: np.ndarray, rows: np.ndarray, vptr: np.ndarray,
                 vtids: np.ndarray, C: np.ndarray, minsup: int, max_depth: int, max_out: int, mode: int = -1, deliver_cost: float = 30.0,
                 and_cost: float = 2.0):
    """Depth-first Eclat over item bitsets ``B (m, n_words)``; returns (flat items, lengths, supports, complete).

    ``B``'s rows are the frequent items by ascending support (``supp0``); ``indptr``/``rows`` the same data
    as transactions (:func:`nnrules.data.transactions.horizontal_of`). A node ``X = P ∪ {i}`` has the children ``X ∪ {j}``, ``j > i``,
    found the cheapest of three ways, chosen per node from its support s, its n_sib candidate siblings
    (the j with ``P ∪ {j}`` frequent), the mean transaction length L and n_words:

    * **deliver** (sparse data, cost ≈ s·L): walk X's transactions once, counting every later item j in
      them; then, for the frequent j, a second walk writes the children's tid-lists (LCM's occurrence
      deliver);
    * **probe** (cost s·n_sib): for each sibling j, test X's tids in j's bitset;
    * **AND** (dense data, cost n_sib·n_words): AND X's bitset with j's, popcount.

    A child of a node X ∪ {j} has the tid-set T(X) ∩ T(j): always a node's set against a single item's
    bitset, so only the open nodes' sets are kept (tid-lists or bitsets), on stacks shared by all levels
    (level d+1 after level d), and only when the children can be extended (``max_depth``). With the pair
    supports ``C`` (:func:`pair_counts`, or a ``(0, 0)`` array) a sibling j is skipped at once when
    ``{i, j}`` is infrequent (then so is ``X ∪ {j}``), and n_sib counts only the others. Stops with
    ``complete = False`` once more than ``max_out`` itemsets were found. ``mode`` 0/1/2 forces deliver/probe/AND
    everywhere (tests); -1 chooses per node by the estimates above, weighted by ``deliver_cost`` and
    ``and_cost`` relative to one probe (measured on benchmarks/itemsets.py's data: a delivered occurrence
    costs ~30 probes once the pair table prunes siblings, a word AND ~2). Without item bitsets (``B`` with no
    rows: sparse data, where they would cost more memory than the data) the items' tid-lists ``vtids``
    (item j at ``vptr[j]:vptr[j+1]``) start the search and every node delivers.
    Time O(Σ_nodes min(s·L, s·n_sib, n_sib·n_words)); memory O(Σ open nodes' tid-sets).
    """
    m = supp0.shape[0]
    nw = B.shape[1]
    n = indptr.shape[0] - 1
    L = rows.shape[0] / max(n, 1)
    dense = B.shape[0] == m
    if not dense:
        mode = 0
    cap = max(16, 2 * m)
    citem = np.empty(cap, dtype=np.int64)
    csupp = np.empty(cap, dtype=np.int64)
    ckind = np.empty(cap, dtype=np.int8)  # 0: bitset in A64, 1: tid-list in A32, 2: row of B
    coff = np.empty(cap, dtype=np.int64)
    A64 = np.empty(max(16, 4 * nw), dtype=np.uint64)
    A32 = np.empty(max(1024, vtids.shape[0]), dtype=np.int32)
    A32[: vtids.shape[0]] = vtids
    cnt_of = np.zeros(m, dtype=np.int64)  # deliver: counts of the later items, zero between nodes
    fill = np.zeros(m, dtype=np.int64)
    touched = np.empty(m, dtype=np.int64)
    cstart = np.zeros(max_depth + 1, dtype=np.int64)
    ncand = np.zeros(max_depth + 1, dtype=np.int64)
    pos = np.zeros(max_depth + 1, dtype=np.int64)
    top64 = np.zeros(max_depth + 1, dtype=np.int64)
    top32 = np.zeros(max_depth + 1, dtype=np.int64)
    prefix = np.empty(max_depth, dtype=np.int64)
    out_items = np.empty(1024, dtype=np.int32)
    out_len = np.empty(256, dtype=np.int32)
    out_supp = np.empty(256, dtype=np.int64)
    n_flat = 0
    n_out = 0
    use_pairs = C.shape[0] == m
    for i in range(m):
        citem[i] = i
        csupp[i] = supp0[i]
        ckind[i] = 2 if dense else 1
        coff[i] = i if dense else vptr[i]
    ncand[0] = m
    top32[0] = vtids.shape[0]
    d = 0
    while d >= 0:
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        k = cstart[d] + pos[d]
        pos[d] += 1
        prefix[d] = citem[k]
        if n_out >= max_out:
            return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], False
        out_items = _grow(out_items, n_flat + d + 1)
        out_len = _grow(out_len, n_out + 1)
        out_supp = _grow(out_supp, n_out + 1)
        for t in range(d + 1):
            out_items[n_flat + t] = prefix[t]
        n_flat += d + 1
        out_len[n_out] = d + 1
        out_supp[n_out] = csupp[k]
        n_out += 1
        lo = k + 1
        hi = cstart[d] + ncand[d]
        if d + 1 >= max_depth or lo >= hi:
            continue
        store = d + 2 < max_depth  # the children can be extended: keep their tid-sets
        first = hi
        if first + (hi - lo) > citem.shape[0]:
            citem = _grow(citem, first + (hi - lo))
            csupp = _grow(csupp, citem.shape[0])
            ckind = _grow(ckind, citem.shape[0])
            coff = _grow(coff, citem.shape[0])
        b64 = top64[d]
        b32 = top32[d]
        s = csupp[k]
        i = citem[k]
        nsib = hi - lo
        if use_pairs:
            nsib = 0
            for jj in range(lo, hi):
                nsib += C[i, citem[jj]] >= minsup
        extract = 0 if ckind[k] == 1 else nw + s
        c_deliver = deliver_cost * s * L + extract
        c_probe = s * nsib + extract
        c_and = and_cost * nsib * nw + (4 * s if ckind[k] == 1 else 0)
        if mode == 0:
            c_deliver, c_probe, c_and = 0.0, 1.0, 1.0
        elif mode == 1:
            c_deliver, c_probe, c_and = 1.0, 0.0, 1.0
        elif mode == 2:
            c_deliver, c_probe, c_and = 1.0, 1.0, 0.0
        n_new = 0
        if min(c_deliver, c_probe) <= c_and:
            if ckind[k] == 1:
                tk = coff[k]
            else:  # the node's tid-list from its bitset
                A32 = _grow(A32, b32 + s)
                tk = b32
                q = 0
                for w in range(nw):
                    x = B[coff[k], w] if ckind[k] == 2 else A64[coff[k] + w]
                    while x != 0:
                        low = x & (~x + np.uint64(1))
                        A32[tk + q] = w * 64 + _popcount64(low - np.uint64(1))
                        q += 1
                        x ^= low
                b32 += s
            if c_deliver <= c_probe:
                nt = 0
                for q in range(s):
                    t = A32[tk + q]
                    for p in range(indptr[t + 1] - 1, indptr[t] - 1, -1):
                        j = rows[p]
                        if j <= i:
                            break
                        if cnt_of[j] == 0:
                            touched[nt] = j
                            nt += 1
                        cnt_of[j] += 1
                tj = touched[:nt]
                for u in range(1, nt):  # insertion sort: few items
                    v = tj[u]
                    x = u
                    while x > 0 and tj[x - 1] > v:
                        tj[x] = tj[x - 1]
                        x -= 1
                    tj[x] = v
                total = 0
                for u in range(nt):
                    j = tj[u]
                    if cnt_of[j] >= minsup:
                        fill[j] = b32 + total
                        _child(citem, csupp, ckind, coff, first + n_new, j, cnt_of[j], 1, b32 + total)
                        n_new += 1
                        if store:
                            total += cnt_of[j]
                    else:
                        fill[j] = -1
                if store and total > 0:
                    A32 = _grow(A32, b32 + total)
                    for q in range(s):
                        t = A32[tk + q]
                        for p in range(indptr[t + 1] - 1, indptr[t] - 1, -1):
                            j = rows[p]
                            if j <= i:
                                break
                            if fill[j] >= 0:
                                A32[fill[j]] = t
                                fill[j] += 1
                    b32 += total
                for u in range(nt):
                    cnt_of[tj[u]] = 0
            else:
                for jj in range(lo, hi):
                    it = citem[jj]
                    if use_pairs and C[i, it] < minsup:
                        continue
                    A32 = _grow(A32, b32 + s)
                    cnt = np.int64(0)
                    for q in range(s):
                        t = A32[tk + q]
                        A32[b32 + cnt] = t
                        cnt += np.int64((B[it, t >> 6] >> np.uint64(t & 63)) & np.uint64(1))
                    if cnt >= minsup:
                        _child(citem, csupp, ckind, coff, first + n_new, it, cnt, 1, b32)
                        n_new += 1
                        if store:
                            b32 += cnt
        else:
            if ckind[k] == 1:  # the node's bitset from its tid-list
                A64 = _grow(A64, b64 + nw)
                A64[b64: b64 + nw] = 0
                for q in range(s):
                    t = A32[coff[k] + q]
                    A64[b64 + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)
                src = b64
                b64 += nw
            else:
                src = coff[k]
            fromB = ckind[k] == 2
            for jj in range(lo, hi):
                it = citem[jj]
                if use_pairs and C[i, it] < minsup:
                    continue
                cnt = np.int64(0)
                if store:
                    A64 = _grow(A64, b64 + nw)
                    if fromB:
                        for w in range(nw):
                            x = B[src, w] & B[it, w]
                            A64[b64 + w] = x
                            cnt += _popcount64(x)
                    else:
                        for w in range(nw):
                            x = A64[src + w] & B[it, w]
                            A64[b64 + w] = x
                            cnt += _popcount64(x)
                elif fromB:
                    for w in range(nw):
                        cnt += _popcount64(B[src, w] & B[it, w])
                else:
                    for w in range(nw):
                        cnt += _popcount64(A64[src + w] & B[it, w])
                if cnt >= minsup:
                    _child(citem, csupp, ckind, coff, first + n_new, it, cnt, 0, b64)
                    n_new += 1
                    if store:
                        b64 += nw
        if n_new > 0:
            d += 1
            cstart[d] = first
            ncand[d] = n_new
            pos[d] = 0
            top64[d] = b64
            top32[d] = b32
    return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], True
