"""Every rule carries its evidence (nnrules.miners.evidence): stability over half-samples, a held-out 95 % interval for
its confidence, and compare() against what resampling alone produces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import nnrules
from nnrules import ERIC, Binarizer, ExplaiNN, PatchMiner, Rule, RuleSet, compare, record, trace, zoo
from nnrules.data.synthetic import planted_rules
from nnrules.miners.evidence import half_samples, with_evidence


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 7])
def test_planted_rules_are_stable_and_their_intervals_cover_the_planted_confidence(seed):
    """The paper's generator (exclusive heads, 0.1 % noise): nearly every planted rule found is found again in ≥ 90 %
    of 20 half-samples, and ≥ 85 % of the 95 % held-out intervals cover the confidence the generator gives the rule
    (noise included: a flipped head cell makes the head apply where the tail is off)."""
    d = planted_rules(n=10_000, n_rules=50, heads="exclusive", noise=0.001, seed=seed)
    m = ExplaiNN(resamples=20, random_state=seed).fit(d.head, d.tail)
    stab, coverage = d.evidence(m.rules_)
    assert len(stab) >= 45
    assert np.mean(stab >= 0.9) >= 0.95
    assert coverage >= 0.85
    # the generator's confidence is the right target: the planted c alone (noise ignored) is covered far less often
    index = {(tuple(sorted(h)), tuple(sorted(t))): i for i, (h, t) in enumerate(d.rules)}
    raw = [r.confidence_interval[0] <= d.confidences[index[(tuple(sorted(r.head)), tuple(sorted(r.tail)))]]
           <= r.confidence_interval[1] for r in m.rules_ if (tuple(sorted(r.head)), tuple(sorted(r.tail))) in index]
    assert np.mean(raw) < coverage


def test_permuted_columns_give_unstable_rules_or_none():
    """Every column permuted on its own: no rule is real; whatever is mined is rarely found again (median stability
    ≤ 0.3). Checked at a noise and density where the miner does find rules on the unpermuted data."""
    d = planted_rules(n=3_000, n_rules=20, heads="exclusive", noise=0.01, seed=3)
    rng = np.random.default_rng(3)
    head, tail = d.head.copy(), d.tail.copy()
    for mat in (head, tail):
        for j in range(mat.shape[1]):
            mat[:, j] = mat[rng.permutation(len(mat)), j]
    real = ExplaiNN(resamples=10, random_state=1).fit(d.head, d.tail)
    null = ExplaiNN(resamples=10, random_state=1).fit(head, tail)
    assert len(real.rules_) >= 15 and np.median([r.stability for r in real.rules_]) >= 0.9
    assert len(null.rules_) <= 3
    if len(null.rules_):
        assert np.median([r.stability for r in null.rules_]) <= 0.3


def test_half_samples_are_disjoint_halves_seeded_without_touching_the_global_state():
    np.random.seed(5)
    torch.manual_seed(5)
    before = (np.random.get_state()[1].copy(), torch.random.get_rng_state().clone())
    a = half_samples(101, 4, 3)
    assert [len(m) for m, _ in a] == [50] * 4
    for mined, held in a:
        assert len(np.intersect1d(mined, held)) == 0 and len(np.union1d(mined, held)) == 101
    assert all((x[0] == y[0]).all() for x, y in zip(a, half_samples(101, 4, 3)))
    assert not all((x[0] == y[0]).all() for x, y in zip(a, half_samples(101, 4, 4)))
    assert (np.random.get_state()[1] == before[0]).all() and torch.equal(torch.random.get_rng_state(), before[1])


def test_stability_counts_the_same_rule_up_to_head_equivalents_and_nothing_else():
    rs = RuleSet([Rule((0, 1), (2,), 1, 1, 10, 9), Rule((3,), (4, 5), 1, 2, 10, 8)],
                 [f"h{i}" for i in range(6)], [f"t{i}" for i in range(6)])
    same = RuleSet([Rule((0,), (2,), 1, 1, 5, 5, head_equivalents=(1,))], rs.head_names, rs.tail_names)
    other_tail = RuleSet([Rule((0, 1), (2, 3), 1, 1, 5, 5)], rs.head_names, rs.tail_names)
    other_head = RuleSet([Rule((0, 5), (2,), 1, 1, 5, 5)], rs.head_names, rs.tail_names)
    out = with_evidence(rs, [same, other_tail, other_head, same], lambda b, r: (4, 3))
    assert [r.stability for r in out] == [0.5, 0.0]
    assert out.rules[0].confidence_interval is not None and out.rules[1].confidence_interval is None
    assert out.resampled == [same, other_tail, other_head, same]


def test_evidence_survives_json_and_the_frame():
    d = planted_rules(n=2_000, n_rules=8, noise=0.001, seed=2)
    m = ExplaiNN(resamples=3).fit(d.head, d.tail)
    back = RuleSet.from_json(m.rules_.to_json())
    assert [r.stability for r in back] == [r.stability for r in m.rules_]
    assert [r.confidence_interval for r in back] == [r.confidence_interval for r in m.rules_]
    assert len(back.resampled) == 3 and [len(x) for x in back.resampled] == [len(x) for x in m.rules_.resampled]
    frame = m.to_frame()
    assert {"stability", "ci_low", "ci_high"} <= set(frame.columns) and frame["stability"].notna().all()
    assert all(r.stability is None and r.confidence_interval is None for r in ExplaiNN().fit(d.head, d.tail).rules_)


@pytest.mark.parametrize("bad", [dict(stability=1.5), dict(stability=True), dict(confidence_interval=(0.9, 0.1)),
                                 dict(confidence_interval=(0.1,)), dict(confidence_interval=(-0.1, 0.5))])
def test_a_rule_refuses_evidence_that_cannot_be(bad):
    with pytest.raises(ValueError, match="stability|confidence_interval"):
        Rule((0,), (1,), 1, 1, 5, 4, **bad)


@pytest.fixture(scope="module")
def digits():
    z = zoo.load("digits-cnn")
    return z, z.train.tensors


def _flow(model, x, y, resamples=20):
    acts = record(model, (x, y), ["relu3", "relu2"], progress=False)
    return trace(acts, ["relu3", "relu2"], ExplaiNN(), Binarizer("mean"), resamples=resamples, random_state=0)


@pytest.mark.slow
def test_compare_against_its_null_on_a_real_network(digits):
    """digits-cnn, relu3 → relu2, mean thresholds, 20 half-samples: the same model on two disjoint halves of its
    data differs beyond resampling in ≤ 5 % of compare's rows (without the null: ~60 % "changed"); the model against
    its copy fine-tuned on classes 3 and 8 in at least 3× as many, one of them an output → relu3 rule of class 3 or
    8 (seed 000 Sec. 3.2's reading)."""
    z, (x, y) = digits
    perm = np.random.default_rng(0).permutation(len(x))
    a, b = np.sort(perm[: len(x) // 2]), np.sort(perm[len(x) // 2:])
    null = compare(_flow(z.model, x[a], y[a]), _flow(z.model, x[b], y[b]))
    s0 = null.summary()
    assert null.has_null and s0["beyond null"] <= 0.05 * len(null.rules)
    assert s0["changed"] + s0["only in a"] + s0["only in b"] >= 0.3 * len(null.rules)  # what the raw diff shows
    tuned = compare(_flow(z.model, x, y), _flow(zoo.fine_tune(z, [3, 8]).model, x, y))
    s1 = tuned.summary()
    assert s1["beyond null"] >= max(3 * s0["beyond null"], 3)
    rows = tuned.rules[tuned.rules["beyond_null"] & (tuned.rules["upper"] == "output")]
    classes = {c for col in ("a_head", "b_head") for h in rows[col] if h is not None for c in h}
    assert classes & {"class 3", "class 8"}
    assert s1["units beyond null"] > 0 and "beyond resampling noise" in repr(tuned)


def test_compare_without_evidence_has_no_null_column(digits):
    z, (x, y) = digits
    f = _flow(z.model, x[:300], y[:300], resamples=None)
    c = compare(f, f)
    assert not c.has_null and "beyond null" not in c.summary() and "beyond_null" not in c.rules.columns


def test_eric_and_the_patches_miner_carry_evidence(digits):
    """ERIC (rules per layer pair, tail → head) and the patches miner (half-samples of the images) give every rule a
    stability in [0, 1]; a rule found again gets an interval, measured on held-out rows, that holds its own kind of
    confidence (P(head | tail literals) for ERIC, P(filters | class) for patches)."""
    z, (x, y) = digits
    acts = record(z.model, (x[:400], y[:400]), ["relu3"], reduce="l1", progress=False)
    e = ERIC(depth=3, resamples=6).fit(acts, ["relu3"])
    assert all(0 <= r.stability <= 1 for r in e.rules_) and len(e.rules_.resampled) == 6
    found = [r for r in e.rules_ if r.stability >= 0.5 and r.confidence_interval is not None]
    assert found and np.mean([r.confidence_interval[0] - 0.1 <= r.confidence <= r.confidence_interval[1] + 0.1
                              for r in found]) >= 0.7
    p = PatchMiner(resamples=6, q=3).fit(z.model, x[:60])
    assert all(0 <= r.stability <= 1 for r in p.rules_)
    assert sum(r.confidence_interval is not None for r in p.rules_) >= 1
    shown = p.to_ruleset([str(i) for i in range(10)])  # the app's names keep the evidence
    assert [r.stability for r in shown] == [r.stability for r in p.rules_] and shown.resampled


def test_trace_passes_resamples_to_the_miner_and_erics_flow_keeps_them(digits):
    z, (x, y) = digits
    acts = record(z.model, (x[:300], y[:300]), ["relu3", "relu2"], reduce="l1", progress=False)
    flow = trace(acts, ["relu3", "relu2"], ERIC(depth=2), resamples=2, random_state=1)
    assert all(r.stability is not None for rs in flow.rulesets for r in rs) and all(rs.resampled for rs in
                                                                                   flow.rulesets)
    assert nnrules.trace(acts, ["relu3"], ERIC(depth=2)).rulesets[0].rules[0].stability is None


@pytest.mark.slow
def test_the_app_mines_with_evidence_by_default_and_shows_it(tmp_path):
    """The app's defaults mine half-samples (mining.APP_RESAMPLES); the table sorts and filters by stability, the
    flow draws unstable rules faint, the detail says what the evidence means, Compare leads with the null."""
    from nnrules.widgets.compare import NOISE, CompareView, compare_figure
    from nnrules.widgets.flow_figures import FAINT, sankey_figure
    from nnrules.widgets.state import ExplorerState
    from nnrules.widgets.state.mining import APP_RESAMPLES
    from nnrules.widgets.table import RuleTable

    s = ExplorerState(data_root=tmp_path, pictures=None)
    s.load_zoo("digits-cnn")
    settings = s.default_settings("explainn")
    assert settings.params == {"resamples": APP_RESAMPLES} and APP_RESAMPLES >= 2
    s.mine(settings)
    assert s.has_evidence and s.rules["stability"].between(0, 1).all()
    assert s.rules["evidence"].str.startswith(f"found again in ").all()
    stable = s.rules_table(sort_by="stability", min_stability=1.0)
    assert len(stable) < len(s.rules) and (stable["stability"] == 1.0).all()
    table = RuleTable(s, on_rule=lambda i: None)
    table.refresh()
    assert table.stable.layout.display == "" and "held-out" in table.table.value
    s.min_stability = 1.0
    fig, rule_ids, _ = sankey_figure(s, 300)
    faint = [c == FAINT for c in fig.data[0].link.color]
    unstable = [i is not None and s.rules["stability"].iloc[i] < 1.0 for i in rule_ids]
    assert any(faint) and faint[: len(unstable)] == unstable
    s.select_rule(int(s.rules.index[0]))
    assert "Evidence: found again in" in s.chosen.detail(check=lambda: None).text
    view = CompareView(s, threaded=False)
    view.refresh()
    view.classes.value = (3, 8)
    view.start()
    assert view.compared is not None and view.compared.comparison.has_null
    assert "beyond resampling noise" in compare_figure(view.compared).layout.title.text
    assert NOISE in view.changes.value or view.compared.comparison.summary()["beyond null"] == \
        len(view.compared.comparison.rules) - view.compared.comparison.summary()["same"]


def test_half_samples_can_be_cancelled_in_every_miner(digits):
    """The app's Cancel raises in the progress callback: each miner calls it before every half-sample."""
    z, (x, y) = digits

    class Stop(Exception):
        pass

    def stop_at_second(stage: str, fraction: float) -> None:
        if "half-sample 2" in stage:
            raise Stop(stage)

    acts = record(z.model, (x[:300], y[:300]), ["relu3"], reduce="l1", progress=False)
    with pytest.raises(Stop, match="half-sample 2 of 4"):
        ERIC(depth=2, resamples=4).fit(acts, ["relu3"], on_progress=stop_at_second)
    d = planted_rules(n=1_000, n_rules=5, seed=1)
    with pytest.raises(Stop, match="half-sample 2 of 4"):
        ExplaiNN(resamples=4).fit(d.head, d.tail, on_progress=stop_at_second)
    with pytest.raises(Stop, match="half-sample 2 of 4"):
        PatchMiner(resamples=4, q=2).fit(z.model, x[:30], on_progress=stop_at_second)


def test_zeroing_a_rules_units_matters_more_than_random_units(digits):
    """digits-cnn's output → relu3 rules, on the test split (not mined on): zeroing a rule's tail units drops the
    probability of its classes more than zeroing as many random relu3 units, for most rules; the model is
    unchanged afterwards (its hooks come off)."""
    from nnrules.evaluation import rule_effect

    z, (x, y) = digits
    acts = record(z.model, (x, y), ["relu3"], progress=False)
    rs = trace(acts, ["relu3"], ExplaiNN(), Binarizer("mean")).rulesets[0]
    before = [p.clone() for p in z.model.parameters()]
    effects = [rule_effect(z.model, rs, i, z.test, n_random=10) for i in range(min(8, len(rs)))]
    assert np.mean([e["drop"] > e["random_drop"] + e["random_drop_std"] for e in effects]) >= 0.6
    assert all(torch.equal(a, b) for a, b in zip(before, z.model.parameters()))
    assert not any(m._forward_hooks for m in z.model.modules())
    with pytest.raises(ValueError, match="rule must be"):
        rule_effect(z.model, rs, len(rs), z.test)
    with pytest.raises(ValueError, match="n_random"):
        rule_effect(z.model, rs, 0, z.test, n_random=0)
    top = RuleSet([Rule((0,), (), 1, 0, 10, 10)], rs.head_names, rs.tail_names, rs.head_layer, rs.tail_layer)
    with pytest.raises(ValueError, match="no tail units"):  # ERIC's ⊤ → class: nothing to zero, not "drop 0"
        rule_effect(z.model, top, 0, z.test)


@pytest.mark.slow
def test_the_detail_says_what_zeroing_a_rule_does(tmp_path):
    from nnrules.widgets.state import ExplorerState

    s = ExplorerState(data_root=tmp_path, pictures=None)
    s.load_zoo("digits-cnn")
    s.mine(s.default_settings("explainn"))
    text = s.effect(0)
    assert text.startswith("zeroing its") and "random units of relu3" in text and "held-out samples" in text
    assert s.effect(0) is text  # kept for the result


def test_a_rule_never_measured_out_of_sample_says_so_instead_of_a_nan():
    """A half-sample can hold no row where a rule applies (a rare class, a small half): its interval is None (not
    NaN) and the table's sentence says it was never measured on held-out samples."""
    from nnrules.widgets.state.results import evidence_in_words

    rs = RuleSet([Rule((0,), (1,), 1, 1, 3, 3)], ["class 0"], ["t0", "t1"])
    out = with_evidence(rs, [rs, rs], lambda b, r: (0, 0))
    r = out.rules[0]
    assert r.stability == 1.0 and r.confidence_interval is None
    assert "never measured on samples it was not mined on" in evidence_in_words(r.stability, None, None, 2)
    assert evidence_in_words(0.0, None, None, 2).endswith("(not a rule resampling reproduces)")
    assert evidence_in_words(None, None, None, 0) == ""
