"""The app's state parts, each on its own (no ExplorerState): LoadedModel, mining.prepare/mine →
MiningResult, RuleRows over a Flow, Selection over the three. See docs/architecture.md."""
import threading

import numpy as np

import pytest
import torch

from nnrules.widgets.state import mining
from nnrules.widgets.state.errors import Cancelled, UserInputError
from nnrules.widgets.state.files import DataRoot
from nnrules.widgets.state.loading import LoadedModel
from nnrules.widgets.state.mining import MiningResult, MiningSettings
from nnrules.widgets.state.results import RuleRows
from nnrules.widgets.state.selection import Selection


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    changes = []
    part = LoadedModel(DataRoot(tmp_path_factory.mktemp("root")), on_change=lambda: changes.append(1))
    with pytest.raises(UserInputError, match="load a model first"):
        part.need()
    part.load_zoo("digits-cnn")
    assert changes == [1]  # a load tells its owner once
    return part


def test_the_loaded_part_knows_model_data_and_layers(loaded):
    model, x, y = loaded.need()
    assert x.shape[1:] == (1, 8, 8) and len(x) == len(y) and loaded.class_names == [str(c) for c in range(10)]
    assert loaded.chainable_layers()[:2] == ["relu3", "fc1"] and loaded.default_chain() == ["relu3", "relu2"]
    assert loaded.check_chain(["relu2", "relu3"]) == ["relu3", "relu2"]
    with pytest.raises(UserInputError, match="cannot be mined"):
        loaded.check_chain(["nope"])


def test_mining_returns_a_result_and_changes_nothing(loaded):
    before = loaded.model_name, loaded.inputs
    empty = MiningResult()
    assert not empty.mined and empty.flow is None and empty.nodes.empty
    settings = MiningSettings(["relu3"])
    miner, binarizer, chain, reduce = mining.prepare(loaded, settings)
    assert chain == ["relu3"] and reduce == "max" and binarizer is not None
    stages = []
    result = mining.mine(loaded, settings, progress=lambda s, f: stages.append(s))
    assert result.mined and result.flow is not None and result.view_layers == ["output", "relu3"]
    assert stages[0] == "record" and stages[-1] == "done"
    assert (loaded.model_name, loaded.inputs) == before  # the loaded part is read, never written
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        mining.mine(loaded, settings, cancel=stop)


def test_rule_rows_read_only_a_flow(loaded):
    result = mining.mine(loaded, MiningSettings(["relu3", "relu2"]))
    rows = RuleRows(result.flow, loaded.class_names)
    assert len(rows.rules) == sum(len(rs) for rs in result.flow.rulesets) > 0
    assert set(rows.rules["pair"]) == {0, 1}
    first = rows.rules.iloc[0]
    assert rows.export("json").startswith("[{") and first["text"] in rows.export("csv")
    ids = rows.chain_through(int(first["id"]))
    assert int(first["id"]) in ids
    assert RuleRows().rules.empty and RuleRows().chain_of("3") == []


def test_a_selection_draws_its_pictures_from_the_parts(loaded):
    result = mining.mine(loaded, MiningSettings(["relu3"]))
    rows = RuleRows(result.flow, loaded.class_names)
    chosen = Selection(loaded, result, rows, n_exemplars=4, prototype_steps=5)
    with pytest.raises(UserInputError, match="select a rule or a group"):
        chosen.detail()
    chosen.select_rule(0)
    d = chosen.detail()
    assert d.title.startswith("Rule 0") and len(d.exemplars) == 4 and d.prototype
    assert chosen.current() == (0, None, 0)
    with pytest.raises(UserInputError, match="mine first"):
        Selection(loaded, MiningResult(), RuleRows()).select_rule(0)
    assert torch.equal(loaded.need()[1], loaded.inputs)


def test_default_settings_are_valid_for_every_miner_and_follow_the_model(loaded):
    """The panel's preselection: the default chain for chain miners, a feature map larger than 1 × 1 for
    Grad-CAM patches, the classes the model predicts most for NeuroChains — each accepted by ``prepare``."""
    from nnrules.registry import MINERS

    predicted = torch.bincount(LoadedModel._predict(loaded.model, loaded.inputs), minlength=10)
    for miner in MINERS:
        settings = mining.default_settings(loaded, miner)
        mining.prepare(loaded, settings)
        if miner == "neurochains":
            assert settings.classes == [int(c) for c in torch.argsort(predicted, descending=True, stable=True)[:2]]
            assert all(predicted[c] > 0 for c in settings.classes)
        elif miner == "patches":
            t = loaded.layer_table.set_index("name")
            (layer,) = settings.layers
            assert t.loc[layer, "kind"] == "conv" and int(np.prod(t.loc[layer, "output_shape"][1:])) > 1
        else:
            assert settings.layers == loaded.default_chain()


def test_the_mine_panel_preselects_each_miners_defaults():
    from nnrules.widgets import Explorer

    app = Explorer(threaded=False)
    panel = app.mine_panel
    assert panel.layers.value == tuple(app.state.default_settings("explainn").layers)
    panel.miner.value = "patches"
    assert list(panel.layers.value) == app.state.default_settings("patches").layers
    panel.miner.value = "neurochains"
    assert list(panel.classes.value) == app.state.default_settings("neurochains").classes
