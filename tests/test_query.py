"""A view as a link: ExplorerState.to_query / from_query, the app opening a link, bad links."""
import html

import pytest
import torch

from nnrules.widgets import Explorer, ExplorerState, MiningSettings, UserInputError
from nnrules.widgets.state.query import KEYS, parse_query
from nnrules.widgets.views import SAMPLE


@pytest.fixture(scope="module")
def shown():
    s = ExplorerState(prototype_steps=20)
    s.load_zoo("digits-cnn")
    s.mine(MiningSettings(["relu3", "relu2"], binarize="quantile", binarize_params={"q": 0.8}))
    s.select_sample(7)
    rule = s.rules_for(7)[0]
    s.select_rule(rule)
    s.select_exemplar(2)
    s.focus = f"{SAMPLE}7"
    return s


def test_from_query_of_to_query_gives_the_same_view(shown):
    q = shown.to_query()
    assert q.startswith("model=digits-cnn&miner=explainn&layers=relu3%2Crelu2") and "bparams=" in q
    again = ExplorerState.from_query(q, prototype_steps=20)
    assert again.model_name == shown.model_name and again.settings == shown.settings
    assert again.rules[["head", "tail", "support"]].equals(shown.rules[["head", "tail", "support"]])
    assert again.selection() == shown.selection() and again.focus == shown.focus
    assert again.chosen.sample == 7 and again.to_query() == q
    assert again.detail().exemplar_labels == shown.detail().exemplar_labels  # the same pictures
    node = ExplorerState.from_query("model=digits-cnn&miner=explainn&layers=relu3,relu2&node=2")
    assert node.selection() == (None, 2, 0)
    assert ExplorerState.from_query("?model=digits-cnn").to_query() == "model=digits-cnn"  # loaded, not mined


@pytest.mark.parametrize("query, match", [
    ("", "model= is missing"),
    ("model=digits-cnn&rul=3", "unknown key 'rul'"),
    ("model=digits-cnn&rule=3", "needs miner="),
    ("model=digits-cnn&miner=explainn&rule=x", "rule='x' is not a whole number"),
    ("model=digits-cnn&miner=explainn&rule=-1", "rule=-1 must be at least 0"),
    ("model=digits-cnn&miner=explainn&rule=1&node=2", "rule= or node="),
    ("model=digits-cnn&model=mnist-cnn", "model is given 2 times"),
    ("model=digits-cnn&miner=explainn&params=[1]", "params= must be a JSON object"),
    ("model=digits-cnn&miner=explainn&params={", "params= must be a JSON object"),
    ("model=digits-cnn&&&==", "not a URL query"),
    # issue 46: nesting that broke the page, parameters a link may not set, values the miner refuses
    ("model=digits-cnn&miner=explainn&params=" + "[" * 5000, "params= is 5,000 characters long"),
    ("model=digits-cnn&miner=explainn&params=" + "[" * 990 + "]" * 990, "params= must be a JSON object"),
    ('model=digits-cnn&miner=explainn&params={"no_such":1}', "names 'no_such'"),
    ('model=digits-cnn&miner=explainn&params={"theta":2}', "link: .*theta"),
    ("model=digits-cnn&miner=neurochains&classes=1&samples=1e9", "samples='1e9' is not a whole number"),
])
def test_a_bad_link_names_what_is_wrong(query, match):
    with pytest.raises(UserInputError, match=match):
        parse_query(query)


def test_a_link_that_parses_but_does_not_fit_says_so():
    with pytest.raises(UserInputError, match="unknown zoo model 'no-such-net'"):
        ExplorerState.from_query("model=no-such-net")
    with pytest.raises(UserInputError, match="no rule 999"):
        ExplorerState.from_query("model=digits-cnn&miner=explainn&layers=relu3,relu2&rule=999")
    with pytest.raises(UserInputError, match="query must be text"):
        ExplorerState.from_query(3)
    s = ExplorerState()
    s.load_module(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)),
                  (torch.zeros(6, 1, 2, 2), torch.tensor([0, 1] * 3)))
    with pytest.raises(UserInputError, match="only a zoo model's view can be linked"):
        s.to_query()
    assert set(KEYS) >= {"model", "miner", "rule", "focus", "sample"}


def test_a_focus_the_flow_cannot_draw_is_refused_not_stored():
    for focus, match in (("<script>", "is not a view of this flow"), (" rule 9999", "there is no rule 9999"),
                         (" sample 99999", "there is no sample 99999")):
        with pytest.raises(UserInputError, match=match):
            ExplorerState.from_query("model=digits-cnn&miner=explainn&layers=relu3,relu2&focus="
                                     + focus.replace(" ", "+").replace("<", "%3C").replace(">", "%3E"))


def test_a_costly_link_waits_for_a_click_and_a_default_one_mines(tmp_path):
    """A link starts on its own only what the page's defaults would (or a stored result); one that asks for more
    (here ExplaiNN's exhaustive search) fills in its settings and says what it asks, until Mine is pressed."""
    from nnrules.widgets.state.result_store import ResultStore

    costly = ("model=digits-cnn&miner=explainn&layers=relu3,relu2&rule=1"
              "&params=%7B%22resamples%22%3A2%2C%22search%22%3A%22exhaustive%22%7D")  # as to_query writes one
    app = Explorer(threaded=False, query=costly, state=ExplorerState(results=ResultStore(tmp_path)))
    assert not app.state.mined and "more than the page's defaults (search='exhaustive')" in html.unescape(app.msg.value)
    assert app.mine_panel.param_boxes["explainn"].values()["search"] == "exhaustive"
    app.mine_panel.start()  # the click: mined, and the link's rule shown
    assert app.state.mined and app.state.selected_rule == 1
    again = Explorer(threaded=False, query=costly, state=ExplorerState(results=ResultStore(tmp_path)))
    assert again.state.result.stored_at and again.state.selected_rule == 1  # stored now: opens on its own


def test_the_app_opens_a_link_and_writes_one():
    """Explorer(query=…) loads, mines with the link's settings and shows its rule; the page's link follows the
    selection; a bad link is a message and the app starts as without it."""
    app = Explorer(threaded=False, query="?model=digits-cnn&miner=explainn&layers=relu3,relu2&reduce=mean&rule=3")
    assert app.state.settings.reduce == "mean" and app.state.selected_rule == 3
    assert app.flow.rule.value == 3 and "Rule 3" in app.detail.title.value
    assert "rule=3" in app.link.value and "reduce=mean" in app.link.value and 'href="?model=digits-cnn' in app.link.value
    app.select_rule(5)
    assert "rule=5" in app.link.value
    app.flow.focus.value = app.state.class_names[2]
    assert f"focus={app.state.class_names[2]}" in app.link.value
    bad = Explorer(threaded=False, query="model=digits-cnn&rul=3")
    assert "unknown key 'rul'" in html.unescape(bad.msg.value) and bad.state.model_name == "digits-cnn" and not bad.state.mined
    wrong = Explorer(threaded=False, query="model=digits-cnn&miner=explainn&layers=fc9")
    assert "fc9" in wrong.msg.value and not wrong.state.mined
