"""Direct answers (#42): a class's view, truthful exemplars, this image (a sample, a tensor, a photo), search,
a unit's page — checked against what the recorded bits say, computed here independently."""
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnrules.widgets.state.answers import SPECIFIC, _answer, class_view, search
from nnrules.widgets.state.explorer import ExplorerState, UserInputError
from nnrules.widgets.state.this_image import like_data

HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir() or bool(os.environ.get("NNRULES_FASHION_MNIST"))


def _mined(name: str, tmp_path_factory) -> ExplorerState:
    s = ExplorerState(pictures=None, prototype_steps=10, data_root=str(tmp_path_factory.mktemp("data")))
    s.load_zoo(name)
    s.mine(s.default_settings())
    return s


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return _mined("digits-cnn", tmp_path_factory)


def _unit_precisions(s: ExplorerState, layer: str, c: int) -> np.ndarray:
    """Precision for class c of each single unit of ``layer``, from the binarizer applied here to the activations."""
    bits = s.binarizer.transform(s.activations)[layer].to_dense()
    preds = np.asarray(s.activations.predictions)
    return bits[preds == c].sum(0) / np.maximum(bits.sum(0), 1)


@pytest.mark.parametrize("name", ["digits-cnn", pytest.param("fashion-cnn", marks=pytest.mark.skipif(
    not HAS_FASHION, reason="Fashion-MNIST is not installed here (make installs Debian's dataset-fashion-mnist)"))])
def test_class_view_answers_every_class(name, tmp_path_factory, digits):
    """For every class: among the first three rows a group with precision ≥ 0.5 whenever a single unit of the top
    chosen layer reaches it (else the answer says none is specific); every row's numbers recomputed from the
    bits; groups measured again on the held-out split."""
    s = digits if name == "digits-cnn" else _mined(name, tmp_path_factory)
    top = [l for l in s.view_layers if l != "output"][0]
    bits = {k: v.to_dense() for k, v in s.binarizer.transform(s.activations).items()}
    preds = np.asarray(s.activations.predictions)
    names = s.activations.unit_names
    for c in range(len(s.class_names)):
        df = s.class_view(c)
        assert df["layer"].iloc[0] == top  # from the output down
        if _unit_precisions(s, top, c).max() >= SPECIFIC:
            assert (df.head(3)["precision"] >= SPECIFIC).any(), (name, c, df.head(3))
        if df["specific"].any():
            assert df.attrs["answer"].startswith(f"For {s.class_names[c]}:")
        else:
            assert "No group" in df.attrs["answer"] and s.class_names[c] in df.attrs["answer"]
        for _, r in df.head(5).iterrows():  # numbers recomputed from the bits
            cols = [names[r["layer"]].index(u) for u in r["group"]]
            fires = bits[r["layer"]][:, cols].sum(1) >= r["need"]
            assert r["fires"] == fires.sum() and r["of_class"] == (fires & (preds == c)).sum()
            assert r["precision"] == pytest.approx((fires & (preds == c)).sum() / fires.sum())
            assert r["recall"] == pytest.approx((fires & (preds == c)).sum() / (preds == c).sum())
        assert df["held_out_precision"].notna().any()  # zoo models carry a test split
    if name == "fashion-cnn":
        assert s.search("Bag")[0].kind == "class" and s.search("bag")[0].target == 8
    with pytest.raises(UserInputError, match="class index must be 0..9"):
        s.class_view(10)
    with pytest.raises(UserInputError, match="no class 'Zebra'"):
        s.class_view("Zebra")


def test_class_view_states_when_nothing_is_specific(digits):
    df = digits.class_view(3)
    none = df.assign(specific=False)
    assert _answer(none, "3", 146).startswith("No group of the chosen layers is specific to 3")
    assert _answer(df, "3", 146) != _answer(none, "3", 146)
    with pytest.raises(UserInputError, match="mine first"):
        class_view(ExplorerState(pictures=None).chosen, 0)


def test_exemplars_of_a_multi_class_rule_come_from_its_head_classes(digits):
    """Each class of the head shown (up to the number of exemplars), labelled; "where else" samples are ones where
    the tail fires and the rule does not apply."""
    s = digits
    rules = s.rules[s.rules["head_layer"] == "output"]
    multi = rules[rules["head_idx"].map(len) >= 2].head(3)
    assert len(multi)
    bits = {k: v.to_dense() for k, v in s.binarizer.transform(s.activations).items()}
    for rid, head in zip(multi["id"], multi["head_idx"]):
        s.select_rule(int(rid))
        d = s.detail()
        shown = {lbl.split("predicted ")[1].split(" ")[0] for lbl in d.exemplar_labels}
        held = s.chosen._holding(int(rid))
        present = {s.class_names[c] for c in head if (np.asarray(s.activations.predictions)[held] == c).any()}
        assert shown <= present and len(shown) >= min(len(present), s.n_exemplars), (rid, shown, present)
        assert d.title.startswith(f"Rule {rid}: when ")  # the rule in words first
        row = s.rules.iloc[int(rid)]
        rs = s.flow.rulesets[int(row["pair"])]
        rule = rs[int(row["rule"])]
        tail_fires = bits[rs.tail_layer][:, list(rule.tail)].sum(1) >= rule.tail_min
        for lbl in d.elsewhere_labels:
            i = int(lbl[1:].split(" ")[0])
            assert tail_fires[i] and i not in set(held.tolist()) and lbl.endswith("rule does not apply")


def test_rules_for_a_photo_are_ordered_by_specificity(digits, tmp_path):
    """Two images predicted as different classes open different first rules; a PIL image gives what its tensor
    gives; the data and the rules are unchanged; bad files are refused with a message."""
    s = digits
    n, rules_before = len(s.inputs), len(s.rules)
    preds = np.asarray(s.activations.predictions)
    a, b = int(np.flatnonzero(preds == 0)[0]), int(np.flatnonzero(preds == 7)[0])
    first = {s.rules_for(a)[0], s.rules_for(b)[0]}
    assert len(first) == 2
    ids = s.rules_for(a)
    holds = [s.chosen._holding(r) for r in ids]
    lifts = [(preds[h] == 0).mean() for h in holds]
    assert lifts[0] == max(lifts)  # the most specific to its class first, not the most common
    img = Image.fromarray((s.inputs[b, 0].numpy() * 255).astype(np.uint8)).resize((64, 64))
    x, note = like_data(img, s.inputs)
    assert x.shape == s.inputs.shape[1:] and "resized 64×64 → 8×8" in note
    assert s.rules_for(img) == s.rules_for(x)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG")
    t = time.perf_counter()
    x2, _ = s.photo("mine.jpg", buf.getvalue())
    assert s.rules_for(x2) and time.perf_counter() - t < 5
    assert len(s.inputs) == n and len(s.rules) == rules_before  # nothing joined, nothing re-mined
    for name, content, match in (("a.jpg", b"", "empty"), ("a.png", b"GIF89a not a png", "not an image file"),
                                 ("a.exe", b"MZ", "upload a .png")):
        with pytest.raises(UserInputError, match=match):
            s.photo(name, content)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 Mpx in a few kB
    with pytest.raises(UserInputError, match="too large"):
        s.photo("bomb.png", bomb.getvalue())
    with pytest.raises(UserInputError, match="inside the app's data folder"):
        s.rules_for(str(tmp_path / "elsewhere.png"))


def test_search_finds_classes_units_rules_and_layers(digits):
    s = digits
    assert [h.kind for h in s.search("relu3:28")] == ["unit"] and s.search("relu3:28")[0].target == ("relu3", 28)
    assert s.search("#5")[0].kind == "rule" and s.search("rule 5")[0].target == 5
    assert s.search("7")[0] .kind == "class"
    assert s.search("relu2")[0].kind == "layer"
    assert s.search("no such thing") == [] and s.search("  ") == []
    with pytest.raises(UserInputError, match="search text must be a string"):
        search(s.chosen, 3)


def test_a_unit_page_for_any_recorded_unit(digits):
    """A unit outside the selected group, in the other layer: top samples, its rules, its prototype; linkable."""
    s = digits
    s.select_rule(0)
    page = s.unit_page("relu2:5")  # a channel, by its index or its name relu2:c5
    assert page.title == "Unit relu2:c5" and len(page.exemplars) == 8 and page.prototype
    assert "receptive field" in page.text and "rule" in page.text
    assert s.unit_page("relu2:c5").title == page.title
    assert "unit=relu2%3Ac5" in s.to_query()
    back = ExplorerState.from_query(s.to_query(), pictures=None)
    assert back.unit == "relu2:c5"
    with pytest.raises(UserInputError, match="no unit 'relu9:1'"):
        s.unit_page("relu9:1")


def test_gallery_filters(digits):
    s = digits
    df = s.gallery(label=3, limit=10)
    assert len(df) == 10 and set(df["label"]) == {"3"}
    wrong = s.gallery(wrong=True, limit=500)
    assert (wrong["label"] != wrong["predicted"]).all()
    assert len(s.thumbnails(df["sample"].tolist()[:3])) == 3
    with pytest.raises(UserInputError, match="samples must be indices"):
        s.thumbnails([10 ** 6])


def test_the_page_answers_a_class_a_unit_and_a_photo(tmp_path):
    """The app, headless: search opens a unit's page and a class's view; a thumbnail its rules; a JPEG of one's own
    its rules (≤ 5 s, no re-mining); a non-image a message with the result kept."""
    from nnrules.widgets import Explorer

    app = Explorer(threaded=False, data_root=str(tmp_path))
    app.mine_panel.start()
    rules = len(app.state.rules)
    app.search.text.value = "relu3:28"
    assert "Unit relu3:28" in app.detail.title.value and app.detail.exemplars.children
    app.search.text.value = "zzz"
    assert "nothing matches" in app.search.msg.value
    app.search.text.value = "3"
    assert app.classes.cls.value == 3 and "3" in app.classes.answer.value and app.flow.focus.value == "3"
    app.tabs.selected_index = 1  # the gallery draws when its tab is shown
    app.gallery.label.value = 5
    cell = app.gallery.grid.children[0]
    cell.children[1].click()
    i = int(cell.children[1].description[1:])
    assert app.state.chosen.sample == i and app.state.selected_rule == app.state.rules_for(i)[0]
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(buf, "JPEG")
    t = time.perf_counter()
    got = app.gallery.show_photo("me.jpg", buf.getvalue())
    assert time.perf_counter() - t < 5 and "predicted" in app.gallery.photo_msg.value
    assert not got or app.state.selected_rule == got[0]
    assert app.gallery.show_photo("notes.jpg", b"hello") == [] and "not an image" in app.gallery.photo_msg.value
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    assert app.gallery.show_photo("bomb.png", bomb.getvalue()) == [] and "too large" in app.gallery.photo_msg.value
    assert app.gallery.show_photo("empty.png", b"") == [] and "empty" in app.gallery.photo_msg.value
    assert len(app.state.rules) == rules and all(p.parent.parent.parent == tmp_path
                                                 for p in tmp_path.glob(".uploads/*/*"))


def test_a_torchvision_model_with_its_own_images_answers_too(tmp_path):
    """A torchvision ResNet-18 (3 classes) on a user's own 64 × 64 images: the class view answers for each class
    (from the bits when the run finds few or no rules), a photo of another size is checked, units are found."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3).eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((60, 3, 64, 64), dtype=np.float32))
    y = torch.arange(60) % 3
    s = ExplorerState(pictures=None, data_root=str(tmp_path))
    s.load_module(model, (x, y), ["cat", "dog", "fox"], name="resnet18")
    s.mine(s.default_settings())
    preds = np.asarray(s.activations.predictions)
    for c, name in enumerate(s.class_names):
        df = s.class_view(name)
        assert df.attrs["class"] == name and df.attrs["answer"]
        if (preds == c).any():  # a random net predicts few classes: each predicted one gets its groups
            assert len(df) and df["precision"].between(0, 1).all() and (df["fires"] >= df["of_class"]).all()
        else:
            assert "none of the" in df.attrs["answer"]
    photo = Image.fromarray((rng.random((300, 400, 3)) * 255).astype(np.uint8))
    assert isinstance(s.rules_for(photo), list) and s.this_prediction in range(3)
    layer = [l for l in s.view_layers if l != "output"][0]
    assert s.search(f"{layer}:0")[0].kind == "unit"


def test_a_link_to_a_class_out_of_range_says_so_and_keeps_the_result(tmp_path):
    from nnrules.widgets import Explorer

    app = Explorer(threaded=False, data_root=str(tmp_path),
                   query="model=digits-cnn&miner=explainn&layers=relu3,relu2&class=99")
    assert "class index must be 0..9" in app.msg.value and app.state.mined and len(app.state.rules)
    ok = Explorer(threaded=False, data_root=str(tmp_path),
                  query="model=digits-cnn&miner=explainn&layers=relu3,relu2&class=4&unit=relu2:c3")
    assert ok.classes.cls.value == 4 and "For 4" in ok.classes.answer.value
    assert "Unit relu2:c3" in ok.detail.title.value
