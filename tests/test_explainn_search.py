"""ExplaiNN's search at real size (issue: merge search, search gaps, readable heads, progress, memory).

Each gap has a case that the previous search failed and this one passes; every fitted model's code length
is checked against the term-by-term reference, so a step can only be taken where it truly saves bits.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnrules
from nnrules import BinaryMatrix, ExplaiNN
from nnrules.data.synthetic import planted_rules
from nnrules.miners.explainn._reference import codelength_reference


class NoRefine(ExplaiNN):
    """The search before the refinement step."""

    def _refine(self, rules, d, tally=True):
        return set()


class NoAbsorb(ExplaiNN):
    """The search before the absorb step (and before heads from the tails' rows, which also cover units)."""

    def _absorb(self, rules, d):
        return set()

    def _tail_groups(self, rules, d):
        return set()

    def _heads_for(self, tails, d):
        return [(float("inf"), (), 0, 0, 0, 0)] * len(tails)


class NoTailHeads(ExplaiNN):
    """The search before heads from the tails' rows (``_heads.py``): no re-heading, no groups of uncovered units."""

    def _tail_groups(self, rules, d):
        return set()

    def _heads_for(self, tails, d):
        return [(float("inf"), (), 0, 0, 0, 0)] * len(tails)


@pytest.fixture(scope="module")
def digits_bits(digits):
    acts = nnrules.record(digits.model, digits.train, ["relu3", "relu2"], progress=False)
    return nnrules.Binarizer("mean").fit(acts).transform(acts)


def _valid(m, head, tail):
    head = head.to_dense() if isinstance(head, BinaryMatrix) else head
    tail = tail.to_dense() if isinstance(tail, BinaryMatrix) else tail
    assert m.codelength_ == pytest.approx(codelength_reference(head, tail, list(m.rules_)), abs=1e-5)


def test_refinement_saves_bits_on_planted_cooccurring_heads():
    """Merges form heads X1∪X2 or X1∩X2 only; refining them one item at a time saves bits (measured 65–282
    per 50-rule set in the issue)."""
    d = planted_rules(n=10_000, n_rules=50, heads="cooccur", noise=0.01, seed=0)
    before, after = NoRefine().fit(d.head, d.tail), ExplaiNN().fit(d.head, d.tail)
    assert after.n_refined_ > 0
    assert after.codelength_ < before.codelength_ - 30
    _valid(after, d.head, d.tail)


def test_absorb_puts_uncovered_units_into_rules_on_a_real_network(digits_bits):
    """digits-cnn relu3 → relu2: channels whose own rule does not pay join an existing rule's tail."""
    head, tail = digits_bits["relu3"], digits_bits["relu2"]
    before, after = NoAbsorb().fit(head, tail), NoTailHeads().fit(head, tail)
    covered = lambda m: {y for r in m.rules_ for y in r.tail}  # noqa: E731
    assert after.n_absorbed_ > 0 and len(covered(after)) > len(covered(before))
    assert after.codelength_ < before.codelength_
    _valid(after, head, tail)


def test_theta_default_keeps_noisy_cooccurring_rules():
    """At 10 % noise the flips push every σ below 0.3: θ = 0.3 lost most planted rules; the default θ = 0
    (the paper's best MDL) keeps them and gives the lower code length."""
    assert ExplaiNN().theta == 0.0
    d = planted_rules(n=10_000, n_rules=50, heads="cooccur", noise=0.1, seed=0)
    tails = {frozenset(t) for _, t in d.rules}
    recall = lambda m: sum(frozenset(r.tail) in tails for r in m.rules_) / len(tails)  # noqa: E731
    old, new = ExplaiNN(theta=0.3).fit(d.head, d.tail), ExplaiNN().fit(d.head, d.tail)
    assert recall(new) >= 0.8 > recall(old)
    assert new.codelength_ < old.codelength_


def test_shared_units_give_no_self_rules_and_an_acyclic_graph():
    """fit(T, T) returned self-rules {x} → {x}; units shared by head and tail now keep the rule graph acyclic
    (decodable), whether sharing is given, found (same object, same layer, equal columns) or absent."""
    d = planted_rules(n=4000, n_rules=8, heads="exclusive", noise=0.001, seed=1)
    T = np.hstack([d.head, d.tail])
    m = ExplaiNN().fit(T, T)
    assert len(m.rules_) > 0
    assert not any(set(r.head) & set(r.tail) for r in m.rules_)
    assert not m._graph.cyclic(list(m.rules_))
    _valid(m, T, T)
    named = BinaryMatrix.from_dense(T, names=[f"u{i}" for i in range(T.shape[1])], layer="block")
    again = BinaryMatrix.from_dense(T, names=[f"u{i}" for i in range(T.shape[1])], layer="block")
    m2 = ExplaiNN().fit(named, again)  # two objects, one layer: shared by unit name
    assert [(r.head, r.tail) for r in m2.rules_] == [(r.head, r.tail) for r in m.rules_]
    m3 = ExplaiNN().fit(T, T.copy(), shared=[(i, i) for i in range(T.shape[1])])
    assert [(r.head, r.tail) for r in m3.rules_] == [(r.head, r.tail) for r in m.rules_]
    # plain arrays holding the same units (a copy): found from the data, no self-rules (27 of 57 were)
    found = ExplaiNN().fit(T, T.copy())
    assert found.shared_ == [(i, i) for i in range(T.shape[1])]
    assert [(r.head, r.tail) for r in found.rules_] == [(r.head, r.tail) for r in m.rules_]
    free = ExplaiNN().fit(T, T.copy(), shared=[])  # nothing shared, said so: self-rules included
    assert free.shared_ == [] and any(set(r.head) & set(r.tail) for r in free.rules_)
    apart = ExplaiNN().fit(d.head, d.tail)  # different units: nothing is taken as shared
    assert apart.shared_ == []
    with pytest.raises(ValueError, match="shared"):
        ExplaiNN().fit(T, T, shared=[(0, 10_000)])


def test_head_equivalents_complete_cooccurring_heads_without_false_ones():
    """MDL keeps a subset of near-identical head units; ``head_equivalents`` names the rest (≥ 0.9 exact at
    ≤ 1 % noise, ≥ 0.8 at 10 %) and never a unit of another group or a noise unit (exclusive heads: none)."""
    # at 10 % noise a flipped copy of a head unit has informedness ≈ 0.8: the bar follows the estimated
    # flip rate (without it: 0.79 exact over seeds 0–2, none of the copies listed on some rules)
    for noise, least in ((0.001, 0.9), (0.01, 0.9), (0.1, 0.8)):
        d = planted_rules(n=10_000, n_rules=50, heads="cooccur", noise=noise, seed=3)
        m = ExplaiNN().fit(d.head, d.tail)
        planted = {frozenset(t): frozenset(h) for h, t in d.rules}
        got = {frozenset(r.tail): frozenset(r.head) | frozenset(r.head_equivalents) for r in m.rules_}
        exact = sum(got.get(t) == h for t, h in planted.items()) / len(planted)
        assert exact >= least, (noise, exact)
        assert all(set(r.head_equivalents) <= planted.get(frozenset(r.tail), set()) for r in m.rules_)
    d = planted_rules(n=10_000, n_rules=50, heads="exclusive", noise=0.01, seed=3)
    dense = np.c_[d.head, np.ones(len(d.head), bool)]  # a unit that is always on is no equivalent
    m = ExplaiNN().fit(dense, d.tail)
    assert not any(r.head_equivalents for r in m.rules_)
    head, tail = _copies()
    rs = ExplaiNN().fit(BinaryMatrix.from_dense(head, names=["h0", "h1", "h2", "h3"]), tail).rules_
    r = next(r for r in rs if r.head_equivalents)
    assert set(r.head) | set(r.head_equivalents) == {0, 1}
    assert "(also: h" in rs.describe(r) and rs.to_frame()["head_equivalents"].map(len).sum() == 1
    assert nnrules.RuleSet.from_json(rs.to_json()).rules == rs.rules


def _copies():
    """Head: unit 0 and its near-copy 1, plus two noise units; tail: two units that follow unit 0."""
    rng = np.random.default_rng(4)
    x = rng.random(3000) < 0.1
    head = np.c_[x, x ^ (rng.random(3000) < 0.002), rng.random((3000, 2)) < 0.1]
    tail = np.c_[x & (rng.random(3000) < 0.95), x & (rng.random(3000) < 0.9)]
    return head, tail


def test_progress_cancel_and_time_budget():
    d = planted_rules(n=5000, n_rules=30, heads="cooccur", noise=0.01, seed=5)
    seen = []
    m = ExplaiNN().fit(d.head, d.tail, on_progress=lambda stage, f: seen.append(stage))
    assert seen[0].startswith("phase 1") and any(s.startswith("merge round") for s in seen)
    assert not m.stopped_early_ and m.n_pairs_ > 0

    class Stop(Exception):
        pass

    def cancel(stage, f):
        if stage.startswith("merge"):
            raise Stop()
    with pytest.raises(Stop):
        ExplaiNN().fit(d.head, d.tail, on_progress=cancel)
    quick = ExplaiNN(time_budget=1e-9).fit(d.head, d.tail)  # out of time in the first round
    assert quick.stopped_early_ and quick.n_iter_ == 0 and len(quick.rules_) > len(m.rules_)
    _valid(quick, d.head, d.tail)  # the model it returns is a valid one (phase 1's)


def test_a_memmapped_matrix_is_mined_from_disk_in_bounded_memory(tmp_path):
    """200,000 rows × 256 tail units as a memmap of packed words (6.4 MB on disk): the fit never builds
    int64 tid-lists (~100 MB for this matrix at its density) nor copies the words; peak memory grows by
    < 40 MB (the L_pc and log-factorial tables for n rows are 13 MB of it)."""
    script = textwrap.dedent(f"""
        import resource, numpy as np
        from nnrules import BinaryMatrix, ExplaiNN
        from nnrules.data.bits import pack_columns
        rng = np.random.default_rng(0)
        n, C, U = 200_000, 20, 256
        cls = rng.integers(0, C, n)
        W = -(-n // 64)
        words = np.lib.format.open_memmap(r"{tmp_path}/tail.npy", mode="w+", dtype=np.uint64, shape=(U, W))
        for u in range(0, U, 16):
            feature = np.isin(cls, rng.choice(C, 3, replace=False)) & (rng.random(n) < 0.85)
            block = (feature[:, None] & (rng.random((n, 16)) < 0.95)) | (rng.random((n, 16)) < 0.05)
            words[u: u + 16] = pack_columns(block)
        words.flush()
        del words, block, feature
        head = BinaryMatrix(pack_columns(np.eye(C, dtype=bool)[cls]), n)
        del cls
        # compile for read-only words first (a memmap opened "r" is another array type to numba)
        small = pack_columns(np.eye(4, dtype=bool)[np.arange(256) % 4] | (rng.random((256, 4)) < 0.1))
        small.flags.writeable = False
        ExplaiNN().fit(BinaryMatrix(small, 256), BinaryMatrix(small, 256))
        tail = BinaryMatrix(np.load(r"{tmp_path}/tail.npy", mmap_mode="r"), n)
        assert isinstance(tail.words, np.memmap) or isinstance(tail.words.base, np.memmap)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        m = ExplaiNN().fit(head, tail)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(m.rules_), (after - before) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    n_rules, grown_mb = out.stdout.split()
    assert int(n_rules) >= 8 and float(grown_mb) < 40, out.stdout


@pytest.mark.parametrize("seed", [2, 8117])
def test_noisy_exclusive_heads_reach_the_model_of_the_paying_planted_rules(seed):
    """Exclusive heads at 10 % bit noise (seed 000 Sec. 3.1, 100 rules): only ~40 planted rules pay for
    themselves, and the model made of them alone (the oracle) bounds the optimum. Before heads from the tails'
    rows (issue 45) the search found 0.70 / 0.62 of them on these seeds, +2,436 / +5,744 bits above the oracle:
    a head item of a several-unit tail ranked below unrelated ones for every single unit, and tails whose units
    do not pay alone were never grouped. Now: ≥ 0.9 of the paying rules (head or head ∪ equivalents exact)
    and a model no longer than the oracle's, by the independent scorer."""
    from nnrules.miners.explainn._reference import oracle_recall, paying_oracle

    d = planted_rules(n=10_000, n_rules=100, heads="exclusive", noise=0.1, seed=seed)
    paying, L_oracle = paying_oracle(d.head, d.tail, d.rules)
    old, new = NoTailHeads().fit(d.head, d.tail), ExplaiNN().fit(d.head, d.tail)
    assert oracle_recall(old.rules_, paying) < 0.8 and old.codelength_ > L_oracle + 1000
    assert oracle_recall(new.rules_, paying) >= 0.9, oracle_recall(new.rules_, paying)
    assert new.codelength_ <= L_oracle + 1e-6
    assert new.n_reheaded_ > 0 and new.n_grouped_ > 0
    _valid(new, d.head, d.tail)  # its code length is the from-scratch total
    assert not new._seeds and not new._floor  # the search's scratch is not kept with the model


def test_the_pruned_search_scores_a_few_percent_of_the_pairs_on_a_real_conv_layer(digits):
    """digits-cnn output → relu2 per position (2,048 units, 1,437 images): the default search scores < 10 %
    of the pairs the exhaustive one does, and its model is no longer (measured: 4.7 %, 3.8 % shorter)."""
    acts = nnrules.record(digits.model, digits.train, ["relu2"], reduce="none", progress=False)
    b = nnrules.Binarizer("mean").fit(acts).transform(acts)
    full = ExplaiNN(search="exhaustive").fit(b["output"], b["relu2"])
    pruned = ExplaiNN().fit(b["output"], b["relu2"])
    assert pruned.search == "pruned" and pruned.n_pairs_ < 0.1 * full.n_pairs_, (pruned.n_pairs_, full.n_pairs_)
    assert pruned.codelength_ <= full.codelength_ * 1.005
    _valid(pruned, b["output"], b["relu2"])


def test_phase_1_tries_short_prefixes_first_and_extends_where_needed():
    """Phase 1 scores the first PHASE1_PREFIX items of each H_y and redoes a tail unit with 4× as many where its
    best prefix uses over half of them: with a prefix of 2 (every planted head of 3–5 items is redone) the
    rules equal those of the full H_y on exclusive and co-occurring heads."""
    class Short(ExplaiNN):
        PHASE1_PREFIX = 2

    class Full(ExplaiNN):
        PHASE1_PREFIX = 10**9

    for heads, noise in (("exclusive", 0.01), ("cooccur", 0.01), ("exclusive", 0.1)):
        d = planted_rules(n=5000, n_rules=30, heads=heads, noise=noise, seed=1)
        short, full = Short().fit(d.head, d.tail), Full().fit(d.head, d.tail)
        assert [(r.head, r.tail, r.head_min) for r in short.rules_] == [(r.head, r.tail, r.head_min) for r in full.rules_]
        assert short.codelength_ == full.codelength_
    assert any(len(r.head) > 2 for r in short.rules_)  # some prefixes were extended


def test_heads_from_a_tail_sets_rows_are_the_best_prefix_by_the_reference():
    """``_heads_for``: the head it returns for a tail set is the best prefix of its ranked pool, and its cost is the
    reference scorer's best (l, k) for that head; an unrelated tail set (noise columns) gets no head at all."""
    from nnrules.miners.explainn._data import _Data
    from nnrules.miners.explainn._reference import best_rule_reference

    d = planted_rules(n=10_000, n_rules=100, heads="exclusive", noise=0.1, seed=8117)
    m = ExplaiNN()
    m._graph, m._head_cache = None, {}
    data = _Data(BinaryMatrix.from_dense(d.head), BinaryMatrix.from_dense(d.tail))
    data.sigma = np.ones((d.head.shape[1], d.tail.shape[1]))
    data.ok = np.ones_like(data.sigma, dtype=bool)
    X, Y = (11, 12, 13), (11, 12, 13, 14)  # a planted rule phase 1 and the refinement left at head {11, 12}
    noise_tails = tuple(range(d.tail.shape[1] - 5, d.tail.shape[1] - 3))
    (cost, head, l, k, a, h), (n_cost, n_head, *_) = m._heads_for([Y, noise_tails], data)
    assert head == X
    ref_cost, ref_l, ref_k = best_rule_reference(d.head, d.tail, head, Y)
    assert cost == pytest.approx(ref_cost, abs=1e-6) and (l, k) == (ref_l, ref_k)
    assert n_head == () and n_cost == float("inf")


@pytest.mark.parametrize("n_tail", [5, 70])
def test_prefix_heads_kernel_equals_the_best_prefix_scored_one_by_one(n_tail):
    """``prefix_heads``: row-wise (tails ≤ 63 units) and bit-sliced (larger) — the best prefix and its cost equal
    scoring every prefix with the reference."""
    from nnrules.miners.explainn._data import _Data
    from nnrules.miners.explainn._reference import best_rule_reference, rule_cost_reference

    rng = np.random.default_rng(n_tail)
    latent = rng.random(3000) < 0.1
    head = (rng.random((3000, 12)) < 0.05) | (latent[:, None] & (rng.random((3000, 12)) < 0.6))
    tail = (rng.random((3000, 80)) < 0.05) | (latent[:, None] & (rng.random((3000, 80)) < 0.7))
    data = _Data(BinaryMatrix.from_dense(head), BinaryMatrix.from_dense(tail))
    pool, Y = np.array([3, 0, 7, 5, 1, 9], np.int64), np.arange(n_tail, dtype=np.int64)
    cost, t, l, k, a, h = data.prefix_heads(np.array([0, len(pool)], np.int64), pool,
                                            np.array([0, n_tail], np.int64), Y)
    ref = [best_rule_reference(head, tail, pool[:j], Y) for j in range(1, len(pool) + 1)]
    best = int(np.argmin([r[0] for r in ref]))
    assert t[0] == best + 1 and cost[0] == pytest.approx(ref[best][0], abs=1e-6)
    # its (l, k) codes at that cost (equal-cost thresholds may differ: no row has a tail count between them)
    assert rule_cost_reference(head, tail, pool[: t[0]], Y, int(l[0]), int(k[0])) == pytest.approx(cost[0], abs=1e-6)
