"""ExplaiNN's search helpers: the steps after the merges (the search gaps
closed) — head refinement, absorption of uncovered tail units, head equivalents, and the acyclic rule graph
for units shared by head and tail.

``SearchSteps`` is a mixin of :class:`~nnrules.miners.explainn.ExplaiNN`; its methods work on the search's
rule dicts (``head``, ``tail``, ``l``, ``k``, ``A``, ``H``, ``cost``) and the fit's data (``_Data``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ...data.bits import BinaryMatrix
from ._types import SearchRule

if TYPE_CHECKING:
    from ._data import _Data


def _column_keys(m):
    """A function column → a key equal for equal columns: the words' bytes, or the digests a stored matrix
    keeps (:class:`nnrules.scale.StoredBits`: nothing is read)."""
    if hasattr(m, "digests"):
        digests = m.digests()
        return lambda i: digests[int(i)]
    return lambda i: m.words[int(i)].tobytes()


class UnitGraph:
    """The rule graph over units when head and tail share units (seed 000 Sec. 2.2: decodable only if
    acyclic). ``twin[y]`` is the head column of tail column y's unit, or −1. Edges run from each head unit of
    a rule to each of its tail units; a tail unit with a twin continues from that head unit."""

    def __init__(self, twin: np.ndarray) -> None:
        self.twin = twin

    @classmethod
    def of(cls, head: BinaryMatrix, tail: BinaryMatrix, shared, same: bool) -> UnitGraph | None:
        """The graph of the units ``head`` and ``tail`` share (see ``ExplaiNN.fit``), None if they share none."""
        twin = np.full(tail.n_units, -1, dtype=np.int64)
        if shared is not None:
            for pair in shared:
                try:
                    x, y = (int(v) for v in pair)
                except (TypeError, ValueError):
                    raise ValueError(f"shared must hold (head column, tail column) pairs, got {pair!r}") from None
                if not (0 <= x < head.n_units and 0 <= y < tail.n_units):
                    raise ValueError(f"shared pair {pair!r} is out of range: head has {head.n_units} columns, "
                                     f"tail {tail.n_units}")
                twin[y] = x
        elif same:
            twin[:] = np.arange(tail.n_units)
        elif head.layer and head.layer == tail.layer and head.names and tail.names:
            where = {name: i for i, name in enumerate(head.names)}
            twin[:] = [where.get(name, -1) for name in tail.names]
        else:  # plain arrays: a tail column equal to a head column (not constant) is taken as the same unit
            h_supp, t_supp, n = head.support(), tail.support(), head.n_samples
            h_keys, t_keys = _column_keys(head), _column_keys(tail)
            seen = {h_keys(x): int(x) for x in np.flatnonzero((h_supp > 0) & (h_supp < n))}
            for col in np.flatnonzero((t_supp > 0) & (t_supp < n)):
                twin[col] = seen.get(t_keys(col), -1)
        return cls(twin) if (twin >= 0).any() else None

    @staticmethod
    def index(rules) -> dict[int, list]:
        """Head unit → the tails of the rules with it in their head (what :meth:`closes_cycle` walks)."""
        by_head: dict[int, list] = {}
        for r in rules:
            for x in r.head:
                by_head.setdefault(x, []).append(r.tail)
        return by_head

    def closes_cycle(self, rules, cand: SearchRule, index: dict | None = None) -> bool:
        """Whether adding ``cand`` to ``rules`` (an iterable of rules with head and tail) makes the graph cyclic: some
        head unit of ``cand`` is reachable from one of its tail units. ``index``: :meth:`index` of ``rules``, when
        many candidates are checked against the same rules. (A walk that reaches a head unit of ``cand`` stops
        there, so ``cand``'s own edges need not be in the index.)"""
        by_head = self.index(rules) if index is None else index
        target = set(cand.head)
        stack = [int(self.twin[y]) for y in cand.tail if self.twin[y] >= 0]
        seen = set()
        while stack:
            u = stack.pop()
            if u in target:
                return True
            if u in seen:
                continue
            seen.add(u)
            for tail in by_head.get(u, ()):
                stack.extend(int(self.twin[y]) for y in tail if self.twin[y] >= 0)
        return False

    def cyclic(self, rules) -> bool:
        """Whether the graph of ``rules`` has a cycle (Kahn's algorithm over the head units)."""
        edges: dict[int, set] = {}
        for r in rules:
            for x in r.head:
                edges.setdefault(x, set()).update(int(self.twin[y]) for y in r.tail if self.twin[y] >= 0)
        nodes = set(edges) | {v for vs in edges.values() for v in vs}
        indeg = {u: 0 for u in nodes}
        for vs in edges.values():
            for v in vs:
                indeg[v] += 1
        ready = [u for u, k in indeg.items() if k == 0]
        done = 0
        while ready:
            u = ready.pop()
            done += 1
            for v in edges.get(u, ()):
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
        return done < len(nodes)


class SearchSteps:
    """Refinement, absorption and head equivalents (see the module docstring)."""

    #: refinement: head items considered per rule (those of highest confidence for its tail) and steps
    REFINE_POOL = 32
    REFINE_MOVES = 16
    #: absorb: rules tried per uncovered tail unit (those where it is most often on where they apply), passes
    ABSORB_RULES = 8
    ABSORB_PASSES = 256
    #: outer passes of refine → absorb → merge
    MAX_PASSES = 4
    # what the estimator that uses these steps (ExplaiNN) sets before calling them
    verbose: bool
    n_refined_: int
    n_absorbed_: int
    _graph: UnitGraph | None  # the units both sides share

    def _refine(self, rules: list[SearchRule], d: _Data, tally: bool = True) -> set[int]:
        """Add or drop one head item at a time while a rule's code length drops (each rule on its own: the
        total decomposes per rule). Candidates: the rule's head and the ``REFINE_POOL`` items of highest
        confidence σ_xy > θ for its tail items, among those at least as confident as the head's weakest item
        (as phase 1 grows heads along H_y in confidence order; an item unrelated to the tail can shave a few
        bits off a noisy rule but makes its head unreadable). Returns the positions of the rules that changed;
        ``tally`` false: neither counted in ``n_refined_`` nor printed (a trial, see ``_heads.TailHeads._rehead``)."""
        if not rules:
            return set()
        pools, members = [], []
        for r in rules:
            tail = list(r.tail)
            conf = np.where(d.ok[:, tail], d.sigma[:, tail], -1.0).max(1)
            # an item may join if it predicts the tail at least as well as the weakest head item does
            weakest = conf[list(r.head)].min()
            conf[conf < weakest] = -1.0
            conf[list(r.head)] = np.inf  # the head's own items are always in the pool
            top = np.argsort(-conf, kind="stable")[: len(r.head) + self.REFINE_POOL]
            top = np.sort(top[conf[top] > -1.0])
            pools.append(top)
            members.append(np.isin(top, r.head))
        p_ptr = np.r_[0, np.cumsum([len(x) for x in pools])].astype(np.int64)
        pool = np.concatenate(pools).astype(np.int64)
        member = np.concatenate(members).astype(np.bool_)
        r_tptr = np.r_[0, np.cumsum([len(r.tail) for r in rules])].astype(np.int64)
        r_tidx = np.fromiter((y for r in rules for y in r.tail), dtype=np.int64, count=int(r_tptr[-1]))
        r_cost = np.array([r.cost for r in rules])
        cost, l, k, a, h, moves = d.refine_heads(p_ptr, pool, member, r_tptr, r_tidx, r_cost, self.REFINE_MOVES)
        changed = set()
        for i in np.flatnonzero(moves > 0):
            seg = slice(p_ptr[i], p_ptr[i + 1])
            new = replace(rules[i], head=tuple(int(x) for x in pool[seg][member[seg]]), l=int(l[i]), k=int(k[i]),
                       A=int(a[i]), H=int(h[i]), cost=float(cost[i]))
            if not self._acyclic([r for j, r in enumerate(rules) if j != i], new):
                continue  # the better head would close a cycle through shared units
            rules[i] = new
            changed.add(int(i))
        if tally:
            self.n_refined_ += len(changed)
        if self.verbose and changed and tally:
            print(f"ExplaiNN: refined the heads of {len(changed)} rules")
        return changed

    def _absorb(self, rules: list[SearchRule], d: _Data) -> set[int]:
        """Put a tail unit that is in no rule into the tail of the rule where that saves the most bits
        (its singleton code minus the rule's growth), one unit per rule per pass, while any saves (at most
        ``ABSORB_PASSES`` passes). Candidates per unit: the ``ABSORB_RULES`` rules where it is on most often
        where they apply, chosen once; a pass re-scores only the candidates of rules that changed.
        Returns the positions of the rules that changed."""
        changed: set[int] = set()
        q = len(d.t_supp)
        covered = np.zeros(q, dtype=bool)
        for r in rules:
            covered[list(r.tail)] = True
        free = np.flatnonzero(~covered & (d.t_supp > 0))
        if not rules or len(free) == 0:
            return changed
        R = len(rules)
        r_hptr = np.r_[0, np.cumsum([len(r.head) for r in rules])].astype(np.int64)
        r_hidx = np.fromiter((x for r in rules for x in r.head), dtype=np.int64, count=int(r_hptr[-1]))
        n_a = np.array([max(r.A, 1) for r in rules], dtype=float)
        conf = d.applies_count(r_hptr, r_hidx, np.array([r.l for r in rules], np.int64), free) / n_a[:, None]
        top = np.argpartition(-conf, min(self.ABSORB_RULES, R) - 1, axis=0)[: self.ABSORB_RULES]
        cr = top.T.reshape(-1).astype(np.int64)
        cy = np.repeat(free, top.shape[0]).astype(np.int64)
        single = {int(y): d.singleton(int(y)) for y in free}
        single_c = np.array([single[int(y)] for y in cy])
        res = np.full((len(cr), 5), np.nan)  # cost, l, k, |A|, |H| of each candidate
        stale = np.ones(len(cr), dtype=bool)
        alive = np.ones(len(cr), dtype=bool)
        for _ in range(self.ABSORB_PASSES):
            todo = np.flatnonzero(stale & alive)
            if len(todo):
                r_tptr = np.r_[0, np.cumsum([len(r.tail) for r in rules])].astype(np.int64)
                r_tidx = np.fromiter((y for r in rules for y in r.tail), dtype=np.int64, count=int(r_tptr[-1]))
                r_hptr = np.r_[0, np.cumsum([len(r.head) for r in rules])].astype(np.int64)
                r_hidx = np.fromiter((x for r in rules for x in r.head), dtype=np.int64, count=int(r_hptr[-1]))
                out = d.extend_tails(cr[todo], cy[todo], r_hptr, r_hidx, r_tptr, r_tidx)
                res[todo] = np.column_stack(out)
                stale[todo] = False
            gain = np.where(alive, single_c + np.array([r.cost for r in rules])[cr] - res[:, 0], -np.inf)
            done_r, done_y = set(), set()
            for c in np.argsort(-gain, kind="stable"):
                if not gain[c] > 0:
                    break
                ri, y = int(cr[c]), int(cy[c])
                if ri in done_r or y in done_y:
                    continue
                cost, l, k, a, h = res[c]
                new = replace(rules[ri], tail=tuple(sorted(rules[ri].tail + (y,))), l=int(l), k=int(k),
                           A=int(a), H=int(h), cost=float(cost))
                if not self._acyclic([q for j, q in enumerate(rules) if j != ri], new):
                    continue
                rules[ri] = new
                done_r.add(ri)
                done_y.add(y)
            if not done_r:
                break
            alive &= ~np.isin(cy, list(done_y))  # an absorbed unit is covered now
            stale |= np.isin(cr, list(done_r))  # the changed rules' candidates are re-scored
            changed |= done_r
            self.n_absorbed_ += len(done_y)
        if self.verbose and changed:
            print(f"ExplaiNN: absorbed {self.n_absorbed_} uncovered tail units")
        return changed

    #: head equivalents: 95 % one-sided Clopper–Pearson bounds, and the least informedness
    EQUIVALENT_CONFIDENCE = 0.95
    EQUIVALENT_MIN_INFORMEDNESS = 0.8
    EQUIVALENT_FLOOR = 0.75  # the bar is at least 0.8 × this (0.6), whatever the estimated noise

    def _equivalents(self, rules: list[SearchRule], d: _Data) -> list[tuple[int, ...]]:
        """Head-side units that behave like each rule's head on the data (``Rule.head_equivalents``).

        Criterion: with A = the rows where the rule applies, unit z (not in the head, not one of the rule's
        tail units) is an equivalent when the informedness P(z on | A) − P(z on | not A) is at least
        ``EQUIVALENT_MIN_INFORMEDNESS`` even at the pessimistic ends of their 95 % one-sided
        Clopper–Pearson intervals: z fires where the head fires and rarely elsewhere, as a copy of a head
        unit with a few percent of its cells flipped does. A unit firing everywhere, an independent one, or
        one item of an exclusive group (on in 1/|X| of A) is not. Cost: one AND-popcount of each rule's A
        with every head unit, O(R · p · n/64)."""
        if not rules:
            return []
        from scipy.stats import beta

        r_hptr = np.r_[0, np.cumsum([len(r.head) for r in rules])].astype(np.int64)
        r_hidx = np.fromiter((x for r in rules for x in r.head), dtype=np.int64, count=int(r_hptr[-1]))
        inside = d.applies_count(r_hptr, r_hidx, np.array([r.l for r in rules], np.int64)).astype(float)
        n_a = np.array([r.A for r in rules], dtype=float)[:, None]
        outside = d.h_supp[None, :] - inside
        n_out = d.n - n_a
        alpha = 1 - self.EQUIVALENT_CONFIDENCE
        with np.errstate(invalid="ignore", divide="ignore"):
            low_in = np.where(inside > 0, beta.ppf(alpha, inside, n_a - inside + 1), 0.0)  # lower bound
            high_out = np.where(outside < n_out, beta.ppf(1 - alpha, outside + 1, n_out - outside), 1.0)
        # noise: with cells flipped at rate ε a perfect copy of a head unit reaches only ≈ 1 − 2ε, so the bar
        # scales with that ceiling; ε̂ = the median share of the head's own units on outside A
        with np.errstate(invalid="ignore", divide="ignore"):
            eps = np.array([np.median(outside[i, list(r.head)]) / max(n_out[i, 0], 1) for i, r in enumerate(rules)])
        bar = self.EQUIVALENT_MIN_INFORMEDNESS * np.clip(1 - 2 * eps, self.EQUIVALENT_FLOOR, 1.0)
        ok = np.nan_to_num(low_in - high_out, nan=-1.0) >= bar[:, None]
        out = []
        for i, r in enumerate(rules):
            row = ok[i].copy()
            row[list(r.head)] = False
            if self._graph is not None:  # a unit of the rule's own tail is no head equivalent
                twins = self._graph.twin[list(r.tail)]
                row[twins[twins >= 0]] = False
            out.append(tuple(int(z) for z in np.flatnonzero(row)))
        return out

    def _acyclic(self, rules, cand: SearchRule) -> bool:
        """Whether ``cand`` can join ``rules`` without a cycle (always, when head and tail share no unit)."""
        return self._graph is None or not self._graph.closes_cycle(rules, cand)
