"""NeuroChains (seed 004 Sec. 3–4): the sparse sub-network that keeps a model's outputs on local samples.

Every conv/linear layer's output channels (filters/neurons; the class layer excluded) get a score
S (init 1) multiplied into the output (eq. 3). Modules whose input and output have the same shape get a
gate G = sigmoid(α / T) (eq. 6, α init 0) that mixes the module's output with its input (eq. 7); for
residual networks these are the blocks (torchvision ``BasicBlock``/``Bottleneck``: any module with a
``downsample`` attribute), and convs inside a gated block are not gated again. The objective is
KL(softmax(original) ‖ softmax(scored)) + λ‖S‖₁ + λ_g Σα (eq. 8), minimised with Adam over S and α
only. Then filters with S < τ are removed, layers with G < 0.5 removed (G ≥ 0.5 kept, G := 1), and, if
the KL is still above ``kl_threshold``, the kept scores are fine-tuned without the penalties (Sec. 3.2).

Sparsity control. λ does not set the chain's size on its own: Adam moves every unneeded score by about
``lr`` per step whatever λ is (the KL's gradient is zero at S = 1), so the kept count follows steps × lr
more than λ (``benchmarks/neurochains.py`` sweeps both). With ``min_agreement`` set, τ is not fixed but
searched: the filters are ranked by their learned scores (λ shapes this ranking) and the chain is the
smallest top-k (binary search over k, one forward pass on the samples per step) whose predictions agree
with the model's on at least ``min_agreement`` of the samples while the predicted class's probability drops
by at most ``max_prob_drop`` on average; the fine-tuning above then runs on that chain.

The model is never modified: scores and gates live in forward hooks, removed after ``fit`` (also on
error); ``subnetwork_`` is a copy whose kept filters are the original ones times their scores (W ⊙ S),
removed filters zero and removed layers identities.

Why this module is long: one estimator whose fit, metrics (Sec. 4.2) and views read the same private
instrumentation (sites, gates, hooks); split apart they would have to expose it.
"""
from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..params import Param, check_fitted
from ..recording.hooks import class_layer, forward_hooks, named_layers, on_model, preserved_mode
from ..registry import MINERS
from .base import Miner

__all__ = ["NeuroChains", "quotient"]


def quotient(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Seed 004 eq. 9: (q[y] − max_{z≠y} q[z]) / (p[y] − max_{z≠y} p[z]) with y = argmax p; ``(n, C) → (n,)``.
    Negative where the predicted class changes."""
    if p.dim() != 2 or p.shape != q.shape or p.shape[1] < 2:
        raise ValueError(f"p and q must be (n, C) outputs of the same shape with C >= 2, got shape "
                         f"{tuple(p.shape)} and {tuple(q.shape)}")
    y = p.argmax(1, keepdim=True)
    mask = F.one_hot(y[:, 0], p.shape[1]).bool()
    gap = lambda r: r.gather(1, y)[:, 0] - r.masked_fill(mask, -np.inf).max(1).values
    return gap(q) / gap(p)


@dataclass
class _Site:
    name: str
    module: nn.Module
    channels: int


@dataclass
class Chain:
    """A local inference chain (NeuroChains' result), with the views rules have: ``to_sankey()`` (node
    and link tables as :meth:`nnrules.miners.flow.Flow.to_sankey`: nodes are kept filters, links are
    weights between them, ``pair``/``rule`` = −1), ``to_frame()`` (kept filters) and ``to_json()``."""

    nodes: pd.DataFrame
    links: pd.DataFrame
    kept: pd.DataFrame

    def __len__(self) -> int:
        return len(self.kept)

    def to_sankey(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.nodes, self.links

    def to_frame(self) -> pd.DataFrame:
        return self.kept

    def to_json(self) -> str:
        return json.dumps({"kept": self.kept.to_dict(orient="records"),
                           "links": self.links.to_dict(orient="records")})


class NeuroChains(Miner):
    """Extract the local inference chain of ``model`` for ``samples`` (seed 004).

    Parameters as in the paper (Sec. 4.1): ``lam`` (λ, filter-score L1), ``lam_gate`` (λ_g), ``temperature``
    (T), ``tau`` (score threshold), ``steps``/``lr`` (Adam, eq. 8), ``finetune_steps``/``finetune_lr``,
    ``kl_threshold`` (t: fine-tune only if the KL exceeds it), ``tol`` (stop when the loss changes by less;
    the paper uses 0.02, None runs all steps), ``seed``; the sparsity control ``min_agreement`` (None: the
    paper's fixed τ) and ``max_prob_drop`` (see the module docstring).

    Learned: ``scores_`` (layer → ``(channels,)`` tensor, 0 = removed), ``gates_`` (gated module → kept?),
    ``kept_`` (DataFrame: layer, filter, score), ``subnetwork_`` (runnable ``nn.Module``), ``chain_`` (a
    :class:`Chain`: the kept filters and their links, for the views), ``kl_`` (mean KL of the sub-network
    on the samples), ``history_`` (loss per step), ``threshold_`` (the score threshold used: τ, or the one the
    search found), ``search_`` (DataFrame of the search: kept, agreement, prob_drop, ok; empty without it).
    """

    fits_on = "model"
    params = (
        Param("lam", float, 0.005, "weight of the filter scores' L1 penalty (λ)", label="λ", low=0),
        Param("lam_gate", float, 1.0, "weight of the layer gates' penalty (λ_g)", low=0, ui=False),
        Param("temperature", float, 0.2, "gate temperature T", low=0, low_open=True, ui=False),
        Param("tau", float, 0.1, "filters with a score below this are removed (τ)", label="τ (keep above)",
              low=0),
        Param("steps", int, 300, "Adam steps for the scores", label="Steps", low=0, high=100_000),
        Param("finetune_steps", int, 50, "Adam steps for fine-tuning the kept scores", low=0, ui=False),
        Param("lr", float, 0.005, "learning rate", low=0, low_open=True, ui=False),
        Param("finetune_lr", float, 0.01, "fine-tuning learning rate", low=0, low_open=True, ui=False),
        Param("kl_threshold", float, 0.1, "fine-tune if the KL stays above this (t)", low=0, ui=False),
        Param("tol", float, None, "stop when the loss changes by less", low=0, optional=True,
              none_means="run all steps", ui=False),
        Param("seed", int, 0, "seed of the optimisation", ui=False),
        Param("min_agreement", float, None, "keep the fewest filters whose sub-network still predicts the model's "
              "class on at least this share of the samples", label="Keep agreement ≥", low=0, high=1,
              optional=True, none_means="the fixed threshold τ"),
        Param("max_prob_drop", float, 0.2, "… and lowers the predicted class's probability by at most this on "
              "average", low=0, high=1, ui=False),
    )

    def __init__(self, lam: float = 0.005, lam_gate: float = 1.0, temperature: float = 0.2, tau: float = 0.1,
                 steps: int = 300, finetune_steps: int = 50, lr: float = 0.005, finetune_lr: float = 0.01,
                 kl_threshold: float = 0.1, tol: float | None = None, seed: int = 0,
                 min_agreement: float | None = None, max_prob_drop: float = 0.2) -> None:
        self.lam, self.lam_gate, self.temperature, self.tau = lam, lam_gate, temperature, tau
        self.steps, self.finetune_steps, self.lr, self.finetune_lr = steps, finetune_steps, lr, finetune_lr
        self.kl_threshold, self.tol, self.seed = kl_threshold, tol, seed
        self.min_agreement, self.max_prob_drop = min_agreement, max_prob_drop

    # --- setup ----------------------------------------------------------------------------------
    @staticmethod
    def _probe(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[tuple, tuple]]:
        shapes: dict[str, tuple[tuple, tuple]] = {}

        def make(name):
            def hook(mod, inputs, output):  # returns None: the output is left alone
                if inputs and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
                    shapes.setdefault(name, (tuple(inputs[0].shape), tuple(output.shape)))
            return hook
        try:
            with torch.no_grad(), forward_hooks(model, {n: make(n) for n in named_layers(model)}):
                out = model(x)
        except RuntimeError as err:
            raise ValueError(f"the samples (shape {tuple(x.shape)}) do not fit the model: {err}") from err
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise ValueError("the model must return (batch, n_classes) logits")
        return shapes

    def _sites(self, model: nn.Module, shapes) -> tuple[list[_Site], list[str]]:
        out_layer = class_layer(model) if any(isinstance(m, nn.Linear) for m in model.modules()) else None
        mods = named_layers(model)
        # a unit is an output channel: a Conv2d's out_channels (dim 1), a Linear's out_features (its last dim,
        # also where it runs channels-last inside a block, as in ConvNeXt)
        sites = [_Site(n, m, int(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features))
                 for n, m in mods.items()
                 if isinstance(m, (nn.Conv2d, nn.Linear)) and n in shapes and n != out_layer]
        residual = [n for n, m in mods.items() if hasattr(m, "downsample") and n in shapes]
        blocks = [n for n in residual if shapes[n][0] == shapes[n][1]]
        inside = lambda n: any(n.startswith(b + ".") for b in residual)  # ResNets: gates on blocks only
        convs = [n for n, m in mods.items() if isinstance(m, nn.Conv2d) and n in shapes
                 and shapes[n][0] == shapes[n][1] and not inside(n)]
        return sites, blocks + convs

    @contextlib.contextmanager
    def _instrument(self, model: nn.Module, scores: dict[str, torch.Tensor], alphas: dict[str, torch.Tensor],
                    hard_gates: dict[str, bool] | None = None) -> Iterator[None]:
        mods = named_layers(model)
        handles = []

        def score_hook(name):
            def hook(mod, inputs, output):
                s = scores[name]
                if isinstance(mod, nn.Linear):  # features on the last dim, whatever comes before
                    return output * s
                return output * (s.view(1, -1, *([1] * (output.dim() - 2))))
            return hook

        def gate_hook(name):
            def hook(mod, inputs, output):
                if hard_gates is not None:
                    return output if hard_gates[name] else inputs[0].clone()  # a later in-place op must not hit the input
                g = torch.sigmoid(alphas[name] / self.temperature)
                return g * output + (1 - g) * inputs[0]
            return hook

        try:
            for n in scores:
                handles.append(mods[n].register_forward_hook(score_hook(n)))
            for n in alphas:  # registered after the score hooks: a gated conv mixes its scored output
                handles.append(mods[n].register_forward_hook(gate_hook(n)))
            yield
        finally:
            for h in handles:
                h.remove()

    # --- fit ------------------------------------------------------------------------------------
    def fit(self, model: nn.Module, samples: torch.Tensor) -> "NeuroChains":
        """``samples``: ``(n, C, H, W)`` (or ``(n, features)``) inputs from one local region."""
        self.validate()
        if not isinstance(samples, torch.Tensor) or samples.dim() < 2 or len(samples) == 0:
            raise ValueError("samples must be a non-empty batch tensor (n, ...) of model inputs")
        if not torch.isfinite(samples).all():
            raise ValueError("samples contain NaN or inf")
        x = on_model(model, samples.detach().float())  # the scores and gates live on the model's device too
        dev = x.device
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), preserved_mode(model), \
                _frozen(model):
            torch.manual_seed(self.seed)  # the caller's RNG state comes back after fit
            model.eval()
            shapes = self._probe(model, x[:1])
            sites, gated = self._sites(model, shapes)
            if not sites:
                raise ValueError("the model has no prunable layer (a Conv2d or Linear before the class layer); "
                                 "NeuroChains scores their output channels")
            with torch.no_grad():
                target = F.log_softmax(model(x), 1)
            scores = {s.name: torch.ones(s.channels, device=dev, requires_grad=True) for s in sites}
            alphas = {n: torch.zeros((), device=dev, requires_grad=True) for n in gated}
            self.history_: list[float] = []  # the objective per step

            def kl(out):
                return F.kl_div(F.log_softmax(out, 1), target, log_target=True, reduction="batchmean")

            with self._instrument(model, scores, alphas):
                self._optimise(lambda: kl(model(x)) + self.lam * sum(s.abs().sum() for s in scores.values())
                               + self.lam_gate * sum(alphas.values(), torch.zeros((), device=dev)),
                               list(scores.values()) + list(alphas.values()), self.steps, self.lr)
            with torch.no_grad():
                gates = {n: bool(torch.sigmoid(a / self.temperature) >= 0.5) for n, a in alphas.items()}
            self.threshold_, self.search_ = self.tau, pd.DataFrame(columns=["kept", "agreement", "prob_drop", "ok"])
            if self.min_agreement is not None:  # the chain the search chose, already fine-tuned
                self.threshold_, chosen, self.search_ = self._search(model, x, target, scores, gates, dev)
                masks = {n: (s.detach() >= self.threshold_).float() for n, s in scores.items()}
                scores = {n: chosen[n] * masks[n] for n in scores}
            else:
                with torch.no_grad():
                    for s in scores.values():
                        s[s < self.threshold_] = 0.0  # also negative scores: the paper's threshold is on the score
                masks = {n: (s != 0).float() for n, s in scores.items()}
            with self._instrument(model, scores, {n: torch.zeros((), device=dev) for n in gated}, gates):
                with torch.no_grad():
                    loss = float(kl(model(x)))
                if loss > self.kl_threshold and self.finetune_steps:
                    kept = {n: s.detach().clone().requires_grad_(True) for n, s in scores.items()}

                    def objective():
                        for n in scores:
                            scores[n] = kept[n] * masks[n]  # removed filters stay removed
                        return kl(model(x))
                    self._optimise(objective, list(kept.values()), self.finetune_steps, self.finetune_lr)
                    for n in scores:
                        scores[n] = (kept[n] * masks[n]).detach()
                with torch.no_grad():
                    self.kl_ = float(kl(model(x)))
        self.scores_ = {n: s.detach().clone() for n, s in scores.items()}
        self.gates_ = gates
        self.channels_ = {s.name: s.channels for s in sites}
        self._conv_sites = {s.name: isinstance(s.module, nn.Conv2d) for s in sites}
        self.subnetwork_ = self._build(model)
        rows = [(n, i, float(v)) for n, s in self.scores_.items() for i, v in enumerate(s) if v != 0]
        self.kept_ = pd.DataFrame(rows, columns=["layer", "filter", "score"])
        self._samples = x
        self.chain_ = Chain(*self.to_sankey(), self.kept_)
        return self

    def _search(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, scores: dict[str, torch.Tensor],
                gates: dict[str, bool], dev) -> tuple[float, dict[str, torch.Tensor], pd.DataFrame]:
        """The fewest filters (top-k by score) whose sub-network, after the fine-tuning of Sec. 3.2
        (``finetune_steps`` Adam steps on the KL, kept scores only), meets ``min_agreement`` and
        ``max_prob_drop`` on ``x``: binary search over k, O(log n_filters × finetune_steps) passes.
        Returns (threshold, the chosen chain's fine-tuned scores, the search's log). When even all
        positive-score filters fail, all of them are kept (the log says so: ok False)."""
        flat = torch.cat([s.detach().flatten() for s in scores.values()])
        order = torch.sort(flat[flat > 0], descending=True).values
        p = target.exp()
        y = p.argmax(1, keepdim=True)
        rows, tuned = [], {}
        hard = {n: torch.zeros((), device=dev) for n in gates}

        def kl(out):
            return F.kl_div(F.log_softmax(out, 1), target, log_target=True, reduction="batchmean")

        def test(k: int) -> bool:
            thr = float(order[k - 1])
            masks = {n: (s.detach() >= thr).float() for n, s in scores.items()}
            kept = {n: (s.detach() * masks[n]).clone().requires_grad_(True) for n, s in scores.items()}
            live = dict(kept)
            with self._instrument(model, live, hard, gates):
                def objective():
                    for n in live:
                        live[n] = kept[n] * masks[n]
                    return kl(model(x))
                history = list(self.history_)
                self._optimise(objective, list(kept.values()), self.finetune_steps, self.finetune_lr)
                self.history_ = history  # the search's trials are not the fit's history
                final = {n: (kept[n] * masks[n]).detach() for n in kept}
                live.update(final)
                with torch.no_grad():
                    q = torch.softmax(model(x), 1)
            agree = float((q.argmax(1, keepdim=True) == y).float().mean())
            drop = float((p.gather(1, y) - q.gather(1, y)).mean())
            least = self.min_agreement if self.min_agreement is not None else 1.0
            ok = agree >= least - 1e-9 and drop <= self.max_prob_drop + 1e-9
            rows.append((k, agree, drop, ok))
            tuned[k] = final
            return ok

        log = lambda: pd.DataFrame(rows, columns=["kept", "agreement", "prob_drop", "ok"])
        if len(order) == 0:
            return self.tau, {n: s.detach() for n, s in scores.items()}, log()
        lo, hi = 1, len(order)  # hi passes, or is the largest chain there is
        test(hi)
        while lo < hi:
            mid = (lo + hi) // 2
            if test(mid):
                hi = mid
            else:
                lo = mid + 1
        if hi not in tuned:
            test(hi)
        return float(order[hi - 1]), tuned[hi], log()

    def _optimise(self, objective, params: list[torch.Tensor], steps: int, lr: float) -> None:
        if not steps or not params:
            return
        opt = torch.optim.Adam(params, lr=lr)
        last = None
        for _ in range(steps):
            opt.zero_grad()
            loss = objective()
            loss.backward()
            opt.step()
            value = float(loss.detach())
            self.history_.append(value)
            if self.tol is not None and last is not None and abs(last - value) < self.tol:
                break
            last = value

    def _build(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with W ⊙ S in the scored layers and gated-off modules replaced by identities."""
        sub = copy.deepcopy(model)
        mods = named_layers(sub)
        with torch.no_grad():
            for n, s in self.scores_.items():
                weight = mods[n].get_parameter("weight")
                weight.mul_(s.view(-1, *([1] * (weight.dim() - 1))))
                bias = getattr(mods[n], "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.mul_(s)
        for n, kept in self.gates_.items():
            if not kept:
                parent_name, _, child = n.rpartition(".")
                parent = mods[parent_name] if parent_name else sub
                setattr(parent, child, nn.Identity())
        for p in sub.parameters():
            p.requires_grad_(False)
        return sub.eval()

    # --- metrics (Sec. 4.2) -----------------------------------------------------------------------
    def _probs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), preserved_mode(model):
            return torch.softmax(model.eval()(on_model(model, x)).float(), 1).cpu()

    def fidelity(self, model: nn.Module, samples: torch.Tensor | None = None) -> dict[str, float]:
        """On ``samples`` (default: the fitted ones): ``agreement`` (same predicted class), ``prob_drop``
        (mean decrease of the original predicted class's probability), ``quotient`` (mean eq. 9)."""
        x = self._samples if samples is None else samples
        p, q = self._probs(model, x), self._probs(self.subnetwork_, x)
        y = p.argmax(1)
        return {"agreement": float((q.argmax(1) == y).float().mean()),
                "prob_drop": float((p.gather(1, y[:, None]) - q.gather(1, y[:, None])).mean()),
                "quotient": float(quotient(p, q).mean())}

    def faithfulness(self, model: nn.Module) -> pd.DataFrame:
        """For each kept filter: the drop of the original predicted class's probability (sub-network, fitted
        samples) when that filter alone is removed too. Columns: layer, filter, score, degradation."""
        x = self._samples
        p = self._probs(model, x)
        y = p.argmax(1, keepdim=True)
        base = self._probs(self.subnetwork_, x).gather(1, y)
        out = []
        for layer, f, score in self.kept_.itertuples(index=False):
            drop = lambda mod, i, o, f=f: o.index_fill(1, torch.tensor([f], device=o.device), 0.0)  # noqa: E731
            with forward_hooks(self.subnetwork_, {layer: drop}):
                q = self._probs(self.subnetwork_, x).gather(1, y)
            out.append((layer, f, score, float((base - q).mean())))
        return pd.DataFrame(out, columns=["layer", "filter", "score", "degradation"])

    def stability(self, model: nn.Module, pool: torch.Tensor, k: int = 10) -> float:
        """Agreement of the sub-network with the model on the ``k`` nearest samples of ``pool`` to each fitted
        sample, in the space of the class layer's inputs (the penultimate layer), duplicates removed."""
        name = class_layer(model)

        def embed(x):
            seen = {}
            with forward_hooks(model, {name: lambda m, i, o: seen.__setitem__("f", i[0])}):
                self._probs(model, x)
            return seen["f"].flatten(1).float().cpu()
        feats = embed(pool)
        near = set()
        for f in embed(self._samples):
            d = (feats - f).norm(dim=1)
            d[d < 1e-6] = np.inf  # the sample itself is not unseen
            near.update(torch.topk(d, min(k, len(d)), largest=False).indices.tolist())
        x = pool[sorted(near)]
        return float((self._probs(self.subnetwork_, x).argmax(1) == self._probs(model, x).argmax(1)).float().mean())

    def pictures(self, model: nn.Module, layer: str, unit: int, data: torch.Tensor, m: int = 8,
                 steps: int = 200) -> dict:
        """What a kept filter responds to in the original model: its ``prototype`` ``(C, H, W)`` (activation
        maximisation) and its top-``m`` ``exemplars`` among ``data`` ``(n, C, H, W)``."""
        from ..attribution.prototypes import exemplars, maximize
        from ..recording.record import record

        acts = record(model, data, [layer], reduce="max", progress=False)
        return {"prototype": maximize(model, layer, [unit], example=data[:1], steps=steps),
                "exemplars": exemplars(acts, layer, [unit], m=m, data=data)}

    # --- output -----------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The kept filters: layer, filter, score."""
        check_fitted(self, "chain_")
        return self.chain_.to_frame()

    def to_json(self) -> str:
        check_fitted(self, "chain_")
        return self.chain_.to_json()

    def to_flow(self) -> Chain:
        """The chain for the shared Sankey view (it has ``to_sankey()`` like a Flow)."""
        check_fitted(self, "chain_")
        return self.chain_

    @property
    def size_(self) -> tuple[int, int]:
        """(kept filters, all scored filters)."""
        return len(self.kept_), sum(self.channels_.values())

    @property
    def conv_size_(self) -> tuple[int, int]:
        """(kept conv filters, all conv filters): the fraction as seed 004 counts it (filters of conv layers)."""
        check_fitted(self, "kept_")
        convs = {n for n, m in self._conv_sites.items() if m}
        return int(self.kept_["layer"].isin(convs).sum()), sum(c for n, c in self.channels_.items() if n in convs)

    def to_sankey(self, model: nn.Module | None = None, max_inputs: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The chain as node and link tables like :meth:`nnrules.miners.flow.Flow.to_sankey`: one node per
        kept filter (layer order); links from kept filters of the previous scored layer, weighted by the summed
        |weight| connecting them in the sub-network — for each filter its ``max_inputs`` strongest inputs
        (a dense layer would give every pair: millions of links nobody can read). Cost: one top-k per pair of
        consecutive layers. (``model`` is not needed; kept for old calls.)"""
        mods = named_layers(self.subnetwork_)  # layers inside a removed block are gone
        layers = [n for n in self.scores_ if (self.scores_[n] != 0).any() and hasattr(mods.get(n), "weight")]
        kept = {n: torch.nonzero(self.scores_[n]).flatten() for n in layers}
        first: dict[str, int] = {}
        names: list[list[str]] = []
        node_layer: list[str] = []
        labels: list[str] = []
        scores: list[float] = []
        for n in layers:
            prefix = "c" if isinstance(mods[n], nn.Conv2d) else ""  # as nnrules.record names units
            first[n] = len(names)
            fs = kept[n].tolist()
            names += [[f"{n}:{prefix}{f}"] for f in fs]
            labels += [f"{n}:{f}" for f in fs]
            node_layer += [n] * len(fs)
            scores += self.scores_[n][kept[n]].tolist()
        nodes = pd.DataFrame({"id": np.arange(len(names)), "layer": node_layer, "units": names, "label": labels,
                              "score": scores}, columns=["id", "layer", "units", "label", "score"])
        src, tgt, val = [], [], []
        for a, b in zip(layers, layers[1:]):
            w = mods[b].get_parameter("weight").detach().abs()
            w = w.flatten(2).sum(2) if w.dim() > 2 else w  # conv: (out, in)
            if w.shape[1] != self.channels_[a]:
                if w.shape[1] % self.channels_[a]:
                    continue  # no channel correspondence (e.g. a residual shortcut in between)
                w = w.view(w.shape[0], self.channels_[a], -1).sum(2)  # flatten after a conv: group by channel
            sub = w[kept[b]][:, kept[a]].cpu()  # (kept in b, kept in a)
            top = torch.topk(sub, min(max_inputs, sub.shape[1]), dim=1)
            jb, k = torch.nonzero(top.values > 0, as_tuple=True)
            src.append(first[a] + top.indices[jb, k].numpy())
            tgt.append(first[b] + jb.numpy())
            val.append(top.values[jb, k].numpy().astype(float))
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.array([], dt)  # noqa: E731
        links = pd.DataFrame({"source": cat(src, np.int64), "target": cat(tgt, np.int64), "value": cat(val, float)})
        links["pair"], links["rule"] = -1, -1
        return nodes, links

@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters take no gradient inside; their flags are restored afterwards."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)


def _run_in_app(ctx, miner: NeuroChains):
    """The app's adapter: the chain behind up to ``samples`` inputs predicted as each chosen class
    (``ctx.options``: ``classes`` indices, ``samples`` per class); records the kept layers for the pictures."""
    classes = list(ctx.options.get("classes") or [])
    per_class = int(ctx.options.get("samples", 10))
    if not classes:
        raise ValueError("choose one or more classes whose predictions the chain should keep")
    ctx.report("predicting", 0.1)
    with torch.no_grad(), preserved_mode(ctx.model):
        preds = torch.cat([ctx.model.eval()(on_model(ctx.model, xb)).argmax(1).cpu() for xb in ctx.inputs.split(256)])
    picked = [torch.nonzero(preds == c).flatten()[:per_class] for c in classes]
    missing = [ctx.class_names[c] for c, p in zip(classes, picked) if len(p) == 0]
    if missing:
        raise ValueError(f"the model predicts no input as {missing}; choose other classes")
    ctx.check()
    ctx.report(f"NeuroChains: optimising filter scores ({miner.steps} steps)", 0.3)
    miner.fit(ctx.model, ctx.inputs[torch.cat(picked)])
    ctx.check()
    layers = list(dict.fromkeys(miner.kept_["layer"]))
    if layers:
        ctx.record("max", layers)  # the detail panel's exemplars need the kept filters' activations
    kept, total = miner.size_
    # held out: as many other inputs predicted as the same classes, which the chain was not fitted on
    others = [torch.nonzero(preds == c).flatten()[per_class: 2 * per_class] for c in classes]
    held = torch.cat(others)
    beside = (f", {miner.fidelity(ctx.model, ctx.inputs[held])['agreement']:.2f} on {len(held)} other samples of "
              "the same classes (held out)" if len(held) else ", no other sample of these classes to hold out")
    return miner.chain_, (f"NeuroChains: {kept} of {total} filters kept ({kept / max(total, 1):.0%}) for "
                          f"{sum(len(p) for p in picked)} samples; agreement "
                          f"{miner.fidelity(ctx.model)['agreement']:.2f} on them{beside}")


MINERS.register("neurochains", "NeuroChains (local chain)", NeuroChains, layers="none",
                          run=_run_in_app,
                          help="the sparse sub-network that keeps the model's outputs on a few samples of the "
                               "chosen classes (seed 004); no layers to choose")
