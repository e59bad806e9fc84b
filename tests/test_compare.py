"""nnrules.compare: two rule sets lined up — same, changed, only in one — and the units whose role changed."""
import numpy as np
import pytest

import nnrules
from nnrules import Flow, Rule, RuleSet, compare


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
