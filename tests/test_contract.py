"""The contract every miner and the Binarizer follow (nnrules.miners.base), as one test grid.

Each estimator comes with a factory of small inputs: ``normal``, ``one_row``, ``zero_col`` (an all-zero
column, or an all-zero input image for the model miners), ``one_col`` (all-one) and ``empty``.
"""
import inspect
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

import nnrules
from nnrules import ERIC, Binarizer, ExplaiNN, NeuroChains, NotFittedError, PatchMiner, RuleSet
from nnrules.miners.neurochains import Chain
from nnrules.params import InvalidParameterError
from nnrules.recording.record import Activations
from nnrules.registry import BINARIZERS, MINERS


def _bits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Head (n, 6) and tail (n, 8) with two planted rules {0} → {0,1,2}, {3} → {4,5}."""
    rng = np.random.default_rng(seed)
    head = rng.random((n, 6)) < 0.2
    tail = rng.random((n, 8)) < 0.05
    tail[:, :3] |= head[:, 0:1]
    tail[:, 4:6] |= head[:, 3:4]
    return head, tail


def _acts(n: int, seed: int = 0) -> Activations:
    """l1-reduced activations of two layers (4 and 6 units) and 3 classes, as ERIC takes them."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, 6)).astype(np.float32)
    high = np.stack([low[:, 0] + low[:, 1], low[:, 2], low[:, 3] * 2, low[:, 4]], 1).astype(np.float32)
    logits = np.stack([high[:, 0], high[:, 1] + 0.5, high[:, 2]], 1).astype(np.float32)
    return Activations({"h": high, "l": low, "output": logits},
                       {"h": [f"h:{i}" for i in range(4)], "l": [f"l:{i}" for i in range(6)],
                        "output": [f"class {c}" for c in range(3)]},
                       logits.argmax(1), None, ["0", "1", "2"], {"h": (4,), "l": (6,), "output": (3,)}, "l1")


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))))


_MODEL = ConvNet().eval()


def _images(kind: str) -> torch.Tensor:
    x = torch.randn(12, 1, 9, 9, generator=torch.Generator().manual_seed(3))
    return {"normal": x, "one_row": x[:1], "zero_col": torch.zeros_like(x), "one_col": torch.ones_like(x),
            "empty": x[:0]}[kind]


def _explainn_args(kind):
    head, tail = _bits(300)
    if kind == "zero_col":
        head[:, 2], tail[:, 7] = False, False
    if kind == "one_col":
        head[:, 2], tail[:, 7] = True, True
    if kind == "one_row":
        head, tail = head[:1], tail[:1]
    if kind == "empty":
        head, tail = head[:0], tail[:0]
    return (head, tail)


def _eric_args(kind):
    acts = _acts(1 if kind == "one_row" else 0 if kind == "empty" else 300)
    if kind == "zero_col":
        acts.values["l"][:, 5] = 0.0
    if kind == "one_col":
        acts.values["l"][:, 5] = 1.0
    return (acts, ["h", "l"])


def _binarizer_args(kind):
    x = np.random.default_rng(0).normal(size=(50, 5))
    x = {"normal": x, "one_row": x[:1], "zero_col": np.c_[x, np.zeros(50)], "one_col": np.c_[x, np.ones(50)],
         "empty": x[:0]}[kind]
    return (x,)


#: estimator class → (factory of fit arguments, learned attribute holding the result, small settings)
CASES = {
    ExplaiNN: (_explainn_args, "rules_", {}),
    ERIC: (_eric_args, "rules_", {"depth": 2}),
    PatchMiner: (lambda kind: (_MODEL, _images(kind)), "rules_", {"size": 3, "m": 5, "top": 3, "q": 2,
                                                                  "max_len": 2, "min_support": 0.3}),
    NeuroChains: (lambda kind: (_MODEL, _images(kind)), "chain_", {"steps": 20, "finetune_steps": 5}),
    Binarizer: (_binarizer_args, "thresholds_", {"method": "mean"}),
}
KINDS = ["normal", "one_row", "zero_col", "one_col"]
ids = [c.__name__ for c in CASES]


def test_every_registered_miner_is_in_the_grid():
    assert {e.target for e in MINERS.entries()} == set(CASES) - {Binarizer}
    assert all(e.target.func is Binarizer for e in BINARIZERS.entries())


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_declared_params_match_init(cls):
    sig = inspect.signature(cls.__init__).parameters
    declared = {p.name: p.default for p in cls.params}
    assert declared == {k: v.default for k, v in sig.items() if k != "self"}
    assert all(p.help for p in cls.params)


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_clone_params_and_repr(cls):
    settings = CASES[cls][2]
    m = cls(**settings)
    assert m.get_params() == clone(m).get_params()
    assert cls().set_params(**m.get_params()).get_params() == m.get_params()
    assert clone(m) is not m
    for name, value in settings.items():
        assert f"{name}={value!r}" in repr(m)


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_every_bad_param_is_named(cls):
    for p in cls.params:
        bad = "not a value" if p.kind is not str else 12345
        m = cls(**{p.name: bad})
        if p.when is not None:  # a parameter that applies only with another one's value
            m.set_params(**{p.when[0]: p.when[1][0]})
        with pytest.raises(InvalidParameterError, match=f"{cls.__name__}: {p.name} must be"):
            m.validate()
        if p.low is not None and p.kind in (int, float):
            with pytest.raises(ValueError, match=p.name):
                clone(m).set_params(**{p.name: p.low - 1}).validate()


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_not_fitted_names_the_method(cls):
    m = cls()
    with pytest.raises(NotFittedError, match=r"not fitted yet.*call fit"):
        getattr(m, CASES[cls][1])
    if cls is not Binarizer:
        for view in (m.to_frame, m.to_json, m.to_flow):
            with pytest.raises(NotFittedError):
                view()
    else:
        with pytest.raises(NotFittedError):
            m.transform(_binarizer_args("normal")[0])
    assert isinstance(NotFittedError("x"), AttributeError) and isinstance(NotFittedError("x"), ValueError)


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_empty_input_is_a_clear_error(cls):
    args = CASES[cls][0]("empty")
    with pytest.raises(ValueError, match=r"empty|no rows|non-empty|no samples|at least one"):
        cls(**CASES[cls][2]).fit(*args)


def _result_ok(cls, m) -> None:
    if cls is Binarizer:
        assert set(m.thresholds_) == {""}
        return
    if cls is NeuroChains:
        assert isinstance(m.chain_, Chain) and len(m.to_frame()) == len(m.kept_)
    else:
        assert isinstance(m.rules_, RuleSet)
        assert list(m.to_frame().columns)
    json.loads(m.to_json())
    nodes, links = m.to_flow().to_sankey()
    assert {"id", "layer", "units", "label"} <= set(nodes.columns)
    assert {"source", "target", "value", "pair", "rule"} <= set(links.columns)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_fit_returns_self_with_a_result(cls, kind):
    args = CASES[cls][0](kind)
    m = cls(**CASES[cls][2])
    assert m.fit(*args) is m
    _result_ok(cls, m)
    if kind == "zero_col" and cls is ExplaiNN:  # a dead unit is never in a rule
        assert all(2 not in r.head and 7 not in r.tail for r in m.rules_)


@pytest.mark.parametrize("cls", CASES, ids=ids)
def test_deterministic(cls):
    args = CASES[cls][0]("normal")
    a = cls(**CASES[cls][2]).fit(*args)
    b = clone(a).fit(*args)
    if cls is Binarizer:
        assert all(np.array_equal(a.thresholds_[k], b.thresholds_[k]) for k in a.thresholds_)
    else:
        assert a.to_json() == b.to_json()


def test_planted_rules_come_back_through_the_contract():
    head, tail = _bits(2000)
    rules = {(r.head, r.tail) for r in ExplaiNN().fit(head, tail).rules_}
    assert ((0,), (0, 1, 2)) in rules and ((3,), (4, 5)) in rules


def test_trace_takes_explainn_and_eric_and_never_changes_them():
    acts = _acts(300)
    for miner in (ExplaiNN(theta=0.2), ERIC(depth=2)):
        before = miner.get_params()
        flow = nnrules.trace(acts, ["h", "l"], miner=miner, binarizer=Binarizer("mean"))
        assert flow.layers == ["output", "h", "l"] and len(flow.rulesets) >= 1
        assert all(isinstance(rs, RuleSet) for rs in flow.rulesets) and sum(map(len, flow.rulesets)) > 0
        assert miner.get_params() == before and "rules_" not in vars(miner)
    direct = ERIC(depth=2).fit(acts, ["h", "l"])
    traced = nnrules.trace(acts, ["h", "l"], miner=ERIC(depth=2))
    assert [rs.rules for rs in traced.rulesets] == [rs.rules for rs in direct.rulesets_]
    assert nnrules.trace(acts, "h").layers == ["output", "h"]  # one layer name, not its letters
    with pytest.raises(TypeError, match="fit\\(model, inputs\\)"):
        nnrules.trace(acts, ["h"], miner=PatchMiner())


def test_rule_holds_on_by_hand():
    """{0, 1} →[l=1] {0, ¬1} [k=2]: a head unit on and both literals true (unit 0 on, unit 1 off)."""
    rule = nnrules.Rule(head=(0, 1), tail=(0, 1), head_min=1, tail_min=2, support=0, holds=0, negated=(1,))
    head = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], bool)
    tail = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], bool)
    assert rule.holds_on(head, tail).tolist() == [True, False, False, False]
    k1 = nnrules.Rule(head=(0, 1), tail=(0, 1), head_min=2, tail_min=1, support=0, holds=0)
    assert k1.holds_on(head, tail).tolist() == [False, False, False, False]
    assert k1.holds_on(np.ones((4, 2), bool), tail).tolist() == [True, True, True, False]


def test_a_registry_read_alone_lists_the_built_in_entries():
    """``import nnrules`` is lazy: reading a registry first (a fresh interpreter, nothing else imported) still
    lists every built-in miner, binarization, reduction and attribution method."""
    import subprocess
    import sys

    code = ("from nnrules.registry import ATTRIBUTIONS, BINARIZERS, MINERS, REDUCTIONS\n"
            "print([len(r) for r in (MINERS, BINARIZERS, REDUCTIONS, ATTRIBUTIONS)], 'lrp' in ATTRIBUTIONS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[4, 5, 4, 6] True", out.stdout + out.stderr


def test_an_installed_plugin_miner_is_listed_without_being_imported(tmp_path):
    """A third-party miner names its module under the ``nnrules.miners`` entry point (an installed
    distribution's metadata); the registry imports it on first read — nobody imports it by hand — and lists it
    after the built-in ones. A plugin that fails to import is skipped with a warning."""
    import subprocess
    import sys

    (tmp_path / "mine_plugin.py").write_text(
        "from nnrules.miners.explainn import ExplaiNN\n"
        "from nnrules.registry import MINERS\n"
        "class Plain(ExplaiNN):\n    pass\n"
        "MINERS.register('plain', 'Plain ExplaiNN (a plugin)', Plain, layers='chain')\n")
    info = tmp_path / "mine_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mine-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nnrules.miners]\nplain = mine_plugin\nbroken = no_such_module_xyz\n")
    code = ("import warnings\nwarnings.simplefilter('always')\n"
            "from nnrules.registry import MINERS\nprint(list(MINERS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert out.stdout.strip() == "['explainn', 'eric', 'patches', 'neurochains', 'plain']", out.stdout + out.stderr
    assert "plugin 'broken'" in out.stderr and "failed to load" in out.stderr
