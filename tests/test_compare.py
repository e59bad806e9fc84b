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
    assert "head +class 3;" in changed.what and "tail +fc:4;" in changed.what and "l/k 1/1 → 1/2" in changed.what
    assert "[]" not in changed.what and "−" not in changed.what.split(";")[0]  # nothing dropped: no "−[]"
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


def test_the_app_compares_with_a_fine_tuned_copy_as_one_aligned_diff(tmp_path):
    """Issue 44: one table, a row per pair of rules (this model's left, the other's right, what changed between),
    coloured by status; every line of every cell fits its column at 1000 px (no two labels overlap: a row grows
    instead); the list never prints an empty part ("+[]")."""
    from nnrules.widgets.compare import (CHAR_PX, COLORS, COLUMNS, FINE_TUNED, CompareView, compare_figure,
                                         diff_rows)
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
    fig = compare_figure(c, width=1000)
    assert len(fig.data) == 1 and fig.data[0].type == "table"
    table = c.comparison.rules
    assert len(fig.data[0].cells.values[0]) == len(table)  # one row per pair: both models on the same rows
    assert COLORS["changed"] in fig.data[0].cells.fill.color[0]
    widths = [share / sum(w for _, w in COLUMNS) * 1000 for _, share in COLUMNS]
    for col, px in zip(fig.data[0].cells.values, widths):
        for cell in col:
            assert all(len(line) * CHAR_PX <= px for line in cell.split("<br>")), (cell, px)
    rows = diff_rows(c.comparison)
    first = [r["status"] for r in rows]
    assert first.index("same") > max(i for i, st in enumerate(first) if st != "same")  # differences first
    assert "+[]" not in view.changes.value and "−[]" not in view.changes.value and "[]" not in fig.data[0].cells.values[3]
    assert "<li>" in view.changes.value
    assert "mnist-cnn" not in view.other.options  # another input size: not offered
    assert "cannot run on this model's data" in str(pytest.raises(UserInputError, s.compare_with, "mnist-cnn").value)


def test_compare_shows_progress_and_cancel_stops_it_within_2_s(tmp_path):
    """Issue 44: while the other model trains and is mined, a progress bar moves; Cancel ends the run at its next
    epoch, batch or layer pair (≤ 2 s here) and keeps what was shown."""
    import time

    from nnrules.widgets.compare import CompareView
    from nnrules.widgets.state import ExplorerState

    s = ExplorerState(data_root=tmp_path, pictures=None, results=None)
    s.load_zoo("fashion-cnn")
    s.mine(s.default_settings("explainn"))
    view = CompareView(s, threaded=True)
    view.refresh()
    assert view.other.options[0] == "fine-tuned copy" and all(m != "cifar10-cnn" for m in view.other.options)
    seen = []
    real = view._progress
    view._progress = lambda stage, f: (seen.append((stage, f)), real(stage, f))
    view.classes.value = (0, 1)
    view.start()
    for _ in range(600):  # until the mining of the other model has begun
        if any(stage.startswith("mining it") for stage, _ in seen):
            break
        time.sleep(0.05)
    assert any(stage.startswith("training") for stage, _ in seen) and view.bar.layout.display == ""
    t = time.perf_counter()
    view.cancel()
    view.thread.join(30)
    assert time.perf_counter() - t <= 2.0, time.perf_counter() - t
    assert not view.thread.is_alive() and view.compared is None and "cancelled" in view.msg.value
    assert view.bar.layout.display == "none" and not view.button.disabled
