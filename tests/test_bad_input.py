"""Bad input gets a clear error that names the argument — never a raw error from numpy/torch/numba, never a
silently wrong result. One table of cases over the public API (``nnrules.__all__`` and the cases the
safety review found); the count is reported by ``test_the_grid_covers_the_public_api``.
"""
import numpy as np
import pytest
import torch
from torch import nn

import nnrules
from nnrules import ERIC, Binarizer, BinaryMatrix, ExplaiNN, NeuroChains, PatchMiner, RuleSet
from nnrules.attribution import attribute, exemplars, maximize, viz
from nnrules.data.bits import and_count
from nnrules.evaluation import pixel_flipping
from nnrules.miners.mdl import log_binom

from conftest import TinyNet


class InplaceNet(nn.Module):
    """fc1 → ReLU(inplace) → fc2: the in-place ReLU overwrites fc1's output unless it is protected."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc1, self.act, self.fc2 = nn.Linear(5, 6), nn.ReLU(inplace=True), nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _fixtures():
    tiny = TinyNet().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 1, 6, 6, generator=g)
    y = torch.randint(0, 4, (12,), generator=g)
    acts = nnrules.record(tiny, (x, y), ["act"], progress=False)
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    return tiny, x, y, acts, nan


TINY, X, Y, ACTS, NAN = _fixtures()
BITS = np.random.default_rng(0).random((40, 5)) < 0.3

#: (case id, call, exception types, regex the message must match — it names the argument)
CASES = [
    ("record: unknown layer", lambda: nnrules.record(TINY, X, ["convv"], progress=False), ValueError, "convv"),
    ("record: fractional labels", lambda: nnrules.record(TINY, (X, Y.float() + 0.5), ["act"], progress=False),
     ValueError, "labels must be class indices"),
    ("record: labels past the classes", lambda: nnrules.record(TINY, (X, Y + 10), ["act"], progress=False),
     ValueError, "labels must be 0..3"),
    ("record: empty data", lambda: nnrules.record(TINY, X[:0], ["act"], progress=False), ValueError, "empty"),
    ("record: NaN inputs", lambda: nnrules.record(TINY, NAN, ["act"], progress=False), ValueError, "non-finite"),
    ("record: a string as data", lambda: nnrules.record(TINY, 3.5, ["act"], progress=False), TypeError, "data"),
    ("layers: wrong input shape", lambda: nnrules.layers(TINY, torch.rand(1, 3, 6)), ValueError, "input"),
    ("BinaryMatrix: negative words", lambda: BinaryMatrix(np.array([[-1]]), 3), ValueError, "words"),
    ("BinaryMatrix: negative n_samples", lambda: BinaryMatrix(np.zeros((1, 1), np.uint64), -1), ValueError,
     "n_samples"),
    ("BinaryMatrix.from_dense: non-binary", lambda: BinaryMatrix.from_dense(np.array([[0.5, 2.0]])), ValueError,
     "0/1|binary|bool"),
    ("and_count: different word counts", lambda: and_count(np.zeros((2, 1), np.uint64), np.zeros((2, 3), np.uint64)),
     ValueError, "different samples"),
    ("and_count: float input", lambda: and_count(np.zeros((2, 1)), np.zeros((2, 1))), ValueError, "uint64"),
    ("log_binom: k > n", lambda: log_binom(3, 5), ValueError, "k <= n"),
    ("Binarizer: unknown method", lambda: Binarizer("median").fit(ACTS), ValueError, "method"),
    ("Binarizer: NaN activations", lambda: Binarizer().fit(np.array([[np.nan, 1.0]])), ValueError, "NaN"),
    ("Binarizer: label output without labels",
     lambda: Binarizer(output="label").fit_transform(nnrules.record(TINY, X, ["act"], progress=False)),
     ValueError, "labels"),
    ("binarize: unrecorded layer", lambda: nnrules.binarize(ACTS, layers=["fc9"]), ValueError, "fc9"),
    ("ExplaiNN: θ = 1", lambda: ExplaiNN(theta=1.0).fit(BITS, BITS), ValueError, "theta"),
    ("ExplaiNN: rows differ", lambda: ExplaiNN().fit(BITS, BITS[:10]), ValueError, "same samples"),
    ("ExplaiNN: non-binary data", lambda: ExplaiNN().fit(BITS * 2.5, BITS), ValueError, "head"),
    ("ERIC: not l1", lambda: ERIC().fit(ACTS, ["act"]), ValueError, "reduce='l1'"),
    ("ERIC: depth 0", lambda: ERIC(depth=0).fit(ACTS, ["act"]), ValueError, "depth"),
    ("PatchMiner: k too large", lambda: PatchMiner(k=10**6).fit(TINY, X), ValueError, r"\bk must be"),
    ("PatchMiner: NaN images", lambda: PatchMiner().fit(TINY, NAN), ValueError, "NaN"),
    ("PatchMiner: one image without batch", lambda: PatchMiner().fit(TINY, X[0]), ValueError, "images"),
    ("NeuroChains: NaN samples", lambda: NeuroChains().fit(TINY, NAN), ValueError, "NaN"),
    ("NeuroChains: λ < 0", lambda: NeuroChains(lam=-1).fit(TINY, X), ValueError, "lam"),
    ("trace: a PatchMiner", lambda: nnrules.trace(ACTS, ["act"], miner=PatchMiner()), TypeError, "miner"),
    ("trace: unknown layer", lambda: nnrules.trace(ACTS, ["fc9"]), ValueError, "fc9"),
    ("RuleSet.from_json: not JSON", lambda: RuleSet.from_json("{"), ValueError, "RuleSet JSON"),
    ("attribute: fractional class", lambda: attribute(TINY, X[:2], 2.7), ValueError, "target"),
    ("attribute: class out of range", lambda: attribute(TINY, X[:2], 9), ValueError, "target class"),
    ("attribute: NaN inputs", lambda: attribute(TINY, NAN[:2], 1), ValueError, "NaN"),
    ("attribute: unknown method", lambda: attribute(TINY, X[:2], 1, method="magic"), ValueError, "method"),
    ("attribute: LRP low > high", lambda: attribute(TINY, X[:2], 1, method="lrp", low=1.0, high=0.0), ValueError,
     "low <= high"),
    ("attribute: LRP ε < 0", lambda: attribute(TINY, X[:2], 1, method="lrp", epsilon=-1.0), ValueError, "epsilon"),
    ("attribute: LRP γ < 0", lambda: attribute(TINY, X[:2], 1, method="lrp", gamma=-0.5), ValueError, "gamma"),
    ("attribute: empty group", lambda: attribute(TINY, X[:2], ("conv", [])), ValueError, "group"),
    ("pixel_flipping: steps = 0", lambda: pixel_flipping(TINY, X[:2], "random", 1, steps=0), ValueError, "steps"),
    ("exemplars: crop = 0", lambda: exemplars(ACTS, "act", [0], crop=0, model=TINY, data=X), ValueError, "crop"),
    ("exemplars: m = 0", lambda: exemplars(ACTS, "act", [0], m=0), ValueError, r"\bm\b"),
    ("maximize: unknown layer", lambda: maximize(TINY, "nope", [0], example=X[:1], steps=2), ValueError, "nope"),
    ("viz.heatmap: NaN", lambda: viz.heatmap(torch.full((6, 6), float("nan"))), ValueError, "NaN"),
    ("viz.image: scale 0", lambda: viz.image(X[0], scale=0), ValueError, "scale"),
    ("eclat: support 0", lambda: nnrules.eclat(BITS, 0.0), ValueError, "support"),
    ("image_folder: missing", lambda: nnrules.image_folder("/nonexistent-folder-xyz"), ValueError, "does not exist"),
    ("load_model: missing", lambda: nnrules.load_model("/nonexistent.pt"), ValueError, "does not exist"),
    ("zoo.load: unknown", lambda: nnrules.zoo.load("imagenet-giant"), ValueError, "available"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match) as err:
        call()
    assert isinstance(err.value, (ValueError, TypeError))
    # the message is ours: no numpy/torch/numba internals leaking as the whole story
    assert "Traceback" not in str(err.value) and str(err.value).strip()


def test_the_grid_covers_the_public_api():
    """Every public callable of ``nnrules.__all__`` is named by at least one case (modules and the error
    class aside); prints the count of cases."""
    text = " ".join(c[0] for c in CASES)
    skip = {"NotFittedError", "Rule", "Activations", "Flow"}  # an exception; plain records built by the library
    callables = [n for n in nnrules.__all__ if n not in skip and not isinstance(getattr(nnrules, n), type(nnrules))]
    missing = [n for n in callables if n not in text]
    print(f"\n{len(CASES)} bad-input cases over {len(callables)} public callables")
    assert not missing, missing


def test_group_objective_survives_an_inplace_relu_after_the_layer():
    """A neuron group's gradient with an in-place ReLU after the layer equals plain autograd's."""
    model = InplaceNet().eval()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    got = attribute(model, x, ("fc1", [0, 2, 4]), method="saliency", abs=False)
    ref_model = InplaceNet().eval()
    ref_model.act = nn.ReLU(inplace=False)
    xr = x.clone().requires_grad_(True)
    ref_model.fc1(xr)[:, [0, 2, 4]].sum().backward()
    torch.testing.assert_close(got, xr.grad, rtol=1e-6, atol=1e-6)


def test_unlabelled_samples_get_no_class_item():
    y = Y.clone()
    y[:3] = -1
    acts = nnrules.record(TINY, (X, y), ["act"], progress=False)
    out = Binarizer(output="label").fit_transform(acts)["output"].to_dense()
    assert not out[:3].any() and (out[3:].sum(1) == 1).all()


def test_memmap_files_of_similar_layer_names_do_not_collide(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    model.add_module("0_extra", nn.Identity())  # "0" and "0_extra" plus a name with a dot below
    seq = nn.Sequential()
    seq.add_module("layer", nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 4)))
    seq.add_module("layer_1", nn.Linear(4, 3))
    x = torch.randn(10, 4)
    acts = nnrules.record(seq, x, ["layer.1", "layer_1"], memmap_dir=tmp_path, progress=False)
    assert acts["layer.1"].shape == (10, 4) and acts["layer_1"].shape == (10, 3)
    assert len(list(tmp_path.glob("*.npy"))) >= 2
