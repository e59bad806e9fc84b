"""Pictures across sessions: the disk cache gives the same detail without computing it; precompute fills it."""
import json

import pytest

from nnrules.cli import main
from nnrules.widgets import ExplorerState, MiningSettings, UserInputError
from nnrules.widgets.state.picture_cache import VERSION, PictureCache, fingerprint


def _mined(pictures):
    s = ExplorerState(prototype_steps=20, pictures=pictures)
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(["relu3", "relu2"]))
    return s


def test_a_second_session_reads_the_pictures_from_disk(tmp_path):
    cache = PictureCache(tmp_path)
    first = _mined(cache)
    first.select_rule(3)
    seen = []
    d1 = first.detail(partial=lambda d, coming: seen.append(coming))
    assert [c.split(" (≈")[0] for c in seen] == ["heatmaps", "the prototype"] and cache.writes == 2 and cache.reads == 0
    second = _mined(PictureCache(tmp_path))  # a new page: nothing in memory
    second.select_rule(3)
    again = []
    d2 = second.detail(partial=lambda d, coming: again.append(coming))
    assert again == [] and second.pictures.reads == 2  # nothing computed
    assert (d2.title, d2.text, d2.prototype, d2.exemplars, d2.heatmaps, d2.elsewhere) == \
        (d1.title, d1.text, d1.prototype, d1.exemplars, d1.heatmaps, d1.elsewhere)
    other = ExplorerState(prototype_steps=20, pictures=PictureCache(tmp_path))
    other.load_zoo("digits-cnn")
    other.mine(MiningSettings(["relu3", "relu2"], binarize="quantile"))  # other settings: other exemplars
    other.select_rule(3)
    other.detail()
    assert other.pictures.writes >= 1  # its exemplars computed, not read from the other settings' file
    files = list(tmp_path.rglob("*.json"))
    assert files and all(json.loads(f.read_text())["version"] == VERSION for f in files)  # JSON, never a pickle


def test_the_fingerprint_follows_weights_and_data(digits):
    x = digits.train.tensors[0]
    a = fingerprint(digits.model, x, digits.class_names)
    assert a == fingerprint(digits.model, x.clone(), list(digits.class_names))
    assert a != fingerprint(digits.model, x[:-1], digits.class_names)
    import copy
    import torch
    m = copy.deepcopy(digits.model)
    with torch.no_grad():
        m.fc2.bias[0] += 1e-3
    assert a != fingerprint(m, x, digits.class_names)


def test_a_broken_or_foreign_file_is_not_read_and_an_unwritable_folder_is_skipped(tmp_path):
    cache = PictureCache(tmp_path / "c")
    s = _mined(cache)
    s.select_rule(0)
    s.detail()
    for f in (tmp_path / "c").rglob("*.json"):
        f.write_text("{not json")
    fresh = _mined(PictureCache(tmp_path / "c"))
    fresh.select_rule(0)
    fresh.detail()
    assert fresh.pictures.reads == 0 and fresh.pictures.writes == 2  # computed again, files repaired
    (tmp_path / "ro").write_text("a file where the folder should be")
    blocked = _mined(PictureCache(tmp_path / "ro"))
    blocked.select_rule(0)
    assert blocked.detail().exemplars and blocked.pictures.writes == 0
    with pytest.raises(UserInputError, match="pictures must be a PictureCache"):
        ExplorerState(pictures=str(tmp_path))


def test_a_planted_entry_is_never_drawn_and_a_visitors_model_never_writes_the_shared_cache(tmp_path):
    """Issue 46: invalid base64 was served as an empty prototype, a 200 MB entry read whole, and a model brought
    through "Your files" with the zoo model's weights and inputs (its fingerprint) filed its pictures where the zoo
    model's visitors read them."""
    from nnrules import zoo
    from nnrules.widgets.state.picture_cache import MAX_ENTRY_BYTES

    cache = PictureCache(tmp_path / "c")
    s = _mined(cache)
    s.select_rule(0)
    good = s.detail()
    files = list((tmp_path / "c").rglob("*.json"))
    saved = {f: f.read_text() for f in files}
    for plant in (lambda t: t.replace('"prototype": "', '"prototype": "!!not base64!!'),  # the prototype's file
                  lambda t: json.dumps({**json.loads(t), "exemplars": ["aGVsbG8="]}),  # valid base64, not a PNG
                  lambda t: t + " " * (MAX_ENTRY_BYTES + 1)):
        for f, t in saved.items():
            f.write_text(plant(t))
        again = _mined(PictureCache(tmp_path / "c"))
        again.select_rule(0)
        d = again.detail()
        assert d.prototype.startswith(b"\x89PNG") and d.exemplars == good.exemplars  # never the planted bytes
        assert again.pictures.reads <= 1 and again.pictures.writes >= 1  # what was planted was drawn afresh
    z = zoo.load("digits-cnn")
    visitor = ExplorerState(prototype_steps=20, pictures=PictureCache(tmp_path / "shared"))
    visitor.load_module(z.model, z.train.tensors, z.class_names, name="digits-cnn")  # the zoo's fingerprint
    visitor.mine(MiningSettings(["relu3", "relu2"]))
    visitor.select_rule(0)
    visitor.detail()
    assert visitor.loaded.fingerprint() == _mined(None).loaded.fingerprint()
    assert not list((tmp_path / "shared").rglob("*.json"))  # nothing written where the zoo model reads


def test_precompute_fills_the_cache_the_app_reads(tmp_path, monkeypatch, capsys):
    """Issue 43: the stored result and every part of the top rules, with an estimate from the start; a fresh page
    then opens the result without mining and its clicks read pictures only. A time budget draws the cheap parts
    of every rule first; --parts pictures leaves the prototypes to the page."""
    monkeypatch.setenv("NNRULES_PICTURES", str(tmp_path / "pictures"))
    monkeypatch.setenv("NNRULES_RESULTS", str(tmp_path / "results"))
    assert main(["precompute", "--model", "digits-cnn", "--rules", "4"]) == 0
    out = capsys.readouterr().out
    assert "drawing 4 rules and" in out and "estimate ≈" in out and str(tmp_path / "pictures") in out
    page = ExplorerState()  # the app's own defaults, as Explorer() makes it
    page.load_zoo("digits-cnn")
    page.mine(page.default_settings("explainn"), stored=True)  # Mine on a fresh page: the stored result opens
    assert page.result.stored_at
    top = page.rules.nlargest(4, "support")["id"]
    for rid in top:
        page.select_rule(int(rid))
        page.detail(partial=lambda d, coming: pytest.fail(f"computed {coming}: not precomputed"))
    assert page.pictures.reads >= len(top)  # each rule's pictures (its group's prototype may be shared)
    assert page.pictures.writes == 0
    cheap = tmp_path / "cheap"
    monkeypatch.setenv("NNRULES_PICTURES", str(cheap))
    assert main(["precompute", "--model", "digits-cnn", "--rules", "3", "--parts", "pictures"]) == 0
    assert "pictures (cheap parts first)" in capsys.readouterr().out
    page = ExplorerState()
    page.load_zoo("digits-cnn")
    page.mine(page.default_settings("explainn"), stored=True)
    page.select_rule(int(page.rules.nlargest(3, "support")["id"].iloc[0]))
    d = page.detail(partial=lambda d, c: pytest.fail(f"computed {c}: the cheap parts were precomputed"))
    assert d.prototype is not None and page.pictures.reads == 1 and page.pictures.writes == 1  # the prototype
    assert main(["precompute", "--model", "digits-cnn", "--rules", "3", "--minutes", "0.00001"]) == 0
    assert "stopped at the 1e-05-minute budget" in capsys.readouterr().out
    assert main(["precompute", "--model", "digits-cnn", "--parts", "movies"]) == 2
    assert main(["precompute", "--model", "digits-cnn", "--minutes", "-1"]) == 2
    assert main(["precompute", "--model", "digits-cnn", "--rules", "0"]) == 2
    monkeypatch.setenv("NNRULES_PICTURES", "off")
    assert main(["precompute", "--model", "digits-cnn"]) == 2
    assert "cache is off" in capsys.readouterr().err
