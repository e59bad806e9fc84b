import json

import numpy as np
import pytest

import nnrules
from nnrules import ExplaiNN, RuleSet
from nnrules.data.synthetic import match_rules, planted_rules


@pytest.mark.parametrize("n_rules", [10, 50])
def test_recovers_planted_exclusive_heads(n_rules):
    d = planted_rules(n=10_000, n_rules=n_rules, heads="exclusive", noise=0.001, seed=1)
    m = ExplaiNN().fit(d.head, d.tail)
    score = match_rules(m.rules_, d.rules)
    assert score["precision"] >= 0.9 and score["recall"] >= 0.9, score
    assert score["redundant"] == 0
    noise_cols = set(range(d.head.shape[1] - 5, d.head.shape[1]))
    assert not any(set(r.head) & noise_cols for r in m.rules_)
    assert all(r.kind in ("disjunction", "conjunction") for r in m.rules_)


def test_cooccurring_heads_recover_exact_tails_and_subsets_of_heads():
    # Identical head columns are coded as singletons either way, so MDL keeps only as many as pay
    # for themselves in robustness; the tails must still be exact (see docs/explainn-encoding.md).
    d = planted_rules(n=10_000, n_rules=50, heads="cooccur", noise=0.01, seed=2)
    m = ExplaiNN().fit(d.head, d.tail)
    planted = {frozenset(t): set(h) for h, t in d.rules}
    exact_tails = [r for r in m.rules_ if frozenset(r.tail) in planted]
    assert len(exact_tails) >= 45
    assert all(set(r.head) <= planted[frozenset(r.tail)] for r in exact_tails)


def test_deterministic_and_mu_bounds_merges():
    d = planted_rules(n=3000, n_rules=8, heads="exclusive", noise=0.001, seed=7)
    a = ExplaiNN().fit(d.head, d.tail).rules_.to_json()
    b = ExplaiNN().fit(d.head, d.tail).rules_.to_json()
    assert a == b
    m0 = ExplaiNN(mu=0).fit(d.head, d.tail)
    assert m0.n_iter_ >= 0 and len(m0.rules_) >= len(json.loads(a)["rules"])


def test_frame_and_json_roundtrip_with_names():
    d = planted_rules(n=2000, n_rules=4, heads="exclusive", noise=0.0, seed=8)
    head = nnrules.BinaryMatrix.from_dense(d.head, layer="output")
    tail = nnrules.BinaryMatrix.from_dense(d.tail, layer="fc")
    m = ExplaiNN().fit(head, tail)
    df = m.to_frame()
    assert len(df) == len(m.rules_) > 0
    assert df.loc[0, "head"][0].startswith("output:") and df.loc[0, "tail"][0].startswith("fc:")
    back = RuleSet.from_json(m.rules_.to_json())
    assert back.rules == m.rules_.rules and back.codelength == m.codelength_


def test_all_zero_and_all_one_columns_and_one_row():
    rng = np.random.default_rng(0)
    head, tail = rng.random((500, 4)) < 0.3, rng.random((500, 4)) < 0.3
    head[:, 0] = False
    tail[:, 1] = True
    m = ExplaiNN().fit(head, tail)
    assert not any(0 in r.head for r in m.rules_)
    assert np.isfinite(m.codelength_)
    one = ExplaiNN().fit(np.ones((1, 2), bool), np.ones((1, 2), bool))
    assert np.isfinite(one.codelength_)


@pytest.mark.parametrize("kw, match", [({"theta": 1.0}, "theta"), ({"theta": -0.1}, "theta"),
                                       ({"mu": -1}, "mu"), ({"mu": 1.5}, "mu"), ({"max_iter": -1}, "max_iter")])
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        ExplaiNN(**kw).fit(np.ones((3, 2), bool), np.ones((3, 2), bool))


def test_bad_data():
    with pytest.raises(ValueError, match="same samples"):
        ExplaiNN().fit(np.ones((3, 2), bool), np.ones((4, 2), bool))
    with pytest.raises(ValueError, match="binary"):
        ExplaiNN().fit(np.full((3, 2), 0.5), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="at least one column"):
        ExplaiNN().fit(np.ones((3, 0), bool), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="2-D"):
        ExplaiNN().fit(np.ones(3, bool), np.ones((3, 2), bool))


@pytest.fixture(scope="module")
def digits_flow(digits):
    acts = nnrules.record(digits.model, digits.train, ["relu3", "relu2"], progress=False)
    flow = nnrules.trace(acts, ["relu3", "relu2"], ExplaiNN(),
                              binarizer=nnrules.Binarizer("mean"))
    return acts, flow


def test_real_network_rules_carry_class_information(digits, digits_flow):
    _, flow = digits_flow
    rules = flow.rulesets[0]
    assert rules.head_layer == "output" and rules.tail_layer == "relu3"
    assert len(rules) >= 3
    assert rules.codelength < rules.baseline_codelength
    iv = nnrules.evaluation.intervene(digits.model, rules, digits.test)
    hit = iv[iv.n_weights > 0]
    assert len(hit) >= 5
    drop_rules = (hit.acc_before - hit.acc_after).mean()
    drop_random = (hit.acc_before - hit.acc_random_q).mean()
    assert drop_rules > 0.1 and drop_rules > drop_random + 0.1, iv
    assert (hit.acc_after < hit.acc_random_q).mean() >= 0.5, iv


def test_flow_chains_and_sankey(digits_flow):
    acts, flow = digits_flow
    assert flow.layers == ["output", "relu3", "relu2"] and len(flow.rulesets) == 2
    deeper = flow.rulesets[1]
    first_tails = {y for r in flow.rulesets[0] for y in r.tail}
    assert len(deeper) > 0 and all(set(r.head) <= first_tails for r in deeper)
    assert all(len(c) == 2 for c in flow.chains())
    nodes, links = flow.to_sankey()
    assert set(links.source) | set(links.target) <= set(nodes.id)
    assert (links.value > 0).all() and set(links.pair) == {0, 1}
    assert set(nodes.layer) == {"output", "relu3", "relu2"}
    assert len(flow.rules_frame()) == len(flow.rulesets[0]) + len(deeper)
    with pytest.raises(ValueError, match="not recorded"):
        nnrules.trace(acts, ["fc1"])
