"""ExplaiNN's merge candidates: which pairs of rules a merge round scores (``search``: exhaustive or pruned by
similarity, see :meth:`PairSearch._pair_blocks`), their scoring in groups of equal heads, and the cache of
scored pairs between rounds.

``PairSearch`` is a mixin of :class:`~nnrules.miners.explainn.ExplaiNN`; its methods work on the search's
rule dicts (``head``, ``tail``, ``l``, ``cost``, and ``rcost`` for seeds) and the fit's data (``_Data``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import nnrules.miners.explainn._kernels as K

from ...data.packing import _popcount_rows
from ._types import SearchRule

if TYPE_CHECKING:
    from ._data import _Data


class PairCache:
    """Scored merge candidates between rounds, as arrays (a < b rule ids, gain, cost, l, k, |A|, |H|, inter):
    millions of pairs on a whole layer, where a dict per pair cost more than scoring them."""

    FIELDS = ("a", "b", "gain", "rgain", "cost", "l", "k", "A", "H", "inter")

    def __init__(self) -> None:
        self._parts: list[dict] = []

    def add(self, **cols) -> None:
        if len(cols["a"]):
            self._parts.append(cols)

    def arrays(self) -> dict:
        if not self._parts:
            return {f: np.zeros(0, dtype=bool if f == "inter" else np.float64 if f in ("gain", "rgain", "cost") else np.int64)
                    for f in self.FIELDS}
        if len(self._parts) > 1:
            self._parts = [{f: np.concatenate([p[f] for p in self._parts]) for f in self.FIELDS}]
        return self._parts[0]

    def drop(self, ids: set[int]) -> None:
        """Forget the pairs with a rule in ``ids`` (rules merged away)."""
        c = self.arrays()
        gone = np.array(sorted(ids), dtype=np.int64)
        keep = ~(np.isin(c["a"], gone) | np.isin(c["b"], gone))
        self._parts = [{f: c[f][keep] for f in self.FIELDS}]


class PairSearch:
    """Candidate pairs and their scores (see the module docstring)."""

    #: pairs scored per kernel call (memory: ~60 bytes a pair), and most pairs per group of equal heads
    PAIRS_PER_CALL = 2_000_000
    PAIRS_PER_GROUP = 256

    # what the estimator that uses these steps (ExplaiNN) sets before calling them
    search: str
    n_neighbors: int
    _floor: dict[int, float]

    def _check(self, stage: str = "", fraction: float = 0.0) -> None:
        raise NotImplementedError

    def _score_pairs(self, alive: dict[int, SearchRule], new_ids: list[int], cache: "PairCache", mu: int,
                     d: _Data, p: int, round_: int = 1) -> int:
        """Score the round's pairs (each has a new rule; see :meth:`_pair_blocks`), keep those with gain > −2
        in ``cache``. Pairs are sorted by their two heads, so that pairs with the same heads form a group
        whose head masks are computed once (:func:`_kernels.merge_groups`). Returns the number of
        pairs scored."""
        ids = sorted(alive)
        R = len(ids)
        pos = {rid: i for i, rid in enumerate(ids)}
        heads = [alive[rid].head for rid in ids]
        r_hptr = np.zeros(R + 1, dtype=np.int64)
        r_tptr = np.zeros(R + 1, dtype=np.int64)
        r_hptr[1:] = np.cumsum([len(h) for h in heads])
        r_tptr[1:] = np.cumsum([len(alive[rid].tail) for rid in ids])
        r_hidx = np.fromiter((x for h in heads for x in h), dtype=np.int64, count=int(r_hptr[-1]))
        r_tidx = np.fromiter((y for rid in ids for y in alive[rid].tail), dtype=np.int64, count=int(r_tptr[-1]))
        head_id: dict[tuple, int] = {}
        hid = np.array([head_id.setdefault(h, len(head_id)) for h in heads], dtype=np.int64)
        src_cost = np.array([alive[rid].cost for rid in ids])
        src_rcost = np.array([alive[rid].rule_cost for rid in ids])
        id_arr = np.array(ids, dtype=np.int64)
        new_pos = np.array(sorted(pos[r] for r in new_ids), dtype=np.int64)
        scored = 0
        for pi, pj, done in self._pair_blocks(id_arr, new_pos, r_hptr, r_hidx, r_tptr, r_tidx, alive, d):
            if mu >= 0:  # μ before scoring: the heads differ in at most μ items
                ok = K.head_differences(pi, pj, r_hptr, r_hidx) <= mu
                pi, pj = pi[ok], pj[ok]
            if len(pi) == 0:
                continue
            swap = hid[pi] > hid[pj]  # a group is an ordered pair of head ids
            pi[swap], pj[swap] = pj[swap], pi[swap]
            key = hid[pi] * len(head_id) + hid[pj]
            order = np.argsort(key, kind="stable")
            pi, pj, key = pi[order], pj[order], key[order]
            idx = np.arange(len(key))
            first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            group_start = first[np.searchsorted(first, idx, side="right") - 1]
            g_ptr = np.r_[np.flatnonzero((idx - group_start) % self.PAIRS_PER_GROUP == 0), len(key)].astype(np.int64)
            cost, inter, l, k, a, h = d.merge_groups(pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu)
            scored += len(pi)
            gain = src_cost[pi] + src_cost[pj] - cost
            rgain = src_rcost[pi] + src_rcost[pj] - cost  # as if both were rules (seeds: see _merge)
            # a pair's gain changes later only through L_N(|M|) (< 2 bits): drop hopeless pairs now
            keep = np.flatnonzero(np.isfinite(cost) & ((gain > -2.0) | (rgain > 0)))
            ida, idb = id_arr[pi[keep]], id_arr[pj[keep]]
            cache.add(a=np.minimum(ida, idb), b=np.maximum(ida, idb), gain=gain[keep], rgain=rgain[keep],
                      cost=cost[keep], l=l[keep], k=k[keep], A=a[keep], H=h[keep], inter=inter[keep])
            self._check(f"merge round {round_}: {scored:,} pairs scored", done)
        return scored

    #: pruned search: similarities are computed on at most this many words (64 rows each) spread evenly
    SIMILARITY_WORDS = 64

    def _pair_blocks(self, id_arr, new_pos, r_hptr, r_hidx, r_tptr, r_tidx, alive, d: _Data):
        """The round's pairs of rule positions ``(pi, pj)`` in blocks of at most ``PAIRS_PER_CALL``, with the
        share of the round done after each block. Each unordered pair has a new rule and comes once.

        ``exhaustive``: every such pair — O(new · R) pairs. ``pruned``: a new rule with its
        ``n_neighbors`` most similar rules, and an older rule with a new one that is more similar to it than
        its own k-th neighbour was — O(new · k) pairs, found in O(new · R · w) word operations, w ≤
        ``SIMILARITY_WORDS`` (rows sampled evenly by word). The similarity of two rules is the Jaccard index of
        the rows where one of their tail units is on: merged tails are coded together, so a merge pays where
        they fire together (the rows where the heads apply were tried too: a seed with a tight noisy head
        applies in a few rows and found no partner; 33 vs 39 of 42 paying planted rules at 10 % noise).
        What it can miss: a pair of rules that are each other's neighbours only past the k-th."""
        R = len(id_arr)
        is_new = np.zeros(R, dtype=bool)
        is_new[new_pos] = True
        if self.search == "exhaustive":
            all_pos = np.arange(R, dtype=np.int64)
            block = max(1, self.PAIRS_PER_CALL // max(R, 1))
            for start in range(0, len(new_pos), block):
                rows = new_pos[start: start + block]
                pi = np.repeat(rows, R)
                pj = np.tile(all_pos, len(rows))
                keep = (pj != pi) & ~(is_new[pj] & (pj < pi))  # new×old, and new×new with the higher position
                yield pi[keep], pj[keep], min(1.0, (start + block) / len(new_pos))
            return
        t_words = d.tail_sample(-(-d.n_words // self.SIMILARITY_WORDS))
        masks = np.bitwise_or.reduceat(np.ascontiguousarray(t_words[r_tidx]), r_tptr[:-1], axis=0)
        counts = _popcount_rows(masks)
        k = min(int(self.n_neighbors), R - 1)
        nb, sim = K.nearest(new_pos, masks, counts, k)
        for rid, s in zip(id_arr[new_pos], sim[:, -1]):
            self._floor[int(rid)] = float(s)
        pi, pj = np.repeat(new_pos, k), nb.ravel()
        old = np.flatnonzero(~is_new)
        if len(old) and len(new_pos):
            # a rule without a known k-th neighbour (one from an earlier pass) is paired through new rules' lists
            floor = np.array([self._floor.get(int(i), np.inf) for i in id_arr[old]])
            hit = K.beats(new_pos, old, masks, counts, floor)
            b, c = np.nonzero(hit)
            pi, pj = np.r_[pi, new_pos[b]], np.r_[pj, old[c]]
        ok = pj >= 0
        lo, hi = np.minimum(pi[ok], pj[ok]), np.maximum(pi[ok], pj[ok])
        key = np.unique(lo * R + hi)
        pi, pj = key // R, key % R
        for start in range(0, len(pi), self.PAIRS_PER_CALL):
            yield (pi[start: start + self.PAIRS_PER_CALL].copy(), pj[start: start + self.PAIRS_PER_CALL].copy(),
                   min(1.0, (start + self.PAIRS_PER_CALL) / max(len(pi), 1)))
