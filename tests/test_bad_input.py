"""Bad input gets a clear error that names the argument — never a raw error from numpy/torch/numba, never a
silently wrong result. One table of cases over the public API (``nnrules.__all__`` and every module's
``__all__``, plus the cases the safety review found); ``test_the_grid_covers_the_public_api`` checks that
each public callable has a case or a written reason why it takes no input to get wrong, and reports the count.
"""
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import nnrules
from nnrules import ERIC, Binarizer, BinaryMatrix, ExplaiNN, NeuroChains, PatchMiner, Rule, RuleSet
from nnrules.attribution import attribute, exemplars, group_objective, last_conv_layer, maximize, viz
from nnrules.attribution.lrp import Composite, Epsilon, Gamma, PoolRule, ZBox, composite, lrp_context
from nnrules.attribution import zennit_lrp as zl
from nnrules.attribution.prototypes import channels_of, gaussian_blur
from nnrules.cli import app_command, main as cli_main
from nnrules.data.bits import and_count, pack_columns, popcount_rows, tidlists, unpack_columns
from nnrules.data.synthetic import match_rules, planted_rules
from nnrules.evaluation import (ablation_ranking, activation_ranking, intervene, model_randomization, pixel_flipping,
                                zero_filters, zeroing_curves)
from nnrules.miners import association_rules, top_rules
from nnrules.miners.base import check_fitted
from nnrules.miners.explainn import as_binary_matrix
from nnrules.miners.itemsets import min_count
from nnrules.miners.evidence import half_samples
from nnrules.miners.matching import named, same_rule
from nnrules.miners.explainn.mdl import log_binom, parametric_complexity, universal_int
from nnrules.miners.neurochains import quotient
from nnrules.miners.patches import candidate_patches, gradcam_maps, mine_transactions, relevant_patches, shared_sets
from nnrules.params import Param
from nnrules.recording import forward_hooks, named_layers, preserved_mode, resolve_layers
from nnrules.recording.images import image_size, read_image, rgb
from nnrules.recording.loading import as_loader
from nnrules.registry import MINERS, Entry
from nnrules.zoo import DigitsCNN, register, training_progress

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


def _grid():
    return importlib.import_module("nnrules.attribution.grid_maps")


def _unit():
    return importlib.import_module("nnrules.attribution.unit_view")


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
ACTS_L1 = nnrules.record(TINY, (X, Y), ["act"], reduce="l1", progress=False)


class NoEvidence(ExplaiNN):
    """A pair miner without the evidence parameters (a plugin written before them)."""

    params = tuple(p for p in ExplaiNN.params if p.name not in ("resamples", "random_state"))

    def __init__(self, theta: float = 0.0) -> None:
        self.theta = theta

    def get_params(self, deep: bool = True) -> dict:
        return {"theta": self.theta}
BITS = np.random.default_rng(0).random((40, 5)) < 0.3
WORDS = np.zeros((1, 2), np.uint64)


def _enter(context_manager):
    with context_manager:
        pass


def _group_value(layer, units):
    with group_objective(TINY, layer, units) as f:
        return f(X)


class _FunctionalNet(nn.Module):
    """conv weights used with F.conv2d in forward: invisible to LRP's module rules."""

    def __init__(self):
        super().__init__()
        self.k = nn.Parameter(torch.randn(2, 1, 3, 3))
        self.fc = nn.Linear(2 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.relu(torch.nn.functional.conv2d(x, self.k)).flatten(1))


def _group_value_skipped():
    """A layer that exists but does not run in forward (a spare head)."""
    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.spare = nn.Linear(36, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x.flatten(1))

    with group_objective(Spare(), "spare", [0]) as f:
        return f(X)


def _cli(*argv):
    """The CLI reports bad input as argparse does: exit status 2 and the message on stderr."""
    with pytest.raises(SystemExit) as stop:
        cli_main(list(argv))
    raise ValueError(str(stop.value.code))

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
    ("maximize_fourier: a 2-d shape", lambda: nnrules.attribution.feature_vis.maximize_fourier(TINY, "conv", [0],
                                                                                             shape=(6, 6)),
     ValueError, "shape"),
    ("maximize_fourier: empty value range", lambda: nnrules.attribution.feature_vis.maximize_fourier(
        TINY, "conv", [0], example=X[:1], value_range=(1.0, 1.0)), ValueError, "value_range"),
    ("maximize: unknown layer", lambda: maximize(TINY, "nope", [0], example=X[:1], steps=2), ValueError, "nope"),
    ("colorbar (viz): width 1", lambda: viz.colorbar(1), ValueError, "width"),
    ("outline (viz): a grey picture", lambda: viz.outline(np.zeros((4, 4)), [(0, 0, 2)]), ValueError, "rgb"),
    ("outline (viz): a box of size 0", lambda: viz.outline(np.zeros((4, 4, 3), np.uint8), [(0, 0, 0)]), ValueError,
     "size"),
    ("heatmap (viz): NaN", lambda: viz.heatmap(torch.full((6, 6), float("nan"))), ValueError, "NaN"),
    ("image (viz): scale 0", lambda: viz.image(X[0], scale=0), ValueError, "scale"),
    ("eclat: support 0", lambda: nnrules.eclat(BITS, 0.0), ValueError, "support"),
    ("eclat: unknown target", lambda: nnrules.eclat(BITS, 0.1, target="closd"), ValueError, "target"),
    ("eclat: use_colnames without names", lambda: nnrules.eclat(BITS, 0.1, use_colnames=True), ValueError,
     "use_colnames"),
    ("image_folder: missing", lambda: nnrules.image_folder("/nonexistent-folder-xyz"), ValueError, "does not exist"),
    ("scan_images: no class folders", lambda: nnrules.recording.loading.scan_images(Path(__file__).parent / "data" / "fimi"),
     ValueError, "class sub-folders"),
    ("zennit_composite: unknown name", lambda: zl.zennit_composite("magic", TINY), ValueError, "magic"),
    ("zennit_composite: γ for a composite without γ", lambda: zl.zennit_composite("epsilon_plus", TINY, gamma=0.5),
     ValueError, "gamma"),
    ("canonizers_for: not a module", lambda: zl.canonizers_for("resnet18"), TypeError, "model"),
    ("zennit_relevance: unit out of range",
     lambda: zl.zennit_relevance(TINY, X[:2], ("conv", [9]), zl.zennit_composite("epsilon_plus", TINY), None),
     ValueError, "unit index"),
    ("load_model: missing", lambda: nnrules.load_model("/nonexistent.pt"), ValueError, "does not exist"),
    ("load (zoo): unknown", lambda: nnrules.zoo.load("imagenet-giant"), ValueError, "available"),
    # --- the modules' __all__
    ("group_objective: unit out of range", lambda: _group_value("conv", [99]), ValueError, "unit index"),
    ("group_objective: unknown layer", lambda: _group_value("nope", [0]), ValueError, "nope"),
    ("gradcam_layer: no conv", lambda: nnrules.attribution.gradcam_layer(nn.Sequential(nn.Linear(3, 2)), torch.rand(1, 3)),
     ValueError, "conv"),
    ("default_composite: not a model", lambda: nnrules.attribution.default_composite("net.pt"), TypeError, "model"),
    ("last_conv_layer: no conv", lambda: last_conv_layer(nn.Sequential(nn.Linear(3, 2))), ValueError, "conv"),
    ("composite: unknown name", lambda: composite("magic"), ValueError, "magic"),
    ("Epsilon: negative", lambda: Epsilon(-1.0), ValueError, "epsilon"),
    ("Gamma: negative", lambda: Gamma(-1.0), ValueError, "gamma"),
    ("ZBox: low > high", lambda: ZBox(1.0, 0.0), ValueError, "low <= high"),
    ("PoolRule: unknown mode", lambda: PoolRule("median"), ValueError, "mode"),
    ("Composite: lower_fraction 2", lambda: Composite("x", None, Epsilon, Epsilon, Epsilon, lower_fraction=2.0),
     ValueError, "lower_fraction"),
    ("lrp_context: a name, not a Composite", lambda: _enter(lrp_context(TINY, X[:1], "book_epsilon")), TypeError, "comp"),
    ("channels_of: unit out of range", lambda: channels_of(["conv:c0"], [5]), ValueError, "unit 5"),
    ("gaussian_blur: negative sigma", lambda: gaussian_blur(X[:1], -1.0), ValueError, "sigma"),
    ("gaussian_blur: one image without batch", lambda: gaussian_blur(X[0], 1.0), ValueError, r"\(B, C, H, W\)"),
    ("to_png: float array", lambda: viz.to_png(np.zeros((4, 4, 7))), ValueError, "rgb"),
    ("grid: cols 0", lambda: viz.grid([np.zeros((4, 4, 3), np.uint8)], 0), ValueError, "cols"),
    ("grid: sizes differ", lambda: viz.grid([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], 2),
     ValueError, "images"),
    ("open_bits: not a store", lambda: nnrules.scale.open_bits("/etc/passwd"), ValueError, "no bit matrix"),
    ("StoredBits: missing", lambda: nnrules.scale.StoredBits("/nonexistent.zarr"), ValueError, "no bit matrix"),
    ("write_bits: not a BinaryMatrix", lambda: nnrules.scale.write_bits(WORDS, "/tmp/x.zarr"), TypeError, "matrix"),
    ("open_activations: not a store", lambda: nnrules.scale.open_activations("/nonexistent"), ValueError,
     "not an activations store"),
    ("local_cluster: no workers", lambda: nnrules.scale.local_cluster(0), ValueError, "n_workers"),
    ("active_client: an address string", lambda: importlib.import_module("nnrules.scale.cluster").active_client("tcp://x:8786"), TypeError,
     "client"),
    ("rule_effect: a rule index out of range", lambda: nnrules.evaluation.rule_effect(
        TINY, RuleSet([Rule((0,), (1,), 1, 1, 5, 4)], ["class 0", "class 1", "class 2", "class 3"],
                      [f"act:{i}" for i in range(8)], "output", "act"), 3, (X, Y)), ValueError, "rule must be"),
    ("half_samples: 3 rows", lambda: half_samples(3, 5, 0), ValueError, "at least 4 rows"),
    ("named: a rule without its set", lambda: named(Rule((0,), (1,), 1, 1, 5, 4), Rule((0,), (1,), 1, 1, 5, 4)),
     TypeError, "RuleSet"),
    ("same_rule: plain tuples", lambda: same_rule(((0,), (1,), ()), ((0,), (1,), ())), TypeError, "frozensets"),
    ("ExplaiNN: resamples −1", lambda: ExplaiNN(resamples=-1).fit(np.eye(8, dtype=bool), np.eye(8, dtype=bool)),
     ValueError, "resamples"),
    ("ExplaiNN: resamples 2.5", lambda: ExplaiNN(resamples=2.5).fit(np.eye(8, dtype=bool), np.eye(8, dtype=bool)),
     TypeError, "resamples"),
    ("ExplaiNN: resamples over the limit", lambda: ExplaiNN(resamples=10_000).fit(np.eye(8, dtype=bool),
                                                                                  np.eye(8, dtype=bool)),
     ValueError, "resamples"),
    ("ExplaiNN: random_state −3", lambda: ExplaiNN(resamples=2, random_state=-3).fit(np.eye(8, dtype=bool),
                                                                                     np.eye(8, dtype=bool)),
     ValueError, "random_state"),
    ("ERIC: resamples a string", lambda: ERIC(resamples="20").fit(ACTS_L1, ["act"]), TypeError, "resamples"),
    ("trace: resamples for a miner that takes none", lambda: nnrules.trace(ACTS, ["act"], NoEvidence(),
                                                                            resamples=3), ValueError, "resamples"),
    ("record: store a number", lambda: nnrules.record(TINY, (X, Y), ["fc"], progress=False, store=5), TypeError,
     "store must be a path"),
    ("to_zarr: chunk_rows 100", lambda: BinaryMatrix.from_dense(np.eye(3, dtype=bool)).to_zarr("/tmp/nn.zarr", 100),
     ValueError, "multiple of 64"),
    ("read_idx: missing", lambda: importlib.import_module("nnrules.zoo.fashion").read_idx("/nonexistent.idx"),
     ValueError, "does not exist"),
    ("load_fashion_mnist: empty folder", lambda: importlib.import_module("nnrules.zoo.fashion").load_fashion_mnist("/"),
     ValueError, "apt-get install dataset-fashion-mnist"),
    ("fashion_mnist_dir: empty folder", lambda: importlib.import_module("nnrules.zoo.fashion").fashion_mnist_dir("/"),
     ValueError, "NNRULES_FASHION_MNIST"),
    ("compare: a list", lambda: nnrules.compare([1], [2]), TypeError, "a must be a Flow"),
    ("compare: tol 2", lambda: nnrules.compare(RuleSet([]), RuleSet([]), tol=2.0), ValueError, "tol"),
    ("unit_positions: a dense unit", lambda: _grid().unit_positions(["fc:3"]), ValueError, "not a conv unit"),
    ("grid_centres: outside the map", lambda: _grid().grid_centres(["c:c0@9,9"], (4, 4), (8, 8)), ValueError,
     "outside"),
    ("mark_units: float picture", lambda: _grid().mark_units(np.zeros((4, 4, 3)), np.zeros((0, 2))), ValueError,
     "uint8"),
    ("firing_map: a batch", lambda: _grid().firing_map(TINY, X[:2], "conv", ["conv:c0@0,0"]), ValueError, "one input"),
    ("firing_map: a dense layer", lambda: _grid().firing_map(TINY, X[:1], "fc", ["fc:c0"]), ValueError,
     "not a conv layer"),
    ("receptive_field: a dense layer", lambda: _unit().receptive_field(TINY, "fc", X[:1]), ValueError, "no spatial map"),
    ("unit_crops: a list as activations", lambda: _unit().unit_crops(TINY, X, [1], "conv", 0), TypeError, "Activations"),
    ("fine_tune: a class it does not have", lambda: nnrules.zoo.fine_tune(nnrules.zoo.load("digits-cnn"), [42]),
     ValueError, "classes must name classes"),
    ("pack_columns: 1-d", lambda: pack_columns(np.zeros(5, bool)), ValueError, "dense"),
    ("pack_columns: non-binary", lambda: pack_columns(np.full((3, 2), 2.0)), ValueError, "binary"),
    ("unpack_columns: more samples than bits", lambda: unpack_columns(WORDS, 200), ValueError, "n_samples"),
    ("popcount_rows: float words", lambda: popcount_rows(np.zeros((2, 2))), ValueError, "uint64"),
    ("tidlists: negative n_samples", lambda: tidlists(WORDS, -1), ValueError, "n_samples"),
    ("planted_rules: unknown heads", lambda: planted_rules(heads="weird"), ValueError, "heads"),
    ("planted_rules: noise 2", lambda: planted_rules(n=100, n_rules=2, noise=2.0), ValueError, "noise"),
    ("match_rules: a number as found", lambda: match_rules(5, [((0,), (1,))]), TypeError, "found"),
    ("match_rules: strings as planted", lambda: match_rules([], ["ab"]), TypeError, "planted"),
    ("intervene: quantile 2", lambda: intervene(TINY, [], (X, Y), quantile=2.0), ValueError, "quantile"),
    ("intervene: unknown layer", lambda: intervene(TINY, [], (X, Y), layer="nope"), ValueError, "nope"),
    ("model_randomization: unknown method", lambda: model_randomization(TINY, X[:2], 1, method="magic"),
     ValueError, "method"),
    ("zero_filters: filter out of range", lambda: zero_filters(TINY, "conv", {0: [99]}, (X, Y)), ValueError, "99"),
    ("zeroing_curves: no rankings", lambda: zeroing_curves(TINY, "conv", {}, (X, Y)), ValueError, "rankings"),
    ("zeroing_curves: fraction 2", lambda: zeroing_curves(TINY, "conv", {"a": {0: [0]}}, (X, Y), fractions=(2,)),
     ValueError, "fractions"),
    ("ablation_ranking: bad labels", lambda: ablation_ranking(TINY, "conv", (X, Y), labels="true"), ValueError,
     "labels"),
    ("activation_ranking: unlabelled data", lambda: activation_ranking(TINY, "conv", X), ValueError, "labels"),
    ("association_rules: confidence 2", lambda: association_rules(nnrules.eclat(BITS, 0.1), 2.0), ValueError,
     "min_confidence"),
    ("association_rules: a list", lambda: association_rules([1, 2], 0.5), TypeError, "frequent"),
    ("association_rules: unknown metric", lambda: association_rules(nnrules.eclat(BITS, 0.1), metric="unicorn"),
     ValueError, "metric"),
    ("association_rules: itemset a number",
     lambda: association_rules(pd.DataFrame({"itemsets": [3], "support": [0.5]})), TypeError, "itemsets"),
    ("top_rules: q 0", lambda: top_rules(association_rules(nnrules.eclat(BITS, 0.1)), 0), ValueError, r"\bq\b"),
    ("check_fitted: not fitted", lambda: check_fitted(ExplaiNN(), "rules_"), nnrules.NotFittedError, "fit"),
    ("as_binary_matrix: strings", lambda: as_binary_matrix(np.array([["a"]]), "head"), ValueError, "head"),
    ("min_count: support 0", lambda: min_count(0.0, 10), ValueError, "support"),
    ("parametric_complexity: n < 0", lambda: parametric_complexity(-1), ValueError, r"\bn\b"),
    ("universal_int: z < 0", lambda: universal_int(-3), ValueError, r"\bz\b"),
    ("universal_int: fractional", lambda: universal_int(2.5), ValueError, r"\bz\b"),
    ("quotient: shapes differ", lambda: quotient(torch.rand(2, 3), torch.rand(2, 4)), ValueError, "shape"),
    ("gradcam_maps: NaN images", lambda: gradcam_maps(TINY, NAN), ValueError, "NaN"),
    ("gradcam_maps: unknown layer", lambda: gradcam_maps(TINY, X, layer="nope"), ValueError, "nope"),
    ("candidate_patches: size past the image",
     lambda: candidate_patches(np.zeros((6, 6)), 9, 2, 3, np.random.default_rng(0)), ValueError, "size"),
    ("relevant_patches: class out of range", lambda: relevant_patches(TINY, X[0], [(0, 0)], 3, 9, 0.5), ValueError,
     "cls"),
    ("relevant_patches: a batch, not one image", lambda: relevant_patches(TINY, X, [(0, 0)], 3, 1, 0.5), ValueError,
     "image"),
    ("mine_transactions: no class columns", lambda: mine_transactions(BITS, 5, 0.2, 3), ValueError, "n_filters"),
    ("mine_transactions: support 0", lambda: mine_transactions(np.c_[BITS, np.ones(40, bool)], 5, 0.0, 3),
     ValueError, "support"),
    ("shared_sets: None", lambda: shared_sets(None), TypeError, "rules"),
    ("Param: default out of range", lambda: Param("p", float, 5.0, "h", low=0, high=1), ValueError, r"\bp\b"),
    ("Param: unknown kind", lambda: Param("p", list, [], "h"), TypeError, "kind"),
    ("forward_hooks: unknown layer", lambda: _enter(forward_hooks(TINY, {"nope": lambda *a: None})), ValueError,
     "nope"),
    ("class_layer: no linear layer", lambda: nnrules.recording.class_layer(nn.Sequential(nn.Conv2d(1, 2, 3))),
     ValueError, "nn.Linear"),
    ("model_device: a path, not a module", lambda: nnrules.recording.hooks.model_device("net.pt"), TypeError, "model"),
    ("on_model: a list of inputs", lambda: nnrules.recording.hooks.on_model(TINY, [[0.0]]), TypeError, "inputs"),
    ("named_layers: not a module", lambda: named_layers(3), TypeError, "model"),
    ("preserved_mode: not a module", lambda: _enter(preserved_mode("net.pt")), TypeError, "model"),
    ("resolve_layers: empty", lambda: resolve_layers(TINY, []), ValueError, "layers"),
    ("as_loader: batch 0", lambda: as_loader(X, batch_size=0), ValueError, "batch_size"),
    ("Registry: unknown entry", lambda: MINERS["magic"], ValueError, "magic"),
    ("Entry: unknown layer kind", lambda: Entry("x", "X", None, layers="weird"), ValueError, "layers"),
    ("register: empty name", lambda: register("")(DigitsCNN), ValueError, "name"),
    ("training_progress: not callable", lambda: training_progress(5).__enter__(), TypeError, "report"),
    ("DigitsCNN: width 0", lambda: DigitsCNN(width=0), ValueError, "width"),
    ("main (CLI): model file without data", lambda: _cli("layers", "--model-file", "/nonexistent.pt"), ValueError,
     "--data"),
    ("app_command (CLI app): no such folder", lambda: app_command("/nonexistent-data"), ValueError, "--data"),
    ("app_command (CLI app): port past 65535", lambda: app_command(".", port=70000), ValueError, "--port"),
    ("app_command (CLI app): no kernels", lambda: app_command(".", max_kernels=0), ValueError, "--max-kernels"),
    ("cached_weights (zoo): a path as name", lambda: nnrules.zoo.cached_weights("../x", DigitsCNN(), lambda m: m, False),
     ValueError, "name"),
    ("imagenet_names: not a name", lambda: importlib.import_module("nnrules.recording.pretrained").imagenet_names(3),
     ValueError, "architecture must be a torchvision model name"),
    ("weights_transform: not a name", lambda: importlib.import_module("nnrules.recording.pretrained")
     .weights_transform(None), ValueError, "architecture must be a torchvision model name"),
    ("folder_classes: a folder of no class", lambda: importlib.import_module("nnrules.recording.pretrained")
     .folder_classes(["zebrra"], ["zebra"]), ValueError, "'zebrra' \\(closest: 'zebra'\\)"),
    ("describe_transform: not a transform", lambda: importlib.import_module("nnrules.recording.pretrained")
     .describe_transform(3), TypeError, "transform must be"),
    ("check_allocation: more than the machine has", lambda: importlib.import_module("nnrules.data.memory")
     .check_allocation(2.0 ** 60, "a test"), ValueError, "a test would take"),
    ("cached_arrays (zoo): a path as name", lambda: importlib.import_module("nnrules.zoo.caching").cached_arrays(
        "../x", lambda: (None, None)), ValueError, "plain file name"),
    ("evaluate (zoo): a tuple for the data", lambda: importlib.import_module("nnrules.zoo.caching").evaluate(
        DigitsCNN(), (1, 2)), TypeError, "TensorDataset"),
    ("check_shipped (zoo): a model that ships nothing", lambda: nnrules.zoo.check_shipped("digits-cnn"), ValueError,
     "ships no weights"),
    # --- the data types check what they hold (issue: crafted files and hostile uploads)
    ("Rule: l larger than the head", lambda: Rule(head=(0,), tail=(1,), head_min=5, tail_min=1, support=1, holds=1),
     ValueError, "head_min"),
    ("Rule: holds > support", lambda: Rule((0,), (1,), 1, 1, support=1, holds=9), ValueError, "holds"),
    ("Rule: negative unit", lambda: Rule((-1,), (1,), 1, 1, 1, 1), ValueError, "head"),
    ("Rule: a unit twice", lambda: Rule((0,), (1, 1), 1, 1, 1, 1), ValueError, "twice"),
    ("Rule: negated outside the tail", lambda: Rule((0,), (1,), 1, 1, 1, 1, negated=(2,)), ValueError, "negated"),
    ("Rule: k = 0 on a tail", lambda: Rule((0,), (1,), 1, 0, 1, 1), ValueError, "tail_min"),
    ("Rule: NaN gain", lambda: Rule((0,), (1,), 1, 1, 1, 1, gain=float("nan")), ValueError, "gain"),
    ("Rule: a string as head", lambda: Rule("ab", (1,), 1, 1, 1, 1), ValueError, "head"),
    ("RuleSet: unit past the names", lambda: RuleSet([Rule((5,), (0,), 1, 1, 1, 1)], ["a", "b"], ["c"]), ValueError,
     "head_names"),
    ("RuleSet: a dict as a rule", lambda: RuleSet([{"head": (0,)}]), TypeError, "Rule"),
    ("RuleSet: unknown direction", lambda: RuleSet([], direction="up"), ValueError, "direction"),
    ("RuleSet.from_json: a rule without fields", lambda: RuleSet.from_json('{"rules": [{"head": [0]}]}'), ValueError,
     "RuleSet JSON"),
    ("Activations: rows differ", lambda: nnrules.Activations({"a": np.zeros((3, 2))}, {}, np.zeros(4, int)),
     ValueError, "rows"),
    ("Activations: names for other units", lambda: nnrules.Activations({"a": np.zeros((3, 2))}, {"a": ["x"]},
                                                                       np.zeros(3, int)), ValueError, "unit_names"),
    ("Activations: prediction past the classes", lambda: nnrules.Activations({"output": np.zeros((3, 2))}, {},
                                                                             np.array([0, 1, 7])), ValueError,
     "predictions"),
    ("Activations: labels of another length", lambda: nnrules.Activations({"a": np.zeros((3, 2))}, {}, np.zeros(3, int),
                                                                          labels=np.zeros(5, int)), ValueError, "labels"),
    ("Activations: unknown reduce", lambda: nnrules.Activations({"a": np.zeros((3, 2))}, {}, np.zeros(3, int),
                                                                reduce="median"), ValueError, "reduce"),
    ("Activations.load: missing", lambda: nnrules.Activations.load("/nonexistent.npz"), ValueError, "does not exist"),
    ("Activations.load: not an npz", lambda: nnrules.Activations.load(__file__), ValueError,
     "not an activations file"),
    ("Flow: rule set of another pair", lambda: nnrules.miners.flow.Flow(["output", "fc"], [RuleSet(
        [], head_layer="conv", tail_layer="fc")]), ValueError, "head layer"),
    ("Flow: more rule sets than pairs", lambda: nnrules.miners.flow.Flow(["output"], [RuleSet([])]), ValueError,
     "rule sets"),
    ("BinaryMatrix: padding bits set", lambda: BinaryMatrix(np.array([[2**63]], np.uint64), 3).support(), ValueError,
     "padding"),
    # --- third-party calls wrapped: their own errors never reach a user
    ("attribute: n_steps 0 (Captum)", lambda: attribute(TINY, X[:2], 1, method="integrated_gradients", n_steps=0),
     ValueError, "n_steps"),
    ("attribute: nt_samples 0 (Captum)", lambda: attribute(TINY, X[:2], 1, method="smoothgrad", nt_samples=0),
     ValueError, "nt_samples"),
    ("attribute: negative stdevs (Captum)", lambda: attribute(TINY, X[:2], 1, method="smoothgrad", stdevs=-1.0),
     ValueError, "stdevs"),
    ("attribute: empty batch (Captum)", lambda: attribute(TINY, X[:0], 1), ValueError, "empty batch"),
    ("attribute: baselines of another shape (Captum)",
     lambda: attribute(TINY, X[:2], 1, method="integrated_gradients", baselines=torch.zeros(3, 3)), ValueError,
     "baselines"),
    ("attribute: internal_batch_size 0", lambda: attribute(TINY, X[:2], 1, method="integrated_gradients",
                                                           internal_batch_size=0), ValueError, "internal_batch_size"),
    ("maximize: reversed value_range (Adam)", lambda: maximize(TINY, "conv", [0], example=X[:1], steps=2,
                                                               value_range=(1.0, 0.0)), ValueError, "value_range"),
    ("group_objective: a layer the forward skips", lambda: _group_value_skipped(), ValueError, "did not run"),
    ("exemplars: not activations", lambda: exemplars(None, "act", [0]), TypeError, "activations"),
    ("outline (viz): pairs, not triples", lambda: viz.outline(np.zeros((4, 4, 3), np.uint8), [(0, 0)]), ValueError,
     "boxes"),
    ("outline (viz): a number as boxes", lambda: viz.outline(np.zeros((4, 4, 3), np.uint8), 5), ValueError, "boxes"),
    ("image_size: a folder", lambda: image_size(Path(__file__).parent), ValueError, "not a regular file"),
    ("read_image: not an image", lambda: read_image(__file__), ValueError, "not an image file"),
    ("rgb: an array", lambda: rgb(np.zeros((2, 2, 3))), TypeError, "PIL image"),
    ("check_visible: a weight used in forward", lambda: zl.check_visible(_FunctionalNet(), X[:1]), ValueError,
     "outside a layer module"),
    ("canonizers_for: DenseNet", lambda: zl.canonizers_for(__import__("torchvision").models.densenet121()),
     ValueError, "DenseNet"),
    ("frequent_itemsets: support 2", lambda: nnrules.frequent_itemsets(BITS, 2.0), ValueError, "min_support"),
    ("frequent_itemsets: lists of ids as a matrix", lambda: nnrules.frequent_itemsets([1, 2, 3], 0.5), ValueError,
     "Transactions.from_lists"),
    ("frequent_itemsets: max_len 0", lambda: nnrules.frequent_itemsets(BITS, 0.1, max_len=0), ValueError, "max_len"),
    ("Transactions.from_lists: a string", lambda: nnrules.Transactions.from_lists("1 2 3"), TypeError, "list of"),
    ("Transactions.from_lists: item names", lambda: nnrules.Transactions.from_lists([["milk", "bread"]]), TypeError,
     "integers"),
    ("Transactions.from_lists: a negative id", lambda: nnrules.Transactions.from_lists([[1, -2]]), ValueError, "≥ 0"),
    ("Transactions: indptr past the ids", lambda: nnrules.Transactions(np.array([0, 5]), np.array([1, 2])),
     ValueError, "indptr"),
    ("read_fimi: missing", lambda: nnrules.read_fimi("/nonexistent.dat"), ValueError, "does not exist"),
    ("read_fimi: not a FIMI file", lambda: nnrules.read_fimi(__file__), ValueError, "line 1"),
    ("Itemsets.sets: use_colnames without names", lambda: nnrules.frequent_itemsets(BITS, 0.1).sets(True), ValueError,
     "use_colnames"),
    ("BinaryMatrix.from_sparse: an array", lambda: nnrules.BinaryMatrix.from_sparse(np.eye(3)), TypeError,
     "scipy.sparse"),
    ("BinaryMatrix.from_transactions: n_items too small",
     lambda: nnrules.BinaryMatrix.from_transactions([[0, 5]], n_items=3), ValueError, "n_items"),
]

#: Public names that take no input a user could get wrong, with the reason (checked to exist).
NO_INPUT = {
    "NotFittedError": "an exception", "InvalidParameterError": "an exception", "RecordingError": "an exception",
    "LRPError": "an exception", "UnsafeFileError": "an exception", "MissingPackageError": "an exception",
    "METHODS": "a constant", "COMPOSITES": "a constant", "ZENNIT_COMPOSITES": "a constant", "OUTPUT": "a constant", "REDUCTIONS": "a constant",
    "IMAGE_EXTENSIONS": "a constant", "MAX_SCAN_FILES": "a constant",
    "MAX_SCAN_SECONDS": "a constant", "MAX_ITEMSETS": "a constant", "BITSET_DENSITY": "a constant", "FRACTIONS": "a constant", "RULE_METRICS": "a constant", "TARGETS": "a constant", "C0": "a constant", "LPC_TABLE_MAX": "a constant", "ARCHITECTURES": "a constant",
    "warm_up": "takes no argument",
    "MINERS": "a registry (its lookups: 'Registry: unknown entry')", "BINARIZERS": "a registry",
    "ATTRIBUTIONS": "a registry", "Target": "a type alias", "Literal": "a type alias",
    "UnreadableImage": "an exception", "MAX_IMAGE_PIXELS": "a constant", "PROVIDERS": "a constant",
    "ENTRY_POINT_GROUPS": "a constant", "SHIPPED": "a constant", "shipped_dir": "no arguments",
    "Exemplars": "built by exemplars", "FlipCurve": "built by pixel_flipping", "EricRule": "built by ERIC",
    "PlantedData": "built by planted_rules", "ShardedData": "built by ExplaiNN.fit on StoredBits with a client", "Comparison": "built by compare",
    "ReceptiveField": "built by receptive_field", "UnitCrops": "built by unit_crops",
    "FashionCNN": "no arguments", "FASHION_CLASSES": "a constant", "ZooModel": "built by zoo.load", "MiningContext": "built by the app",
    "Parametrized": "a base class without arguments", "Miner": "a base class without arguments",
    "LRPRule": "a base class without arguments", "Zero": "no arguments", "Pass": "no arguments",
    "ZPlus": "no arguments", "MnistCNN": "no arguments", "Cifar10CNN": "no arguments",
    "BitRows": "a Protocol (what a miner asks of a bit matrix), no constructor", "WORKER_CONFIG": "a constant",
    "SearchRule": "built by ExplaiNN's search", "EVIDENCE_PARAMS": "a constant", "MAX_RESAMPLES": "a constant", "lpc_table": "no arguments", "memory_budget": "no arguments (NNRULES_MAX_BYTES: test_itemsets_fimi)",
    "HEADROOM": "a constant", "available": "no arguments", "cache_dir": "no arguments (XDG: test_zoo)",
}


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match) as err:
        call()
    assert isinstance(err.value, (ValueError, TypeError))
    # the message is ours: no numpy/torch/numba internals leaking as the whole story
    assert "Traceback" not in str(err.value) and str(err.value).strip()


def _public_names() -> set[str]:
    """Every non-module name in ``nnrules.__all__`` and in the ``__all__`` of each of its modules."""
    names = set()
    modules = [nnrules] + [importlib.import_module(m.name) for m in pkgutil.walk_packages(nnrules.__path__, "nnrules.")
                           if not m.name.endswith("__main__")]
    for mod in modules:
        for n in getattr(mod, "__all__", ()):
            if not isinstance(getattr(mod, n), type(nnrules)):
                names.add(n)
    return names


def test_the_grid_covers_the_public_api():
    """Each public name has a case (its name starts a case id, e.g. ``"record: …"``) or a reason in NO_INPUT;
    prints the count of cases."""
    names = _public_names()
    covered = {re.split(r"[:.( ]", c[0])[0] for c in CASES}
    missing = sorted(n for n in names if n not in covered and n not in NO_INPUT)
    stale = sorted(set(NO_INPUT) - names)
    print(f"\n{len(CASES)} bad-input cases over {len(names) - len(set(NO_INPUT) & names)} public callables "
          f"({len(set(NO_INPUT) & names)} public names take no input: exceptions, constants, records)")
    assert not missing, f"public names without a bad-input case: {missing}"
    assert not stale, f"NO_INPUT names that are not public: {stale}"


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


def test_image_folder_survives_a_link_cycle_and_stops_at_its_limits(tmp_path):
    """torchvision's walk follows links: a link cycle inside an image folder never returned (80 s on /usr).
    The scan skips links, so it returns at once with the real images only; past its limit it says so."""
    from PIL import Image

    from nnrules.recording.loading import scan_images

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (5, 4), (i * 40, 0, 0)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "loop").symlink_to(tmp_path, target_is_directory=True)  # a cycle
    (tmp_path / "dog" / "elsewhere.png").symlink_to(tmp_path / "cat" / "0.png")
    ds = nnrules.image_folder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 6 and sorted(ds.targets) == [0, 0, 0, 1, 1, 1]
    x, y = ds[4]
    assert x.shape == (3, 4, 5) and y == 1
    with pytest.raises(ValueError, match="too large to scan"):
        scan_images(tmp_path, max_files=4)
    files, _ = scan_images(tmp_path, limit=2)
    assert [c for _, c in files] == [0, 1]
