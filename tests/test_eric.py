"""ERIC (seed 001): tree rules with negated literals, merges, the logic program, on planted data and digits-cnn."""
import json

import numpy as np
import pytest

import nnrules
from nnrules import Activations
from nnrules.miners.eric import ERIC
from nnrules.miners.eric._estimator import _merge_complementary, _tree_rules


def planted_activations(n=2000, seed=0, flip=0.0):
    """Entry layer 'k' with 6 kernels (l1 norms); the 'model' predicts class 1 iff k0 ∧ ¬k1, class 2 iff
    k2 ∧ k3 (and not class 1), else class 0."""
    rng = np.random.default_rng(seed)
    on = rng.random((n, 6)) < 0.5
    norms = np.where(on, rng.uniform(2, 3, (n, 6)), rng.uniform(0, 1, (n, 6))).astype(np.float32)
    pred = np.where(on[:, 0] & ~on[:, 1], 1, np.where(on[:, 2] & on[:, 3], 2, 0))
    if flip:
        noisy = rng.random(n) < flip
        pred[noisy] = rng.integers(0, 3, noisy.sum())
    logits = np.eye(3, dtype=np.float32)[pred]
    return Activations(values={"k": norms, "output": logits},
                       unit_names={"k": [f"k:c{i}" for i in range(6)], "output": ["class 0", "class 1", "class 2"]},
                       predictions=pred, labels=pred.copy(), class_names=["none", "one", "two"], reduce="l1")


def test_tree_finds_planted_conjunction_with_negation():
    acts = planted_activations()
    X = acts["k"] > acts["k"].mean(0)
    y = acts.predictions == 1
    rules = _tree_rules(X, y, depth=2, alpha=0.0)
    assert [(set(l), s, p) for l, s, p in rules] == [({(0, True), (1, False)}, int(y.sum()), 1.0)]
    one = _tree_rules(X, y, depth=1, alpha=0.0)  # one literal: k0 alone is right only about half the time
    assert [l for l, _, _ in one] == [((0, True),)] and one[0][2] < 0.6


def test_alpha_stops_branching_exactly():
    # 100 samples; splitting on x0 gives a child of 15 (|Q|/|P| = 0.15) that needs one more split on x1
    X = np.zeros((100, 2), bool)
    X[:15, 0] = True
    X[:10, 1] = True
    X[50:, 1] = True  # x1 alone is a poor split, so the tree splits on x0 first
    y = np.zeros(100, bool)
    y[:10] = True  # x0 ∧ x1
    y[15:20] = True  # a few positives elsewhere keep the root impure
    deep = _tree_rules(X, y, depth=3, alpha=0.14)  # 0.15 ≥ 0.14: the small child is split
    assert any(set(l) == {(0, True), (1, True)} for l, _, _ in deep)
    shallow = _tree_rules(X, y, depth=3, alpha=0.16)  # 0.15 < 0.16: it becomes a leaf (10/15 true → a rule)
    assert [(set(l), s) for l, s, _ in shallow if (0, True) in l] == [({(0, True)}, 15)]


def test_merges():
    a, b, c = (0, True), (1, True), (2, False)
    assert set(_merge_complementary([frozenset({a, b}), frozenset({a, (1, False)})])) == {frozenset({a})}
    # chained: a∧b∧c, a∧b∧¬c, a∧¬b → a
    got = _merge_complementary([frozenset({a, b, c}), frozenset({a, b, (2, True)}), frozenset({a, (1, False)})])
    assert got == [frozenset({a})]
    assert set(_merge_complementary([frozenset({a}), frozenset({b})])) == {frozenset({a}), frozenset({b})}


def test_program_recovers_planted_rules_and_replays_the_model():
    acts = planted_activations()
    e = ERIC(depth=3, alpha=0.01).fit(acts, ["k"])
    text = {e.describe(r) for r in e.program_}
    assert "k:c0 ∧ ¬k:c1 → class 1" in text
    assert e.fidelity(acts) == 1.0 and e.accuracy(acts) == 1.0
    test = planted_activations(seed=1)
    assert e.fidelity(test) == 1.0
    # identical antecedents for two kernels merge into one rule with both consequents
    acts2 = planted_activations()
    acts2.values["h"] = np.stack([acts2["k"][:, 0] * (acts2["k"][:, 1] < 1.5)] * 2, 1).astype(np.float32)
    acts2.unit_names["h"] = ["h:0", "h:1"]
    e2 = ERIC(depth=2).fit(acts2, ["h", "k"])
    hr = [r for r in e2.program_ if r.upper == "h"]
    assert len(hr) == 1 and hr[0].consequent == (0, 1) and set(hr[0].antecedent) == {(0, True), (1, False)}
    # the program infers h from k (eq. 2), then the output from h
    b = e2.infer(acts2)
    assert set(b) == {"k", "h", "output"} and (b["h"][:, 0] == b["h"][:, 1]).all()


def test_labels_readable_forms_and_noise():
    acts = planted_activations(flip=0.1)
    e = ERIC(depth=3, labels={"k:c0": "wheel", "k:c1": "sky"}).fit(acts, ["k"])
    assert "wheel ∧ ¬sky → class 1" in {e.describe(r) for r in e.program_}
    df = e.to_frame()
    assert {"rule", "antecedent", "consequent", "length", "support", "precision"} <= set(df.columns)
    assert json.loads(e.to_json())["rules"][0]["rule"] == df["rule"].iloc[0]
    assert e.size_ == df["length"].sum() and e.variables_ <= 12
    (rs,) = e.rulesets_
    assert {rs.describe(r) for r in rs} == set(df["rule"]) and rs.head_layer == "output" and rs.tail_layer == "k"
    assert type(rs).from_json(rs.to_json()).rules == rs.rules
    assert 0.85 < e.fidelity(acts) < 1.0  # 10% of the predictions are random


@pytest.mark.parametrize("kw, match", [({"depth": 0}, "depth"), ({"alpha": 1.0}, "alpha"),
                                       ({"alpha": -0.1}, "alpha")])
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        ERIC(**kw).fit(planted_activations(n=50), ["k"])


def test_bad_activations(digits):
    acts = nnrules.record(digits.model, digits.test, ["relu3"], reduce="max", progress=False)
    with pytest.raises(ValueError, match="reduce='l1'"):
        ERIC().fit(acts, ["relu3"])
    l1 = nnrules.record(digits.model, digits.test, ["relu3"], reduce="l1", progress=False)
    with pytest.raises(ValueError, match="not recorded"):
        ERIC().fit(l1, ["relu2"])
    with pytest.raises(ValueError, match="at least one layer"):
        ERIC().fit(l1, ["output"])
    e = ERIC().fit(l1, ["relu3"])
    with pytest.raises(ValueError, match="entry layer 'relu3'"):
        e.predict(nnrules.record(digits.model, digits.test, ["relu2"], reduce="l1", progress=False))


@pytest.mark.slow
def test_on_digits_cnn(digits):
    layers = ["relu3", "pool"]
    tr = nnrules.record(digits.model, digits.train, layers, reduce="l1", class_names=digits.class_names, progress=False)
    te = nnrules.record(digits.model, digits.test, layers, reduce="l1", class_names=digits.class_names, progress=False)
    chance = np.bincount(te.predictions).max() / te.n_samples
    for chain in (["relu3"], ["pool"], ["relu3", "pool"]):
        fid = [ERIC(depth=d).fit(tr, chain).fidelity(tr) for d in range(1, 6)]
        assert all(b >= a for a, b in zip(fid, fid[1:])), (chain, fid)  # deeper trees: not less faithful
        assert fid[-1] > 3 * chance
    e = ERIC(depth=5).fit(tr, ["relu3"])
    assert e.fidelity(te) > 0.85 and e.accuracy(te) > 0.85  # chance is about 0.11


def test_multiclass_output_tree_recovers_the_planted_program():
    acts = planted_activations()
    e = ERIC(depth=4, output="multiclass").fit(acts, ["k"])  # k0 ∧ ¬k1 ∧ k2 ∧ k3 paths need 4
    assert e.fidelity(acts) == 1.0
    # every sample meets exactly one class rule (the tree's leaves partition the data)
    b = e.infer(acts)["k"]
    fired = sum(ERIC._holds(b, r.antecedent).astype(int) for r in e.program_ if r.upper == "output")
    assert (fired == 1).all()
    assert json.loads(e.to_json())["output"] == "multiclass"
    with pytest.raises(ValueError, match="output"):
        ERIC(output="multi").fit(acts, ["k"])


def test_subset_reads_a_model_as_fewer_classes():
    acts = planted_activations()
    acts.values["output"] = acts.values["output"] + np.arange(3, dtype=np.float32) * 0.1  # ties broken
    sub = acts.subset(acts.labels != 0, classes=[2, 1])
    assert sub.class_names == ["two", "one"] and sub.unit_names["output"] == ["class 2", "class 1"]
    keep = acts.labels != 0
    want = np.where(acts.values["output"][keep][:, 2] >= acts.values["output"][keep][:, 1], 0, 1)
    assert (sub.predictions == want).all() and (sub.labels == np.where(acts.labels[keep] == 2, 0, 1)).all()
    assert sub["k"].shape == (keep.sum(), 6)
    assert (acts.subset(classes=[1]).labels[acts.labels != 1] == -1).all()  # other classes: unlabelled
    for bad in ([], [0, 0], [3]):
        with pytest.raises(ValueError, match="classes"):
            acts.subset(classes=bad)
    with pytest.raises(ValueError, match="rows"):
        acts.subset(np.ones(3, bool))


def test_table1_protocol_on_digits_cnn(digits):
    """Seed 001 Table 1's setting (3 of 5 classes, entry at the pooled last conv layer, d=5, α=0.01): the
    program is far above chance on held-out data, below the model (a gap like the paper's ~10 points)."""
    tr = nnrules.record(digits.model, digits.train, ["pool"], reduce="l1", class_names=digits.class_names,
                        progress=False)
    te = nnrules.record(digits.model, digits.test, ["pool"], reduce="l1", class_names=digits.class_names,
                        progress=False)
    cls = (0, 1, 3)
    a, b = tr.subset(np.isin(tr.labels, cls), classes=cls), te.subset(np.isin(te.labels, cls), classes=cls)
    for output in ("one-vs-rest", "multiclass"):
        e = ERIC(depth=5, alpha=0.01, output=output).fit(a, ["pool"])
        assert 0.75 < e.accuracy(b) < b.accuracy() and e.size_ < 200


def _clingo_classes(program: str, n: int) -> tuple[np.ndarray, int]:
    """Solve ``program`` with clingo: (n, classes) truth of class(S, C) in its stable model(s), model count."""
    clingo = pytest.importorskip("clingo")
    ctl = clingo.Control(["--models=0", "--warn=none"])
    ctl.add("base", [], program)
    ctl.ground([("base", [])])
    found, models = [], 0
    with ctl.solve(yield_=True) as handle:
        for model in handle:
            models += 1
            found = [(a.arguments[0].number, a.arguments[1].number) for a in model.symbols(shown=True)]
    out = np.zeros((n, 16), bool)
    for s, c in found:
        out[s, c] = True
    return out, models


@pytest.mark.parametrize("chain", [["relu3"], ["relu3", "pool"]])
def test_the_program_solved_by_clingo_derives_exactly_what_infer_derives(digits, chain):
    te = nnrules.record(digits.model, digits.test, chain, reduce="l1", class_names=digits.class_names, progress=False)
    tr = nnrules.record(digits.model, digits.train, chain, reduce="l1", class_names=digits.class_names, progress=False)
    e = ERIC(depth=5).fit(tr, chain)
    asp = e.to_asp(te)
    derived, models = _clingo_classes(asp, te.n_samples)
    assert models == 1  # stratified: one stable model
    inferred = e.infer(te)["output"]
    assert np.array_equal(derived[:, : inferred.shape[1]], inferred) and not derived[:, inferred.shape[1]:].any()
    share = e.decisions(te)
    assert share["one"] + share["none"] + share["several"] == pytest.approx(1.0)
    assert share["one"] == pytest.approx(float((inferred.sum(1) == 1).mean()))
    print(f"\n{chain}: the program decides {share['one']:.0%} (none {share['none']:.0%}, several "
          f"{share['several']:.0%}); fidelity {e.fidelity(te):.3f}")
    # the program alone, without facts, grounds to nothing derived; the Prolog text has a clause per consequent
    assert _clingo_classes(e.to_asp(), 1)[0].sum() == 0
    clauses = [l for l in e.to_prolog().splitlines() if l.startswith("on(")]
    assert len(clauses) == sum(len(r.consequent) for r in e.program_)
    assert all(":- sample(S)" in c for c in clauses) and ("\\+ on(" in e.to_prolog()) == any(
        not v for r in e.program_ for _, v in r.antecedent)


def test_the_program_text_quotes_odd_layer_names():
    acts = planted_activations(400)
    acts = Activations(values={'fe"at.3': acts.values["k"], "output": acts.values["output"]},
                       unit_names={'fe"at.3': acts.unit_names["k"], "output": acts.unit_names["output"]},
                       predictions=acts.predictions, class_names=acts.class_names, reduce="l1")
    e = ERIC(depth=3).fit(acts, ['fe"at.3'])
    derived, models = _clingo_classes(e.to_asp(acts), acts.n_samples)
    assert models == 1 and np.array_equal(derived[:, :3], e.infer(acts)["output"])


HOSTILE = ["ok\n:- initialization(shell('touch /tmp/nnrules-pwned')).\n%",
           "cat\r#script (python)\nimport os\nos.system('true')\n#end.",
           "dog\u2028:- halt.", "tab\there\x0bvt"]


def test_exported_programs_keep_every_name_inside_a_comment_or_a_quote():
    """Class names come from folder names a visitor chooses, kernel labels from a user: a newline (or any line
    separator) in one must not end the comment or the quoted name it is written in and start program text — a
    Prolog directive that runs a shell command, an ASP script block. Every exported line is program text nnrules
    wrote or a comment; clingo derives the same classes as ``infer``."""
    acts = planted_activations(400)
    names = HOSTILE[:3]
    acts = Activations(values={"k\n:- halt.": acts.values["k"], "output": acts.values["output"]},
                       unit_names={"k\n:- halt.": acts.unit_names["k"], "output": acts.unit_names["output"]},
                       predictions=acts.predictions, class_names=names, reduce="l1")
    e = ERIC(depth=3, labels={acts.unit_names["k\n:- halt."][0]: HOSTILE[3] + "\n#script (lua) #end."}).fit(
        acts, ["k\n:- halt."])
    allowed = ("% ", "on(", "class(", "sample(", ":- dynamic ", ":- discontiguous ", "#show class/2.")
    for text in (e.to_prolog(acts), e.to_asp(acts)):
        lines = text.splitlines()
        assert lines and all(line.startswith(allowed) for line in lines), [l for l in lines if not l.startswith(allowed)]
        assert not any("\u2028" in line or "\x0b" in line or "\r" in line for line in lines)
        assert sum(line.startswith(":-") for line in lines) == (3 if "dynamic" in text else 0)
    derived, models = _clingo_classes(e.to_asp(acts), acts.n_samples)
    assert models == 1 and np.array_equal(derived[:, :3], e.infer(acts)["output"])
