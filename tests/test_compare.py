"""nnrules.compare: two rule sets lined up — same, changed, only in one — and the units whose role changed."""
import pytest

import nnrules
from nnrules import Rule, RuleSet, compare


def _rs(rules, head_layer="output", tail_layer="fc"):
    return RuleSet([Rule(head=h, tail=t, head_min=l, tail_min=k, support=100, holds=c) for h, t, l, k, c in rules],
                   [f"class {i}" for i in range(4)], [f"{tail_layer}:{i}" for i in range(8)], head_layer, tail_layer)


def test_a_rule_set_compared_with_itself_matches_every_rule():
    a = _rs([((0,), (1, 2), 1, 1, 90), ((1, 2), (3,), 1, 1, 80)])
    c = compare(a, a)
    assert c.summary() == {"same": 2, "changed": 0, "only in a": 0, "only in b": 0, "units changed": 0}


def test_changes_are_named_and_unmatched_rules_listed():
    a = _rs([((0,), (1, 2), 1, 1, 90), ((1,), (3,), 1, 1, 80), ((2,), (5,), 1, 1, 70)])
    b = _rs([((0, 3), (1, 2, 4), 1, 2, 60), ((1,), (3,), 1, 1, 80), ((2,), (6,), 1, 1, 70)])
    c = compare(a, b, names=("vanilla", "tuned"))
    s = c.summary()
    assert (s["same"], s["changed"], s["only in a"], s["only in b"]) == (1, 1, 1, 1)
    changed = c.rules[c.rules.status == "changed"].iloc[0]
    assert "head +[class 3]" in changed.what and "tail +[fc:4]" in changed.what and "l/k 1/1 → 1/2" in changed.what
    assert "confidence 0.90 → 0.60" in changed.what
    roles = dict(zip(c.units.unit, c.units.change))
    assert roles["fc:5"] == "lost" and roles["fc:6"] == "gained" and roles["fc:1"] == "moved"
    assert "fc:3" not in roles  # its rule is the same on both sides
    assert "vanilla vs tuned" in repr(c)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="a must be a Flow"):
        compare([1], _rs([]))
    with pytest.raises(ValueError, match="share no layer pair"):
        compare(_rs([((0,), (1,), 1, 1, 50)]), _rs([((0,), (1,), 1, 1, 50)], tail_layer="conv"))


def test_a_model_compared_with_itself_on_real_rules(digits):
    acts = nnrules.record(digits.model, digits.train, ["relu3", "pool"], progress=False)
    flow = nnrules.trace(acts, ["relu3", "pool"], nnrules.ExplaiNN(), binarizer=nnrules.Binarizer("mean"))
    c = compare(flow, flow)
    assert c.summary()["same"] == sum(len(r) for r in flow.rulesets) > 0
    assert c.summary()["changed"] == 0 and len(c.units) == 0


def test_a_model_and_its_fine_tuned_copy_differ_where_fine_tuning_touched(digits):
    """seed 000 Sec. 3.2's reading on the zoo: digits-cnn vs a copy fine-tuned on digits 3 and 8 only."""
    tuned = nnrules.zoo.fine_tune(digits, [3, 8], epochs=3)
    assert not any(p.grad is not None for p in digits.model.parameters())
    chain = ["relu3", "pool"]
    flows = []
    for z in (digits, tuned):
        acts = nnrules.record(z.model, digits.train, chain, progress=False)
        flows.append(nnrules.trace(acts, chain, nnrules.ExplaiNN(), binarizer=nnrules.Binarizer("mean")))
    c = compare(*flows, names=("digits-cnn", "fine-tuned on 3, 8"))
    s = c.summary()
    print(f"\n{c}")
    assert s["changed"] + s["only in a"] + s["only in b"] > 0 and s["units changed"] > 0
    assert set(c.rules.status) <= {"same", "changed", "only in a", "only in b"}
    changed = c.rules[c.rules.status == "changed"]
    assert (changed["what"].str.len() > 0).all()


def test_the_app_compares_with_a_fine_tuned_copy_and_draws_both_flows(tmp_path):
    from nnrules.widgets.compare import FINE_TUNED, CompareView, compare_figure
    from nnrules.widgets.state.errors import UserInputError
    from nnrules.widgets.state.mining import MiningSettings
    from nnrules.widgets.state import ExplorerState

    s = ExplorerState(data_root=tmp_path)
    s.load_zoo("digits-cnn")
    with pytest.raises(UserInputError, match="mine this model first"):
        s.compare_with(FINE_TUNED, [3])
    s.mine(MiningSettings(["relu3", "relu2"]))
    view = CompareView(s, threaded=False)
    view.refresh()
    view.classes.value = (3, 8)
    view.start()
    c = view.compared
    assert c is not None and c.names == ("digits-cnn", "fine-tuned on 3, 8") and view.msg.value == ""
    fig = compare_figure(c)
    assert len(fig.data) == 2 and fig.data[0].domain.x[1] < fig.data[1].domain.x[0]
    colors = set(fig.data[0].link.color) | set(fig.data[1].link.color)
    assert "rgba(230,140,0,0.65)" in colors  # changed rules
    # a group drawn on both sides sits at the same height
    (na, _), (nb, _) = c.a.to_sankey(), c.b.to_sankey()
    ya = dict(zip(zip(na.layer, na.label), fig.data[0].node.y))
    yb = dict(zip(zip(nb.layer, nb.label), fig.data[1].node.y))
    shared = set(ya) & set(yb)
    assert shared and all(ya[k] == yb[k] for k in shared)
    assert "<li>" in view.changes.value
    view.other.value = "mnist-cnn"  # another input size: a message, not a crash
    view.start()
    assert "cannot run on this model&#x27;s data" in view.msg.value and "nnr-error" in view.msg.value
