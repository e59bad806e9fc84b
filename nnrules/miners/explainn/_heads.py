"""ExplaiNN's heads from the tail's rows: phase 1's prefix search (seed 000 Sec. 2.3) generalised from one
tail unit to a set of them, and the rules it finds for groups of tail units that no rule covers.

Phase 1 orders the candidate head items of a tail unit y by their confidence σ_xy. Once rules have tails of
several units, that order is the wrong one: under noise each tail unit alone says little, and a head item
that predicts the tail as a whole can rank below unrelated ones for every single unit (measured: planted
head item 13 of tail {11..14} at 10 % noise has σ 0.218–0.239 against 0.221–0.242 for the head's weakest item,
so the refinement never offered it). Here a tail set Y is read as its rows ``T_Y^k0`` = rows where a strict
majority (k0 = ⌊|Y|/2⌋ + 1) of Y is on; head items are ranked by the share of their rows that are such rows,
kept only where that share is above the base rate by more than chance allows (a one-sided z test at
``ENRICHED_ALPHA``, Bonferroni over the live head units: z ≥ 3.5 for 160 units, 4.3 for 4,096), and the best prefix of
the ``POOL`` best ones is found with every (l, k) (:func:`prefix_heads`).

Two uses (:class:`TailHeads`, a mixin of :class:`~nnrules.miners.explainn.ExplaiNN`):

- ``_rehead``: every rule's head is refined from where it is and from the head re-derived from its tail; the
  shorter is kept.
- ``_tail_groups``: tail units that no rule covers are grouped with their most similar uncovered units
  (Jaccard of their rows, as the pruned merge search measures it), each group of 2..``GROUP_MAX`` gets a
  head, and the groups that pay are added as rules (greedily by gain, disjoint tails). At most
  ``GROUP_WORD_OPS`` / (live head units × words) groups a pass, the most cohesive first (a dense 1,000-unit head
  over 50,000 rows: 2,557 groups). Single units whose
  phase-1 rule did not pay (their own noisy head) can only enter the model this way or through merges.

Both keep the code the same: a candidate is scored with the same cost as every other rule, and taken only
where the total code length drops.
"""
from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

import nnrules.miners.explainn._kernels as K

from ...data.packing import _popcount_rows
from ._types import SearchRule
from .mdl import universal_int

if TYPE_CHECKING:
    from ._data import _Data
    from ._search import UnitGraph


class TailHeads:
    """Heads from the tail's rows (see the module docstring)."""

    #: head items tried per tail set (the best prefix of them is kept); the chance that an unrelated head unit
    #: passes the enrichment test for a tail set (Bonferroni over the live head units); the largest group of
    #: uncovered units formed, and the neighbours each unit is grouped with
    POOL = 16
    ENRICHED_ALPHA = 0.05
    GROUP_MAX = 8
    GROUP_NEIGHBORS = 7
    #: groups scored per pass: at most this many word operations for their enrichment counts (sets × head units ×
    #: words; ≈ 1–2 s on 2 cores), the most cohesive groups first (their weakest neighbour's similarity)
    GROUP_WORD_OPS = 2_000_000_000
    #: tail sets handled per counting call (memory: 8 bytes × head units each)
    SETS_PER_CALL = 4096
    verbose: bool
    _head_cache: dict  # tail set → its best head (:meth:`_heads_for`), during fit
    _tried: set  # (tail, head) of the rules already re-headed, during fit
    n_reheaded_: int
    n_refined_: int
    n_grouped_: int
    _graph: UnitGraph | None

    def _acyclic(self, rules, cand: SearchRule) -> bool:
        raise NotImplementedError

    def _refine(self, rules: list[SearchRule], d: _Data, tally: bool = True) -> set[int]:
        raise NotImplementedError

    def _heads_for(self, tails: list[tuple[int, ...]], d: _Data):
        """The best head for each tail set of ``tails``: (cost, head tuple, l, k, |A|, |H|) per set (cost inf and
        head () where no head item is enriched)."""
        z_min = NormalDist().inv_cdf(1 - self.ENRICHED_ALPHA / max(int((d.h_supp > 0).sum()), 1))
        cache = self._head_cache  # a tail set's best head depends on the data alone: found once per fit
        todo = sorted({tuple(t) for t in tails} - cache.keys())
        for start in range(0, len(todo), self.SETS_PER_CALL):
            part = todo[start: start + self.SETS_PER_CALL]
            y_ptr = np.r_[0, np.cumsum([len(t) for t in part])].astype(np.int64)
            y_idx = np.fromiter((y for t in part for y in t), dtype=np.int64, count=int(y_ptr[-1]))
            inside, rows = d.majority_count(y_ptr, y_idx)  # (C, p) rows of x among the set's rows, (C,)
            supp = d.h_supp[None, :].astype(float)
            rate = rows[:, None] / d.n
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(supp > 0, inside / np.maximum(supp, 1), -1.0)
                z = (inside - supp * rate) / np.sqrt(supp * rate * (1 - rate))
            share[~(np.nan_to_num(z, nan=-np.inf) >= z_min)] = -1.0
            for c, t in enumerate(part):
                share[c, ~d.ok[:, list(t)].any(1)] = -1.0  # θ: σ_xy > θ for some unit y of the set
                if self._graph is not None:  # a unit is never in the head of a rule with itself in the tail
                    twins = self._graph.twin[list(t)]
                    share[c, twins[twins >= 0]] = -1.0
            pools = []
            for c in range(len(part)):
                top = np.argsort(-share[c], kind="stable")[: self.POOL]
                pools.append(top[share[c, top] > 0])
            c_ptr = np.r_[0, np.cumsum([len(x) for x in pools])].astype(np.int64)
            c_pool = np.concatenate(pools).astype(np.int64) if pools else np.zeros(0, np.int64)
            cost, t, l, k, a, h = d.prefix_heads(c_ptr, c_pool, y_ptr, y_idx)
            for c in range(len(part)):
                head = tuple(sorted(int(x) for x in pools[c][: t[c]]))
                cache[part[c]] = (float(cost[c]), head, int(l[c]), int(k[c]), int(a[c]), int(h[c]))
        return [cache[tuple(t)] for t in tails]

    def _rehead(self, rules: list[SearchRule], d: _Data, refine: bool = True) -> set[int]:
        """Refine every rule's head two ways — from its current head (``refine`` false: it is refined already),
        and from the head its tail's rows suggest (:meth:`_heads_for`) — and keep the shorter (so a rule is never
        longer than refinement alone makes it). Returns the positions of the rules that changed."""
        proposed: list[int] = []
        sub: list[SearchRule] = []  # the proposed heads, refined on their own
        for i, (cost, head, l, k, a, h) in enumerate(self._heads_for([r.tail for r in rules], d) if rules else []):
            if head and head != rules[i].head and (rules[i].tail, rules[i].head) not in self._tried:
                self._tried.add((rules[i].tail, rules[i].head))  # refined from both before: the same answer again
                sub.append(SearchRule(head, rules[i].tail, l=l, k=k, A=a, H=h, cost=cost))
                proposed.append(i)
        changed = self._refine(rules, d) if refine else set()
        if not proposed:
            return changed
        self._refine(sub, d, tally=False)
        taken = 0
        for i, r in zip(proposed, sub):
            if r.cost < rules[i].cost - 1e-6 and self._acyclic([q for j, q in enumerate(rules) if j != i], r):
                rules[i] = r
                changed.add(i)
                taken += 1
        self.n_reheaded_ += taken
        if self.verbose and taken:
            print(f"ExplaiNN: re-headed {taken} rules from their tails' rows")
        return changed

    def _tail_groups(self, rules: list[SearchRule], d: _Data) -> set[int]:
        """Add rules for groups of uncovered tail units (see the module docstring); returns their positions."""
        q = len(d.t_supp)
        covered = np.zeros(q, dtype=bool)
        for r in rules:
            covered[list(r.tail)] = True
        free = np.flatnonzero(~covered & (d.t_supp > 0))
        if len(free) < 2:
            return set()
        step = -(-d.n_words // self.SIMILARITY_WORDS)
        masks = np.ascontiguousarray(d.tail_sample(step)[free])
        k = min(self.GROUP_NEIGHBORS, len(free) - 1)
        nb, sim = K.nearest(np.arange(len(free), dtype=np.int64), masks, _popcount_rows(masks), k)
        groups: dict[tuple[int, ...], float] = {}
        for i in range(len(free)):
            members = [int(free[i])]
            for j, s in zip(nb[i], sim[i]):
                if j < 0 or len(members) == self.GROUP_MAX:
                    break
                members.append(int(free[j]))
                key = tuple(sorted(members))
                groups[key] = max(groups.get(key, 0.0), float(s))
        most = max(1, int(self.GROUP_WORD_OPS // max(int((d.h_supp > 0).sum()) * d.n_words, 1)))
        tails = sorted(sorted(groups, key=lambda t: (-groups[t], t))[:most])
        scored = []
        for t, (cost, head, l, k_, a, h) in zip(tails, self._heads_for(tails, d)):
            gain = sum(d.singleton(y) for y in t) - cost
            if head and np.isfinite(cost) and gain > 0:
                scored.append((gain, t, SearchRule(head, t, l=l, k=k_, A=a, H=h, cost=cost, gain=gain)))
        scored.sort(key=lambda s: (-s[0], s[1]))
        added: set[int] = set()
        taken = np.zeros(q, dtype=bool)
        graph = self._graph
        index = None if graph is None else graph.index(rules)
        for gain, t, cand in scored:
            if taken[list(t)].any():
                continue
            m = len(rules)
            if not gain > universal_int(m + 1) - universal_int(m):
                continue
            if graph is not None and index is not None:
                if graph.closes_cycle(rules, cand, index):
                    continue
                for x in cand.head:
                    index.setdefault(x, []).append(cand.tail)
            rules.append(cand)
            added.add(m)
            taken[list(t)] = True
        self.n_grouped_ += len(added)
        if self.verbose and added:
            print(f"ExplaiNN: {len(added)} rules for groups of uncovered tail units")
        return added

    SIMILARITY_WORDS: int
