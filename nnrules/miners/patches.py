"""Explanation-guided itemset mining (seed 002): Grad-CAM patches → filter transactions → class rules.

Pipeline (Sec. 3): a Grad-CAM heatmap per image for its predicted class (3.1); k candidate patches,
each the best of m random ω×ω windows by heatmap sum, its region zeroed before the next (eq. 1); the
relevant ones by incremental perturbation (3.1, τ_prt); per patch a transaction of the top N−1 filters
by summed activation in the window plus the predicted class (eq. 2, 3.2); Eclat per class, supports then
recomputed over all transactions (3.3); rules filters → class, the top q per class by support ×
confidence (3.4), and the filter sets shared by several classes.

Choices the paper leaves open, written down: the "output score" for τ_prt is the softmax probability
of the predicted class; each candidate is perturbed on its own (the paper: "independently"), in the
order found, and the patch is kept; selection stops after the first patch whose score differs from
the previous perturbation's by less than τ_prt.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..attribution.methods import attribute, last_conv_layer
from ..data.rules import Rule, RuleSet
from ..params import Param, check_fitted
from ..recording.hooks import forward_hooks, on_model, preserved_mode, resolve_layers
from ..registry import MINERS
from .base import Miner
from .evidence import EVIDENCE_PARAMS, half_samples, held_out_counts, with_evidence
from .flow import Flow
from .itemsets._frequent import eclat, min_count

__all__ = ["gradcam_maps", "candidate_patches", "relevant_patches", "PatchMiner", "mine_transactions",
           "shared_sets"]


def gradcam_maps(model: nn.Module, images: torch.Tensor, layer: str | None = None, batch_size: int = 64
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM ``(n, H, W)`` at ``layer`` (default: the last conv) for each image's predicted class, and
    the predictions ``(n,)``."""
    layer = layer or last_conv_layer(model)
    maps, preds = [], []
    for i in range(0, len(images), batch_size):
        x = images[i: i + batch_size]
        with torch.no_grad(), preserved_mode(model):
            p = model.eval()(on_model(model, x)).argmax(1).to(x.device)
        maps.append(attribute(model, x, p, "gradcam", layer=layer).sum(1))
        preds.append(p)
    return torch.cat(maps), torch.cat(preds)


def candidate_patches(heat: np.ndarray, size: int, k: int, m: int, rng: np.random.Generator
                      ) -> list[tuple[int, int]]:
    """Seed 002 eq. 1, k times: the best of ``m`` random ``size``×``size`` windows by the sum of ``heat``
    ``(H, W)``; its region is then zeroed. Returns the windows' (top, left), best first."""
    heat = np.array(heat, dtype=np.float64, copy=True)
    h, w = heat.shape
    if not 1 <= size <= min(h, w):
        raise ValueError(f"patch size must be in 1..{min(h, w)} for {h}×{w} images, got {size}")
    out = []
    for _ in range(k):
        tops = rng.integers(0, h - size + 1, m)
        lefts = rng.integers(0, w - size + 1, m)
        integral = np.pad(heat, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        scores = (integral[tops + size, lefts + size] - integral[tops, lefts + size]
                  - integral[tops + size, lefts] + integral[tops, lefts])
        j = int(np.argmax(scores))
        t, l = int(tops[j]), int(lefts[j])
        out.append((t, l))
        heat[t: t + size, l: l + size] = 0.0
    return out


def relevant_patches(model: nn.Module, image: torch.Tensor, boxes: list[tuple[int, int]], size: int, cls: int,
                     tau: float) -> list[tuple[int, int]]:
    """Seed 002 Sec. 3.1, incremental perturbation: zero each candidate patch of ``image`` ``(C, H, W)`` on
    its own, keep it, and stop once the class probability changes by less than ``tau`` from the previous
    perturbation (the first one is compared with the unperturbed image)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(f"image must be one (C, H, W) tensor, got {getattr(image, 'shape', type(image).__name__)}")
    if not boxes:
        return []
    batch = image.unsqueeze(0).repeat(len(boxes) + 1, 1, 1, 1)
    for i, (t, l) in enumerate(boxes, start=1):
        batch[i, :, t: t + size, l: l + size] = 0.0
    with torch.no_grad(), preserved_mode(model):
        out = model.eval()(on_model(model, batch)).float()
    if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or not 0 <= cls < out.shape[1]:
        raise ValueError(f"cls must be a class index in 0..{out.shape[1] - 1}, got {cls!r}")
    prob = torch.softmax(out, 1)[:, cls].cpu().numpy()
    kept = []
    for i, box in enumerate(boxes, start=1):
        kept.append(box)
        if abs(prob[i] - prob[i - 1]) < tau:
            break
    return kept


def _layer_maps(model: nn.Module, layer: str, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The layer's output maps upsampled to the input size ``(n, d, H, W)``."""
    seen = []
    with torch.no_grad(), preserved_mode(model), forward_hooks(model, {layer: lambda m, i, o: seen.append(o.detach().float().cpu())}):
        for i in range(0, len(images), batch_size):
            model.eval()(on_model(model, images[i: i + batch_size]))
    out = torch.cat(seen)
    if out.dim() != 4:
        raise ValueError(f"layer {layer!r} has no spatial maps (output {tuple(out.shape[1:])}); patches need a "
                         "conv layer")
    return F.interpolate(out, size=images.shape[-2:], mode="bilinear", align_corners=False)


def mine_transactions(transactions: np.ndarray, n_filters: int, min_support: float, q: int,
                      max_len: int | None = None) -> pd.DataFrame:
    """Seed 002 Sec. 3.3–3.4 on a ``(n, n_filters + n_classes)`` bool transaction matrix (each row: its
    filters, then one class item). Eclat per class (support within the class ≥ ``min_support``), supports
    recomputed over all transactions, rules filters → class, the top ``q`` per class by support × confidence.
    ``max_len`` caps the filter-set size (the paper has no cap; with N−1 close to the number of filters nearly
    every subset is frequent, and the count explodes).

    Columns: ``class``, ``filters`` (frozenset), ``support_class`` (within the class), ``support``
    (of filters ∪ class over all rows), ``confidence`` (P(class | filters)), ``lift``, ``score``, ``rows``
    (the transactions the rule covers).
    """
    T = np.asarray(transactions, dtype=bool)
    if T.ndim != 2 or T.shape[1] <= n_filters:
        raise ValueError(f"transactions must be (n, n_filters + n_classes) with n_filters={n_filters}, "
                         f"got shape {T.shape}")
    if q < 1:
        raise ValueError(f"q must be ≥ 1, got {q}")
    min_count(min_support, max(len(T), 1))  # validates min_support
    filt, cls = T[:, :n_filters], T[:, n_filters:]
    if not (cls.sum(1) == 1).all():
        raise ValueError("each transaction needs exactly one class item after the filter items")
    label = cls.argmax(1)
    rows = []
    for c in np.unique(label):
        mine = label == c
        sets = eclat(filt[mine], min_support, max_len=max_len)
        for s, sc in zip(sets["itemsets"], sets["support"]):
            has = filt[:, sorted(s)].all(1)
            both = has & mine
            rows.append({"class": int(c), "filters": s, "support_class": float(sc),
                         "support": both.mean(), "confidence": both.sum() / has.sum(),
                         "lift": (both.sum() / has.sum()) / mine.mean(), "rows": np.flatnonzero(both)})
    df = pd.DataFrame(rows, columns=["class", "filters", "support_class", "support", "confidence", "lift", "rows"])
    df["score"] = df["support"] * df["confidence"]
    df = df.sort_values(["class", "score"], ascending=[True, False], kind="stable")
    return df.groupby("class", sort=True).head(q).reset_index(drop=True)


def shared_sets(rules: pd.DataFrame) -> pd.DataFrame:
    """Filter sets that are the antecedent of rules for two or more classes (class-shared, Sec. 3.4)."""
    if not isinstance(rules, pd.DataFrame) or not {"filters", "class"} <= set(rules.columns):
        raise TypeError("rules must be the DataFrame of mine_transactions (columns 'filters' and 'class'), "
                        f"got {type(rules).__name__}")
    if rules.empty:
        return pd.DataFrame(columns=["filters", "classes"])
    by = rules.groupby("filters")["class"].apply(lambda c: sorted(set(int(v) for v in c)))
    return by[by.map(len) >= 2].rename("classes").rename_axis("filters").reset_index()


class PatchMiner(Miner):
    """Class-specific and class-shared filter sets from Grad-CAM patches (seed 002).

    Parameters: ``layer`` (a conv layer; default the last), ``size`` (ω, pixels), ``k`` (candidate patches
    per image), ``m`` (random windows per candidate), ``tau`` (τ_prt), ``top`` (N−1 filters per
    transaction), ``min_support`` (τ_support, within each class), ``q`` (rules per class), ``max_len`` (largest
    filter set, None = no cap), ``seed``, ``batch_size``.

    Learned: ``patches_`` (DataFrame: image, top, left, class), ``transactions_`` ``(n_patches, d + C)``
    bool, ``responses_`` ``(n_patches, d)`` (eq. 2), ``rule_table_`` (see :func:`mine_transactions`; ``rows``
    index ``patches_``), ``rules_`` (the same rules as a :class:`RuleSet`: class → filter set, see
    :meth:`to_ruleset`), ``shared_`` (filter sets in the rules of ≥ 2 classes), ``n_filters_``, ``layer_``,
    ``size_`` (ω used).
    """

    fits_on = "model"
    params = (
        Param("layer", str, None, "the conv layer whose filters make the transactions", optional=True,
              none_means="the last conv layer", ui=False),
        Param("size", int, None, "patch side ω in pixels", label="Patch size", low=1, optional=True,
              none_means="a third of the image side"),
        Param("k", int, 3, "candidate patches per image", low=1, high=100, ui=False),
        Param("m", int, 50, "random windows per candidate", low=1, high=10_000, ui=False),
        Param("tau", float, 0.1, "a patch is relevant while hiding it changes the class probability by at least "
              "this (τ_prt)", low=0, high=1, high_open=True, ui=False),
        Param("top", int, 10, "filters per transaction: the patch's N−1 strongest", label="Top filters", low=1),
        Param("min_support", float, 0.5, "a filter set is frequent if it is in at least this share of a class's "
              "patches", label="Support", low=0, high=1, low_open=True),
        Param("q", int, 10, "rules kept per class (best support × confidence)", label="Rules/class", low=1),
        Param("max_len", int, None, "largest filter set", low=1, optional=True, none_means="no cap", ui=False),
        Param("seed", int, 0, "seed of the random windows", ui=False),
        Param("batch_size", int, 64, "images per forward pass", low=1, ui=False),
        *EVIDENCE_PARAMS,
    )

    def __init__(self, layer: str | None = None, size: int | None = None, k: int = 3, m: int = 50, tau: float = 0.1,
                 top: int = 10, min_support: float = 0.5, q: int = 10, max_len: int | None = None, seed: int = 0,
                 batch_size: int = 64, resamples: int = 0, random_state: int | None = 0) -> None:
        self.layer, self.size, self.k, self.m, self.tau = layer, size, k, m, tau
        self.top, self.min_support, self.q, self.max_len = top, min_support, q, max_len
        self.seed, self.batch_size = seed, batch_size
        self.resamples, self.random_state = resamples, random_state

    def _check(self, model: nn.Module, images) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
            raise ValueError("images must be a non-empty (n, C, H, W) tensor")
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or inf")
        self.validate()
        if self.layer is not None:
            resolve_layers(model, [self.layer], allow_output=False)
        return images.detach().float().cpu()  # kept on the CPU; each forward pass moves a batch to the model

    def fit(self, model: nn.Module, images: torch.Tensor,
            on_progress: Callable[[str, float], None] | None = None) -> "PatchMiner":
        """Patches, transactions and rules on ``images`` (seed 002 Sec. 3); ``on_progress(stage, fraction)`` is
        called before each half-sample (``resamples``); an exception it raises (the app's Cancel) ends the fit."""
        images = self._check(model, images)
        layer = self.layer or last_conv_layer(model)
        self.size_ = self.size or max(2, int(images.shape[-1]) // 3)
        maps = _layer_maps(model, layer, images[:1], 1)
        d = maps.shape[1]
        if self.top > d:
            raise ValueError(f"top={self.top} filters per transaction but {layer!r} has only {d}")
        heat, preds = gradcam_maps(model, images, layer, self.batch_size)
        with torch.no_grad(), preserved_mode(model):
            n_classes = model.eval()(on_model(model, images[:1])).shape[1]
        rng = np.random.default_rng(self.seed)
        patches = []
        for i in range(len(images)):
            boxes = candidate_patches(heat[i].cpu().numpy(), self.size_, self.k, self.m, rng)
            for t, l in relevant_patches(model, images[i], boxes, self.size_, int(preds[i]), self.tau):
                patches.append((i, t, l, int(preds[i])))
        self.patches_ = pd.DataFrame(patches, columns=["image", "top", "left", "class"])
        acts = _layer_maps(model, layer, images, self.batch_size)
        s = self.size_
        resp = torch.stack([acts[i, :, t: t + s, l: l + s].sum((1, 2)) for i, t, l, _ in patches])
        self.responses_ = resp.numpy()
        T = np.zeros((len(patches), d + n_classes), dtype=bool)
        best = np.argsort(-self.responses_, axis=1, kind="stable")[:, : self.top]
        np.put_along_axis(T, best, True, axis=1)
        T[np.arange(len(patches)), d + self.patches_["class"].to_numpy()] = True
        self.transactions_, self.n_filters_, self.layer_ = T, d, layer
        self.rule_table_ = mine_transactions(T, d, self.min_support, self.q, self.max_len)
        self._images = images  # patch_images crops from them
        self.shared_ = shared_sets(self.rule_table_)
        self.rules_ = self.to_ruleset()
        if self.resamples:
            self.rules_ = self._with_evidence(len(images), on_progress)
        return self

    def _with_evidence(self, n_images: int, on_progress: Callable[[str, float], None] | None = None) -> RuleSet:
        """Stability and held-out confidence from half-samples of the **images** (a patch goes with its image):
        each half's patches are mined again (Eclat and the rules, Grad-CAM is not recomputed), the rules are
        measured on the other half's patches (:mod:`nnrules.miners.evidence`)."""
        image = self.patches_["image"].to_numpy()
        splits = half_samples(n_images, self.resamples, self.random_state)
        held, sets = [], []
        for b, (mined, other) in enumerate(splits):
            if on_progress is not None:
                on_progress(f"patches: half-sample {b + 1} of {len(splits)}", b / len(splits))
            rows = np.flatnonzero(np.isin(image, mined))
            T = self.transactions_[rows]
            sets.append(self._ruleset(T, mine_transactions(T, self.n_filters_, self.min_support, self.q,
                                                           self.max_len)))
            held.append(self.transactions_[np.isin(image, other)])
        d = self.n_filters_
        return with_evidence(self.rules_, sets, lambda b, r: held_out_counts(r, held[b][:, d:], held[b][:, :d]))

    def filters_for(self, cls: int) -> list[int]:
        """The filters in the antecedents of class ``cls``'s rules (what seed 002 Sec. 4.2 perturbs)."""
        return sorted(set().union(*self.rule_table_.loc[self.rule_table_["class"] == cls, "filters"]))

    def filter_ranking(self, cls: int) -> list[int]:
        """All filters of the layer, most class-``cls``-specific first: those in the class's rules by their
        summed rule score (support × confidence), then the rest by how often they are among the top filters
        of the class's patches, then by index (for zeroing curves over the fraction of filters)."""
        check_fitted(self, "rule_table_")
        if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or not 0 <= cls < self.transactions_.shape[1] - self.n_filters_:
            raise ValueError(f"cls must be a class index in 0..{self.transactions_.shape[1] - self.n_filters_ - 1}, "
                             f"got {cls!r}")
        score = np.zeros(self.n_filters_)
        for fs, sc in zip(*self.rule_table_.loc[self.rule_table_["class"] == cls, ["filters", "score"]].T.values):
            score[sorted(fs)] += sc
        mine = self.transactions_[:, self.n_filters_ + int(cls)]
        freq = self.transactions_[mine, : self.n_filters_].sum(0)
        return np.lexsort((np.arange(self.n_filters_), -freq, -score)).tolist()

    def patch_images(self, rule: int) -> torch.Tensor:
        """The patches ``(n, C, ω, ω)`` a rule (row of ``rules_``) covers."""
        s, out = self.size_, []
        for r in self.rule_table_["rows"].iloc[rule]:
            i, t, l, _ = self.patches_.iloc[int(r)]
            out.append(self._images[i, :, t: t + s, l: l + s])
        return torch.stack(out)

    def weighted_average(self, rule: int) -> torch.Tensor:
        """Sec. 4.1: the rule's patches averaged, each weighted by its filters' summed response ``(C, ω, ω)``."""
        rows = self.rule_table_["rows"].iloc[rule]
        filters = sorted(self.rule_table_["filters"].iloc[rule])
        w = torch.as_tensor(self.responses_[np.asarray(rows)][:, filters].sum(1), dtype=torch.float32).clamp_min(0)
        w = w / w.sum() if w.sum() > 0 else torch.full_like(w, 1 / len(w))
        return (self.patch_images(rule) * w[:, None, None, None]).sum(0)

    def to_ruleset(self, class_names: list[str] | None = None) -> RuleSet:
        """The rules as a :class:`RuleSet` (head: the class, in the output; tail: the filter set, all on):
        ``support`` = the class's transactions, ``holds`` = those with the filter set."""
        check_fitted(self, "rule_table_")
        rs = self._ruleset(self.transactions_, self.rule_table_, class_names)
        if class_names is not None and getattr(self, "rules_", None) is not None and self.rules_.resampled:
            rs = replace(rs, rules=[replace(r, stability=o.stability, confidence_interval=o.confidence_interval)
                                    for r, o in zip(rs.rules, self.rules_.rules)], resampled=self.rules_.resampled)
        return rs

    def _ruleset(self, T: np.ndarray, table: pd.DataFrame, class_names: list[str] | None = None) -> RuleSet:
        n_classes = T.shape[1] - self.n_filters_
        names = class_names or [str(c) for c in range(n_classes)]
        counts = T[:, self.n_filters_:].sum(0)
        rules = [Rule((int(c),), tuple(sorted(f)), 1, len(f), int(counts[c]), len(rows))
                 for c, f, rows in zip(table["class"], table["filters"], table["rows"])]
        return RuleSet(rules, [f"class {n}" for n in names], [f"{self.layer_}:c{f}" for f in range(self.n_filters_)],
                       "output", self.layer_)


def _run_in_app(ctx, miner: PatchMiner):
    """The app's adapter: patches and Eclat on the one chosen conv layer (see registry)."""
    miner.set_params(layer=ctx.layers[0], max_len=miner.max_len or 4)  # a cap keeps any setting interactive
    ctx.record("max")  # the detail panel's exemplars need the layer's activations
    ctx.check()
    ctx.report("Grad-CAM patches and Eclat", 0.5)

    def on_progress(stage: str, fraction: float) -> None:
        ctx.check()  # Cancel is seen between half-samples
        ctx.report(stage, 0.5 + fraction / 2)
    miner.fit(ctx.model, ctx.inputs, on_progress)
    rs = miner.to_ruleset(ctx.class_names)
    return Flow([rs.head_layer, rs.tail_layer], [rs]), (f"{len(miner.patches_)} patches, {len(rs)} rules, "
                                                        f"{len(miner.shared_)} filter sets shared by classes")


MINERS.register("patches", "Grad-CAM patches + Eclat", PatchMiner, layers="conv", run=_run_in_app,
                          help="frequent sets of strong filters in the image patches Grad-CAM finds, per class "
                               "(seed 002); choose one conv layer")
