"""ExplaiNN's counting on a Dask cluster: row ranges of a Zarr store counted where they are loaded, partial
counts summed here; the search itself (which rules to score, which to merge) never leaves this process.

Each worker of the client gets one contiguous range of the store's rows (whole chunks) and loads it once,
inside its own tasks (nothing large travels in the task graph); later calls find it in the worker's cache
(``NNRULES_SHARD_CACHE_BYTES``, default 1 GiB). What runs where:

- **Summed over row ranges** (one task per worker, partial counts added here): the head × tail
  co-occurrence counts of phase 1 (p × q int64), the merge search's histograms — the bulk of a fit —
  (:mod:`nnrules.miners.explainn._shards`: layout, counts per range, scan of the sums; ≤ ``MERGE_BUFFER``
  counts a call), the rows where rules apply ∩ units (absorption, head equivalents), the sampled words of the
  similarity search.
- **By units** (tasks that read a few units over all rows): phase 1's prefix heads (their histograms per
  prefix are O(|H_y|²) per tail unit — larger than a row range), head refinement (a hill climb, one step
  after another) and tail extension (absorption). A task reads at most about ``UNIT_TASK_BYTES`` of words
  plus the head units its tail units need.

Results equal the in-memory fit's (the same kernels on the same counts, the same arithmetic order in the
scan); tests compare rules and code length under a 2-worker ``LocalCluster``. Worker processes run one
thread (``local_cluster``); numba's kernels in a task use the worker's threads.
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
from collections import OrderedDict
from typing import Any

import numba
import numpy as np

import nnrules.miners.explainn._counts as C
import nnrules.miners.explainn._kernels as K
import nnrules.miners.explainn._shards as S

from ...data.bits import StoredBits
from ...data.packing import _popcount_rows, and_count
from ...data.zarr_io import open_words, read_words
from ._data import _Data
from ._prefix_kernels import majority_masks, prefix_heads

__all__ = ["ShardedData"]

#: most counts (int64) of one merge call per worker (64 MiB)
MERGE_BUFFER = 1 << 23
#: words a unit task reads, besides the head units its tail units need (bytes)
UNIT_TASK_BYTES = 128 << 20


# ----------------------------------------------------------------------------- worker side
_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _token(src: tuple) -> tuple:
    path, key, units = src
    return (path, key, hashlib.sha1(np.asarray(units, np.int64).tobytes()).hexdigest())


@functools.lru_cache(maxsize=8)
def _array(path: str, key: str):
    return open_words(path, key)


def _range(src: tuple, w0: int, w1: int) -> np.ndarray:
    """Words [w0, w1) of a selection, from this worker's cache or the store."""
    k = (*_token(src), w0, w1)
    if k in _CACHE:
        _CACHE.move_to_end(k)
        return _CACHE[k]
    words = read_words(_array(src[0], src[1]), np.asarray(src[2], np.int64), w0, w1)
    limit = int(os.environ.get("NNRULES_SHARD_CACHE_BYTES", 1 << 30))
    while _CACHE and sum(v.nbytes for v in _CACHE.values()) + words.nbytes > limit:
        _CACHE.popitem(last=False)
    if words.nbytes <= limit:
        _CACHE[k] = words
    return words


def _threads() -> int:
    try:
        from distributed import get_worker
        w = get_worker()
        return int(getattr(getattr(w, "state", w), "nthreads", 1))
    except (ImportError, ValueError):
        return numba.get_num_threads()


@functools.lru_cache(maxsize=2)
def _tables(n: int):
    return C.tables(n)


def _timed(fn):
    """``fn``'s result and the seconds it took on the worker (the per-range costs the benchmark reports)."""
    @functools.wraps(fn)
    def run(*args):
        t = time.perf_counter()
        out = fn(*args)
        return out, time.perf_counter() - t
    return run


@_timed
def _on_range(op: str, h_src: tuple, t_src: tuple, w0: int, w1: int, args: tuple):
    """A worker's part of a summed count: ``op`` over words [w0, w1) of head and tail."""
    h, t = _range(h_src, w0, w1), _range(t_src, w0, w1)
    old = numba.get_num_threads()
    numba.set_num_threads(min(_threads(), numba.config.NUMBA_NUM_THREADS))
    try:
        th = numba.get_num_threads()
        if op == "and_count":
            return and_count(h, t)
        if op == "applies":
            r_hptr, r_hidx, r_l, tail_units = args
            masks = K.applies_masks(r_hptr, r_hidx, r_l, h, th)
            return and_count(masks, h if tail_units is None else np.ascontiguousarray(t[tail_units]))
        if op == "sample":
            (idx,) = args
            return np.ascontiguousarray(t[:, idx[(idx >= w0) & (idx < w1)] - w0])
        if op == "merge":
            return S.merge_counts(*args, h, t, th)
        if op == "majority":
            y_ptr, y_idx = args
            masks = majority_masks(y_ptr, y_idx, t, th)
            return np.c_[and_count(masks, h), _popcount_rows(masks)]
        raise ValueError(op)
    finally:
        numba.set_num_threads(old)


@_timed
def _on_units(op: str, h_src: tuple, t_src: tuple, n: int, args: tuple):
    """A unit task: ``op`` on the selected units over all rows."""
    h = read_words(_array(h_src[0], h_src[1]), np.asarray(h_src[2], np.int64), 0, _array(h_src[0], h_src[1]).shape[1])
    t = read_words(_array(t_src[0], t_src[1]), np.asarray(t_src[2], np.int64), 0, _array(t_src[0], t_src[1]).shape[1])
    old = numba.get_num_threads()
    numba.set_num_threads(min(_threads(), numba.config.NUMBA_NUM_THREADS))
    try:
        th, tables = numba.get_num_threads(), _tables(n)
        if op == "phase1":
            ptr, order, t_supp, h_cost, t_cost = args
            return K.phase1(ptr, order, h, t, t_supp, h_cost, t_cost, n, tables, th)
        if op == "refine":
            p_ptr, pool, member, r_tptr, r_tidx, r_cost, h_supp, t_supp, h_cost, t_cost, moves = args
            member = member.copy()
            out = K.refine_heads(p_ptr, pool, member, r_tptr, r_tidx, r_cost, h, t, h_supp, t_supp, h_cost,
                                 t_cost, n, tables, th, moves)
            return (*out, member)
        if op == "extend":
            cr, cy, r_hptr, r_hidx, r_tptr, r_tidx, h_supp, t_supp, h_cost, t_cost = args
            return K.extend_tails(cr, cy, r_hptr, r_hidx, r_tptr, r_tidx, h, t, h_supp, t_supp, h_cost, t_cost,
                                  n, tables, th)
        if op == "prefix":
            c_ptr, c_pool, y_ptr, y_idx, t_supp, h_cost, t_cost = args
            return prefix_heads(c_ptr, c_pool, y_ptr, y_idx, h, t, t_supp, h_cost, t_cost, n, tables, th)
        raise ValueError(op)
    finally:
        numba.set_num_threads(old)


# ----------------------------------------------------------------------------- driver side
def _local(ids: np.ndarray) -> tuple[np.ndarray, Any]:
    """The sorted distinct ``ids`` and a function mapping ids to positions among them."""
    u = np.unique(ids)
    return u, lambda x: np.searchsorted(u, x).astype(np.int64)


def _segments(ptr: np.ndarray, idx: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR rows ``which`` of (ptr, idx) as a new (ptr, idx)."""
    lens = ptr[which + 1] - ptr[which]
    new_ptr = np.r_[0, np.cumsum(lens)].astype(np.int64)
    parts = [idx[ptr[w]: ptr[w + 1]] for w in which]
    return new_ptr, (np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64))


class ShardedData(_Data):
    """:class:`~nnrules.miners.explainn._data._Data`'s counting calls answered by the workers of ``client`` from
    the stores of ``head`` and ``tail`` (see the module docstring)."""

    def __init__(self, head: StoredBits, tail: StoredBits, client) -> None:
        self.client = client
        self.head, self.tail = head, tail
        self._setup(head.n_samples, head.support(), tail.support())
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ValueError("the Dask client has no workers: start some (LocalCluster(n_workers=…), or the "
                             "cluster's scheduler) before fitting")
        self.ranges = list(zip(workers, tail.row_ranges(len(workers))))
        self.h_src, self.t_src = head.source(), tail.source()
        self._bpu = head.n_words * 8  # bytes of one unit over all rows
        #: calls and seconds: per row range (worker compute), their wall time here, unit tasks
        self.stats = {"range_calls": 0, "range_seconds": 0.0, "range_max_seconds": 0.0, "range_wall": 0.0,
                      "unit_tasks": 0, "unit_seconds": 0.0, "unit_wall": 0.0}

    @property
    def n_words(self) -> int:
        return self.tail.n_words

    def _summed(self, op: str, args: tuple, combine=None):
        t = time.perf_counter()
        futures = [self.client.submit(_on_range, op, self.h_src, self.t_src, w0, w1, args, workers=[addr],
                                      allow_other_workers=False, pure=False)
                   for addr, (w0, w1) in self.ranges]
        timed = self.client.gather(futures)
        parts = [p for p, _ in timed]
        self.stats["range_calls"] += 1
        self.stats["range_seconds"] += sum(s for _, s in timed)
        self.stats["range_max_seconds"] += max(s for _, s in timed)
        self.stats["range_wall"] += time.perf_counter() - t
        if combine is not None:
            return combine(parts)
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total

    def _unit_tasks(self, op: str, jobs: list[tuple[np.ndarray, np.ndarray, tuple]]) -> list:
        """One task per job (head units, tail units, args), spread over the workers by Dask."""
        h_path, h_key, h_units = self.h_src
        t_path, t_key, t_units = self.t_src
        t = time.perf_counter()
        futures = [self.client.submit(_on_units, op, (h_path, h_key, h_units[hs]), (t_path, t_key, t_units[ts]),
                                      self.n, args, pure=False) for hs, ts, args in jobs]
        timed = self.client.gather(futures)
        self.stats["unit_tasks"] += len(jobs)
        self.stats["unit_seconds"] += sum(s for _, s in timed)
        self.stats["unit_wall"] += time.perf_counter() - t
        return [r for r, _ in timed]

    def _batches(self, n_items: int, units_per_item: float, fixed_units: int) -> list[np.ndarray]:
        """Split ``n_items`` into at least one batch per worker, each reading about ``UNIT_TASK_BYTES``."""
        per = max(1, int((UNIT_TASK_BYTES / self._bpu) // max(units_per_item, 1e-9)))
        parts = max(len(self.ranges), -(-n_items // per))
        return [b for b in np.array_split(np.arange(n_items), parts) if len(b)]

    def and_count(self) -> np.ndarray:
        return self._summed("and_count", ())

    def applies_count(self, r_hptr, r_hidx, r_l, tail_units=None) -> np.ndarray:
        return self._summed("applies", (r_hptr, r_hidx, r_l, None if tail_units is None else np.asarray(tail_units)))

    def tail_sample(self, step: int) -> np.ndarray:
        idx = np.arange(0, self.n_words, step, dtype=np.int64)
        return self._summed("sample", (idx,), combine=lambda parts: np.ascontiguousarray(np.hstack(parts)))

    def merge_groups(self, pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu):
        off, nu, ni, _ = S.merge_layout(pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, mu)
        size = np.zeros(len(pi), np.int64)  # counts per pair
        ny = (r_tptr[pi + 1] - r_tptr[pi]) + (r_tptr[pj + 1] - r_tptr[pj])
        size[off >= 0] = ((nu + 1) * (2 * ny + 1) + np.where(ni > 0, (ni + 1) * (2 * ny + 1), 0))[off >= 0]
        per_group = np.add.reduceat(size, g_ptr[:-1]) if len(pi) else np.zeros(0, np.int64)
        ends = np.cumsum(per_group)
        out = K._results(len(pi))
        out = (out[0], np.zeros(len(pi), np.bool_), *out[1:])
        g0 = 0
        while g0 < len(per_group):  # blocks of whole groups, ≤ MERGE_BUFFER counts (one group at least)
            base = ends[g0 - 1] if g0 else 0
            g1 = max(g0 + 1, int(np.searchsorted(ends, base + MERGE_BUFFER, side="right")))
            c0, c1 = g_ptr[g0], g_ptr[g1]
            a, b, gp = pi[c0:c1], pj[c0:c1], g_ptr[g0: g1 + 1] - c0
            o, u, i, total = S.merge_layout(a, b, gp, r_hptr, r_hidx, r_tptr, mu)
            if (o >= 0).any():
                buf = self._summed("merge", (a, b, gp, r_hptr, r_hidx, r_tptr, r_tidx, o, i, total))
                res = S.merge_scan(a, b, gp, r_hptr, r_hidx, r_tptr, r_tidx, o, u, i, buf, self.h_cost, self.t_cost,
                                   self.t_supp, self.n, self.tables, numba.get_num_threads())
                for dst, src in zip(out, res):
                    dst[c0:c1] = src
            g0 = g1
        return out

    def phase1(self, ptr, order, todo):
        jobs, where = [], []
        for batch in self._batches(len(todo), 1, self.head.n_units):
            bptr, border = _segments(ptr, order, batch)
            hs, loc = _local(border)
            ts = np.asarray(todo)[batch]
            jobs.append((hs, ts, (bptr, loc(border), self.t_supp[ts], self.h_cost[hs], self.t_cost[ts])))
            where.append(batch)
        results = K._results(len(todo))
        for batch, res in zip(where, self._unit_tasks("phase1", jobs)):
            for dst, src in zip(results, res):
                dst[batch] = src
        return results

    def refine_heads(self, p_ptr, pool, member, r_tptr, r_tidx, r_cost, max_moves):
        R = len(r_cost)
        units = (np.diff(p_ptr).sum() + np.diff(r_tptr).sum()) / max(R, 1)
        jobs, where = [], []
        for batch in self._batches(R, units, 0):
            pp, pl = _segments(p_ptr, pool, batch)
            tp, tl = _segments(r_tptr, r_tidx, batch)
            _, mb = _segments(p_ptr, member.astype(np.int64), batch)
            hs, hloc = _local(pl)
            ts, tloc = _local(tl)
            jobs.append((hs, ts, (pp, hloc(pl), mb.astype(np.bool_), tp, tloc(tl), r_cost[batch], self.h_supp[hs],
                                  self.t_supp[ts], self.h_cost[hs], self.t_cost[ts], max_moves)))
            where.append(batch)
        out = [np.full(R, np.inf), *(np.zeros(R, np.int64) for _ in range(5))]
        for batch, res in zip(where, self._unit_tasks("refine", jobs)):
            for dst, src in zip(out, res[:6]):
                dst[batch] = src
            for r, seg in zip(batch, np.split(res[6], np.cumsum(np.diff(p_ptr)[batch])[:-1])):
                member[p_ptr[r]: p_ptr[r + 1]] = seg
        return tuple(out)

    def majority_count(self, y_ptr, y_idx):
        both = self._summed("majority", (y_ptr, y_idx))
        return both[:, :-1], both[:, -1]

    def prefix_heads(self, c_ptr, c_pool, y_ptr, y_idx):
        C = len(c_ptr) - 1
        units = (np.diff(c_ptr).sum() + np.diff(y_ptr).sum()) / max(C, 1)
        jobs, where = [], []
        for batch in self._batches(C, units, 0):
            cp, cl = _segments(c_ptr, c_pool, batch)
            yp, yl = _segments(y_ptr, y_idx, batch)
            hs, hloc = _local(cl)
            ts, tloc = _local(yl)
            jobs.append((hs, ts, (cp, hloc(cl), yp, tloc(yl), self.t_supp[ts], self.h_cost[hs], self.t_cost[ts])))
            where.append(batch)
        out = [np.full(C, np.inf), *(np.zeros(C, np.int64) for _ in range(5))]
        for batch, res in zip(where, self._unit_tasks("prefix", jobs)):
            for dst, src in zip(out, res):
                dst[batch] = src
        return tuple(out)

    def extend_tails(self, cr, cy, r_hptr, r_hidx, r_tptr, r_tidx):
        m = len(cr)
        units = (np.diff(r_hptr).mean() + np.diff(r_tptr).mean() + 1) if len(r_tptr) > 1 else 1
        jobs, where = [], []
        for batch in self._batches(m, units, 0):
            rules, rloc = _local(cr[batch])
            hp, hl = _segments(r_hptr, r_hidx, rules)
            tp, tl = _segments(r_tptr, r_tidx, rules)
            hs, hloc = _local(hl)
            ts, tloc = _local(np.r_[tl, cy[batch]])
            jobs.append((hs, ts, (rloc(cr[batch]), tloc(cy[batch]), hp, hloc(hl), tp, tloc(tl), self.h_supp[hs],
                                  self.t_supp[ts], self.h_cost[hs], self.t_cost[ts])))
            where.append(batch)
        out = K._results(m)
        for batch, res in zip(where, self._unit_tasks("extend", jobs)):
            for dst, src in zip(out, res):
                dst[batch] = src
        return out
