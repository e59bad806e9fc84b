"""The explorer's state model and panels, without a browser (the browser test is test_browser.py)."""
import datetime
import io
import json
import re
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from plotly.callbacks import Points

import nnrules.widgets.state.loading as state_mod
from conftest import hook_count
from nnrules.widgets import Explorer, ExplorerState, MiningSettings, UserInputError
from nnrules.widgets.state import Cancelled
from nnrules.widgets.views import sankey_figure

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def mined():
    s = ExplorerState(prototype_steps=30)
    s.load_zoo("digits-cnn")
    stages = []
    s.mine(MiningSettings(["relu2", "relu3"]), progress=lambda st, f: stages.append((st, f)))
    s.stages = stages
    return s


def test_model_and_layers(mined):
    assert mined.model_name == "digits-cnn" and mined.accuracy > 0.95
    assert mined.chainable_layers()[:3] == ["relu3", "fc1", "pool"]  # no logits (fc2), no Flatten
    assert mined.default_chain() == ["relu3", "relu2"]
    assert mined.check_chain(["relu2", "output", "relu3"]) == ["relu3", "relu2"]  # output side first


@pytest.mark.parametrize("layers, reduce, match", [
    ([], "max", "at least one layer"),
    (["relu9"], "max", r"cannot be mined: pick from \['relu3'"),
    (["pool", "flatten"], "max", "cannot be mined"),  # Flatten is not offered: its units are pool's
    (["relu2"], "median", "reduction"),
])
def test_layer_choices_that_cannot_be_chained(mined, layers, reduce, match):
    with pytest.raises(UserInputError, match=match):
        mined.check_chain(layers, reduce)


def test_too_many_units_says_what_to_do(mined, monkeypatch):
    monkeypatch.setattr(state_mod, "MAX_UNITS", 1000)
    with pytest.raises(UserInputError, match=r"2048 units.*reduction 'max'"):
        mined.check_chain(["relu2"], "none")


def test_mining_results_and_progress(mined):
    assert mined.flow.layers == ["output", "relu3", "relu2"]
    assert len(mined.rules) == sum(len(rs) for rs in mined.flow.rulesets) > 10
    assert mined.rules["id"].tolist() == list(range(len(mined.rules)))
    stages = [st for st, _ in mined.stages]
    assert stages[0] == "record" and "mine output → relu3" in stages and "mine relu3 → relu2" in stages
    assert stages[-1] == "done"
    rec = [f for st, f in mined.stages if st == "record"]
    assert rec == sorted(rec) and rec[-1] == 1.0
    # the first pair's rule classes are its head classes
    first = mined.rules[mined.rules["pair"] == 0].iloc[0]
    assert first["classes"] == sorted(h.removeprefix("class ") for h in first["head"])


def test_cancel_keeps_previous_results_and_removes_hooks(mined):
    before = mined.rules.copy()
    stop = threading.Event()

    def progress(stage, frac):
        if stage == "record" and frac > 0.3:
            stop.set()
    with pytest.raises(Cancelled):
        mined.mine(MiningSettings(["relu3"]), progress=progress, cancel=stop)
    assert hook_count(mined.model) == 0
    pd.testing.assert_frame_equal(mined.rules, before)


@pytest.mark.parametrize("settings, match", [
    (MiningSettings(["relu3"], binarize="median"), "binarization"),
    (MiningSettings(["relu3"], binarize="quantile", binarize_params={"q": 1.5}), "q must be"),
    (MiningSettings(["relu3"], params={"theta": 1.0}), "theta"),
    (MiningSettings(["relu3"], params={"mu": -1}), "mu"),
])
def test_bad_thresholds(mined, settings, match):
    with pytest.raises(UserInputError, match=match):
        mined.mine(settings)


def test_table_filters_sorts_and_exports(mined):
    df = mined.rules_table(cls="3", min_size=2, sort_by="confidence")
    assert len(df) and all("3" in c for c in df["classes"]) and (df["tail_size"] >= 2).all()
    assert df["confidence"].is_monotonic_decreasing
    layer = mined.rules_table(layer="relu2")
    assert set(layer["tail_layer"]) == {"relu2"} and len(layer) < len(mined.rules)
    csv = pd.read_csv(io.StringIO(mined.export("csv", df)))
    assert csv["id"].tolist() == df["id"].tolist() and csv["support"].tolist() == df["support"].tolist()
    records = json.loads(mined.export("json"))
    assert len(records) == len(mined.rules) and records[0]["tail"] == mined.rules["tail"].iloc[0]
    with pytest.raises(UserInputError, match="csv"):
        mined.export("xlsx")


def test_links_and_sankey_index_map(mined):
    for j in range(len(mined.links)):
        mined.select_link(j)
        row, link = mined.rules.iloc[mined.selected_rule], mined.links.iloc[j]
        assert (row["pair"], row["rule"]) == (link["pair"], link["rule"])
    fig, rule_ids, node_ids = sankey_figure(mined, max_rules=10)
    shown = mined.rules.nlargest(10, "support")["id"]
    assert set(rule_ids) == set(shown)
    sk = fig.data[0]
    n_links = len(sk.link.source)
    assert n_links == len(rule_ids) and min(sk.link.source + sk.link.target) >= n_links
    assert len(sk.node.label) == n_links + len(node_ids)
    # a click index below the number of links is a link (a rule), above it a group
    from nnrules.widgets.views import FlowView
    got = []
    view = FlowView(mined, lambda r: got.append(("rule", r)), lambda n: got.append(("node", n)), max_rules=10)
    view.refresh()
    view._sankey_click(None, Points(point_inds=[0], trace_index=0), None)
    view._sankey_click(None, Points(point_inds=[n_links + 1], trace_index=0), None)
    assert got == [("rule", rule_ids[0]), ("node", node_ids[1])]


def _png(data: bytes) -> np.ndarray:
    assert data.startswith(PNG)
    return np.asarray(Image.open(io.BytesIO(data)))


def test_rule_detail_pictures(mined):
    rid = int(mined.rules_table(layer="relu2").iloc[0]["id"])
    mined.select_rule(rid)
    d = mined.detail()
    row = mined.rules.iloc[rid]
    assert "relu2" in d.title and d.errors == {}
    assert _png(d.prototype).shape[2] == 3
    assert len(d.exemplars) == 8
    # the exemplars are the samples where the tail group is most active
    score = mined.activations["relu2"][:, row["tail_idx"]].sum(1)
    top = int(np.argmax(score))
    assert d.exemplar_labels[0].startswith(f"#{top} ")
    assert sorted(d.heatmaps) == sorted(["LRP (epsilon_gamma_box) · class "
                                          + mined.class_names[mined.activations.predictions[top]],
                                          "LRP (epsilon_gamma_box) · group", "Grad-CAM · group",
                                          "Grad-CAM · class " + mined.class_names[mined.activations.predictions[top]],
                                          "where the units fire"])  # relu2 is a conv layer: its units on the image
    maps = {k: _png(v) for k, v in d.heatmaps.items()}
    assert all(m.std() > 0 for m in maps.values())  # not blank
    mined.select_exemplar(3)
    d3 = mined.detail()
    assert d3.text != d.text and d3.heatmaps != d.heatmaps


def test_node_detail_for_class_group(mined):
    out = mined.nodes[mined.nodes["layer"] == "output"].index[0]
    mined.select_node(int(out))
    d = mined.detail()
    assert d.prototype.startswith(PNG) and "output" in d.title
    with pytest.raises(UserInputError, match="no group"):
        mined.select_node(10_000)


def test_eric_and_patch_miners_in_the_same_views():
    s = ExplorerState(prototype_steps=10)
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(["relu3"], miner="eric", params={"depth": 4}))
    assert s.activations.reduce == "l1" and s.summary.startswith("ERIC program: fidelity")
    assert len(s.rules) > 0 and all(" → class " in t for t in s.rules["text"])
    negated = s.rules[s.rules["text"].str.contains("¬")].iloc[0]
    s.select_rule(int(negated["id"]))
    layer, units, _ = s.chosen._group(*s.selection()[:2])  # the pictures show the kernels that must be on, not the negated ones
    assert units and all(not s.activations.unit_names[layer][u] in {n[1:] for n in negated["tail"] if n[0] == "¬"}
                         for u in units)
    assert s.detail().prototype.startswith(PNG)
    s.mine(MiningSettings(["relu2"], miner="patches", params={"min_support": 0.5, "q": 3}))
    assert s.flow.layers == ["output", "relu2"] and set(s.rules["classes"].map(len)) == {1}
    assert (s.rules.groupby(s.rules["classes"].map(tuple)).size() <= 3).all()
    s.select_rule(0)
    assert s.detail().errors == {}
    with pytest.raises(UserInputError, match="exactly one conv layer"):
        s.mine(MiningSettings(["relu3"], miner="patches"))
    with pytest.raises(UserInputError, match="depth must be"):
        s.mine(MiningSettings(["relu3"], miner="eric", params={"depth": 0}))
    with pytest.raises(UserInputError, match="unknown miner"):
        s.mine(MiningSettings(["relu3"], miner="apriori"))


def test_user_files_good_and_bad(tmp_path, digits):
    s = ExplorerState(data_root=tmp_path)
    bad = tmp_path / "notes.pt"
    bad.write_text("not a model")
    with pytest.raises(UserInputError, match="neither a TorchScript"):
        s.load_files(str(bad), str(tmp_path))
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    model = tmp_path / "digits.pt"
    torch.save(digits.model.state_dict(), model)
    pickled = tmp_path / "pickled.pt"
    torch.save(digits.model, pickled)
    with pytest.raises(UserInputError, match="never runs code from a file"):  # the app never unpickles
        s.load_files(str(pickled), str(empty))
    with pytest.raises(UserInputError, match="choose the architecture"):
        s.load_files(str(model), str(empty))
    with pytest.raises(UserInputError, match="not run from the dashboard"):
        s.load_files(str(model), str(empty), architecture="os:system")
    with pytest.raises(UserInputError, match="no images"):
        s.load_files(str(model), str(empty), architecture="digits-cnn")
    with pytest.raises(UserInputError, match="model file"):
        s.load_files("", str(empty))
    # a real folder: test digits written as 8×8 grey PNGs, one sub-folder per digit
    x, y = digits.test.tensors
    for i in range(60):
        (tmp_path / "imgs" / str(int(y[i]))).mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i, 0].numpy() * 255).round().astype(np.uint8)).save(
            tmp_path / "imgs" / str(int(y[i])) / f"{i}.png")
    with pytest.raises(UserInputError, match="does not run"):
        s.load_files(str(model), str(tmp_path / "imgs"), size=12, architecture="digits-cnn")  # 8×8 model
    assert s.model is None
    s.load_files(str(model), str(tmp_path / "imgs"), architecture="digits-cnn")
    assert s.inputs.shape == (60, 1, 8, 8) and s.class_names == [str(c) for c in range(10)]
    assert s.accuracy >= 0.9  # the images are read back as the model saw them (grey, [0, 1])
    s.mine(MiningSettings(["relu3"]))
    assert len(s.rules) > 0
    # a saved data set file instead of a folder
    torch.save((x[:50], y[:50]), tmp_path / "data.pt")
    s.load_files(str(model), str(tmp_path / "data.pt"), architecture="digits-cnn")
    assert s.inputs.shape == (50, 1, 8, 8) and s.accuracy >= 0.9
    with warnings.catch_warnings():  # torch deprecates TorchScript; users still have such files
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(digits.model), tmp_path / "script.pt")
    with pytest.raises(UserInputError, match="TorchScript"):
        s.load_files(str(tmp_path / "script.pt"), str(tmp_path / "data.pt"))
    torch.save({"x": x}, tmp_path / "wrong.pt")
    with pytest.raises(UserInputError, match="must hold a pair"):
        s.load_files(str(model), str(tmp_path / "wrong.pt"), architecture="digits-cnn")


def test_app_headless_flow(tmp_path):
    app = Explorer(threaded=False)
    assert app.mine_panel.layers.value == ("relu3", "relu2")
    assert app.detail.pictures.layout.display == "none"  # no empty "Top exemplars" box before a selection
    app.mine_panel.start()
    assert "rules over 2 layer pairs" in app.mine_panel.stage.value
    assert len(app.flow.sankey.data[0].link.source) > 0 and app.flow.sankey.data[0].visible
    assert not app.flow.sankey.layout.annotations  # the "press Mine" placeholder is gone
    rid = app.table.choose.options[0][1]
    app.table.choose.value = rid  # choose in the table → the dropdown and the detail follow
    assert app.flow.rule.value == rid and app.state.selected_rule == rid
    assert any("nnr-prototype" in c._dom_classes for c in app.detail.prototype.children)
    assert app.detail.pictures.layout.display == ""
    assert len(app.detail.heatmaps.children) == 6  # 4 maps, where the conv group fires, the colour legend
    assert app.detail.legend in app.detail.heatmaps.children[-1].children
    assert "for the target" in app.detail.legend.value and "nnr-legend" in app.detail.legend.value
    from nnrules.widgets.detail import EXEMPLAR_WIDTH, HEATMAP_WIDTH
    cards = app.detail.exemplars.children  # one width per kind of picture, whatever the caption's length
    assert len(cards) == 8 and {c.layout.width for c in cards} == {c.children[0].layout.width for c in cards} \
        == {EXEMPLAR_WIDTH}
    assert {c.layout.width for c in app.detail.heatmaps.children[:-1]} == {HEATMAP_WIDTH}
    app.table.cls.value = "7"
    assert all("7" in app.state.rules.iloc[v]["classes"] for _, v in app.table.choose.options)
    assert "rules.csv" in app.table.export.value
    # bad input: a visible message, the app keeps its model and results
    app.model_panel.source.value = "files"
    app.model_panel.model_path.value = str(tmp_path / "missing.pt")
    app.model_panel.data_path.value = str(tmp_path)
    assert not app.model_panel.run_load()
    assert "must be inside the app" in app.model_panel.msg.value and app.state.model_name == "digits-cnn"
    assert "nonexistent" not in app.model_panel.msg.value  # paths outside the root are never echoed
    assert "flatten" not in app.mine_panel.layers.options  # a pair with no new units cannot even be chosen
    assert len(app.state.rules) > 0
    # another miner in the same views
    app.mine_panel.miner.value = "eric"
    boxes = app.mine_panel.param_boxes
    assert boxes["eric"].widget.layout.display == "" and boxes["explainn"].widget.layout.display == "none"
    assert app.mine_panel.uses["binarizer"].layout.display == "none"  # ERIC quantises by itself
    app.mine_panel.layers.value = ("relu3",)
    app.mine_panel.start()
    assert "ERIC program" in app.mine_panel.stage.value and " → class " in app.flow.rule.options[0][0]


def test_app_mines_in_a_thread():
    app = Explorer(threaded=True)
    app.model_panel.jobs.wait(120)  # the model loads in a background job too
    app.mine_panel.layers.value = ("relu3",)
    app.mine_panel.start()
    app.mine_panel.thread.join(60)
    assert "over 1 layer pair. " in app.mine_panel.stage.value and not app.mine_panel.mine.disabled


def test_panels_come_from_the_registry():
    """Every registered miner has a choice and a parameter box whose inputs are its declared parameters."""
    from nnrules.registry import MINERS

    app = Explorer(model=None)
    assert [v for _, v in app.mine_panel.miner.options] == list(MINERS)
    for entry in MINERS.entries():
        box = app.mine_panel.param_boxes[entry.name]
        assert list(box.inputs) == [p.name for p in entry.params if p.ui]
        for p in box.params:
            assert box.inputs[p.name].tooltip == p.help
    eric = app.mine_panel.param_boxes["eric"]
    eric.inputs["depth"].value = 3
    assert eric.values()["depth"] == 3
    nc = app.mine_panel.param_boxes["patches"]
    nc.inputs["size"].value = ""  # an optional parameter left empty is None (its default meaning)
    assert nc.values()["size"] is None


def test_local_chain_in_the_app():
    """NeuroChains through the registry: classes instead of layers, kept filters as Sankey nodes whose click
    shows the filter's pictures."""
    app = Explorer(threaded=False, state=ExplorerState(prototype_steps=10))
    mp = app.mine_panel
    mp.miner.value = "neurochains"
    assert mp.layers.layout.display == "none" and mp.class_box.layout.display == ""
    mp.classes.value = ()
    mp.start()
    assert "choose one or more classes" in mp.msg.value
    mp.classes.value = (3, 8)
    mp.samples.value = 5
    mp.start()
    s = app.state
    assert "NeuroChains:" in mp.stage.value and s.flow is None and len(s.nodes) > 0 and s.rules.empty
    assert app.flow.rule.layout.display == "none"  # no rule chooser for a chain
    kept, total = s.miner.size_
    assert len(s.nodes) == kept < total
    assert set(s.nodes["layer"]) <= set(s.activations.layers)
    fig_links = app.flow.sankey.data[0].link.source
    assert len(fig_links) == min(len(s.links), app.flow.max_rules.value)
    node = len(app.flow.rule_ids)  # the first real node after the link placeholders
    app.flow._sankey_click(None, type("P", (), {"point_inds": [node]})(), None)
    assert s.selected_node == app.flow.node_ids[0]
    assert app.detail.prototype.children and "Group" in app.detail.title.value
    if len(s.links):
        app.flow._sankey_click(None, type("P", (), {"point_inds": [0]})(), None)  # a link: its target filter
        assert s.selected_node == int(s.links["target"].iloc[app.flow.link_rows[0]])


def test_the_app_reads_only_under_its_data_root(tmp_path, digits):
    root, outside = tmp_path / "root", tmp_path / "secret"
    (root / "imgs" / "a").mkdir(parents=True)
    outside.mkdir()
    torch.save(digits.model.state_dict(), outside / "weights.pt")
    torch.save(digits.model.state_dict(), root / "weights.pt")
    (outside / "passwd").write_text("root:x:0:0")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "imgs" / "a" / "loop").symlink_to(root / "imgs", target_is_directory=True)  # a cycle
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "imgs" / "a" / "0.png")
    s = ExplorerState(data_root=root)
    for path in ("../secret/weights.pt", str(outside / "weights.pt"), "link/weights.pt", "/etc/passwd",
                 "imgs/../../secret/passwd"):
        with pytest.raises(UserInputError, match="inside the app's data folder") as err:
            s.load_files(path, "imgs", architecture="digits-cnn")
        assert "secret" not in str(err.value) and "etc" not in str(err.value)
        with pytest.raises(UserInputError, match="inside the app's data folder"):
            s.load_files("weights.pt", path, architecture="digits-cnn")
    with pytest.raises(UserInputError, match="does not exist in the data folder"):
        s.load_files("nothing.pt", "imgs", architecture="digits-cnn")
    marker = tmp_path / "pwned"  # a file whose unpickling would run a shell command

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))
    torch.save({"w": Evil()}, root / "evil.pt")
    for arch in ("", "digits-cnn", "resnet18"):
        with pytest.raises(UserInputError, match="never runs code from a file"):
            s.load_files("evil.pt", "imgs", architecture=arch)
    assert not marker.exists()
    s.load_files("weights.pt", "imgs", architecture="digits-cnn")  # the link cycle is not followed
    assert s.inputs.shape == (1, 1, 8, 8)
    assert all("secret" not in p and "link" not in p for p in s.data_root.listing())


def test_mixed_sizes_are_resized_and_transparency_is_white(tmp_path, digits):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(tmp_path / "imgs" / "a" / "wide.png")
    Image.fromarray(np.zeros((30, 30, 4), np.uint8)).save(tmp_path / "imgs" / "a" / "clear.png")  # transparent
    torch.save(digits.model.state_dict(), tmp_path / "w.pt")
    s = ExplorerState(data_root=tmp_path)
    with pytest.raises(UserInputError, match="differ in size"):
        s.load_files("w.pt", "imgs", architecture="digits-cnn")
    s.load_files("w.pt", "imgs", size=8, architecture="digits-cnn")
    assert s.inputs.shape == (2, 1, 8, 8)
    assert float(s.inputs[0].min()) == 1.0  # clear.png (sorted first): white, not black


def test_a_layer_pair_without_rules_gives_a_valid_view():
    """digits-cnn with "On when = positive" finds no rules for relu3 → relu2: the views still draw."""
    from nnrules.widgets.views import graph_figure, sankey_figure

    s = ExplorerState()
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(["relu3", "relu2"], binarize="positive"))
    assert [len(rs) > 0 for rs in s.flow.rulesets] == [True, False]
    assert s.rules["support"].dtype.kind == "i"
    fig, rule_ids, _ = sankey_figure(s)
    graph_figure(s)
    assert len(rule_ids) == len(s.rules)


def test_cancel_during_the_last_layer_pair_keeps_the_old_results(mined):
    before = mined.rules.copy()
    stop = threading.Event()

    def progress(stage, fraction):
        if stage.startswith("mine relu3 → relu2"):  # the last pair has begun: cancel now
            stop.set()
    with pytest.raises(Cancelled):
        mined.mine(MiningSettings(["relu3", "relu2"]), progress=progress, cancel=stop)
    pd.testing.assert_frame_equal(mined.rules, before)


def test_load_is_disabled_while_mining():
    app = Explorer(threaded=True)
    app.model_panel.jobs.wait(120)
    app.mine_panel.layers.value = ("relu3", "relu2")
    app.mine_panel.start()
    assert app.model_panel.load.disabled and app.mine_panel.miner.disabled and app.mine_panel.mine.disabled
    app.mine_panel.thread.join(120)
    assert not app.model_panel.load.disabled and not app.mine_panel.mine.disabled


def test_sankey_nodes_sit_in_their_layers_column(mined):
    from nnrules.widgets.views import sankey_figure

    fig, rule_ids, node_ids = sankey_figure(mined)
    xs = fig.data[0].node.x  # plotly.js matches positions to the linked (real) nodes: no placeholders
    assert len(xs) == len(node_ids)
    layers = mined.view_layers
    assert layers == ["output", "relu3", "relu2"]
    by_layer: dict = {}
    for nid, x in zip(node_ids, xs):
        by_layer.setdefault(mined.nodes["layer"].iloc[nid], set()).add(round(x, 6))
    assert {l: len(v) for l, v in by_layer.items()} == {l: 1 for l in by_layer}  # one x per layer
    order = sorted(by_layer, key=lambda l: next(iter(by_layer[l])))
    assert order == [l for l in layers if l in by_layer]  # output, then relu3, then relu2, left to right


@pytest.mark.parametrize("miner, layers, params", [("explainn", ["relu3"], {}), ("eric", ["relu3"], {"depth": 4}),
                                                    ("patches", ["relu2"], {"q": 3})])
def test_a_rules_exemplars_are_samples_where_it_holds(miner, layers, params):
    """"→ class 1" must not show 4s and 5s: for rules from the classes, every exemplar is predicted as one of
    the rule's classes (and, for ExplaiNN, has the rule's tail on)."""
    s = ExplorerState(prototype_steps=5)
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(layers, miner=miner, params=params))
    checked = 0
    for rid in s.rules.index[:6]:
        row = s.rules.loc[rid]
        s.select_rule(int(rid))
        holds = s.chosen._holding(s.selected_rule)
        assert holds is not None and len(holds) > 0
        d = s.detail()
        shown = [int(lbl.split()[0][1:]) for lbl in d.exemplar_labels]
        assert set(shown) <= set(holds.tolist()) and "where the rule holds" in d.text
        preds = {s.class_names[p] for p in s.activations.predictions[shown]}
        assert preds <= set(row["classes"]), (row["text"], preds)
        if miner == "patches":  # each exemplar shows where the rule's patch lies: a frame in the outline colour
            assert "patches outlined" in d.text
            boxes = s.chosen._patch_boxes(int(rid))
            for png, i in zip(d.exemplars, shown):
                img = _png(png)
                scale = img.shape[0] // s.inputs.shape[-2]
                top, left, size = boxes[i][0]
                frame = img[top * scale, left * scale: (left + size) * scale - 1]
                assert (frame == (255, 200, 0)).all(), (i, boxes[i])
        checked += 1
    assert checked > 0


def test_loading_runs_in_the_background_and_cancel_keeps_the_previous_model():
    """Load is a background job: the kernel's main thread returns at once (the page stays live), Mine is off
    while it runs, a second click is refused, and Cancel keeps the model that was there."""
    import threading

    app = Explorer(threaded=True)
    app.model_panel.jobs.wait(120)
    before = app.state.model
    gate = threading.Event()
    real = app.state.load_zoo

    def slow_load(name, check, progress=None):
        gate.wait(30)  # a load that takes as long as the test wants
        return real(name, check=check, progress=progress)

    app.state.load_zoo = slow_load
    assert app.model_panel.run_load()
    assert app.model_panel.jobs.busy and app.model_panel.load.disabled and app.mine_panel.mine.disabled
    assert not app.model_panel.run_load()  # a second click while loading does nothing
    assert "loading" in app.model_panel.msg.value
    app.model_panel.cancel_button.click()
    gate.set()
    app.model_panel.jobs.wait(60)
    assert app.state.model is before and "cancelled" in app.model_panel.msg.value
    assert not app.model_panel.load.disabled and not app.mine_panel.mine.disabled


def test_a_zoo_model_that_trains_shows_its_epochs_and_cancel_stops_the_training(tmp_path, monkeypatch):
    """First use of a zoo model (empty cache): the load panel's bar moves per epoch and names it; Cancel
    between epochs stops the training, caches nothing and keeps the previous model."""
    monkeypatch.setenv("NNRULES_CACHE", str(tmp_path))
    app = Explorer(model=None, threaded=False)
    shown = []
    app.model_panel.msg.observe(lambda c: shown.append(c["new"]), names="value")
    bars = []
    app.model_panel.bar.observe(lambda c: bars.append(c["new"]), names="value")
    assert app.model_panel.run_load()
    epochs = [t for t in shown if "epoch" in t]
    assert "epoch 0 of 40" in epochs[0] and "epoch 40 of 40" in epochs[-1] and len(epochs) == 41
    assert bars == sorted(bars) and bars[-1] == 1.0
    assert app.model_panel.bar.layout.display == "none" and app.state.model_name == "digits-cnn"
    assert (tmp_path / "digits-cnn-v1.pt").exists()

    (tmp_path / "digits-cnn-v1.pt").unlink()
    before = app.state.model
    seen = []

    def cancel_at_epoch_3(fraction, text):
        seen.append(text)
        if "epoch 3 of" in text:
            raise Cancelled()
    with pytest.raises(Cancelled):
        app.state.load_zoo("digits-cnn", progress=cancel_at_epoch_3)
    assert len(seen) == 4 and app.state.model is before
    assert not (tmp_path / "digits-cnn-v1.pt").exists()  # a cut-short training is never cached


def test_a_newer_click_supersedes_the_running_detail(mined):
    """Two clicks in quick succession: the first one's pictures never replace the second one's."""
    import threading

    from nnrules.widgets.detail import DetailPanel

    panel = DetailPanel(mined, threaded=True)
    started, release = threading.Event(), threading.Event()
    real = mined.detail
    calls = []

    def slow_detail(selection, check, partial=None, full=False):
        calls.append(selection)
        if len(calls) == 1:
            started.set()
            release.wait(30)
        return real(selection, check, partial, full)

    mined.detail = slow_detail
    try:
        mined.select_rule(0)
        panel.refresh()
        started.wait(30)
        mined.select_rule(1)
        panel.refresh()  # waits for the model lock, then draws rule 1
        release.set()
        panel.jobs.wait(120)
        for _ in range(100):  # the first job may finish after the second
            if "Rule 1" in panel.title.value:
                break
            threading.Event().wait(0.1)
        threading.Event().wait(0.5)
        assert "Rule 1:" in panel.title.value and "Rule 0:" not in panel.title.value
        assert [c[0] for c in calls] == [0, 1]
    finally:
        del mined.detail


def _upload(name: str, content: bytes) -> tuple:
    return ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)


def test_uploads_go_to_a_session_folder_under_the_root(tmp_path, digits):
    """A weights file and a zip of class folders uploaded through the browser widgets land in a temporary
    folder under the data root, fill the path boxes, and load; a zip that reaches outside, holds a link or
    is no zip is refused, and nothing is written outside the root."""
    import io
    import stat
    import zipfile

    root = tmp_path / "root"
    root.mkdir()
    app = Explorer(model=None, threaded=False, data_root=str(root))
    panel = app.model_panel
    buf = io.BytesIO()
    torch.save(digits.model.state_dict(), buf)
    panel.upload_weights.value = _upload("../../digits.pt", buf.getvalue())  # a folder part is dropped
    assert panel.model_path.value.startswith(".uploads/session-") and panel.model_path.value.endswith("/digits.pt")
    x, y = digits.test.tensors
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for i in range(40):
            png = io.BytesIO()
            Image.fromarray((x[i, 0].numpy() * 255).round().astype(np.uint8)).save(png, format="PNG")
            z.writestr(f"digits/{int(y[i])}/{i}.png", png.getvalue())
    panel.upload_images.value = _upload("digits.zip", zbuf.getvalue())
    assert panel.data_path.value.endswith("/digits/")
    panel.architecture.value = "digits-cnn"
    panel.source.value = "files"
    assert panel.run_load(), panel.msg.value
    assert app.state.inputs.shape == (40, 1, 8, 8) and app.state.accuracy >= 0.9
    # refused zips: an entry outside its folder, a link, not a zip at all
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escaped.png", b"x")
    panel.upload_images.value = _upload("evil.zip", evil.getvalue())
    assert "outside its own folder" in panel.msg.value and not (tmp_path / "escaped.png").exists()
    linked = io.BytesIO()
    with zipfile.ZipFile(linked, "w") as z:
        info = zipfile.ZipInfo("imgs/a/passwd.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
        z.writestr("imgs/a/ok.png", b"x")
    panel.upload_images.value = _upload("linked.zip", linked.getvalue())
    made = [p for p in root.rglob("*") if p.is_symlink()]
    assert not made and "uploaded" in panel.msg.value
    panel.upload_images.value = _upload("notes.zip", b"not a zip")
    assert "not a zip file" in panel.msg.value
    panel.upload_weights.value = _upload("run.sh", b"rm -rf /")
    assert "upload a .pt or .pth file" in panel.msg.value
    assert {p.name for p in tmp_path.iterdir()} == {"root"}  # nothing written beside the root


def test_layer_list_leaves_out_pass_through_layers():
    """mnist-cnn has Dropout and Flatten layers: their units are the previous layer's, so they are not offered."""
    s = ExplorerState()
    s.load_zoo("mnist-cnn")
    names = s.chainable_layers()
    assert "relu3" in names and "pool" in names
    assert not {"drop1", "drop2", "flatten", "fc2"} & set(names)
    s.load_zoo("cifar10-cnn")  # Keras-style: a ReLU on the logits (relu9) is the output again
    assert s.chainable_layers()[:2] == ["relu8", "fc2"] and s.default_chain() == ["relu8", "relu7"]


def test_choosing_another_exemplar_keeps_the_prototype_and_says_each_unit_once(mined):
    """The prototype is cached per group: switching the exemplar recomputes only the heatmaps; the detail
    text names each unit once ("relu2:c4", not "relu2: relu2:c4")."""
    mined.select_rule(0)
    calls = []
    real = mined.chosen._prototype

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    mined.chosen._prototype = counting
    try:
        first = mined.detail()
        mined.select_exemplar(1)
        second = mined.detail()
    finally:
        del mined.chosen._prototype
    assert len(calls) <= 1 and first.prototype == second.prototype
    layer = mined.rules.iloc[0]["tail_layer"]
    assert f"{layer}: {layer}:" not in first.text


def test_focus_shows_one_classs_chain_in_words(mined):
    """Focus mode: the strongest rules from one class down through the layers, each following a kept tail;
    hover text says the rule in words; the title says what is shown (and nothing before mining)."""
    ids = mined.chain_of("3", per_pair=4)
    rules = mined.rules.set_index("id").loc[ids]
    first, later = rules[rules["pair"] == 0], rules[rules["pair"] == 1]
    assert 0 < len(first) <= 4 and all("3" in c for c in first["classes"])
    assert list(first["head"].map(len)) == sorted(first["head"].map(len))  # the most specific heads first
    tails = set().union(*map(set, first["tail"]))
    assert len(later) and all(tails & set(h) for h in later["head"])
    fig, rule_ids, node_ids = sankey_figure(mined, 8, focus="3")  # 8 rules over 2 pairs: 4 a pair
    assert set(rule_ids) == set(ids) and "class 3's chain" in fig.layout.title.text
    words = [c[1] for c in fig.data[0].link.customdata]
    assert all(w.startswith("when ") and " of those " in w for w in words)
    assert any("is predicted" in w or "are predicted" in w for w in words)
    with pytest.raises(UserInputError, match="no class"):
        mined.chain_of("cat")
    empty = ExplorerState()
    empty.load_zoo("digits-cnn")
    assert "top" not in sankey_figure(empty)[0].layout.title.text  # no "top 0 rules" before mining
    empty.mine(MiningSettings(["relu3"], binarize="threshold", binarize_params={"value": 1e9}))
    assert empty.rules.empty
    from nnrules.widgets.views import BY_GAIN

    for focus in (None, BY_GAIN):  # a mine that found nothing says so, not "top 0 of 0 rules"
        assert sankey_figure(empty, focus=focus)[0].layout.title.text.endswith("· no rules found")


def test_focus_in_the_flow_view_and_no_gain_for_eric():
    from nnrules.widgets.views import FlowView

    s = ExplorerState(prototype_steps=10)
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(["relu3"], miner="eric", params={"depth": 3}))
    assert s.rules["gain"].isna().all()  # ERIC has no code lengths: no meaningless 0.0
    assert all(w.startswith("when ") and "holds" in w for w in s.rules["words"])
    view = FlowView(s, on_rule=lambda i: None, on_node=lambda i: None)
    view.refresh()
    from nnrules.widgets.views import BY_GAIN

    assert [v for _, v in view.focus.options][2:] == s.class_names
    assert view.focus.options[1] == ("top rules by support, the rest as 'other'", BY_GAIN)  # ERIC: no gain
    view.focus.value = "7"
    assert "class 7's chain" in view.sankey.layout.title.text
    assert set(r for r in view.rule_ids if r is not None) == set(s.chain_of("7", per_pair=8))


def test_the_heatmap_legend_is_the_heatmaps_colour_map():
    from nnrules.attribution import viz

    bar = viz.colorbar(161, 3)
    assert bar.shape == (3, 161, 3) and bar.dtype == np.uint8
    hm = viz.heatmap(np.array([[-1.0, 0.0, 1.0]]), percentile=100)[0]
    assert (bar[0, [0, 80, 160]] == hm).all()  # −1, 0 and +1 are the same colours in both
    assert tuple(bar[0, 80]) == (255, 255, 255) and bar[0, 160, 0] > bar[0, 160, 2] and bar[0, 0, 2] > bar[0, 0, 0]


def test_exemplar_labels_say_predicted_and_never_invent_a_class(mined):
    """Labelled data: "#i · predicted 3", plus the label where it differs; unlabelled data (label −1, as
    cifar10-cnn's photo crops): only what the model predicts."""
    assert mined.chosen._exemplar_label(5, 3, 3) == "#5 · predicted 3"
    assert mined.chosen._exemplar_label(5, 3, 8) == "#5 · predicted 3 (labelled 8)"
    assert mined.chosen._exemplar_label(5, 3, -1) == mined.chosen._exemplar_label(5, 3, None) == "#5 · predicted 3"
    mined.select_rule(0)
    d = mined.detail()
    assert all(" · predicted " in lbl for lbl in d.exemplar_labels)


def test_the_glossary_explains_every_symbol_the_panels_show():
    """Jargon gets help: every parameter label with a Greek letter, the reduction and binarisation controls
    and the rule words the views use have a glossary entry; the app shows the glossary, closed."""
    import re

    from nnrules.registry import MINERS
    from nnrules.widgets.glossary import GLOSSARY

    greek = {p.title for e in MINERS.entries() for p in e.params if p.ui and re.search("[α-ωΑ-Ω]", p.title)}
    assert greek and greek <= set(GLOSSARY)
    assert {"Conv → unit", "On when", "l of X, k of Y", "gain (bits)", "support", "confidence"} <= set(GLOSSARY)
    app = Explorer(model=None, threaded=False)
    assert app.help.selected_index is None and "θ (confidence)" in app.help.children[0].value


def test_the_detail_shows_the_cheap_parts_first(mined):
    """Exemplars, then heatmaps, then the prototype: ``partial`` sees each stage, the panel shows each (with
    what is still computing), and every part is cached on its own."""
    from nnrules.widgets.detail import DetailPanel

    rule = int(mined.rules["id"].iloc[-1])
    mined.select_rule(rule)
    seen = []
    final = mined.detail(partial=lambda d, coming: seen.append((coming, len(d.exemplars), len(d.heatmaps),
                                                                d.prototype is not None)))
    assert [s[0].split(" (≈")[0] for s in seen] == ["heatmaps", "the prototype"]  # each with its estimate
    conv = len(mined.activations.shapes[mined.rules.set_index("id").loc[rule, "tail_layer"]]) == 3
    maps = 4 + conv  # 4 attributions, and where the units fire for a conv group
    assert seen[0][1:] == (8, 0, False) and seen[1][1:] == (8, maps, False)
    assert final.prototype is not None and len(final.heatmaps) == maps
    again = []
    mined.detail(partial=lambda d, coming: again.append(coming))
    assert again == []  # all cached
    mined.select_exemplar(3)
    mined.detail(partial=lambda d, coming: again.append(coming))
    assert [a.split(" (≈")[0] for a in again] == ["heatmaps", "the prototype"]  # the prototype is cached

    panel = DetailPanel(mined, threaded=False)
    shown = []
    real_show = panel._show
    panel._show = lambda d, ex, coming=None: (real_show(d, ex, coming), shown.append((coming, panel.msg.value)))
    mined.select_exemplar(5)
    panel.refresh()
    assert [c and c.split(" (≈")[0] for c, _ in shown] == ["heatmaps", "the prototype", None]
    assert "computing heatmaps" in shown[0][1] and "computing the prototype" in shown[1][1] and shown[2][1] == ""
    assert any("nnr-prototype" in c._dom_classes for c in panel.prototype.children)


def test_mine_waits_for_the_miners_warm_up_and_says_so(monkeypatch):
    """The app warms numba's kernels in the background after the first load; a Mine pressed before that
    ends says what it waits for (not a silent 15 s), can be cancelled, and runs once the warm-up is done."""
    from nnrules.widgets.state import jobs

    app = Explorer(threaded=False)
    assert jobs.warm_miners.ready.is_set()  # the load started it (inline here) and it ended
    warm = jobs._Warm()
    warm.started = True  # a warm-up that is still running
    monkeypatch.setattr(jobs, "warm_miners", warm)
    panel = app.mine_panel
    panel.threaded = True
    panel.start()
    for _ in range(100):
        if "preparing the miners" in panel.stage.value:
            break
        threading.Event().wait(0.05)
    assert "preparing the miners" in panel.stage.value and panel.mine.disabled
    assert app.state.rules.empty
    warm.ready.set()
    panel.thread.join(120)
    assert not app.state.rules.empty and not panel.mine.disabled

    warm2 = jobs._Warm()
    warm2.started = True
    monkeypatch.setattr(jobs, "warm_miners", warm2)
    panel.start()
    panel.cancel_button.click()
    panel.thread.join(30)
    assert "cancelled" in panel.msg.value.lower() and not panel.thread.is_alive()


def test_the_architecture_list_offers_torchvision_once_your_files_is_chosen():
    """torchvision's model names are listed when a user turns to their own files (not at the first draw)."""
    app = Explorer(model=None, threaded=False)
    panel = app.model_panel
    assert "digits-cnn" in panel.architecture.options and "resnet18" not in panel.architecture.options
    panel.source.value = "files"
    assert "resnet18" in panel.architecture.options and "digits-cnn" in panel.architecture.options


def test_top_by_gain_sums_the_rest_into_other_links(mined):
    """Focus "top by gain + other": the shown rules are those with the largest gain; every hidden rule's flow
    is in one grey "other" link per layer pair (shown + other = all flow), whose nodes sit at the bottom of
    their layer's column; clicking them opens nothing."""
    from nnrules.widgets.views import BY_GAIN, OTHER, FlowView

    fig, rule_ids, node_ids = sankey_figure(mined, max_rules=6, focus=BY_GAIN)
    shown = [i for i in rule_ids if i != OTHER]
    per_pair = mined.rules.sort_values("gain", ascending=False).groupby("pair").head(3)["id"]  # 6 over 2 pairs
    assert set(shown) == set(per_pair)
    sk = fig.data[0]
    n_links = len(sk.link.source)
    n_other = rule_ids.count(OTHER)
    assert n_other == mined.links.assign(
        a=mined.nodes["layer"].to_numpy()[mined.links["source"]],
        b=mined.nodes["layer"].to_numpy()[mined.links["target"]])[["a", "b"]].drop_duplicates().shape[0]
    drawn = [v for v, i in zip(sk.link.value, rule_ids) if i == OTHER]
    real = [float(re.search(r"summed support ([\d.e+]+)", c[1]).group(1)) for c, i in zip(sk.link.customdata, rule_ids)
            if i == OTHER]
    shown_flow = sum(v for v, i in zip(sk.link.value, rule_ids) if i != OTHER)
    assert shown_flow + sum(real) == pytest.approx(mined.links["value"].sum(), rel=1e-3)  # nothing dropped or doubled
    assert all(d <= r + 1e-9 for d, r in zip(drawn, real))  # drawn capped (and said so), never inflated
    labels = list(sk.node.label[n_links:])
    others = [k for k, l in enumerate(labels) if l == "other"]
    assert len(others) == node_ids.count(OTHER) >= 2 and all(node_ids[k] == OTHER for k in others)
    out_, in_ = np.zeros(len(labels)), np.zeros(len(labels))
    np.add.at(out_, np.asarray(sk.link.source) - n_links, sk.link.value)
    np.add.at(in_, np.asarray(sk.link.target) - n_links, sk.link.value)
    flow = np.maximum(out_, in_)
    for k in others:  # the bottom of its column
        column = [j for j in range(len(labels)) if sk.node.x[j] == sk.node.x[k]]
        assert sk.node.y[k] == max(sk.node.y[j] for j in column)
    for x in set(sk.node.x):  # room by flow: neighbours' spans never overlap
        column = sorted((j for j in range(len(labels)) if sk.node.x[j] == x), key=lambda j: sk.node.y[j])
        share = flow[column] / flow[column].sum() * 0.98
        for a, b in zip(column, column[1:]):
            assert sk.node.y[a] + share[column.index(a)] / 2 <= sk.node.y[b] - share[column.index(b)] / 2 + 1e-9
    assert "more as 'other'" in fig.layout.title.text and "by gain" in fig.layout.title.text
    assert all("rules not shown" in c[0] for c, i in zip(sk.link.customdata, rule_ids) if i == OTHER)

    got = []
    view = FlowView(mined, lambda r: got.append(("rule", r)), lambda n: got.append(("node", n)), max_rules=6)
    view.refresh()
    assert BY_GAIN in [v for _, v in view.focus.options]
    view.focus.value = BY_GAIN
    other_link = view.rule_ids.index(OTHER)
    other_node = n_links + view.node_ids.index(OTHER)
    view._sankey_click(None, Points(point_inds=[other_link], trace_index=0), None)
    view._sankey_click(None, Points(point_inds=[other_node], trace_index=0), None)
    view._sankey_click(None, Points(point_inds=[0], trace_index=0), None)
    assert got == [("rule", view.rule_ids[0])]


def test_the_chosen_rules_chain_is_a_focus(mined):
    """Once a rule is chosen, the focus offers its chain: the rule, and per layer pair the rules that share
    units with it (towards the input: heads meeting its tail; towards the output: tails meeting its head)."""
    from nnrules.widgets.views import RULE_CHAIN, FlowView

    later = int(mined.rules[mined.rules["pair"] == 1]["id"].iloc[0])
    ids = mined.chain_through(later, per_pair=4)
    rules = mined.rules.set_index("id").loc[ids]
    first = rules[rules["pair"] == 0]
    assert later in ids and 0 < len(first) <= 4
    head = set(mined.rules.set_index("id").loc[later, "head"])
    assert all(head & set(t) for t in first["tail"])  # each earlier rule's tail feeds the chosen rule's head
    with pytest.raises(UserInputError, match="no rule"):
        mined.chain_through(10_000)

    mined.chosen.selected_rule = None  # the shared fixture: no rule chosen yet
    view = FlowView(mined, lambda r: None, lambda n: None, max_rules=8)
    view.refresh()
    assert not any(v.startswith(RULE_CHAIN) for _, v in view.focus.options)
    mined.select_rule(later)
    view.show_rule(later)
    assert (f"rule {later}'s chain (the chosen rule)", f"{RULE_CHAIN}{later}") in view.focus.options
    view.focus.value = f"{RULE_CHAIN}{later}"
    assert f"rule {later}'s chain" in view.sankey.layout.title.text
    assert set(r for r in view.rule_ids if r is not None) == set(mined.chain_through(later, per_pair=4))
    other = next(r for r in view.rule_ids if r is not None and r != later)
    mined.select_rule(other)
    view.show_rule(other)  # choosing a rule inside the shown chain keeps the chain in view
    assert view.focus.value == f"{RULE_CHAIN}{later}"
    outside = next(int(r) for r in mined.rules["id"] if int(r) not in view.rule_ids)
    mined.select_rule(outside)
    view.show_rule(outside)  # one the chain does not draw: its own chain is drawn, so that it shows
    assert view.focus.value == f"{RULE_CHAIN}{outside}" and outside in view.rule_ids


def test_your_own_module_from_a_notebook():
    """A researcher's own network (nn.Sequential with BatchNorm, in-place ReLUs, Dropout) and data, passed to
    Explorer: accuracy measured, numbered layers named by their type in the Layers list, mining and a detail
    work; bad arguments say what to pass."""
    from torch import nn

    from nnrules import zoo

    z = zoo.load("digits-cnn")
    x, y = z.train.tensors
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(8 * 16, 32), nn.ReLU(inplace=True), nn.Dropout(0.2),
                        nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    unlabelled = y.clone()
    unlabelled[::2] = -1
    app = Explorer(net.eval(), data=(x, unlabelled), threaded=False, class_names=[f"d{i}" for i in range(10)])
    s = app.state
    expected = float((net(x[1::2]).argmax(1) == y[1::2]).float().mean())
    assert s.model_name == "Sequential" and s.accuracy == pytest.approx(expected) and "718 labelled" in s.info
    assert ("6 · ReLU", "6") in app.mine_panel.layers.options and app.mine_panel.layers.value == ("6", "2")
    app.mine_panel.start()
    assert len(s.rules) > 0 and "d" in s.rules["text"].iloc[0]
    s.select_rule(0)
    d = s.detail()
    assert len(d.exemplars) > 0 and d.heatmaps and not d.errors
    with pytest.raises(UserInputError, match="data:"):
        Explorer(net, threaded=False)
    with pytest.raises(UserInputError, match="no zoo model"):
        Explorer("resnet-9000", threaded=False)
    with pytest.raises(UserInputError, match="model must be"):
        s.load_module("net.pt", (x, y))


def test_rules_for_this_image_lists_each_rule_for_its_exemplars(mined):
    """"Which rules fire for this image?": a rule is listed for every sample it holds on (its exemplars come
    from there), a new input gives what its copy in the data gives, and bad input says what to pass."""
    for rid in mined.rules["id"]:
        for i in mined.chosen._holding(int(rid))[:4]:
            assert int(rid) in mined.rules_for(int(i))
    some = mined.rules_for(0)
    assert some == mined.rules_for(mined.inputs[0]) == mined.rules_for(mined.inputs[:1])
    n = len(mined.inputs)
    assert set(some) < set(mined.rules["id"])  # not every rule holds for one image
    with pytest.raises(UserInputError, match=f"sample must be 0..{n - 1}"):
        mined.rules_for(n)
    with pytest.raises(UserInputError, match="shaped like the data"):
        mined.rules_for(torch.zeros(3, 5, 5))
    with pytest.raises(UserInputError, match="sample index"):
        mined.rules_for([0])
    with pytest.raises(UserInputError, match="does not exist in the data folder"):
        mined.rules_for("0")  # text is an image file's path in the data folder
    s = ExplorerState()
    with pytest.raises(UserInputError, match="mine first"):
        s.rules_for(0)


def test_this_image_draws_its_path_and_shows_it_first():
    """The flow's "This image" box: its rules only (the Sankey's links are exactly them), the strongest opened
    with the sample first among its exemplars (so its heatmaps are the ones drawn)."""
    app = Explorer(threaded=False)
    app.mine_panel.start()
    i = 7
    app.flow.sample.value = i
    app.flow.sample_go.click()
    holds = set(app.state.rules_for(i))
    shown = set(app.flow.rule_ids)
    assert holds and shown <= holds and len(shown) == min(len(holds), app.flow.max_rules.value)
    assert f"sample #{i}" in app.flow.sankey.layout.title.text
    assert f"{len(holds)} rules hold" in app.flow.sample_msg.value
    assert app.state.selected_rule in holds and app.state.chosen.sample == i
    d = app.state.detail()
    assert d.exemplar_labels[0].startswith(f"#{i} ") and f"exemplar #{i} " in d.text
    app.flow.sample.value = 0
    app.mine_panel.start()  # a new result: no sample chosen, the focus back to the top rules
    assert app.state.chosen.sample is None and app.flow.focus.value == "" and app.flow.sample_msg.value == ""


def test_a_chosen_rule_is_highlighted_and_drawn_whatever_the_focus():
    """The chosen rule's links turn orange; a rule chosen in the Rule box that the focus does not draw brings
    its own chain (which holds it), highlighted."""
    from nnrules.widgets.views import HIGHLIGHT, RULE_CHAIN

    app = Explorer(threaded=False)
    app.mine_panel.start()
    drawn = [r for r in app.flow.rule_ids if r is not None]
    app.flow.rule.value = drawn[0]
    colors = list(app.flow.sankey.data[0].link.color)
    assert [c == HIGHLIGHT for c in colors] == [r == drawn[0] for r in app.flow.rule_ids]
    app.flow.focus.value = app.state.class_names[0]  # class 0's chain
    hidden = next(int(r) for r in app.state.rules["id"] if int(r) not in app.flow.rule_ids)
    app.flow.rule.value = hidden
    assert app.flow.focus.value == f"{RULE_CHAIN}{hidden}" and hidden in app.flow.rule_ids
    assert app.flow.rule.value == hidden and app.state.selected_rule == hidden
    assert {c for c, r in zip(app.flow.sankey.data[0].link.color, app.flow.rule_ids) if r == hidden} == {HIGHLIGHT}


def test_this_unit_shows_its_top_samples_cropped_to_its_field():
    """The detail's Unit box lists the selected group's units; Its top samples shows the unit's top samples over
    the whole data — a conv unit's cropped to its 5×5 field (digits-cnn relu2), a dense unit's whole."""
    app = Explorer(threaded=False)
    app.mine_panel.start()
    conv_rule = int(app.state.rules_table(layer="relu2").iloc[0]["id"])
    app.select_rule(conv_rule)
    layer, units = app.state.chosen.group_units()
    assert layer == "relu2" and [v for _, v in app.detail.unit.options] == [(layer, c) for c, _ in units]
    assert app.detail.unit.value == (layer, units[0][0])  # the first unit is chosen
    app.detail.unit_go.click()
    assert len(app.detail.unit_crops.children) == 8 and "receptive field (5×5 input pixels)" in app.detail.unit_text.value
    d = app.state.unit_view(*app.detail.unit.value)
    sizes = {_png(p).shape[:2] for p in d.exemplars}
    assert max(sizes) == (5 * app.state.chosen._scale(),) * 2  # 5×5 pixels upscaled (smaller at the border)
    assert all(lbl.split(" @")[1].count(",") == 1 for lbl in d.exemplar_labels)  # where it fired
    dense_rule = int(app.state.rules_table(layer="relu3").iloc[0]["id"])
    app.select_rule(dense_rule)
    app.detail.unit.value = app.detail.unit.options[0][1]
    app.detail.unit_go.click()
    assert "a dense unit: whole inputs" in app.detail.unit_text.value
    with pytest.raises(UserInputError, match="no unit 999"):
        app.state.unit_view("relu3", 999)


def test_a_neurochains_group_on_a_conv_layer_says_why_it_has_no_grad_cam_of_its_own():
    """Issue 44: the group cell printed PyTorch's "allow_unused" error; now a heatmap, or a reason in words."""
    s = ExplorerState(prototype_steps=10, pictures=None)
    s.load_zoo("digits-cnn")
    s.mine(s.default_settings("neurochains"))
    for n in range(min(3, len(s.nodes))):
        s.select_node(n)
        d = s.detail()
        assert not any("allow_unused" in e for e in d.errors.values()), d.errors
        cell = "Grad-CAM · group"
        assert cell in d.heatmaps or "where the units fire" in d.errors[cell]
        assert "where the units fire" in d.heatmaps


def test_the_mine_progress_bar_is_empty_and_hidden_after_a_run():
    app = Explorer(threaded=False)
    seen = []
    app.mine_panel.progress.observe(lambda c: seen.append(c["new"]), names="value")
    app.mine_panel.start()
    assert max(seen) > 0.5  # it moved while recording
    assert app.mine_panel.progress.value == 0.0 and app.mine_panel.progress.layout.visibility == "hidden"


def test_class_names_with_markup_reach_plotly_as_text():
    """Issue 46: a folder (class) named like a link was drawn by plotly as 16 real links over the flow. Every
    user-derived string of the figures is escaped at the one place they are built (flow_figures.plotly_text)."""
    from nnrules import zoo
    from nnrules.widgets.views import graph_figure, sankey_figure

    evil = '<a href="https:evil.example" target="_blank" style="font-size:40px">CLICK'
    z = zoo.load("digits-cnn")
    s = ExplorerState(pictures=None, results=None)
    s.load_module(z.model, z.train.tensors, [f"{evil}{i}" for i in range(10)], name="<b>bold</b>")
    s.mine(MiningSettings(["relu3", "relu2"]))
    fig, _, _ = sankey_figure(s, 60)
    gfig, _ = graph_figure(s, 60)
    texts = [str(v) for v in list(fig.data[0].node.label) + list(fig.data[0].node.customdata)
             + [c for row in fig.data[0].link.customdata for c in row] + [fig.layout.title.text]
             + list(gfig.data[1].text) + list(gfig.data[1].customdata)]
    assert any("&lt;a href" in t for t in texts)  # the names are there, as text
    assert not any("<a " in t or "<span" in t for t in texts), [t for t in texts if "<a " in t][:2]
    assert all(t.count("<br>") == t.count("<") for t in texts if "<" in t)  # our own line breaks only


def test_pictures_stay_within_the_budget_and_say_what_was_cut(mined):
    """Issue 44: a model whose cost model says the heatmaps and the prototype cannot fit the 30 s budget gets its
    exemplars, the other parts "not drawn" in words, and a "Compute in full" button that
    draws them; a prototype stopped by the budget keeps the steps it reached and says how many."""
    from nnrules.attribution import prototypes
    from nnrules.widgets.detail import DetailPanel
    from nnrules.widgets.state.picture_budget import MIN_STEPS, PictureBudget

    loaded = mined.loaded
    real = loaded.forward_seconds
    rule = int(mined.rules["id"].iloc[0])
    try:
        loaded.forward_seconds = 10.0  # as if one forward pass took 10 s: a heatmap ≈ 200 s, a prototype more
        mined.chosen._cache.clear()
        mined.select_rule(rule)
        panel = DetailPanel(mined, threaded=False)
        panel.refresh()
        d = mined.detail()
        assert len(d.exemplars) == 8 and d.prototype is None and set(d.degraded) == {"heatmaps", "prototype"}
        assert all("past the 30 s picture budget" in d.errors[k] for k in d.errors if k.startswith(("LRP", "Grad")))
        assert "within the 30 s picture budget" in panel.msg.value and panel.full.layout.display == ""
        assert panel.bar.layout.display == "none"
        panel.full.click()  # in full, whatever the estimate
        d = mined.detail()
        assert d.prototype is not None and not d.degraded and len(d.heatmaps) >= 4
        assert panel.full.layout.display == "none" and panel.msg.value == ""
    finally:
        loaded.forward_seconds = real
    budget = PictureBudget(0.0, real)  # spent: the ascent stops after MIN_STEPS steps and says so
    seen = []
    img = prototypes.maximize(mined.model, "relu3", [0], example=mined.inputs[:1], steps=200,
                              callback=lambda step: seen.append(step) or budget.prototype_stop(200)(step))
    assert img.shape == mined.inputs.shape[1:] and len(seen) == MIN_STEPS
    assert budget.degraded["prototype"].startswith(f"{MIN_STEPS} of 200 ascent steps")


def test_the_mine_panel_says_how_long_a_mine_takes_before_it_starts(mined):
    """Issue 44: before Mine, the chosen miner's estimate for these settings (a cost model from the forward pass
    measured at load); it follows the miner and its settings, and a real Mine lands within the stated range."""
    import re
    import time

    from nnrules.widgets.mine_panel import MinePanel
    from nnrules.widgets.state.mining import estimate_seconds

    panel = MinePanel(mined, on_mined=lambda: None, threaded=False)
    panel.refresh()
    assert "Mine takes ≈" in panel.estimate.value and "s here" in panel.estimate.value
    seen = {}
    for miner in ("explainn", "eric", "patches", "neurochains"):
        panel.miner.value = miner
        seen[miner] = float(re.search(r"≈ ([0-9.]+)", panel.estimate.value).group(1))
    assert seen["patches"] > seen["explainn"]  # a Grad-CAM pass per input costs more than the bit search here
    one = estimate_seconds(mined.loaded, panel.settings())
    panel.samples.value = 20
    assert estimate_seconds(mined.loaded, panel.settings()) == pytest.approx(2 * one)  # twice the kept samples
    settings = mined.default_settings("explainn")
    est = estimate_seconds(mined.loaded, settings)
    t = time.perf_counter()
    fresh = ExplorerState(pictures=None, results=None)
    fresh.loaded = mined.loaded
    fresh.mine(settings)
    assert 0.1 <= (time.perf_counter() - t) / est <= 5


def test_a_page_that_connects_after_a_redraw_draws_the_current_figure(mined):
    """Issue 43's room: plotly syncs a FigureWidget's whole state only at creation and display, later changes as
    deltas to the pages connected then. A page whose widget manager connects after the Mine (8 pages on 2 cores)
    reads ``_widget_data``/``_widget_layout``: they must be the figure as drawn, not the empty one."""
    from nnrules.widgets.views import FlowView

    view = FlowView(mined, on_rule=lambda i: None, on_node=lambda i: None)
    view.refresh()
    state = view.sankey.get_state()
    links = state["_widget_data"][0]["link"]
    assert len(links["source"]) == len(view.rule_ids) > 0  # what a late page builds its Sankey from
    assert state["_widget_layout"].get("height") == view.sankey.layout.height
    for rid in (view.rule_ids[0], view.rule_ids[-1]):  # a highlight is a delta too: the state follows it
        view._highlight(rid)
        assert list(view.sankey.get_state()["_widget_data"][0]["link"]["color"]) == list(view.sankey.data[0].link.color)


def test_fair_threads_restores_torchs_threads_nested_and_across_threads():
    """Each app job's torch threads follow the free cores; the process's own setting comes back when the last
    job inside ends, also when two jobs overlap in two threads or a job raises."""
    import threading

    import torch

    from nnrules.widgets.state.jobs import fair_threads

    before = torch.get_num_threads()
    inside = []
    with fair_threads() as n:
        assert 1 <= n <= before and torch.get_num_threads() == n

        def job():
            with fair_threads() as m:
                inside.append(m)
        t = threading.Thread(target=job)
        t.start()
        t.join()
    assert inside and torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with fair_threads():
            raise RuntimeError("a failing job")
    assert torch.get_num_threads() == before
