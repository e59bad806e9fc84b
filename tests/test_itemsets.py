from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from mlxtend.frequent_patterns import association_rules as mlx_rules
from mlxtend.frequent_patterns import fpgrowth

from nnrules import BinaryMatrix
from nnrules.miners.itemsets import association_rules, eclat, min_count, top_rules


def as_dict(df, key="itemsets"):
    return dict(zip(df[key], df["support"]))


# The textbook example (Zaki's Eclat paper style): 6 transactions over items A..E = 0..4.
BOOK = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 0, 1], [1, 1, 0, 1, 1], [1, 1, 1, 0, 1], [1, 1, 1, 1, 1],
                 [0, 1, 1, 1, 0]], dtype=bool)


def test_hand_counted_example():
    got = as_dict(eclat(BOOK, 0.5))
    f = frozenset
    assert got[f({1})] == 1.0 and got[f({0})] == 4 / 6 and got[f({0, 1, 3, 4})] == 3 / 6
    assert got[f({1, 2})] == 4 / 6 and f({2, 3}) not in got  # {C, D} is in 2 of 6 (< 0.5)
    assert len(got) == 19  # counted by hand: 5 singletons, 8 pairs, 5 triples, ABDE


@pytest.mark.parametrize("support", [0.4, 0.15, 0.05, 0.01])
@pytest.mark.parametrize("max_len", [None, 2])
def test_same_itemsets_and_supports_as_mlxtend_fpgrowth(support, max_len):
    rng = np.random.default_rng(3)
    X = rng.random((1500, 25)) < rng.uniform(0.02, 0.6, 25)
    X[:, 3] = False  # an empty column
    X[:, 7] = True  # a full one
    ours = as_dict(eclat(X, support, max_len=max_len))
    ref = as_dict(fpgrowth(pd.DataFrame(X), min_support=support, max_len=max_len))
    assert ours.keys() == ref.keys()
    assert all(abs(ours[k] - ref[k]) < 1e-12 for k in ours)


def test_inputs_binary_matrix_dataframe_and_one_row():
    X = BOOK
    a = as_dict(eclat(BinaryMatrix.from_dense(X), 0.5))
    b = as_dict(eclat(pd.DataFrame(X.astype(int)), 0.5))
    assert a == b == as_dict(eclat(X, 0.5))
    one = eclat(X[:1], 1.0)
    assert set(one["itemsets"]) == {frozenset(s) for r in range(1, 5) for s in combinations([0, 1, 3, 4], r)}


@pytest.mark.parametrize("X, kw, match", [
    (np.array([[0, 2]]), {}, "binary"),
    (np.zeros(4, bool), {}, "2-D"),
    (BOOK, {"min_support": 0.0}, r"\(0, 1\]"),
    (BOOK, {"min_support": 1.5}, r"\(0, 1\]"),
    (BOOK, {"max_len": 0}, "max_len"),
    (np.zeros((0, 3), bool), {}, "no transactions"),
])
def test_bad_input(X, kw, match):
    with pytest.raises(ValueError, match=match):
        eclat(X, **{"min_support": 0.5, **kw})


def test_min_count_is_exact_at_float_edges():
    assert min_count(0.3, 10) == 3 and min_count(0.1, 30) == 3 and min_count(1.0, 7) == 7
    assert min_count(0.7, 10) == 7  # 0.7 * 10 = 7.000000000000001 in floating point


def test_rules_same_as_mlxtend():
    rng = np.random.default_rng(5)
    X = rng.random((800, 12)) < rng.uniform(0.1, 0.6, 12)
    ours = association_rules(eclat(X, 0.05), min_confidence=0.4)
    fr = fpgrowth(pd.DataFrame(X), min_support=0.05)
    ref = mlx_rules(fr, num_itemsets=len(X), min_threshold=0.4)
    key = lambda df: {(a, b): (s, c, l) for a, b, s, c, l in
                      zip(df.antecedents, df.consequents, df.support, df.confidence, df.lift)}
    o, r = key(ours), key(ref)
    assert o.keys() == r.keys() and len(o) > 100
    assert max(np.abs(np.subtract(o[k], r[k])).max() for k in o) < 1e-12


def test_filters_to_class_constraint_and_top_q():
    # items 0..3 are filters, 4 and 5 are class labels (one per transaction)
    rng = np.random.default_rng(0)
    cls = rng.integers(0, 2, 400)
    X = np.zeros((400, 6), bool)
    X[np.arange(400), 4 + cls] = True
    X[:, 0] = (cls == 0) & (rng.random(400) < 0.9)  # filter 0 fires for class 0
    X[:, 1] = rng.random(400) < 0.5  # filter 1 fires for either
    X[:, 2] = (cls == 1) & (rng.random(400) < 0.8)
    X[:, 3] = X[:, 2] & (rng.random(400) < 0.9)
    rules = association_rules(eclat(X, 0.05), antecedent_items=range(4), consequent_items=[4, 5])
    assert all(a <= set(range(4)) and len(b) == 1 and b <= {4, 5} for a, b in
               zip(rules.antecedents, rules.consequents))
    row = rules[(rules.antecedents == frozenset({0})) & (rules.consequents == frozenset({4}))].iloc[0]
    both, ante = (X[:, 0] & X[:, 4]).mean(), X[:, 0].mean()
    assert row.support == both and row.confidence == pytest.approx(both / ante) and row.confidence == 1.0
    top = top_rules(rules, q=2)
    assert top.groupby(top.consequents.map(min)).size().tolist() == [2, 2]
    best = top[top.consequents == frozenset({5})].iloc[0]
    assert best.antecedents in ({2}, {2, 3}, {3}) and best.score == rules[rules.consequents == frozenset({5})].score.max()


def test_an_exploding_itemset_count_is_a_clear_error_not_an_exhausted_memory():
    """Seed-002 settings on dense data: 2,000 × 60 at density 0.5, min_support 0.02 has tens of millions
    of frequent itemsets (it exhausted 4 GB before the cap); now the cap stops it with the limit named."""
    X = np.random.default_rng(0).random((2000, 60)) < 0.5
    with pytest.raises(ValueError, match=r"max_itemsets=1,000,000.*raise min_support"):
        eclat(X, 0.02)
    small = eclat(X, 0.1)
    with pytest.raises(ValueError, match="max_itemsets=100"):
        eclat(X, 0.1, max_itemsets=100)
    assert len(eclat(X, 0.1, max_itemsets=len(small))) == len(small)


def test_candidate_memory_follows_the_candidates_not_depth_times_items():
    """4,000 items × 20,000 rows with long transactions: the old buffer (depth × items × words) was
    ~ 4,000 × 4,000 × 313 words = 40 GB; the shared stack needs a few MB."""
    rng = np.random.default_rng(1)
    X = rng.random((20_000, 4_000)) < 0.002
    X[:, :3] = rng.random((20_000, 1)) < 0.5  # three items that always co-occur
    X[: 5_000, 10: 4_000] = True  # long transactions: max depth ~ 4,000
    got = eclat(X[:, :12], 0.2)
    assert frozenset({0, 1, 2}) in set(got["itemsets"])
    big = eclat(X, 0.3, max_itemsets=10)
    assert set(big["itemsets"]) == {frozenset({0}), frozenset({1}), frozenset({2}), frozenset({0, 1}),
                                    frozenset({0, 2}), frozenset({1, 2}), frozenset({0, 1, 2})}


# ------------------------------------------------------------------ pyfim parity, search paths, targets
fim = pytest.importorskip("fim", reason="pyfim (in the dev extra) is the reference Eclat")


def counts(df, n):
    """{itemset: count}; every set listed once (a set twice would vanish in the dict)."""
    assert df["itemsets"].is_unique, df[df["itemsets"].duplicated()]
    return {s: int(round(v * n)) for s, v in zip(df["itemsets"], df["support"])}


def fim_counts(X, support, target="s", zmax=None):
    tracts = [np.flatnonzero(r).tolist() for r in X]
    kw = {} if zmax is None else {"zmax": zmax}
    return {frozenset(s): c for s, c in fim.eclat(tracts, target=target, supp=-min_count(support, len(X)),
                                                   report="a", **kw)}


def data(kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "sparse":  # retail-like: skewed item popularity, 1 % dense
        pop = np.minimum(rng.pareto(1.2, 300) + 0.05, 40)
        return rng.random((3000, 300)) < pop / pop.sum() * 3
    return rng.random((600, 24)) < rng.uniform(0.1, 0.6, 24)


@pytest.mark.parametrize("kind, support", [("sparse", 0.003), ("sparse", 0.01), ("dense", 0.05), ("dense", 0.2)])
@pytest.mark.parametrize("target, fim_target", [("all", "s"), ("closed", "c"), ("maximal", "m")])
def test_same_itemsets_as_pyfim(kind, support, target, fim_target):
    X = data(kind)
    ours = counts(eclat(X, support, target=target), len(X))
    ref = fim_counts(X, support, fim_target)
    assert len(ref) > 20 and ours == ref


@pytest.mark.parametrize("max_len", [1, 2, 3])
def test_max_len_same_as_pyfim(max_len):
    X = data("dense")
    assert counts(eclat(X, 0.05, max_len=max_len), len(X)) == fim_counts(X, 0.05, zmax=max_len)


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_every_search_path_gives_the_same_itemsets(kind, monkeypatch):
    """Occurrence deliver, tid-list merges/probes or bitset ANDs everywhere, with and without bitsets: one answer."""
    import nnrules.miners.itemsets._frequent as I
    X = data(kind, seed=1)
    want = counts(eclat(X, 0.01 if kind == "sparse" else 0.05), len(X))
    for mode, density in [(m, p) for m in (0, 1, 2) for p in (0.0, 2.0)]:
        monkeypatch.setattr(I, "_SEARCH_MODE", mode)
        monkeypatch.setattr(I, "BITSET_DENSITY", density)
        assert counts(eclat(X, 0.01 if kind == "sparse" else 0.05), len(X)) == want


def test_inputs_sparse_packed_and_names_agree():
    import scipy.sparse as sp
    X = data("sparse")
    want = counts(eclat(X, 0.01), len(X))
    assert counts(eclat(sp.csr_matrix(X), 0.01), len(X)) == want
    assert counts(eclat(BinaryMatrix.from_dense(X), 0.01), len(X)) == want
    names = [f"item{i}" for i in range(X.shape[1])]
    named = eclat(pd.DataFrame(X, columns=names), 0.01, use_colnames=True)
    assert counts(named, len(X)) == {frozenset(names[i] for i in s): c for s, c in want.items()}


def brute_force(X, minsup):
    """Every frequent itemset of a small matrix by enumerating all subsets, with the closed and maximal ones
    by their definitions (no superset with the same count / no frequent superset)."""
    m = X.shape[1]
    every = {}
    for r in range(1, m + 1):
        for s in combinations(range(m), r):
            c = int(X[:, list(s)].all(axis=1).sum())
            if c >= minsup:
                every[frozenset(s)] = c
    closed = {s: c for s, c in every.items() if not any(s < t and every[t] == c for t in every)}
    maximal = {s: c for s, c in every.items() if not any(s < t for t in every)}
    return {"all": every, "closed": closed, "maximal": maximal}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("layout", ["bitsets", "tid-lists"])
def test_closed_and_maximal_against_brute_force(seed, layout, monkeypatch):
    """Closed and maximal sets mined in the search (LCM, MAFIA-style) equal their definitions, on bitsets
    and on tid-lists alone, with every way of expanding a node, and with max_len (sets of ≤ max_len items)."""
    import nnrules.miners.itemsets._frequent as I
    rng = np.random.default_rng(seed)
    X = rng.random((80, 11)) < rng.uniform(0.15, 0.8, 11)
    X[:, 1] |= X[:, 0]  # item 0 implies item 1: {0} is not closed
    if seed % 2:
        X[:, 5] = True  # an item in every transaction: in every closed and maximal set
    minsup = 6 + seed
    want = brute_force(X, minsup)
    monkeypatch.setattr(I, "BITSET_DENSITY", 0.0 if layout == "bitsets" else 2.0)
    for mode in (-1, 0, 1, 2):
        monkeypatch.setattr(I, "_SEARCH_MODE", mode)
        for target in ("all", "closed", "maximal"):
            got = counts(eclat(X, minsup / len(X), target=target), len(X))
            assert got == want[target], (target, mode)
            short = counts(eclat(X, minsup / len(X), target=target, max_len=3), len(X))
            assert short == {s: c for s, c in want[target].items() if len(s) <= 3}


def test_max_len_with_closed_and_maximal_is_pyfims_zmax():
    X = data("dense", seed=2)
    for target, t in [("closed", "c"), ("maximal", "m")]:
        assert counts(eclat(X, 0.1, max_len=3, target=target), len(X)) == fim_counts(X, 0.1, t, zmax=3)


def test_flat_itemsets_and_the_frame_agree():
    from nnrules import Itemsets, Transactions, frequent_itemsets
    X = data("sparse")
    flat = frequent_itemsets(X, 0.01)
    assert isinstance(flat, Itemsets) and len(flat) == len(eclat(X, 0.01))
    assert {flat[i]: c for i, c in enumerate(flat.counts.tolist())} == counts(eclat(X, 0.01), len(X))
    frame = flat.to_frame()
    assert list(frame.itemsets) == sorted(frame.itemsets, key=lambda s: (len(s), sorted(s)))
    assert np.allclose(flat.support.sum(), frame.support.sum())
    lists = [np.flatnonzero(r).tolist() for r in X]
    tr = Transactions.from_lists(lists)
    assert tr.to_lists() == lists and len(tr) == len(X)
    assert counts(eclat(tr, 0.01), len(X)) == counts(eclat(X, 0.01), len(X))
    dup = Transactions.from_lists([r + r[:1] for r in lists])  # a repeated item counts once
    assert counts(eclat(dup, 0.01), len(X)) == counts(eclat(X, 0.01), len(X))
def test_all_rule_metrics_same_as_mlxtend():
    rng = np.random.default_rng(7)
    X = rng.random((500, 10)) < rng.uniform(0.2, 0.7, 10)
    ours = association_rules(eclat(X, 0.05))
    ref = mlx_rules(fpgrowth(pd.DataFrame(X), min_support=0.05), num_itemsets=len(X), min_threshold=0.0)
    cols = ["antecedent support", "consequent support", "support", "confidence", "lift", "leverage",
            "conviction", "zhangs_metric", "jaccard", "certainty", "kulczynski"]
    o = {(a, b): r for a, b, r in zip(ours.antecedents, ours.consequents, ours[cols].to_numpy())}
    r = {(a, b): v for a, b, v in zip(ref.antecedents, ref.consequents, ref[cols].to_numpy())}
    assert o.keys() == r.keys() and len(o) > 1000
    assert all(np.allclose(o[k], r[k], rtol=0, atol=1e-12, equal_nan=True) for k in o)


def test_gc_state_restored():
    import gc
    gc.disable()
    try:
        eclat(BOOK, 0.5)
        assert not gc.isenabled()
    finally:
        gc.enable()
    eclat(BOOK, 0.5)
    assert gc.isenabled()


@pytest.mark.parametrize("seed", range(3))
def test_sparse_subtrees_on_their_own_bitsets_against_brute_force(seed, monkeypatch):
    """On sparse data a node's subtree is mined on bitsets over its own transactions (several words each
    here: 400 rows) when that costs less than walking them; never (ratio 0), by the estimate (1) or always
    (1e9), every target gives the brute-force answer, with and without max_len; closed sets also with the
    ppc's counts below the local root taken at once."""
    import nnrules.miners.itemsets._frequent as I
    rng = np.random.default_rng(10 + seed)
    X = rng.random((400, 13)) < rng.uniform(0.05, 0.5, 13)
    X[:, 2] |= X[:, 1] & (rng.random(400) < 0.9)  # item 1 almost implies 2: closure items below the core
    X[:, 9] = X[:, 4] & X[:, 6]  # {4, 6} has the closure {4, 6, 9}
    minsup = 8 + seed
    want = brute_force(X, minsup)
    monkeypatch.setattr(I, "BITSET_DENSITY", 2.0)  # the sparse layout: tid-lists only
    assert I._prepare(X, minsup / len(X)).B.shape[0] == 0
    for ratio, below in ((0.0, 8.0), (1.0, 8.0), (1e9, 8.0), (1e9, 0.0)):  # below 0: the probes' counts at once
        monkeypatch.setattr(I, "_LOCAL_RATIO", ratio)
        monkeypatch.setattr(I, "_BELOW_WORK", below)
        for target in ("all", "closed", "maximal"):
            assert counts(eclat(X, minsup / len(X), target=target), len(X)) == want[target], (target, ratio)
            short = counts(eclat(X, minsup / len(X), target=target, max_len=3), len(X))
            assert short == {s: c for s, c in want[target].items() if len(s) <= 3}, (target, ratio)
