"""Numba kernels for closed (LCM) and maximal (MAFIA-style) itemsets, mined in the search, never filtered after.

Same inputs as :func:`._eclat_kernels.eclat_kernel`: item bitsets ``B (m, n_words)`` of the frequent items by
ascending support, their supports ``supp0``, the transactions as CSR rows ``indptr``/``rows`` (items ascending).
A node's tid-set is a bitset (kind 0, in the ``A64`` arena), a tid-list (kind 1, in ``A32``) or a row of ``B``
(kind 2); children are found by *occurrence deliver* (walk the node's transactions, count their items: sparse
data, cost s·L) or *bitset ANDs* (dense data, cost items·n_words), chosen per node by those estimates.

Why this module is long: two searches (closed, maximal) share the node machinery (tid-set conversion, arenas,
growing buffers) but differ in every step of a node's expansion; each is one loop, kept whole to read against
its paper.
"""
from __future__ import annotations

import numba
import numpy as np

from ...data.packing import _popcount64
from ._eclat_kernels import (_and_count, _and_words, _deliver, _grow, _holds, _local_row, _local_stack, _marked,
                             _number_rows)


@numba.njit(cache=True, inline="always")
def _in_set(items, off, i, x) -> bool:
    """Whether the ascending set ``items[off[i]:off[i+1]]`` holds ``x`` (binary search)."""
    lo = off[i]
    hi = off[i + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if items[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < off[i + 1] and items[lo] == x


@numba.njit(cache=True)
def _tidlist(B, A64, A32, kind, off, nw, s, dst):
    """Write a bitset tid-set (kind 0 in A64 / kind 2 row of B) as an ascending tid-list at ``A32[dst:dst+s]``."""
    q = 0
    for w in range(nw):
        x = B[off, w] if kind == 2 else A64[off + w]
        while x != 0:
            low = x & (~x + np.uint64(1))
            A32[dst + q] = w * 64 + _popcount64(low - np.uint64(1))
            q += 1
            x ^= low


@numba.njit(cache=True)
def _bitset(A64, A32, off, nw, s, dst):
    """Write the tid-list ``A32[off:off+s]`` as a bitset at ``A64[dst:dst+nw]``."""
    A64[dst: dst + nw] = 0
    for q in range(s):
        t = A32[off + q]
        A64[dst + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)


@numba.njit(cache=True)
def _buckets(supp0):
    """Occurrence buckets: item j's occurrences in a node's transactions go to ``BK[bstart[j]:]`` (at most
    its support), so one walk both counts the items and collects the children's tid-lists."""
    m = supp0.shape[0]
    bstart = np.zeros(m + 1, dtype=np.int64)
    for j in range(m):
        bstart[j + 1] = bstart[j] + supp0[j]
    return bstart, np.empty(bstart[m], dtype=np.int32)


@numba.njit(cache=True)
def root_tidlists(m, vptr, vtids, n_extra):
    """The arena ``A32`` starting with the items' tid-lists (``vtids``, item j at ``vptr[j]:vptr[j+1]``)."""
    A32 = np.empty(max(1024, vtids.shape[0] + n_extra), dtype=np.int32)
    A32[: vtids.shape[0]] = vtids
    return A32


@numba.njit(cache=True)
def _setup(B, supp0, indptr, rows, vptr, vtids, mode):
    """What both searches start from: sizes, whether item bitsets exist (else AND is off), the mean row
    length L, the candidate stack (item, support, kind: 0 bitset / 1 tid-list, offset), the bitset and
    tid-list arenas (the root's tid-lists first) and the count array."""
    m = supp0.shape[0]
    nw = B.shape[1]
    n = indptr.shape[0] - 1
    dense = B.shape[0] == m  # without item bitsets (sparse data): tid-lists and occurrence deliver only
    if not dense and mode == 2:
        mode = -1
    L = rows.shape[0] / max(n, 1)
    cap = max(16, 2 * m)
    citem = np.empty(cap, dtype=np.int64)
    csupp = np.empty(cap, dtype=np.int64)
    ckind = np.empty(cap, dtype=np.int8)
    coff = np.empty(cap, dtype=np.int64)
    A64 = np.empty(max(16, 4 * nw), dtype=np.uint64)
    A32 = root_tidlists(m, vptr, vtids, 0)
    cnt = np.zeros(m, dtype=np.int64)
    return m, nw, n, dense, mode, L, citem, csupp, ckind, coff, A64, A32, cnt


@numba.njit(cache=True)
def _emit(out_items, out_len, out_supp, n_flat, n_out, buf, k, supp, ids):
    """Append the set ``ids[buf[:k]]`` with support ``supp`` to the flat output (growing it)."""
    out_items = _grow(out_items, n_flat + k)
    out_len = _grow(out_len, n_out + 1)
    out_supp = _grow(out_supp, n_out + 1)
    for t in range(k):
        out_items[n_flat + t] = ids[buf[t]]
    out_len[n_out] = k
    out_supp[n_out] = supp
    return out_items, out_len, out_supp, n_flat + k, n_out + 1


@numba.njit(cache=True)
def _closed_local(LA, nf, nwl, fr, fcnt, LO, eP, B, indptr, rows, supp0, inq, qbuf, q0, minsup, max_len, max_out,
                  cf, cs, co, out_items, out_len, out_supp, n_flat, n_out, ids, below, btouch, below_work):
    """The closed sets below a node P of a sparse search, mined on P's own bitsets (LCM's ppc extension, as
    :func:`lcm_closed`): P's s transactions are renumbered 0..s-1 (``LO``: their ids), and ``LA[f*nwl:]``
    holds the rows of local item f (global rank ``fr[f]``, ascending; its count in P ``fcnt[f]``) — the
    items above P's core item ``eP`` that are frequent and not closure items in P. Q = ``qbuf[:q0]``. A
    node costs (items above it)·nwl word ANDs instead of a walk of its transactions; ppc checks the local
    items below by subset tests and the items below ``eP`` by probing the global rows (items between, not
    local, are infrequent in P and cannot hold in every transaction). Once those probes have cost
    ``below_work``·s tests, the counts in P of the items below ``eP`` are taken (one walk of P's rows, into
    ``below``, zero again on return) and only items counted at least the node's support are probed. Returns
    the grown scratch arrays and output, and whether fewer than ``max_out`` sets were found."""
    depth = nf + 2
    cstart, ncand, pos, top, cf, cs, co = _local_stack(nf, fcnt, nwl, depth, cf, cs, co)
    qend = np.zeros(depth + 1, dtype=np.int64)
    entered = np.zeros(depth + 1, dtype=np.bool_)
    qend[0] = q0
    s0 = LO.shape[0]
    work = 0
    nb = -1  # the items below eP counted in P (-1: not yet)
    d = 0
    while d >= 0:
        if entered[d]:
            for u in range(qend[d], qend[d + 1]):
                inq[qbuf[u]] = False
            entered[d] = False
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        if n_out > max_out:
            break
        if nb < 0 and work >= below_work * s0:
            nb = 0
            for q in range(s0):
                t = LO[q]
                for p in range(indptr[t], indptr[t + 1]):
                    j = rows[p]
                    if j >= eP:
                        break
                    if below[j] == 0:
                        btouch[nb] = j
                        nb += 1
                    below[j] += 1
        k = cstart[d] + pos[d]
        pos[d] += 1
        a = cf[k]
        s = cs[k]
        src = co[k]
        first = cstart[d] + ncand[d]
        ok = True
        for f in range(a):  # ppc, local items below a: T ⊆ T(f)?
            if fcnt[f] < s or inq[fr[f]]:
                continue
            sub = True
            g = f * nwl
            for w in range(nwl):
                if LA[src + w] & ~LA[g + w]:
                    sub = False
                    break
            if sub:
                ok = False
                break
        if ok:  # ppc, items below eP: probe the first transaction's, test them on the rest
            w0 = 0
            while LA[src + w0] == 0:
                w0 += 1
            x0 = LA[src + w0]
            t0 = LO[w0 * 64 + _popcount64((x0 & (~x0 + np.uint64(1))) - np.uint64(1))]
            for p in range(indptr[t0], indptr[t0 + 1]):
                j = rows[p]
                if j >= eP:
                    break
                if inq[j] or (below[j] if nb >= 0 else supp0[j]) < s:
                    continue
                work += 1
                sub = True
                for w in range(w0, nwl):
                    x = LA[src + w]
                    while x != 0:
                        low = x & (~x + np.uint64(1))
                        work += 1
                        if not _holds(B, indptr, rows, LO[w * 64 + _popcount64(low - np.uint64(1))], j):
                            sub = False
                            break
                        x ^= low
                    if not sub:
                        break
                if sub:
                    ok = False
                    break
        if not ok:
            continue
        q1 = qend[d]
        qbuf[q1] = fr[a]
        nadd = 1
        n_new = 0
        b = top[d]
        LA = _grow(LA, b + (nf - a) * nwl)
        cf = _grow(cf, first + nf - a)
        cs = _grow(cs, cf.shape[0])
        co = _grow(co, cf.shape[0])
        for f in range(a + 1, nf):  # the closure (count s) and the children (count ≥ minsup)
            if inq[fr[f]]:
                continue
            c = _and_words(LA, src, f * nwl, b, nwl)
            if c == s:
                qbuf[q1 + nadd] = fr[f]
                nadd += 1
            elif c >= minsup:
                cf[first + n_new] = f
                cs[first + n_new] = c
                co[first + n_new] = b
                n_new += 1
                b += nwl
        if q1 + nadd > max_len:
            continue
        if q1 + nadd >= max_len:
            n_new = 0
        for u in range(q1, q1 + nadd):
            inq[qbuf[u]] = True
        qend[d + 1] = q1 + nadd
        entered[d] = True
        out_items, out_len, out_supp, n_flat, n_out = _emit(out_items, out_len, out_supp, n_flat, n_out,
                                                            qbuf, q1 + nadd, s, ids)
        if n_new > 0:
            d += 1
            cstart[d] = first
            ncand[d] = n_new
            pos[d] = 0
            top[d] = b
            entered[d] = False
    for u in range(max(nb, 0)):
        below[btouch[u]] = 0
    return LA, cf, cs, co, out_items, out_len, out_supp, n_flat, n_out, n_out <= max_out


@numba.njit(cache=True)
def lcm_closed(B, supp0, ids, indptr, rows, vptr, vtids, minsup: int, max_len: int, max_out: int, mode: int = -1,
               deliver_cost: float = 20.0, and_cost: float = 1.0, local_rows: int = 1 << 40,
               local_ratio: float = 1.0, below_work: float = 8.0):
    """Closed itemsets of at most ``max_len`` items by LCM's prefix-preserving closure extension (Uno et al.,
    FIMI'04): returns (flat items, lengths, supports, complete).

    A closed set Q with core item e has the children clo(Q ∪ {j}) for j > e, j ∉ Q, kept when the closure adds
    no item below j (ppc): every closed set is reached once, from its parent, with no repository of found
    sets. A node computes the counts of the items over its tid-set T (deliver: all items; AND: the items above
    e, after a subset test T ⊆ T(j) for the items below e, stopped at the first word that fails): items with
    count |T| form the closure, those with count ≥ minsup the children. Time O(Σ_candidates min(s·L,
    m·n_words)), memory O(the open nodes' tid-sets). ``mode`` 0/2 forces deliver/AND (tests).

    On sparse data (no item bitsets) a delivered node P whose f children cost f·⌈s/64⌉ words ≤
    ``local_ratio`` × their occurrences hands its subtree to :func:`_closed_local`: bitsets over P's own s
    transactions, so a descendant costs (items above it)·⌈s/64⌉ word ANDs instead of a walk of its
    transactions (T10I4D100K at 0.0005: 0.20 → 0.14 s). ``local_rows`` caps the s that may do so.
    """
    m, nw, n, dense, mode, L, citem, csupp, ckind, coff, A64, A32, cnt = _setup(B, supp0, indptr, rows, vptr, vtids,
                                                                              mode)
    touched = np.empty(m, dtype=np.int64)
    bstart, BK = _buckets(supp0)
    mark = np.zeros(n, dtype=np.uint8)
    inq = np.zeros(m, dtype=np.bool_)
    qbuf = np.empty(m + 1, dtype=np.int64)
    depth = m + 2
    qend = np.zeros(depth + 1, dtype=np.int64)
    entered = np.zeros(depth + 1, dtype=np.bool_)
    cstart = np.zeros(depth + 1, dtype=np.int64)
    ncand = np.zeros(depth + 1, dtype=np.int64)
    pos = np.zeros(depth + 1, dtype=np.int64)
    top64 = np.zeros(depth + 1, dtype=np.int64)
    top32 = np.zeros(depth + 1, dtype=np.int64)
    out_items = np.empty(1024, dtype=ids.dtype)
    out_len = np.empty(256, dtype=np.int32)
    out_supp = np.empty(256, dtype=np.int64)
    n_flat = 0
    n_out = 0
    nq = 0
    # sparse data: a node of at most local_rows transactions mines its subtree on its own bitsets
    local_on = not dense and mode < 0 and local_rows > 0
    pos_of = np.empty(n if local_on else 0, dtype=np.int32)
    fl = np.empty(m, dtype=np.int64)
    fc = np.empty(m, dtype=np.int64)
    LA = np.empty(1024, dtype=np.uint64)
    ocnt = np.zeros(m, dtype=np.int64)  # the local searches' counts of the items below their root's
    otouch = np.empty(m, dtype=np.int64)
    lcf = np.empty(64, dtype=np.int64)
    lcs = np.empty(64, dtype=np.int64)
    lco = np.empty(64, dtype=np.int64)
    for j in range(m):  # clo(∅): the items in every transaction
        if supp0[j] == n:
            qbuf[nq] = j
            nq += 1
            inq[j] = True
    qend[0] = nq
    if 0 < nq <= max_len:
        out_items, out_len, out_supp, n_flat, n_out = _emit(out_items, out_len, out_supp, n_flat, n_out,
                                                            qbuf, nq, n, ids)
    nc = 0
    if nq < max_len:
        for j in range(m):
            if supp0[j] < n:
                citem[nc] = j
                csupp[nc] = supp0[j]
                ckind[nc] = 2 if dense else 1
                coff[nc] = j if dense else vptr[j]
                nc += 1
    ncand[0] = nc
    top32[0] = vtids.shape[0]
    d = 0
    while d >= 0:
        if entered[d]:  # leave the node entered from this level's previous candidate
            for u in range(qend[d], qend[d + 1]):
                inq[qbuf[u]] = False
            entered[d] = False
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        if n_out > max_out:
            return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], False
        k = cstart[d] + pos[d]
        pos[d] += 1
        e = citem[k]
        s = csupp[k]
        kind = ckind[k]
        b64 = top64[d]
        b32 = top32[d]
        first = cstart[d] + ncand[d]
        if first + m > citem.shape[0]:
            citem = _grow(citem, first + m)
            csupp = _grow(csupp, citem.shape[0])
            ckind = _grow(ckind, citem.shape[0])
            coff = _grow(coff, citem.shape[0])
        extract = 0 if kind == 1 else nw + s
        c_deliver = deliver_cost * s * L * (m - e) / m + extract
        c_and = and_cost * (m - e) * nw + (4 * s if kind == 1 else 0)
        deliver = True if not dense else (c_deliver <= c_and if mode < 0 else mode != 2)
        c_merge = 0.0  # the siblings above e: intersect tid-lists instead of walking transactions
        if d > 0 and deliver and mode != 0:
            for jj in range(cstart[d], first):
                if citem[jj] > e and ckind[jj] == 1:
                    c_merge += csupp[jj]
                elif citem[jj] > e:
                    c_merge = np.inf
        c_merge += 2 * s
        merge = d > 0 and deliver and (mode == 1 or (mode < 0 and c_merge < c_deliver)) and c_merge < np.inf
        local = local_on and s <= local_rows
        if local:
            merge = False
        nadd = 0
        n_new = 0
        n_local = 0
        lo_tk = 0
        q0 = qend[d]
        if deliver:
            if kind == 1:
                tk = coff[k]
            else:
                A32 = _grow(A32, b32 + s)
                _tidlist(B, A64, A32, kind, coff[k], nw, s, b32)
                tk = b32
                b32 += s
            ok = True  # ppc: an item below e in every transaction of T is in the first one; probe the rest
            t0 = A32[tk]
            for p in range(indptr[t0], indptr[t0 + 1]):
                j = rows[p]
                if j >= e:
                    break
                if inq[j] or supp0[j] < s:
                    continue
                sub = True
                for q in range(1, s):
                    if not _holds(B, indptr, rows, A32[tk + q], j):
                        sub = False
                        break
                if sub:
                    ok = False
                    break
            nt = 0
            grow = ok and q0 + 1 < max_len  # children possible: keep each item's occurrences in its bucket
            if ok and merge:
                qbuf[q0] = e
                nadd = 1
                for q in range(s):
                    mark[A32[tk + q]] = 1
                for jj in range(cstart[d], first):
                    j = citem[jj]
                    if j <= e or inq[j]:
                        continue
                    A32 = _grow(A32, b32 + csupp[jj])
                    c = _marked(A32, coff[jj], csupp[jj], b32, mark)
                    if c == s:
                        qbuf[q0 + nadd] = j
                        nadd += 1
                    elif c >= minsup and grow:
                        citem[first + n_new] = j
                        csupp[first + n_new] = c
                        ckind[first + n_new] = 1
                        coff[first + n_new] = b32
                        n_new += 1
                        b32 += c
                for q in range(s):
                    mark[A32[tk + q]] = 0
                ok = q0 + nadd <= max_len
                if q0 + nadd >= max_len:
                    n_new = 0
            elif ok:
                nt = _deliver(A32, tk, s, indptr, rows, e, cnt, touched, nt, BK, bstart, grow)  # items above e
                qbuf[q0] = e
                nadd = 1
                for u in range(nt):
                    j = touched[u]
                    if cnt[j] == s and not inq[j]:
                        qbuf[q0 + nadd] = j
                        nadd += 1
                ok = q0 + nadd <= max_len
            nf = 0
            if ok and local and q0 + nadd < max_len:  # P's items as bitsets over its s transactions?
                kept = 0
                for u in range(nt):
                    j = touched[u]
                    if minsup <= cnt[j] < s and not inq[j]:
                        fl[nf] = j
                        nf += 1
                        kept += cnt[j]
                if nf * ((s + 63) >> 6) > local_ratio * kept:
                    nf = 0
                    local = False
                fl[:nf].sort()
                if nf > 0:
                    _number_rows(A32, tk, s, pos_of)
                    nwl = (s + 63) >> 6
                    LA = _grow(LA, nf * nwl)
                    LA[: nf * nwl] = 0
                    for f in range(nf):
                        j = fl[f]
                        fc[f] = cnt[j]
                        _local_row(LA, f * nwl, BK, bstart[j], cnt[j], pos_of)
                    lo_tk = tk
                n_local = nf
            if ok and not local and not merge and q0 + nadd < max_len:
                for u in range(nt):
                    j = touched[u]
                    c = cnt[j]
                    if minsup <= c < s:
                        citem[first + n_new] = j
                        csupp[first + n_new] = c
                        ckind[first + n_new] = 1
                        coff[first + n_new] = b32
                        n_new += 1
                        A32 = _grow(A32, b32 + c)
                        A32[b32: b32 + c] = BK[bstart[j]: bstart[j] + c]
                        b32 += c
            for u in range(nt):
                cnt[touched[u]] = 0
        else:
            if kind == 1:
                A64 = _grow(A64, b64 + nw)
                _bitset(A64, A32, coff[k], nw, s, b64)
                src = b64
                b64 += nw
            else:
                src = coff[k]
            fromB = kind == 2
            ok = True
            for j in range(e):  # ppc: no item below e may hold in every transaction of T
                if inq[j] or supp0[j] < s:
                    continue
                sub = True
                for w in range(nw):
                    x = B[src, w] if fromB else A64[src + w]
                    if x & ~B[j, w]:
                        sub = False
                        break
                if sub:
                    ok = False
                    break
            if ok:
                qbuf[q0] = e
                nadd = 1
                A64 = _grow(A64, b64 + (m - e) * nw)
                for j in range(e + 1, m):
                    if inq[j] or supp0[j] < minsup:
                        continue
                    c = _and_count(B, A64, src, fromB, j, b64, nw)
                    if c == s:
                        qbuf[q0 + nadd] = j
                        nadd += 1
                    elif c >= minsup:
                        citem[first + n_new] = j
                        csupp[first + n_new] = c
                        ckind[first + n_new] = 0
                        coff[first + n_new] = b64
                        n_new += 1
                        b64 += nw
                ok = q0 + nadd <= max_len
                if q0 + nadd >= max_len:
                    n_new = 0
        if not ok:
            continue
        for u in range(q0, q0 + nadd):
            inq[qbuf[u]] = True
        qend[d + 1] = q0 + nadd
        entered[d] = True
        out_items, out_len, out_supp, n_flat, n_out = _emit(out_items, out_len, out_supp, n_flat, n_out,
                                                            qbuf, q0 + nadd, s, ids)
        if n_local > 0:
            LA, lcf, lcs, lco, out_items, out_len, out_supp, n_flat, n_out, done = _closed_local(
                LA, n_local, (s + 63) >> 6, fl, fc, A32[lo_tk: lo_tk + s], e, B, indptr, rows, supp0, inq, qbuf,
                q0 + nadd, minsup, max_len, max_out, lcf, lcs, lco, out_items, out_len, out_supp, n_flat, n_out, ids,
                ocnt, otouch, below_work)
            if not done:
                return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], False
        if n_new > 0:
            d += 1
            cstart[d] = first
            ncand[d] = n_new
            pos[d] = 0
            top64[d] = b64
            top32[d] = b32
            entered[d] = False
    return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], n_out <= max_out


@numba.njit(cache=True)
def mafia_maximal(B, supp0, ids, indptr, rows, vptr, vtids, minsup: int, max_len: int, max_out: int, mode: int = -1,
                  deliver_cost: float = 3.0, and_cost: float = 1.0, local_ratio: float = 1.0):
    """Maximal itemsets by a depth-first search with MAFIA's pruning (Burdick et al., ICDE 2001): returns
    (flat items of the maximal sets of at most ``max_len`` items, lengths, supports, complete).

    A node is a head H with a tail of candidate items (its later siblings, by ascending support). Per node:
    the tail's counts over T(H); *PEP*: tail items in every transaction of T(H) join the head; the frequent
    rest F is reordered by ascending count (dynamic reordering). *FHUT*: when H ∪ F is inside a maximal set
    already found, or (look-ahead) H ∪ F is itself frequent, the subtree holds no other maximal set. Found
    sets are kept as ascending item lists with an inverted list per item; each level keeps the ids of those
    containing its head (GenMax's progressive focusing), so a test scans only relevant sets. A leaf H (no
    frequent tail item) is maximal iff no found set contains it: every superset with an item outside
    H ∪ tail lies in a subtree searched before. ``mode`` 0/2 forces deliver/AND (tests). On sparse data a
    delivered node's children may become bitsets over its own s transactions (kind 3, same rule as
    :func:`lcm_closed`'s ``local_ratio``): their subtree is then searched by ANDs of ⌈s/64⌉ words.
    """
    m, nw, n, dense, mode, L, citem, csupp, ckind, coff, A64, A32, cnt = _setup(B, supp0, indptr, rows, vptr, vtids,
                                                                              mode)
    fill = np.zeros(m, dtype=np.int64)
    intail = np.zeros(m, dtype=np.bool_)
    bstart, BK = _buckets(supp0)
    mark = np.zeros(n, dtype=np.uint8)
    infreq = np.zeros(m, dtype=np.bool_)
    tmp_item = np.empty(m, dtype=np.int64)
    tmp_cnt = np.empty(m, dtype=np.int64)
    tmp_off = np.empty(m, dtype=np.int64)
    hbuf = np.empty(m + 1, dtype=np.int64)
    depth = m + 2
    hend = np.zeros(depth + 1, dtype=np.int64)
    cstart = np.zeros(depth + 1, dtype=np.int64)
    ncand = np.zeros(depth + 1, dtype=np.int64)
    pos = np.zeros(depth + 1, dtype=np.int64)
    top64 = np.zeros(depth + 1, dtype=np.int64)
    top32 = np.zeros(depth + 1, dtype=np.int64)
    lstart = np.zeros(depth + 1, dtype=np.int64)
    llen = np.zeros(depth + 1, dtype=np.int64)
    fnew = np.zeros(depth + 1, dtype=np.int64)
    lbuf = np.empty(1024, dtype=np.int64)
    mfi_items = np.empty(256, dtype=np.int64)  # the maximal sets found, items ascending
    mfi_off = np.zeros(64, dtype=np.int64)
    inv_head = np.full(m, -1, dtype=np.int64)  # item -> its last entry in mfi_items; entries chain by inv_next
    inv_next = np.empty(256, dtype=np.int64)
    inv_id = np.empty(256, dtype=np.int64)
    n_mfi = 0
    out_items = np.empty(1024, dtype=ids.dtype)
    out_len = np.empty(256, dtype=np.int32)
    out_supp = np.empty(256, dtype=np.int64)
    n_flat = 0
    n_out = 0
    nh = 0
    nc = 0
    # sparse data: a node's children as bitsets over its own s transactions (kind 3: A64[lbase + lrow[j]·nwl]
    # holds item j's), its subtree then searched by ANDs of nwl words
    local_on = not dense and mode < 0 and local_ratio > 0
    pos_of = np.empty(n if local_on else 0, dtype=np.int32)
    lrow = np.zeros(m, dtype=np.int64)
    lbase = 0
    nwl = 1
    for j in range(m):  # the root: items in every transaction are in every maximal set (PEP at the root)
        if supp0[j] == n:
            hbuf[nh] = j
            nh += 1
        else:
            citem[nc] = j
            csupp[nc] = supp0[j]
            ckind[nc] = 2 if dense else 1
            coff[nc] = j if dense else vptr[j]
            nc += 1
    hend[0] = nh
    top32[0] = vtids.shape[0]
    if nc == 0:
        if 0 < nh <= max_len:
            out_items, out_len, out_supp, n_flat, n_out = _emit(out_items, out_len, out_supp, n_flat, n_out,
                                                                hbuf, nh, n, ids)
        return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], True
    ncand[0] = nc
    d = 0
    while d >= 0:
        if pos[d] >= ncand[d]:
            d -= 1
            continue
        if n_out > max_out:
            return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], False
        k = cstart[d] + pos[d]
        pos[d] += 1
        e = citem[k]
        s = csupp[k]
        kind = ckind[k]
        lo = k + 1
        hi = cstart[d] + ncand[d]
        b64 = top64[d]
        b32 = top32[d]
        h0 = hend[d]
        hbuf[h0] = e
        nadd = 1
        nf = 0
        deliver = False
        merged = False
        tk = 0
        src = 0
        jmin = m
        if lo < hi:
            ntail = hi - lo
            extract = 0 if kind == 1 else nw + s
            c_deliver = deliver_cost * s * L + extract
            c_and = and_cost * ntail * nw + (4 * s if kind == 1 else 0)
            deliver = (True if not dense else (c_deliver <= c_and if mode < 0 else mode != 2)) and kind != 3
            c_merge = 2.0 * s  # the tail's tid-lists intersected with the node's (marked) instead of a walk
            for jj in range(lo, hi):
                c_merge += csupp[jj] if ckind[jj] == 1 else np.inf
            merged = d > 0 and deliver and c_merge < np.inf and (mode == 1 or (mode < 0 and c_merge < c_deliver))
            if deliver:
                if kind == 1:
                    tk = coff[k]
                else:
                    A32 = _grow(A32, b32 + s)
                    _tidlist(B, A64, A32, kind, coff[k], nw, s, b32)
                    tk = b32
                    b32 += s
                for jj in range(lo, hi):
                    jmin = min(jmin, citem[jj])
            if merged:
                for q in range(s):
                    mark[A32[tk + q]] = 1
                for jj in range(lo, hi):
                    j = citem[jj]
                    A32 = _grow(A32, b32 + csupp[jj])
                    c = _marked(A32, coff[jj], csupp[jj], b32, mark)
                    if c == s:
                        hbuf[h0 + nadd] = j
                        nadd += 1
                    elif c >= minsup:
                        tmp_item[nf] = j
                        tmp_cnt[nf] = c
                        tmp_off[nf] = b32
                        nf += 1
                        b32 += c
                for q in range(s):
                    mark[A32[tk + q]] = 0
            elif deliver:
                for jj in range(lo, hi):
                    intail[citem[jj]] = True
                for q in range(s):
                    t = A32[tk + q]
                    for p in range(indptr[t + 1] - 1, indptr[t] - 1, -1):
                        j = rows[p]
                        if j < jmin:
                            break
                        if intail[j]:
                            c = cnt[j]
                            BK[bstart[j] + c] = t
                            cnt[j] = c + 1
                for jj in range(lo, hi):
                    j = citem[jj]
                    intail[j] = False
                    if cnt[j] == s:
                        hbuf[h0 + nadd] = j
                        nadd += 1
                    elif cnt[j] >= minsup:
                        tmp_item[nf] = j
                        tmp_cnt[nf] = cnt[j]
                        tmp_off[nf] = -1
                        nf += 1
                    cnt[j] = 0
            elif kind == 3:
                src = coff[k]
                A64 = _grow(A64, b64 + ntail * nwl)
                for jj in range(lo, hi):
                    j = citem[jj]
                    c = _and_words(A64, src, lbase + lrow[j] * nwl, b64, nwl)
                    if c == s:
                        hbuf[h0 + nadd] = j
                        nadd += 1
                    elif c >= minsup:
                        tmp_item[nf] = j
                        tmp_cnt[nf] = c
                        tmp_off[nf] = b64
                        nf += 1
                        b64 += nwl
            else:
                if kind == 1:
                    A64 = _grow(A64, b64 + nw)
                    _bitset(A64, A32, coff[k], nw, s, b64)
                    src = b64
                    b64 += nw
                else:
                    src = coff[k]
                fromB = kind == 2
                A64 = _grow(A64, b64 + ntail * nw)
                for jj in range(lo, hi):
                    j = citem[jj]
                    c = _and_count(B, A64, src, fromB, j, b64, nw)
                    if c == s:
                        hbuf[h0 + nadd] = j
                        nadd += 1
                    elif c >= minsup:
                        tmp_item[nf] = j
                        tmp_cnt[nf] = c
                        tmp_off[nf] = b64
                        nf += 1
                        b64 += nw
        # the found maximal sets containing this node's head: the parent's, filtered by the new head items
        # (at the root: the sets holding e, from its inverted list)
        l0 = lstart[d] + llen[d]
        nl = 0
        if d == 0:
            x = inv_head[e]
            while x >= 0:
                mid = inv_id[x]
                x = inv_next[x]
                has = True
                for u in range(h0 + 1, h0 + nadd):
                    if not _in_set(mfi_items, mfi_off, mid, hbuf[u]):
                        has = False
                        break
                if has:
                    lbuf = _grow(lbuf, l0 + nl + 1)
                    lbuf[l0 + nl] = mid
                    nl += 1
        else:
            lbuf = _grow(lbuf, l0 + llen[d] + (n_mfi - fnew[d]))
            for src_i in range(llen[d] + n_mfi - fnew[d]):
                mid = lbuf[lstart[d] + src_i] if src_i < llen[d] else fnew[d] + src_i - llen[d]
                has = True
                for u in range(h0, h0 + nadd):
                    if not _in_set(mfi_items, mfi_off, mid, hbuf[u]):
                        has = False
                        break
                if has:
                    lbuf[l0 + nl] = mid
                    nl += 1
        nh = h0 + nadd
        found = False  # a maximal set to record: the head (leaf) or head ∪ F (frequent look-ahead)
        fsupp = s
        if nf == 0:
            found = nl == 0
        else:
            subsumed = False
            for u in range(nl):
                mid = lbuf[l0 + u]
                sub = True
                for v in range(nf):
                    if not _in_set(mfi_items, mfi_off, mid, tmp_item[v]):
                        sub = False
                        break
                if sub:
                    subsumed = True
                    break
            if not subsumed:
                if deliver:  # support of H ∪ F: transactions of T holding every item of F
                    for v in range(nf):
                        infreq[tmp_item[v]] = True
                    fsupp = 0
                    for q in range(s):
                        t = A32[tk + q]
                        c = 0
                        for p in range(indptr[t + 1] - 1, indptr[t] - 1, -1):
                            if rows[p] < jmin:
                                break
                            c += infreq[rows[p]]
                        fsupp += c == nf
                    for v in range(nf):
                        infreq[tmp_item[v]] = False
                elif kind == 3:
                    A64 = _grow(A64, b64 + nwl)
                    fsupp = tmp_cnt[0]
                    for w in range(nwl):
                        A64[b64 + w] = A64[tmp_off[0] + w]
                    for v in range(1, nf):
                        c = np.int64(0)
                        g = lbase + lrow[tmp_item[v]] * nwl
                        for w in range(nwl):
                            x = A64[b64 + w] & A64[g + w]
                            A64[b64 + w] = x
                            c += _popcount64(x)
                        fsupp = c
                        if c < minsup:
                            break
                else:
                    A64 = _grow(A64, b64 + nw)
                    fsupp = tmp_cnt[0]
                    for w in range(nw):
                        A64[b64 + w] = A64[tmp_off[0] + w]
                    for v in range(1, nf):
                        c = np.int64(0)
                        for w in range(nw):
                            x = A64[b64 + w] & B[tmp_item[v], w]
                            A64[b64 + w] = x
                            c += _popcount64(x)
                        fsupp = c
                        if c < minsup:
                            break
                if fsupp >= minsup:
                    for v in range(nf):
                        hbuf[nh + v] = tmp_item[v]
                    nh += nf
                    found = True
                else:
                    # children: F by ascending count, each with its tid-set
                    first = cstart[d] + ncand[d]
                    if first + nf > citem.shape[0]:
                        citem = _grow(citem, first + nf)
                        csupp = _grow(csupp, citem.shape[0])
                        ckind = _grow(ckind, citem.shape[0])
                        coff = _grow(coff, citem.shape[0])
                    order = np.argsort(tmp_cnt[:nf], kind="mergesort")
                    go_local = False
                    if local_on and deliver and not merged:
                        kept = 0
                        for v in range(nf):
                            kept += tmp_cnt[v]
                        go_local = nf * ((s + 63) >> 6) <= local_ratio * kept
                    if go_local:  # the children's local rows, from the buckets the walk filled
                        _number_rows(A32, tk, s, pos_of)
                        nwl = (s + 63) >> 6
                        lbase = b64
                        A64 = _grow(A64, b64 + nf * nwl)
                        A64[b64: b64 + nf * nwl] = 0
                        u = 0
                        for v in order:
                            j = tmp_item[v]
                            lrow[j] = u
                            _local_row(A64, lbase + u * nwl, BK, bstart[j], tmp_cnt[v], pos_of)
                            u += 1
                        b64 += nf * nwl
                    elif deliver and not merged:  # the children's tid-lists, from the buckets the walk filled
                        for v in order:
                            j = tmp_item[v]
                            c = tmp_cnt[v]
                            A32 = _grow(A32, b32 + c)
                            A32[b32: b32 + c] = BK[bstart[j]: bstart[j] + c]
                            fill[j] = b32 + c
                            b32 += c
                    u = 0
                    for v in order:
                        j = tmp_item[v]
                        citem[first + u] = j
                        csupp[first + u] = tmp_cnt[v]
                        if go_local:
                            ckind[first + u] = 3
                            coff[first + u] = lbase + u * nwl
                        elif kind == 3:
                            ckind[first + u] = 3
                            coff[first + u] = tmp_off[v]
                        elif merged:
                            ckind[first + u] = 1
                            coff[first + u] = tmp_off[v]
                        elif deliver:
                            ckind[first + u] = 1
                            coff[first + u] = fill[j] - tmp_cnt[v]
                        else:
                            ckind[first + u] = 0
                            coff[first + u] = tmp_off[v]
                        u += 1
                    d += 1
                    cstart[d] = first
                    ncand[d] = nf
                    pos[d] = 0
                    top64[d] = b64
                    top32[d] = b32
                    hend[d] = h0 + nadd
                    lstart[d] = l0
                    llen[d] = nl
                    fnew[d] = n_mfi
        if found:
            a = mfi_off[n_mfi]
            mfi_items = _grow(mfi_items, a + nh)
            inv_id = _grow(inv_id, a + nh)
            inv_next = _grow(inv_next, a + nh)
            mfi_off = _grow(mfi_off, n_mfi + 2)
            for u in range(nh):  # items ascending (binary searches), each linked into its inverted list
                it = hbuf[u]
                v = a + u
                while v > a and mfi_items[v - 1] > it:
                    mfi_items[v] = mfi_items[v - 1]
                    v -= 1
                mfi_items[v] = it
                inv_id[a + u] = n_mfi
                inv_next[a + u] = inv_head[it]
                inv_head[it] = a + u
            mfi_off[n_mfi + 1] = a + nh
            n_mfi += 1
            if nh <= max_len:
                out_items, out_len, out_supp, n_flat, n_out = _emit(out_items, out_len, out_supp, n_flat,
                                                                    n_out, hbuf, nh, fsupp, ids)
    return out_items[:n_flat], out_len[:n_out], out_supp[:n_out], n_out <= max_out
