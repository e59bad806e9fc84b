"""Numba kernels of :mod:`nnrules.miners.itemsets`: Eclat over all frequent itemsets, and shared helpers.

Item bitsets have the library's layout (:mod:`nnrules.data.bits`): one row of ``uint64`` words per item,
bit ``t % 64`` of word ``t // 64`` set when transaction ``t`` holds the item.

Why this module is long: the Eclat search is one loop (three ways to expand a node, chosen per node), its
sparse subtrees go to a second, bitset-only loop over a node's own transactions, and the helpers the closed
and maximal searches share with both live here, beside their first user.
"""
from __future__ import annotations

import numba
import numpy as np

from ...data.packing import _popcount64


@numba.njit(cache=True, inline="always")
def _deliver(A32, tk, s, indptr, rows, e, cnt, touched, nt, BK, bstart, store):
    """Occurrence deliver: walk the s transactions ``A32[tk:tk+s]`` and count their items above ``e`` in
    ``cnt`` (rows ascending: read from the end), listing newly touched items in ``touched[nt:]``; with
    ``store``, each transaction also goes into its item's bucket ``BK[bstart[j] + count]``. Returns the new
    ``nt``. Cost s·L."""
    for q in range(s):
        t = A32[tk + q]
        for p in range(indptr[t + 1] - 1, indptr[t] - 1, -1):
            j = rows[p]
            if j <= e:
                break
            c = cnt[j]
            if c == 0:
                touched[nt] = j
                nt += 1
            if store:
                BK[bstart[j] + c] = t
            cnt[j] = c + 1
    return nt


@numba.njit(cache=True, inline="always")
def _and_count(B, A64, src, from_b, j, dst, nw):
    """``A64[dst:dst+nw] = (B[src] if from_b else A64[src:src+nw]) & B[j]``; returns its popcount."""
    c = np.int64(0)
    if from_b:
        for w in range(nw):
            x = B[src, w] & B[j, w]
            A64[dst + w] = x
            c += _popcount64(x)
    else:
        for w in range(nw):
            x = A64[src + w] & B[j, w]
            A64[dst + w] = x
            c += _popcount64(x)
    return c


@numba.njit(cache=True, inline="always")
def _number_rows(A32, tk, s, pos_of) -> None:
    """Number a node's s transactions ``A32[tk:tk+s]`` 0..s-1 (``pos_of[t]``): its own bitsets' rows."""
    for q in range(s):
        pos_of[A32[tk + q]] = q


@numba.njit(cache=True, inline="always")
def _local_row(A, g, BK, b, c, pos_of) -> None:
    """Set in the bitset at ``A[g:]`` the bits of the c transactions ``BK[b:b+c]`` (numbered by pos_of)."""
    for p in range(b, b + c):
        q = pos_of[BK[p]]
        A[g + (q >> 6)] |= np.uint64(1) << np.uint64(q & 63)


@numba.njit(cache=True, inline="always")
def _and_words(A, src, g, dst, nw) -> int:
    """``A[dst:dst+nw] = A[src:src+nw] & A[g:g+nw]``; returns its popcount."""
    c = 0
    for w in range(nw):
        x = A[src + w] & A[g + w]
        A[dst + w] = x
        c += _popcount64(x)
    return c


@numba.njit(cache=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@numba.njit(cache=True, inline="always")
def _bit(M, i, j) -> bool:
    return bool((M[i, j >> 6] >> np.uint64(j & 63)) & np.uint64(1))


@numba.njit(cache=True, inline="always")
def _holds(B, indptr, rows, t, j) -> bool:
    """Whether transaction ``t`` holds item ``j``: a bit of ``B``, or a binary search in the row without ``B``."""
    if B.shape[0] > 0:
        return _bit(B, j, t)
    lo = indptr[t]
    hi = indptr[t + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if rows[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < indptr[t + 1] and rows[lo] == j


@numba.njit(cache=True, inline="always")
def _marked(A32, b: int, nb: int, dst: int, mark) -> int:
    """The tids of ``A32[b:b+nb]`` set in ``mark`` (a node's tid-list marked in an n-byte array), written
    to ``A32[dst:]`` (room for nb needed): a branch-free sequential scan, O(nb)."""
    c = 0
    for q in range(nb):
        t = A32[b + q]
        A32[dst + c] = t
        c += mark[t]
    return c


@numba.njit(cache=True)
def _emit_combos(out_items, out_len, out_supp, n_flat, n_out, prefix, plen, pe, npe, supp, max_len, max_out, ids):
    """Append ``prefix[:plen]`` ∪ S for every subset S of the perfect extensions ``pe[:npe]`` (items in every
    transaction of the prefix: each S keeps the support) with at most ``max_len`` items in all; stops past
    ``max_out`` sets."""
    room = min(npe, max_len - plen)
    if npe > 40:  # over 10^12 sets: past any max_out
        return out_items, out_len, out_supp, n_flat, max_out + 1
    for mask in range(1 << npe):
        c = 0
        x = mask
        while x:
            x &= x - 1
            c += 1
        if c > room:
            continue
        if n_out > max_out:
            break
        out_items = _grow(out_items, n_flat + plen + c)
        out_len = _grow(out_len, n_out + 1)
        out_supp = _grow(out_supp, n_out + 1)
        for t in range(plen):
            out_items[n_flat + t] = ids[prefix[t]]
        u = plen
        for b in range(npe):
            if (mask >> b) & 1:
                out_items[n_flat + u] = ids[pe[b]]
                u += 1
        n_flat += plen + c
        out_len[n_out] = plen + c
        out_supp[n_out] = supp
        n_out += 1
    return out_items, out_len, out_supp, n_flat, n_out


@numba.njit(cache=True, inline="always")
def _child(citem, csupp, ckind, coff, c: int, item: int, count: int, kind: int, off: int) -> None:
    """Write candidate ``c``: its item, support, storage kind and offset."""
    citem[c] = item
    csupp[c] = count
    ckind[c] = kind
    coff[c] = off


@numba.njit(cache=True, inline="always")
def _local_stack(nf, fcnt, nwl, depth, cf, cs, co):
    """A local search's level arrays (cstart, ncand, pos, top) and its first level: the nf local items, item f
    with count ``fcnt[f]`` and its bitset at ``f*nwl`` (candidates: item ``cf``, count ``cs``, offset ``co``)."""
    cstart = np.zeros(depth + 1, dtype=np.int64)
    ncand = np.zeros(depth + 1, dtype=np.int64)
    pos = np.zeros(depth + 1, dtype=np.int64)
    top = np.zeros(depth + 1, dtype=np.int64)
    cf = _grow(cf, nf)
    cs = _grow(cs, nf)
    co = _grow(co, nf)
    for f in range(nf):
        cf[f] = f
        cs[f] = fcnt[f]
        co[f] = f * nwl
    ncand[0] = nf
    top[0] = nf * nwl
    return cstart, ncand, pos, top, cf, cs, co


@numba.njit(cache=True)
def _eclat_local(LA, nf, nwl, fr, fcnt, prefix, plen, pebuf, pe0, minsup, max_depth, max_out, cf, cs, co,
                 out_items, out_len, out_supp, n_flat, n_out, ids):
    """The frequent sets below a node X of a sparse search, mined on X's own bitsets: X's s transactions
    renumbered 0..s-1, ``LA[f*nwl:]`` the rows of X's child item f (global rank ``fr[f]``, ascending, count
    ``fcnt[f]``). A node Y has the children Y ∪ {g} for its later siblings g, T = T(Y) AND T(X ∪ {g}):
    (siblings)·nwl word ANDs instead of a walk of Y's transactions. ``prefix[:plen]`` is X, ``pebuf[:pe0]``
    the perfect extensions of X and its ancestors. Returns the grown scratch arrays and output."""
    depth = min(nf, max_depth) + 2
    cstart, ncand, pos, top, cf, cs, co = _local_stack(nf, fcnt, nwl, depth, cf, cs, co)
    pe_end = np.zeros(depth + 1, dtype=np.int64)
    pe_end[0] = pe0
    d = 0
    while d >= 0:
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        if n_out > max_out:
            return LA, cf, cs, co, out_items, out_len, out_supp, n_flat, n_out
        k = cstart[d] + pos[d]
        pos[d] += 1
        prefix[plen + d] = fr[cf[k]]
        s = cs[k]
        lo = k + 1
        hi = cstart[d] + ncand[d]
        if plen + d + 1 >= max_depth or lo >= hi:
            out_items, out_len, out_supp, n_flat, n_out = _emit_combos(
                out_items, out_len, out_supp, n_flat, n_out, prefix, plen + d + 1, pebuf, pe_end[d], s, max_depth,
                max_out, ids)
            continue
        store = plen + d + 2 < max_depth
        src = co[k]
        first = hi
        b = top[d]
        LA = _grow(LA, b + (hi - lo) * nwl)
        cf = _grow(cf, first + hi - lo)
        cs = _grow(cs, cf.shape[0])
        co = _grow(co, cf.shape[0])
        npe = 0
        n_new = 0
        for jj in range(lo, hi):
            c = _and_words(LA, src, cf[jj] * nwl, b, nwl)
            if c == s:
                pebuf[pe_end[d] + npe] = fr[cf[jj]]
                npe += 1
            elif c >= minsup:
                cf[first + n_new] = cf[jj]
                cs[first + n_new] = c
                co[first + n_new] = b
                n_new += 1
                if store:
                    b += nwl
        out_items, out_len, out_supp, n_flat, n_out = _emit_combos(
            out_items, out_len, out_supp, n_flat, n_out, prefix, plen + d + 1, pebuf, pe_end[d] + npe, s, max_depth,
            max_out, ids)
        if n_new > 0:
            d += 1
            cstart[d] = first
            ncand[d] = n_new
            pos[d] = 0
            top[d] = b
            pe_end[d] = pe_end[d - 1] + npe
    return LA, cf, cs, co, out_items, out_len, out_supp, n_flat, n_out


@numba.njit(cache=True)
def eclat_kernel(B: np.ndarray, supp0: np.ndarray, ids: np.ndarray, indptr: np.ndarray, rows: np.ndarray,
                 vptr: np.ndarray, vtids: np.ndarray, minsup: int, max_depth: int, max_out: int, mode: int = -1,
                 deliver_cost: float = 3.0, and_cost: float = 2.0, local_ratio: float = 1.0):
    """Depth-first Eclat over item bitsets ``B (m, n_words)``; returns (flat items, lengths, supports, complete),
    the items written as ``ids[rank]``.

    ``B``'s rows are the frequent items by ascending support (``supp0``); ``indptr``/``rows`` the same data
    as transactions (:func:`nnrules.data.transactions.bits_layout`). A node ``X = P ∪ {i}`` has the children ``X ∪ {j}``, ``j > i``,
    found the cheapest of three ways, chosen per node from its support s, its n_sib candidate siblings
    (the j with ``P ∪ {j}`` frequent), the mean transaction length L and n_words:

    * **deliver** (sparse data, cost ≈ s·L): walk X's transactions once, counting every later item j in
      them; then, for the frequent j, a second walk writes the children's tid-lists (LCM's occurrence
      deliver);
    * **probe** (cost 2s + Σ s_j): mark X's tids in an n-byte array, then scan each sibling's tid-list
      for marked tids (or test X's tids in j's bitset);
    * **AND** (dense data, cost n_sib·n_words): AND X's bitset with j's, popcount.

    A child of a node X ∪ {j} has the tid-set T(X) ∩ T(j): always a node's set against a single item's
    bitset, so only the open nodes' sets are kept (tid-lists or bitsets), on stacks shared by all levels
    (level d+1 after level d), and only when the children can be extended (``max_depth``). *Perfect
    extensions* (a child with the node's support) are not searched: every set of the subtree is emitted with
    each subset of them (Borgelt's perfect extension pruning). Stops with ``complete = False`` once more than ``max_out`` itemsets were found. ``mode`` 0/1/2 forces deliver/probe/AND
    everywhere (tests); -1 chooses per node by the estimates above, weighted by ``deliver_cost`` and
    ``and_cost`` relative to one probe (measured on the FIMI files of benchmarks/itemsets.py: a delivered
    occurrence costs ~3 merge steps, a word AND ~2). Without item bitsets (``B`` with no
    rows: sparse data, where they would cost more memory than the data) the items' tid-lists ``vtids``
    (item j at ``vptr[j]:vptr[j+1]``) start the search and nodes deliver or probe.
    Time O(Σ_nodes min(s·L, s·n_sib, n_sib·n_words)); memory O(Σ open nodes' tid-sets). On sparse data a
    delivered node X whose f children cost f·⌈s/64⌉ words ≤ ``local_ratio`` × their occurrences mines its
    subtree with :func:`_eclat_local` on bitsets over X's own s transactions (ANDs of ⌈s/64⌉ words).
    """
    m = supp0.shape[0]
    nw = B.shape[1]
    n = indptr.shape[0] - 1
    L = rows.shape[0] / max(n, 1)
    dense = B.shape[0] == m
    if not dense and mode == 2:
        mode = 1
    cap = max(16, 2 * m)
    citem = np.empty(cap, dtype=np.int64)
    csupp = np.empty(cap, dtype=np.int64)
    ckind = np.empty(cap, dtype=np.int8)  # 0: bitset in A64, 1: tid-list in A32, 2: row of B
    coff = np.empty(cap, dtype=np.int64)
    A64 = np.empty(max(16, 4 * nw), dtype=np.uint64)
    A32 = np.empty(1024 if dense else max(1024, vtids.shape[0]), dtype=np.int32)
    if not dense:
        A32[: vtids.shape[0]] = vtids
    cnt_of = np.zeros(m, dtype=np.int64)  # deliver: counts of the later items, zero between nodes
    bstart = np.zeros(m + 1, dtype=np.int64)  # deliver: item j's occurrences in BK[bstart[j]:], ≤ supp0[j]
    for j in range(m):
        bstart[j + 1] = bstart[j] + supp0[j]
    BK = np.empty(bstart[m], dtype=np.int32)
    touched = np.empty(m, dtype=np.int64)
    mark = np.zeros(n, dtype=np.uint8)  # probe: the node's tids
    cstart = np.zeros(max_depth + 1, dtype=np.int64)
    ncand = np.zeros(max_depth + 1, dtype=np.int64)
    pos = np.zeros(max_depth + 1, dtype=np.int64)
    top64 = np.zeros(max_depth + 1, dtype=np.int64)
    top32 = np.zeros(max_depth + 1, dtype=np.int64)
    prefix = np.empty(max_depth, dtype=np.int64)
    pebuf = np.empty(m, dtype=np.int64)  # perfect extensions of the open nodes, level by level
    pe_pos = np.full(m, m, dtype=np.int64)  # where an item last went into pebuf (on the path iff < pe_end[d] and there)
    pe_end = np.zeros(max_depth + 1, dtype=np.int64)
    out_items = np.empty(1024, dtype=ids.dtype)
    out_len = np.empty(256, dtype=np.int32)
    out_supp = np.empty(256, dtype=np.int64)
    n_flat = 0
    n_out = 0
    local_on = not dense and mode < 0 and local_ratio > 0  # sparse data: subtrees on their own bitsets
    pos_of = np.empty(n if local_on else 0, dtype=np.int32)
    LA = np.empty(1024, dtype=np.uint64)
    fc = np.empty(m, dtype=np.int64)
    lcf = np.empty(64, dtype=np.int64)
    lcs = np.empty(64, dtype=np.int64)
    lco = np.empty(64, dtype=np.int64)
    for i in range(m):
        citem[i] = i
        csupp[i] = supp0[i]
        ckind[i] = 2 if dense else 1
        coff[i] = i if dense else vptr[i]
    ncand[0] = m
    top32[0] = 0 if dense else vtids.shape[0]
    d = 0
    while d >= 0:
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        k = cstart[d] + pos[d]
        pos[d] += 1
        prefix[d] = citem[k]
        if n_out > max_out:
            return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], False
        lo = k + 1
        hi = cstart[d] + ncand[d]
        if d + 1 >= max_depth or lo >= hi:
            out_items, out_len, out_supp, n_flat, n_out = _emit_combos(
                out_items, out_len, out_supp, n_flat, n_out, prefix, d + 1, pebuf, pe_end[d], csupp[k], max_depth,
                max_out, ids)
            continue
        npe = 0
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
        sumsib = 0
        if dense or d > 0:  # (sparse data at the root: siblings are whole items, deliver)
            for jj in range(lo, hi):
                sumsib += csupp[jj] if ckind[jj] == 1 else s
        extract = 0 if ckind[k] == 1 else nw + s
        c_deliver = deliver_cost * s * L + extract
        c_probe = 2 * s + sumsib + extract if (dense or d > 0) else np.inf
        c_and = and_cost * nsib * nw + (4 * s if ckind[k] == 1 else 0) if dense else np.inf
        if mode == 0:
            c_deliver, c_probe, c_and = 0.0, 1.0, 1.0
        elif mode == 1:
            c_deliver, c_probe, c_and = 1.0, 0.0, 1.0
        elif mode == 2:
            c_deliver, c_probe, c_and = 1.0, 1.0, 0.0
        n_new = 0
        nl = 0
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
            if c_deliver <= c_probe:  # one walk: counts, and each later item's occurrences in its bucket
                nt = _deliver(A32, tk, s, indptr, rows, i, cnt_of, touched, 0, BK, bstart, store)
                nf = 0  # the frequent later items, ascending (children keep the item order); a walk also
                for u in range(nt):  # meets the path's perfect extensions (in every transaction): not again
                    j = touched[u]
                    if cnt_of[j] >= minsup and not (pe_pos[j] < pe_end[d] and pebuf[pe_pos[j]] == j):
                        touched[nf] = j
                        nf += 1
                    else:
                        cnt_of[j] = 0
                tj = touched[:nf]
                if nf > 24:
                    tj.sort()
                else:
                    for u in range(1, nf):  # insertion sort: few items
                        v = tj[u]
                        x = u
                        while x > 0 and tj[x - 1] > v:
                            tj[x] = tj[x - 1]
                            x -= 1
                        tj[x] = v
                kept = 0
                nl = 0
                if local_on and store:
                    for u in range(nf):
                        c = cnt_of[tj[u]]
                        if c < s:
                            kept += c
                            nl += 1
                    if nl * ((s + 63) >> 6) > local_ratio * kept:
                        nl = 0
                nwl = (s + 63) >> 6
                if nl > 0:  # the children as bitsets over X's s transactions, mined below by ANDs only
                    _number_rows(A32, tk, s, pos_of)
                    LA = _grow(LA, nl * nwl)
                    LA[: nl * nwl] = 0
                f = 0
                for u in range(nf):
                    j = tj[u]
                    c = cnt_of[j]
                    cnt_of[j] = 0
                    if c == s:
                        pebuf[pe_end[d] + npe] = j
                        pe_pos[j] = pe_end[d] + npe
                        npe += 1
                    elif nl > 0:  # a local item (tj is touched[:nf], f ≤ u)
                        touched[f] = j
                        fc[f] = c
                        _local_row(LA, f * nwl, BK, bstart[j], c, pos_of)
                        f += 1
                    elif c >= minsup:
                        _child(citem, csupp, ckind, coff, first + n_new, j, c, 1, b32)
                        n_new += 1
                        if store:
                            A32 = _grow(A32, b32 + c)
                            A32[b32: b32 + c] = BK[bstart[j]: bstart[j] + c]
                            b32 += c
            else:
                for q in range(s):
                    mark[A32[tk + q]] = 1
                for jj in range(lo, hi):
                    it = citem[jj]
                    A32 = _grow(A32, b32 + max(s, csupp[jj]))
                    if ckind[jj] == 1 and (not dense or csupp[jj] <= 4 * s):
                        cnt = _marked(A32, coff[jj], csupp[jj], b32, mark)
                    else:
                        cnt = np.int64(0)
                        for q in range(s):
                            t = A32[tk + q]
                            A32[b32 + cnt] = t
                            cnt += np.int64(_holds(B, indptr, rows, t, it))
                    if cnt == s:
                        pebuf[pe_end[d] + npe] = it
                        pe_pos[it] = pe_end[d] + npe
                        npe += 1
                    elif cnt >= minsup:
                        _child(citem, csupp, ckind, coff, first + n_new, it, cnt, 1, b32)
                        n_new += 1
                        if store:
                            b32 += cnt
                for q in range(s):
                    mark[A32[tk + q]] = 0
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
                if cnt == s:
                    pebuf[pe_end[d] + npe] = it
                    pe_pos[it] = pe_end[d] + npe
                    npe += 1
                elif cnt >= minsup:
                    _child(citem, csupp, ckind, coff, first + n_new, it, cnt, 0, b64)
                    n_new += 1
                    if store:
                        b64 += nw
        out_items, out_len, out_supp, n_flat, n_out = _emit_combos(
            out_items, out_len, out_supp, n_flat, n_out, prefix, d + 1, pebuf, pe_end[d] + npe, s, max_depth, max_out,
            ids)
        if nl > 0:
            LA, lcf, lcs, lco, out_items, out_len, out_supp, n_flat, n_out = _eclat_local(
                LA, nl, (s + 63) >> 6, touched, fc, prefix, d + 1, pebuf, pe_end[d] + npe, minsup, max_depth, max_out,
                lcf, lcs, lco, out_items, out_len, out_supp, n_flat, n_out, ids)
        if n_new > 0:
            d += 1
            cstart[d] = first
            ncand[d] = n_new
            pos[d] = 0
            top64[d] = b64
            top32[d] = b32
            pe_end[d] = pe_end[d - 1] + npe
    return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], n_out <= max_out
