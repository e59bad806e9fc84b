"""ExplaiNN: MDL-optimal robust rules X → Y between two sets of neurons (seed 000, Sec. 2).

The search (Sec. 2.3) in two phases:

1. **New rules.** For every tail item y, H_y lists the head items x with confidence
   σ_xy = |T_x ∩ T_y| / |T_x| > θ, sorted by σ (ties: lower index first). Among the unions of the first
   t = 1..|H_y| items and all head thresholds l = 1..t, the rule X →_l y of lowest code length is the
   candidate; all candidates with a positive gain are added at once (their tails are distinct, so they
   are independent).
2. **Merges.** For each pair of rules whose heads differ in at most μ items, X1∪X2 → Y1∪Y2 and
   X1∩X2 → Y1∪Y2 are scored with their best (l, k). The best merge is applied together with every other
   positive merge whose source rules are disjoint from those already used (independent rules, Sec. 2.3);
   merged rules replace their sources. Only pairs involving new rules are re-scored. Repeat to a fixed
   point (no positive gain).

Because every tail item is in at most one rule, the total code length decomposes per rule, and the
gain of a merge is cost(r1) + cost(r2) − cost(r') + L_N(|M|) − L_N(|M|−1). Then passes of refinement and
absorption (``_search.py``) and, once they converge, of heads from the tails' rows (``_heads.py``), each
followed by merges. The encoding and the search are in ``docs/explainn-encoding.md``.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numba
import numpy as np

from ...data.bits import BinaryMatrix
from ...data.protocol import BitRows
from ...data.rules import Rule, RuleSet
from ...params import Param
from ...registry import MINERS
from ..base import Miner
from ..evidence import EVIDENCE_PARAMS, pair_evidence
from ._data import _Data
from ._heads import TailHeads
from ._pairs import PairCache, PairSearch
from ._search import SearchSteps, UnitGraph
from ._types import SearchRule
from .mdl import log_binom, parametric_complexity, universal_int

__all__ = ["ExplaiNN", "as_binary_matrix"]


def as_binary_matrix(data, name: str) -> BinaryMatrix:
    """A ``BinaryMatrix`` from a matrix of booleans/0-1 values (``(n_samples, n_units)``) or as is."""
    if isinstance(data, BinaryMatrix):
        return data
    try:
        return BinaryMatrix.from_dense(data)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _is_stored(m) -> bool:
    """Whether ``m`` is a bit matrix read from a store on demand (:class:`~nnrules.data.protocol.BitRows` with
    ``stored`` true, e.g. :class:`~nnrules.data.bits.StoredBits`): asked of the data, never of its class name."""
    return isinstance(m, BitRows) and bool(m.stored)


class _OutOfTime(Exception):
    """The fit's time budget is spent (caught inside fit)."""


class ExplaiNN(PairSearch, SearchSteps, TailHeads, Miner):
    """Mine robust rules between a head layer and a tail layer by MDL (seed 000).

    Parameters
    ----------
    theta : confidence threshold in [0, 1) for the candidate lists H_y (σ_xy > θ).
    mu : merge rules only if their heads differ in at most ``mu`` items; ``None`` = no bound (the
        largest search space, best code length).
    max_iter : at most this many merge rounds.
    n_jobs : numba threads (``None``: numba's default).
    verbose : print progress per phase.

    Learned state: ``rules_`` (a :class:`~nnrules.rules.RuleSet`), ``codelength_`` and
    ``baseline_codelength_`` (bits: L(D, M) with the rules and with singletons only), ``n_iter_``;
    ``counting_``: None in memory, on a Dask cluster the calls and seconds of its counting (per row range,
    per unit task).
    """

    fits_on = "pair"
    params = (
        Param("theta", float, 0.0, "a head unit is a candidate for a tail unit when it fires with it in more "
              "than this share of its samples (confidence); 0 = every head unit that ever fires with it (the "
              "best code length, seed 000)", label="θ (confidence)", low=0, high=1, high_open=True),
        Param("mu", int, None, "merge two rules only if their heads differ in at most this many units",
              label="μ (merge bound)", low=0, optional=True, none_means="no bound: the best code length"),
        Param("max_iter", int, 1000, "at most this many merge rounds", low=0, ui=False),
        Param("n_jobs", int, None, "numba threads", low=1, optional=True, none_means="numba's default", ui=False),
        Param("verbose", bool, False, "print progress per phase", ui=False),
        Param("time_budget", float, None, "stop merging after this many seconds and keep the best model so far",
              label="time budget (s)", low=0, low_open=True, optional=True, none_means="no limit"),
        Param("search", str, "pruned", "which rule pairs a merge round scores: 'pruned' scores each rule with "
              "its most similar rules (and lets single-tail candidates that do not pay alone enter through "
              "merges); 'exhaustive' scores every pair (the paper's search, seed 000 Sec. 2.3)",
              label="merge search", choices=("pruned", "exhaustive")),
        Param("n_neighbors", int, 32, "pruned search: each rule is scored with this many most similar rules",
              low=1, ui=False),
        *EVIDENCE_PARAMS,
    )

    def __init__(self, theta: float = 0.0, mu: int | None = None, max_iter: int = 1000,
                 n_jobs: int | None = None, verbose: bool = False, time_budget: float | None = None,
                 search: str = "pruned", n_neighbors: int = 32, resamples: int = 0,
                 random_state: int | None = 0) -> None:
        self.theta = theta
        self.mu = mu
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.time_budget = time_budget
        self.search = search
        self.n_neighbors = n_neighbors
        self.resamples = resamples
        self.random_state = random_state

    @staticmethod
    def _check_data(head, tail, client=None):
        """Both sides as BinaryMatrix, or both as StoredBits when a Dask client counts on them."""
        stored = [_is_stored(m) for m in (head, tail)]
        given = client
        if given is not None or any(stored):
            from ...scale.cluster import active_client
            client = active_client(given)  # the one given (checked), or the active one
        if not any(stored):
            if given is not None:
                raise ValueError("client= counts on a Dask cluster from a Zarr store: pass head and tail as "
                                 "StoredBits (BinaryMatrix.to_zarr, nnrules.scale.open_bits, or a Binarizer on "
                                 "record(..., store=) activations)")
            client = None
        elif client is None or not all(stored):  # no cluster, or one side in memory: all in memory
            head, tail = (m.load() if s else m for m, s in zip((head, tail), stored))
            client = None
        h = head if _is_stored(head) else as_binary_matrix(head, "head")
        t = tail if _is_stored(tail) else as_binary_matrix(tail, "tail")
        if h.n_samples != t.n_samples:
            raise ValueError(f"head and tail must describe the same samples: head has {h.n_samples} "
                             f"rows, tail has {t.n_samples}")
        if h.n_samples == 0:
            raise ValueError("head and tail have no rows (samples)")
        if h.n_units == 0 or t.n_units == 0:
            raise ValueError(f"head and tail need at least one column each; got head {h.shape}, "
                             f"tail {t.shape}")
        return h, t, client

    # ------------------------------------------------------------------ search
    def fit(self, head, tail, on_progress: Callable[[str, float], None] | None = None,
            shared: Sequence[tuple[int, int]] | None = None, client=None) -> "ExplaiNN":
        """Mine rules X → Y with X ⊆ head columns, Y ⊆ tail columns.

        ``head (n, p)``, ``tail (n, q)``: bool arrays or ``BinaryMatrix`` over the same n samples. They may
        hold the same units (the paper's "arbitrary sets of neurons", e.g. both inputs of a residual block):
        ``shared`` lists (head column, tail column) pairs that are one unit; by default they are found when
        ``head is tail`` (every column), when both are BinaryMatrix of the same layer (equal unit names), or
        else from the data: a tail column equal to a head column, bit for bit and not constant
        (``shared_`` lists the pairs taken).
        Shared units never form self-rules {x} → {x}, and the rule graph is kept acyclic (decodable, Sec.
        2.2): a rule, merge, refinement or absorption that would close a cycle is not taken.
        ``on_progress(stage, fraction)`` is called after phase 1 and during each merge round (every block of
        pairs); an exception it raises (e.g. the app's Cancel) ends the fit. With ``time_budget`` the merge
        search stops when the time is up and keeps the rules of the last finished round
        (``stopped_early_`` is then True).

        ``head`` and ``tail`` may be :class:`~nnrules.scale.StoredBits` (Zarr stores): with a Dask client
        (``client``, or the active one) the counts run on its workers, each over its range of rows, and are
        summed here — the same rules and code length as in memory (:mod:`nnrules.miners.explainn._distributed`); without
        one they are loaded.
        """
        self.validate()
        same = head is tail
        head, tail, client = self._check_data(head, tail, client)
        self._graph = UnitGraph.of(head, tail, shared, same)
        self.shared_ = [] if self._graph is None else [
            (int(self._graph.twin[y]), int(y)) for y in np.flatnonzero(self._graph.twin >= 0)]
        self._progress = on_progress or (lambda stage, fraction: None)
        self._deadline = None if self.time_budget is None else time.monotonic() + self.time_budget
        self.stopped_early_ = False
        self.n_pairs_ = 0
        self._head_cache, self._tried = {}, set()
        old_threads = numba.get_num_threads()
        if self.n_jobs is not None:
            numba.set_num_threads(min(self.n_jobs, numba.config.NUMBA_NUM_THREADS))
        try:
            d: _Data
            if client is not None:
                from ._distributed import ShardedData
                d = ShardedData(head, tail, client)
            else:
                d = _Data(head, tail)
            rules = self._phase1(head, tail, d)
            if self.verbose:
                print(f"ExplaiNN: {len(rules)} single-tail rules")
            self._progress("phase 1: single-tail rules", 0.0)
            rules, self.n_iter_ = self._merge(rules, d, head.n_units)
            self.n_refined_ = self.n_absorbed_ = self.n_reheaded_ = self.n_grouped_ = 0
            # refine heads, absorb uncovered tail units, merge what changed; then the same with heads from the
            # tails' rows (_heads.py) on top — every step there only shortens the code, so the model is never
            # longer than the search without them gives
            for from_tails in (False, True):
                for i in range(self.MAX_PASSES):  # (the first pass from the tails starts at refine/absorb's end)
                    if self.stopped_early_:
                        break
                    again = not from_tails or i > 0
                    changed = self._rehead(rules, d, refine=again) if from_tails else self._refine(rules, d)
                    changed |= self._absorb(rules, d) if again else set()
                    if from_tails:
                        changed |= self._tail_groups(rules, d)
                    if not changed:
                        break
                    rules, self.n_iter_ = self._merge(rules, d, head.n_units, new=changed, n_iter=self.n_iter_)
        finally:
            numba.set_num_threads(old_threads)
            self._seeds = []  # the search's scratch: not kept with the fitted model
            self._floor = {}
            self._head_cache, self._tried = {}, set()
        self._finish(rules, d, head, tail)
        self.counting_ = getattr(d, "stats", None)  # on a cluster: calls and seconds (nnrules.miners.explainn._distributed)
        if self.resamples:  # each half-sample a fit with the same parameters and shared units
            self.rules_ = pair_evidence(self, head.load(), tail.load(), on_progress, shared=self.shared_)
        return self

    def _phase1(self, head: BinaryMatrix, tail: BinaryMatrix, d: _Data) -> list[SearchRule]:
        inter = d.and_count()  # (p, q): |T_x ∩ T_y|
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.where(d.h_supp[:, None] > 0, inter / np.maximum(d.h_supp[:, None], 1), 0.0)
        ok = (sigma > self.theta) & (d.h_supp[:, None] > 0)
        if self._graph is not None:  # a unit is never its own head
            shared = np.flatnonzero(self._graph.twin >= 0)
            ok[self._graph.twin[shared], shared] = False
        d.sigma, d.ok = sigma, ok  # the refinement step draws its candidate head items from them
        ptr = np.zeros(tail.n_units + 1, dtype=np.int64)
        idx = []
        for y in range(tail.n_units):
            xs = np.flatnonzero(ok[:, y])
            xs = xs[np.argsort(-sigma[xs, y], kind="stable")]  # ties: lower index first
            idx.append(xs)
            ptr[y + 1] = ptr[y] + len(xs)
        order = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)
        cost, t, l, a, h = self._prefix_heads(idx, d)
        cands: list[SearchRule] = []
        for y in range(tail.n_units):
            gain = d.singleton(y) - cost[y]
            if np.isfinite(cost[y]) and gain > 0:
                cands.append(SearchRule(tuple(sorted(order[ptr[y]: ptr[y] + t[y]].tolist())), (y,), l=int(l[y]), k=1,
                                        A=int(a[y]), H=int(h[y]), cost=float(cost[y]), gain=float(gain)))
        cands.sort(key=lambda r: (-r.gain, r.tail))
        rules: list[SearchRule] = []
        for r in cands:  # add while the gain beats the growth of L_N(|M|)
            if r.gain > universal_int(len(rules) + 1) - universal_int(len(rules)) and self._acyclic(rules, r):
                rules.append(r)
        self._seeds = []
        if self.search == "pruned":  # the others wait as seeds, their tails still coded as singletons
            covered = {y for r in rules for y in r.tail}
            self._seeds = [SearchRule(tuple(sorted(order[ptr[y]: ptr[y] + t[y]].tolist())), (y,), l=int(l[y]), k=1,
                                      A=int(a[y]), H=int(h[y]), cost=d.singleton(y), rcost=float(cost[y]), seed=True)
                           for y in range(tail.n_units) if y not in covered and np.isfinite(cost[y]) and t[y] > 0]
        return rules

    #: phase 1 tries the first PHASE1_PREFIX items of H_y, more only where the best head is over half of that
    PHASE1_PREFIX = 256
    _seeds: list[SearchRule]  # the pruned search's single-tail candidates that do not pay alone (during fit)

    def _prefix_heads(self, idx: list[np.ndarray], d: _Data):
        """Phase 1's best prefix head per tail unit (``_kernels.phase1``), over the first ``PHASE1_PREFIX`` items of
        each H_y; a unit whose best prefix uses more than half of those is redone with 4× as many, until its
        best prefix is at most half of what was tried or H_y is exhausted. With θ = 0 H_y holds nearly every
        head unit (a dense layer: ~1,000), and its cost is Σ_{x∈H_y} |T_x| per unit; measured on Fashion-MNIST
        through mnist-cnn (1,000 → 4,096 units, 50,000 rows) the best prefixes hold 4 (median) to 168 items,
        and the result equals the full one at 4.5× less time."""
        q = len(idx)
        cost, t, l, a, h = np.full(q, np.inf), *(np.zeros(q, np.int64) for _ in range(4))
        todo, cap = np.arange(q), self.PHASE1_PREFIX
        while len(todo):
            part = [idx[y][:cap] for y in todo]
            ptr = np.r_[0, np.cumsum([len(x) for x in part])].astype(np.int64)
            order = np.concatenate(part).astype(np.int64) if part else np.zeros(0, np.int64)
            out = d.phase1(ptr, order, todo)
            for arr, res in zip((cost, t, l, a, h), out):
                arr[todo] = res
            todo = todo[(out[1] > cap // 2) & (np.array([len(idx[y]) for y in todo]) > cap)]
            cap *= 4
        return cost, t, l, a, h

    def _merge(self, rules: list[SearchRule], d: _Data, p: int, new: set[int] | None = None,
               n_iter: int = 0) -> tuple[list[SearchRule], int]:
        """Merge rounds to a fixed point; only pairs with a rule in ``new`` (positions in ``rules``; default:
        all) are scored in the first round (the others were scored before and did not gain).

        Seeds (``self._seeds``, the pruned search's single-tail candidates that did not pay alone) take part
        as rules whose cost is their tail's singleton code: a merge with a seed gains exactly what adding
        the merged rule in place of its sources saves. Seeds never merged stay out of the model."""
        mu = -1 if self.mu is None else int(self.mu)
        alive: dict[int, SearchRule] = {i: r for i, r in enumerate(rules)}
        next_id = len(rules)
        covered: set[int] = {y for r in rules for y in r.tail}
        for sd in self._seeds:
            if covered.intersection(sd.tail):
                continue  # a unit of it was absorbed into a rule since
            alive[next_id] = sd
            next_id += 1
        cache = PairCache()
        self._floor = {}  # rule id → similarity of its k-th nearest rule (pruned search)
        # later passes: seeds were scored against the unchanged rules already
        new_ids = sorted(alive) if new is None else sorted(new)
        while n_iter < self.max_iter and len(alive) > 1 and new_ids:
            try:
                self.n_pairs_ += self._score_pairs(alive, new_ids, cache, mu, d, p, n_iter + 1)
            except _OutOfTime:
                self.stopped_early_ = True  # the round is incomplete: keep the rules of the last full one
                break
            m = sum(1 for r in alive.values() if not r.seed)
            chosen: list[tuple[int, int, SearchRule]] = []
            used: set[int] = set()
            c = cache.arrays()
            for i in np.lexsort((c["b"], c["a"], -c["gain"])):  # best gain first, ties by rule ids
                a, b = int(c["a"][i]), int(c["b"][i])
                if a in used or b in used:
                    continue
                ra, rb = alive[a], alive[b]
                # the model's rule count changes by (seeds among the sources) - 1: L_N(|M|) changes with it
                m_after = m + bool(ra.seed) + bool(rb.seed) - 1
                if c["gain"][i] + universal_int(m) - universal_int(m_after) <= 0:
                    if c["gain"][i] + 2.0 <= 0:  # L_N's change is under 2 bits: no later pair can pay
                        break
                    continue
                hx = set(ra.head) & set(rb.head) if c["inter"][i] else set(ra.head) | set(rb.head)
                cand = SearchRule(tuple(sorted(hx)), tuple(sorted(ra.tail + rb.tail)), l=int(c["l"][i]),
                                  k=int(c["k"][i]), A=int(c["A"][i]), H=int(c["H"][i]), cost=float(c["cost"][i]),
                                  gain=float(c["gain"][i]))
                if self._graph is not None:
                    removed = used | {a, b}
                    now = [r for i, r in alive.items() if i not in removed and not r.seed]
                    if not self._acyclic(now + [c for _, _, c in chosen], cand):
                        continue
                chosen.append((a, b, cand))
                used.update((a, b))
                m = m_after
            # two seeds whose merge would pay were both rules become one seed: a rule whose parts do not pay
            # alone (noisy heads) grows tail by tail until it enters the model
            seeds = np.array([bool(alive[int(x)].seed) and bool(alive[int(y)].seed)
                              for x, y in zip(c["a"], c["b"])], dtype=bool)
            both = np.flatnonzero(seeds) if len(seeds) else np.zeros(0, np.int64)
            for i in sorted(both, key=lambda i: (-c["rgain"][i], c["a"][i], c["b"][i])):
                a, b = int(c["a"][i]), int(c["b"][i])
                if a in used or b in used or not c["rgain"][i] > 0:
                    continue
                ra, rb = alive[a], alive[b]
                hx = set(ra.head) & set(rb.head) if c["inter"][i] else set(ra.head) | set(rb.head)
                chosen.append((a, b, SearchRule(tuple(sorted(hx)), tuple(sorted(ra.tail + rb.tail)), l=int(c["l"][i]),
                                                k=int(c["k"][i]), A=int(c["A"][i]), H=int(c["H"][i]),
                                                cost=ra.cost + rb.cost, rcost=float(c["cost"][i]), seed=True)))
                used.update((a, b))
            if not chosen:
                break
            n_iter += 1
            new_ids = []
            for a, b, cand in chosen:
                del alive[a], alive[b]
                alive[next_id] = cand
                new_ids.append(next_id)
                next_id += 1
            cache.drop(used)
            n_rules = sum(1 for r in alive.values() if not r.seed)
            self._progress(f"merge round {n_iter}: {n_rules} rules", 1.0)
            if self.verbose:
                print(f"ExplaiNN: merge round {n_iter}: {len(chosen)} merges, {n_rules} rules")
        self._seeds = [r for r in alive.values() if r.seed]
        return [r for r in alive.values() if not r.seed], n_iter

    def _check(self, stage: str = "", fraction: float = 0.0) -> None:
        self._progress(stage, fraction)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise _OutOfTime()

    def _finish(self, rules: list[SearchRule], d: _Data, head: BinaryMatrix, tail: BinaryMatrix) -> None:
        n_items = head.n_units + tail.n_units
        const = n_items * parametric_complexity(d.n) + sum(log_binom(d.n, int(s)) for s in d.h_supp)
        tail_single = np.array([d.singleton(y) for y in range(tail.n_units)])
        covered = np.zeros(tail.n_units, dtype=bool)
        out = []
        rules = sorted(rules, key=lambda r: (r.tail, r.head))
        equivalents = self._equivalents(rules, d)
        for r, eq in zip(rules, equivalents):
            covered[list(r.tail)] = True
            gain = float(tail_single[list(r.tail)].sum() - r.cost)
            out.append(Rule(head=tuple(int(x) for x in r.head), tail=tuple(int(y) for y in r.tail),
                            head_min=r.l, tail_min=r.k, support=r.A, holds=r.H, gain=gain,
                            head_equivalents=eq))
        out.sort(key=lambda r: -r.gain)
        self.baseline_codelength_ = float(const + tail_single.sum())
        self.codelength_ = float(const + universal_int(len(out)) + sum(r.cost for r in rules)
                                 + tail_single[~covered].sum())
        self.rules_ = RuleSet(out, list(head.names), list(tail.names), head.layer, tail.layer,
                              self.codelength_, self.baseline_codelength_)



def _run_in_app(ctx, miner: ExplaiNN):
    """The app's adapter: record the chosen layers, binarize, and chain output → layers (see registry)."""
    from ..flow import trace

    acts = ctx.record(ctx.reduce)

    def on_pair(i: int, upper: str, lower: str) -> None:
        ctx.check()
        ctx.report(f"mine {upper} → {lower}", i / len(ctx.layers))
    def on_progress(stage: str, fraction: float) -> None:
        ctx.check()  # Cancel is seen every block of merge pairs, not only between layer pairs

    flow = trace(acts, ctx.layers, miner, ctx.binarizer, on_pair=on_pair, on_progress=on_progress)
    return flow, f"ExplaiNN: {sum(len(rs) for rs in flow.rulesets)} rules, {len(flow.chains())} chains"


MINERS.register("explainn", "ExplaiNN rules (MDL)", ExplaiNN, layers="chain", run=_run_in_app,
                          uses=("reduction", "binarizer"),
                          help="robust rules X → Y between layers, chosen by minimum description length (seed 000)")
