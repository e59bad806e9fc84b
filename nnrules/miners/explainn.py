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
gain of a merge is cost(r1) + cost(r2) − cost(r') + L_N(|M|) − L_N(|M|−1). The encoding is in
``docs/explainn-encoding.md``; heads and tails are separate item sets, so the rule graph is always
acyclic (the paper's decodability condition).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numba
import numpy as np

from .. import registry as _registry
from ..data.bits import BinaryMatrix, and_count
from ..data.rules import Rule, RuleSet
from ..params import Param
from . import _explainn_counts as C
from ._explainn_steps import PairCache, SearchSteps, UnitGraph
from . import _explainn_kernels as K
from .base import Miner
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


class _OutOfTime(Exception):
    """The fit's time budget is spent (caught inside fit)."""


class _Data:
    """Bit-packed words, supports and item codes of the head and tail item sets (no copies: a memmapped
    BinaryMatrix stays on disk)."""

    def __init__(self, head: BinaryMatrix, tail: BinaryMatrix) -> None:
        self.n = head.n_samples
        self.h_supp = head.support()
        self.t_supp = tail.support()
        self.h_words = head.words
        self.t_words = tail.words
        total = float(self.h_supp.sum() + self.t_supp.sum())
        # item code L(x) = -log2(|T_x| / Σ_I |T_I|), over both layers (Sec. 2.2); dead units: inf
        with np.errstate(divide="ignore"):
            self.h_cost = -np.log2(self.h_supp / total) if total else np.full(len(self.h_supp), np.inf)
            self.t_cost = -np.log2(self.t_supp / total) if total else np.full(len(self.t_supp), np.inf)
        self.tables = C.tables(self.n)
        # confidences σ_xy (head × tail) and where a head item may predict a tail item: set by phase 1
        self.sigma = np.zeros((0, 0))
        self.ok = np.zeros((0, 0), bool)

    def singleton(self, y: int) -> float:
        return log_binom(self.n, int(self.t_supp[y]))

    def rule_args(self):
        return (self.h_words, self.t_words, self.h_supp, self.t_supp, self.h_cost, self.t_cost, self.n,
                self.tables)


class ExplaiNN(SearchSteps, Miner):
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
    ``baseline_codelength_`` (bits: L(D, M) with the rules and with singletons only), ``n_iter_``.
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
    )

    def __init__(self, theta: float = 0.0, mu: int | None = None, max_iter: int = 1000,
                 n_jobs: int | None = None, verbose: bool = False, time_budget: float | None = None) -> None:
        self.theta = theta
        self.mu = mu
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.time_budget = time_budget

    @staticmethod
    def _check_data(head, tail) -> tuple[BinaryMatrix, BinaryMatrix]:
        h = as_binary_matrix(head, "head")
        t = as_binary_matrix(tail, "tail")
        if h.n_samples != t.n_samples:
            raise ValueError(f"head and tail must describe the same samples: head has {h.n_samples} "
                             f"rows, tail has {t.n_samples}")
        if h.n_samples == 0:
            raise ValueError("head and tail have no rows (samples)")
        if h.n_units == 0 or t.n_units == 0:
            raise ValueError(f"head and tail need at least one column each; got head {h.shape}, "
                             f"tail {t.shape}")
        return h, t

    # ------------------------------------------------------------------ search
    def fit(self, head, tail, on_progress: Callable[[str, float], None] | None = None,
            shared: Sequence[tuple[int, int]] | None = None) -> "ExplaiNN":
        """Mine rules X → Y with X ⊆ head columns, Y ⊆ tail columns.

        ``head (n, p)``, ``tail (n, q)``: bool arrays or ``BinaryMatrix`` over the same n samples. They may
        hold the same units (the paper's "arbitrary sets of neurons", e.g. both inputs of a residual block):
        ``shared`` lists (head column, tail column) pairs that are one unit; by default they are found when
        ``head is tail`` (every column) or when both are BinaryMatrix of the same layer (equal unit names).
        Shared units never form self-rules {x} → {x}, and the rule graph is kept acyclic (decodable, Sec.
        2.2): a rule, merge, refinement or absorption that would close a cycle is not taken.
        ``on_progress(stage, fraction)`` is called after phase 1 and during each merge round (every block of
        pairs); an exception it raises (e.g. the app's Cancel) ends the fit. With ``time_budget`` the merge
        search stops when the time is up and keeps the rules of the last finished round
        (``stopped_early_`` is then True).
        """
        self.validate()
        same = head is tail
        head, tail = self._check_data(head, tail)
        self._graph = self._unit_graph(head, tail, shared, same)
        self._progress = on_progress or (lambda stage, fraction: None)
        self._deadline = None if self.time_budget is None else time.monotonic() + self.time_budget
        self.stopped_early_ = False
        self.n_pairs_ = 0
        old_threads = numba.get_num_threads()
        if self.n_jobs is not None:
            numba.set_num_threads(min(self.n_jobs, numba.config.NUMBA_NUM_THREADS))
        try:
            d = _Data(head, tail)
            rules = self._phase1(head, tail, d)
            if self.verbose:
                print(f"ExplaiNN: {len(rules)} single-tail rules")
            self._progress("phase 1: single-tail rules", 0.0)
            rules, self.n_iter_ = self._merge(rules, d, head.n_units)
            self.n_refined_ = self.n_absorbed_ = 0
            for _ in range(self.MAX_PASSES):  # refine heads, absorb uncovered tail units, merge what changed
                if self.stopped_early_:
                    break
                changed = self._refine(rules, d) | self._absorb(rules, d)
                if not changed:
                    break
                rules, self.n_iter_ = self._merge(rules, d, head.n_units, new=changed, n_iter=self.n_iter_)
        finally:
            numba.set_num_threads(old_threads)
        self._finish(rules, d, head, tail)
        return self

    @staticmethod
    def _unit_graph(head: BinaryMatrix, tail: BinaryMatrix, shared, same: bool) -> UnitGraph | None:
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
        return UnitGraph(twin) if (twin >= 0).any() else None

    def _phase1(self, head: BinaryMatrix, tail: BinaryMatrix, d: _Data) -> list[dict]:
        inter = and_count(head.words, tail.words)  # (p, q): |T_x ∩ T_y|
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
        cost, t, l, a, h = K.phase1(ptr, order, d.h_words, d.t_words, d.t_supp, d.h_cost, d.t_cost, d.n,
                                    d.tables, numba.get_num_threads())
        cands: list[dict[str, Any]] = []
        for y in range(tail.n_units):
            gain = d.singleton(y) - cost[y]
            if np.isfinite(cost[y]) and gain > 0:
                cands.append({"head": tuple(sorted(order[ptr[y]: ptr[y] + t[y]].tolist())), "tail": (y,),
                              "l": int(l[y]), "k": 1, "A": int(a[y]), "H": int(h[y]),
                              "cost": float(cost[y]), "gain": float(gain)})
        cands.sort(key=lambda r: (-r["gain"], r["tail"]))
        rules: list[dict] = []
        for r in cands:  # add while the gain beats the growth of L_N(|M|)
            if r["gain"] > universal_int(len(rules) + 1) - universal_int(len(rules)) and self._acyclic(rules, r):
                rules.append(r)
        return rules

    def _merge(self, rules: list[dict], d: _Data, p: int, new: set[int] | None = None,
               n_iter: int = 0) -> tuple[list[dict], int]:
        """Merge rounds to a fixed point; only pairs with a rule in ``new`` (positions in ``rules``; default:
        all) are scored in the first round (the others were scored before and did not gain)."""
        mu = -1 if self.mu is None else int(self.mu)
        alive: dict[int, dict] = {i: r for i, r in enumerate(rules)}
        next_id = len(rules)
        cache = PairCache()
        new_ids = sorted(alive) if new is None else sorted(new)
        while n_iter < self.max_iter and len(alive) > 1 and new_ids:
            try:
                self.n_pairs_ += self._score_pairs(alive, new_ids, cache, mu, d, p, n_iter + 1)
            except _OutOfTime:
                self.stopped_early_ = True  # the round is incomplete: keep the rules of the last full one
                break
            m = len(alive)
            chosen: list[tuple[int, int, dict[str, Any]]] = []
            used: set[int] = set()
            c = cache.arrays()
            for i in np.lexsort((c["b"], c["a"], -c["gain"])):  # best gain first, ties by rule ids
                a, b = int(c["a"][i]), int(c["b"][i])
                if a in used or b in used:
                    continue
                # the model shrinks by one rule per merge: L_N(|M|) - L_N(|M|-1) is saved as well
                if c["gain"][i] + universal_int(m) - universal_int(m - 1) <= 0:
                    break
                ra, rb = alive[a], alive[b]
                hx = set(ra["head"]) & set(rb["head"]) if c["inter"][i] else set(ra["head"]) | set(rb["head"])
                cand = {"head": tuple(sorted(hx)), "tail": tuple(sorted(ra["tail"] + rb["tail"])),
                        "l": int(c["l"][i]), "k": int(c["k"][i]), "A": int(c["A"][i]), "H": int(c["H"][i]),
                        "cost": float(c["cost"][i]), "gain": float(c["gain"][i])}
                if self._graph is not None:
                    removed = used | {a, b}
                    now = [r for i, r in alive.items() if i not in removed] + [c for _, _, c in chosen]
                    if not self._acyclic(now, cand):
                        continue
                chosen.append((a, b, cand))
                used.update((a, b))
                m -= 1
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
            self._progress(f"merge round {n_iter}: {len(alive)} rules", 1.0)
            if self.verbose:
                print(f"ExplaiNN: merge round {n_iter}: {len(chosen)} merges, {len(alive)} rules")
        return list(alive.values()), n_iter

    #: pairs scored per kernel call (memory: ~60 bytes a pair), and most pairs per group of equal heads
    PAIRS_PER_CALL = 2_000_000
    PAIRS_PER_GROUP = 256

    def _check(self, stage: str = "", fraction: float = 0.0) -> None:
        self._progress(stage, fraction)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise _OutOfTime()

    def _score_pairs(self, alive: dict[int, dict], new_ids: list[int], cache: "PairCache", mu: int,
                     d: _Data, p: int, round_: int = 1) -> int:
        """Score every pair of rules with at least one new rule; keep those with gain > −2 in ``cache``.

        Pairs are generated in blocks of new rules and sorted by their two heads, so that pairs with the
        same heads form a group whose head masks are computed once (:func:`_explainn_kernels.merge_groups`).
        Returns the number of pairs scored."""
        ids = sorted(alive)
        R = len(ids)
        pos = {rid: i for i, rid in enumerate(ids)}
        heads = [alive[rid]["head"] for rid in ids]
        r_hptr = np.zeros(R + 1, dtype=np.int64)
        r_tptr = np.zeros(R + 1, dtype=np.int64)
        r_hptr[1:] = np.cumsum([len(h) for h in heads])
        r_tptr[1:] = np.cumsum([len(alive[rid]["tail"]) for rid in ids])
        r_hidx = np.fromiter((x for h in heads for x in h), dtype=np.int64, count=int(r_hptr[-1]))
        r_tidx = np.fromiter((y for rid in ids for y in alive[rid]["tail"]), dtype=np.int64, count=int(r_tptr[-1]))
        head_id: dict[tuple, int] = {}
        hid = np.array([head_id.setdefault(h, len(head_id)) for h in heads], dtype=np.int64)
        src_cost = np.array([alive[rid]["cost"] for rid in ids])
        id_arr = np.array(ids, dtype=np.int64)
        new_pos = np.array(sorted(pos[r] for r in new_ids), dtype=np.int64)
        is_new = np.zeros(R, dtype=bool)
        is_new[new_pos] = True
        all_pos = np.arange(R, dtype=np.int64)
        block = max(1, self.PAIRS_PER_CALL // max(R, 1))
        scored = 0
        for start in range(0, len(new_pos), block):
            rows = new_pos[start: start + block]
            pi = np.repeat(rows, R)
            pj = np.tile(all_pos, len(rows))
            # each unordered pair once: new×old, and new×new with the higher position
            keep = (pj != pi) & ~(is_new[pj] & (pj < pi))
            pi, pj = pi[keep], pj[keep]
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
            cost, inter, l, k, a, h = K.merge_groups(pi, pj, g_ptr, r_hptr, r_hidx, r_tptr, r_tidx, mu,
                                                     *d.rule_args(), numba.get_num_threads())
            scored += len(pi)
            gain = src_cost[pi] + src_cost[pj] - cost
            # a pair's gain changes later only through L_N(|M|) (< 2 bits): drop hopeless pairs now
            keep = np.flatnonzero(np.isfinite(cost) & (gain > -2.0))
            ida, idb = id_arr[pi[keep]], id_arr[pj[keep]]
            cache.add(a=np.minimum(ida, idb), b=np.maximum(ida, idb), gain=gain[keep], cost=cost[keep],
                      l=l[keep], k=k[keep], A=a[keep], H=h[keep], inter=inter[keep])
            self._check(f"merge round {round_}: {scored:,} pairs scored", min(1.0, (start + block) / len(new_pos)))
        return scored

    def _finish(self, rules: list[dict], d: _Data, head: BinaryMatrix, tail: BinaryMatrix) -> None:
        n_items = head.n_units + tail.n_units
        const = n_items * parametric_complexity(d.n) + sum(log_binom(d.n, int(s)) for s in d.h_supp)
        tail_single = np.array([d.singleton(y) for y in range(tail.n_units)])
        covered = np.zeros(tail.n_units, dtype=bool)
        out = []
        rules = sorted(rules, key=lambda r: (r["tail"], r["head"]))
        equivalents = self._equivalents(rules, d)
        for r, eq in zip(rules, equivalents):
            covered[list(r["tail"])] = True
            gain = float(tail_single[list(r["tail"])].sum() - r["cost"])
            out.append(Rule(head=tuple(int(x) for x in r["head"]), tail=tuple(int(y) for y in r["tail"]),
                            head_min=r["l"], tail_min=r["k"], support=r["A"], holds=r["H"], gain=gain,
                            head_equivalents=eq))
        out.sort(key=lambda r: -r.gain)
        self.baseline_codelength_ = float(const + tail_single.sum())
        self.codelength_ = float(const + universal_int(len(out)) + sum(r["cost"] for r in rules)
                                 + tail_single[~covered].sum())
        self.rules_ = RuleSet(out, list(head.names), list(tail.names), head.layer, tail.layer,
                              self.codelength_, self.baseline_codelength_)



def _run_in_app(ctx, miner: ExplaiNN):
    """The app's adapter: record the chosen layers, binarize, and chain output → layers (see registry)."""
    from .flow import trace

    acts = ctx.record(ctx.reduce)

    def on_pair(i: int, upper: str, lower: str) -> None:
        ctx.check()
        ctx.report(f"mine {upper} → {lower}", i / len(ctx.layers))
    def on_progress(stage: str, fraction: float) -> None:
        ctx.check()  # Cancel is seen every block of merge pairs, not only between layer pairs

    flow = trace(acts, ctx.layers, miner, ctx.binarizer, on_pair=on_pair, on_progress=on_progress)
    return flow, f"ExplaiNN: {sum(len(rs) for rs in flow.rulesets)} rules, {len(flow.chains())} chains"


_registry.MINERS.register("explainn", "ExplaiNN rules (MDL)", ExplaiNN, layers="chain", run=_run_in_app,
                          uses=("reduction", "binarizer"),
                          help="robust rules X → Y between layers, chosen by minimum description length (seed 000)")
