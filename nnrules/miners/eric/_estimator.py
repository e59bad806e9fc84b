"""ERIC (seed 001 Sec. 3): quantised kernels, decision-tree rules with negated literals, a logic program.

Quantisation (eq. 3–5): a kernel is true when the l1 norm of its activation map exceeds its mean over
the training data (record with ``reduce="l1"``); output neurons are the model's prediction. For each
kernel of layer l a decision tree over the literals of layer l−1 (gini, max depth d, a child holding
less than α of its parent's samples is not split further, leaf = modal value) gives the rules under
which the kernel is true; default negation makes it false otherwise. Rules are simplified by the
paper's two merges. The program (eq. 1–2) quantises the entry layer and infers every later layer.

Choices the paper leaves open, written down: a node is split only if the split lowers the gini impurity
(and both children are non-empty); depth d = at most d literals per rule; a leaf with a tie is false
(default negation); when several output rules fire, the one with the highest training precision decides;
when none fires, the training majority class.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from ...data.activations import OUTPUT, Activations
from ...data.rules import Rule, RuleSet
from ...params import Param, check_fitted
from ...registry import MINERS
from ..base import Miner
from ..evidence import EVIDENCE_PARAMS, half_samples, held_out_counts, with_evidence

__all__ = ["ERIC", "EricRule", "Literal"]

Literal = tuple[int, bool]  # (unit index in the lower layer, True = positive literal / False = negated)


@dataclass(frozen=True)
class EricRule:
    """``antecedent`` (conjoined literals of ``lower``) → every unit in ``consequent`` of ``upper`` is true.

    ``support``: training samples where the antecedent holds; ``precision``: the fraction of them where
    the (first) consequent unit is true."""

    upper: str
    lower: str
    antecedent: tuple[Literal, ...]
    consequent: tuple[int, ...]
    support: int
    precision: float


@dataclass
class _Node:
    literals: tuple[Literal, ...]
    idx: np.ndarray


def _tree_leaves(Xi: np.ndarray, y: np.ndarray, n_classes: int, depth: int,
                 alpha: float) -> list[tuple[tuple[Literal, ...], np.ndarray]]:
    """Grow one gini tree over binary features and return its leaves as (literals, class counts).

    ``Xi (n, K)`` 0/1 int64, ``y (n,)`` class indices in 0..n_classes-1. A node is split on the feature that
    lowers the weighted gini impurity most (only if it lowers it, both children non-empty, no feature twice
    on a path), up to ``depth`` literals; a child with less than ``alpha`` of its parent's samples is a leaf
    (seed 001: stop branching if |Q| / |P| < α). Each split costs O(|node| × K × n_classes)."""
    out = []
    Y = np.eye(n_classes, dtype=np.int64)[y]
    stack = [_Node((), np.arange(len(y)))]
    while stack:
        node = stack.pop()
        idx = node.idx
        n = len(idx)
        counts = Y[idx].sum(0)
        split = None
        if len(node.literals) < depth and (counts > 0).sum() > 1:
            on_c = Y[idx].T @ Xi[idx]  # (classes, features): samples of each class with the literal true
            on = on_c.sum(0)
            off_c = counts[:, None] - on_c
            off = n - on
            with np.errstate(divide="ignore", invalid="ignore"):
                g_on = 1 - ((on_c / on) ** 2).sum(0)
                g_off = 1 - ((off_c / off) ** 2).sum(0)
            weighted = np.where((on > 0) & (off > 0), (on * g_on + off * g_off) / n, np.inf)
            weighted[[u for u, _ in node.literals]] = np.inf
            f = int(np.argmin(weighted))
            if np.isfinite(weighted[f]) and weighted[f] < 1 - ((counts / n) ** 2).sum() - 1e-12:
                split = f
        if split is None:
            out.append((node.literals, counts))
            continue
        for value in (False, True):
            child = idx[(Xi[idx, split] != 0) == value]
            lit = node.literals + ((split, value),)
            if len(child) < alpha * n:
                if len(child):
                    out.append((lit, Y[child].sum(0)))
                continue
            stack.append(_Node(lit, child))
    return out


def _tree_rules(X: np.ndarray, y: np.ndarray, depth: int, alpha: float) -> list[tuple[tuple[Literal, ...], int, float]]:
    """Paths to leaves whose modal value is True (a tie is False: default negation): (literals, support,
    precision). ``X (n, K)`` bool or 0/1 int64, ``y (n,)`` bool."""
    Xi = X if X.dtype == np.int64 else X.astype(np.int64)  # fit passes it converted once per layer
    return [(lits, int(c.sum()), c[1] / c.sum()) for lits, c in _tree_leaves(Xi, y.astype(np.int64), 2, depth, alpha)
            if 2 * c[1] > c.sum()]


def _merge_complementary(antecedents: list[frozenset]) -> list[frozenset]:
    """A ∧ B → C and A ∧ ¬B → C become A → C, repeated until nothing merges."""
    sets = set(antecedents)
    changed = True
    while changed:
        changed = False
        for a in sorted(sets, key=lambda s: (len(s), sorted(s))):
            for lit in a:
                b = (a - {lit}) | {(lit[0], not lit[1])}
                if b in sets and a in sets:
                    sets -= {a, b}
                    sets.add(a - {lit})
                    changed = True
                    break
            if changed:
                break
    # a rule implied by a more general one adds nothing
    return [s for s in sets if not any(o < s for o in sets)]


class ERIC(Miner):
    """Extract a logic program from a model's recorded activations (seed 001).

    ``depth``: max literals per rule (tree depth d ≥ 1); ``alpha``: the branching stop ratio α in [0, 1);
    ``merge``: apply the paper's two simplifications. ``output``: how the class rules are learned —
    ``"one-vs-rest"`` (the paper: one binary tree per output neuron, eq. 5) or ``"multiclass"`` (one gini tree
    over all classes, each leaf a rule for its modal class: every sample meets exactly one rule, so no
    conflicts between output rules). ``fit(activations, layers)`` takes activations
    recorded with ``reduce="l1"`` and the layers output-side first (as :func:`nnrules.miners.flow.trace`);
    the last one is the logical entry point. ``labels`` maps unit names (``"relu2:c5"``) to the names a
    person gave the kernels; rules print with them.

    Learned: ``program_`` (the logic program: a list of :class:`EricRule`), ``rulesets_`` (the program as
    one :class:`RuleSet` per layer pair, output first, ``direction="tail→head"``), ``rules_``
    (``rulesets_[0]``: the rules that decide the class), ``thresholds_`` (layer → θ, eq. 4), ``layers_``
    (output first), ``entry_``, ``majority_``.
    """

    fits_on = "chain"
    params = (
        Param("depth", int, 5, "at most this many literals per rule (the decision trees' depth d)",
              label="Tree depth", low=1, high=20),
        Param("alpha", float, 0.01, "a tree node holding less than this share of its parent's samples is not "
              "split further (α)", label="α (stop)", low=0, high=1, high_open=True),
        Param("merge", bool, True, "simplify rules by the paper's two merges", ui=False),
        Param("output", str, "one-vs-rest", "class rules from one tree per class (the paper) or one multi-class "
              "tree", label="Class rules", choices=("one-vs-rest", "multiclass")),
        Param("labels", dict, None, "names a person gave the kernels (unit name → label)", optional=True,
              none_means="unit names", ui=False),
        *EVIDENCE_PARAMS,
    )

    def __init__(self, depth: int = 5, alpha: float = 0.01, merge: bool = True, output: str = "one-vs-rest",
                 labels: dict[str, str] | None = None, resamples: int = 0, random_state: int | None = 0) -> None:
        self.depth = depth
        self.alpha = alpha
        self.merge = merge
        self.output = output
        self.labels = labels
        self.resamples = resamples
        self.random_state = random_state

    def _check(self, activations, layers) -> list[str]:
        self.validate()
        if not isinstance(activations, Activations):
            raise TypeError("activations must be an nnrules.Activations (from nnrules.record(..., reduce='l1'))")
        if activations.reduce != "l1":
            raise ValueError(f"ERIC quantises the l1 norm of each kernel (seed 001 eq. 3): record with "
                             f"reduce='l1', not {activations.reduce!r}")
        if activations.n_samples == 0:
            raise ValueError("activations are empty: record at least one sample (no rows to learn from)")
        if isinstance(layers, str):
            layers = [layers]
        chain = [l for l in layers if l != OUTPUT]
        if not chain:
            raise ValueError("name at least one layer below the output (the last one is the entry point)")
        missing = [l for l in chain if l not in activations.values]
        if missing:
            raise ValueError(f"layers {missing} were not recorded; recorded: {activations.layers}")
        return [OUTPUT] + chain

    def fit(self, activations: Activations, layers: Sequence[str],
            on_progress: Callable[[str, float], None] | None = None) -> "ERIC":
        """Learn the program on ``activations`` (recorded with ``reduce="l1"``) over ``layers``, output side
        first. ``on_progress(stage, fraction)`` is called before each half-sample (``resamples``); an exception
        it raises (the app's Cancel) ends the fit."""
        self.layers_ = self._check(activations, layers)
        self.entry_ = self.layers_[-1]
        self.unit_names_ = {l: list(activations.unit_names[l]) for l in self.layers_}
        self.thresholds_ = {l: np.asarray(activations[l], dtype=np.float64).mean(0) for l in self.layers_[1:]}
        b = self._quantise(activations)
        self.class_names_ = list(activations.class_names) or [str(c) for c in range(activations.logits.shape[1])]
        b[OUTPUT] = np.eye(len(self.class_names_), dtype=bool)[activations.predictions]  # eq. 5
        self.majority_ = int(np.bincount(activations.predictions, minlength=len(self.class_names_)).argmax())
        self.program_: list[EricRule] = []
        for upper, lower in zip(self.layers_[:-1], self.layers_[1:]):
            X = b[lower]
            Xi = X.astype(np.int64)
            groups: list[tuple[frozenset, list[int]]] = []
            if upper == OUTPUT and self.output == "multiclass":
                leaves = _tree_leaves(Xi, activations.predictions, len(self.class_names_), self.depth, self.alpha)
                for k in range(len(self.class_names_)):
                    found = [frozenset(lits) for lits, c in leaves if int(np.argmax(c)) == k]
                    groups += [(a, [k]) for a in (_merge_complementary(found) if self.merge else found)]
            else:
                for k in range(b[upper].shape[1]):
                    found = [frozenset(lits) for lits, _, _ in _tree_rules(Xi, b[upper][:, k], self.depth, self.alpha)]
                    groups += [(a, [k]) for a in (_merge_complementary(found) if self.merge else found)]
            if self.merge:  # A → B and A → C become A → B ∧ C
                by: dict[frozenset, list[int]] = {}
                for a, ks in groups:
                    by.setdefault(a, []).extend(ks)
                groups = list(by.items())
            for a, ks in groups:
                holds = self._holds(X, a)
                support = int(holds.sum())
                prec = float(b[upper][holds, ks[0]].mean()) if support else 0.0
                self.program_.append(EricRule(upper, lower, tuple(sorted(a)), tuple(ks), support, prec))
        self.rulesets_ = self._rulesets()
        if self.resamples:
            self.rulesets_ = self._with_evidence(activations, layers, on_progress)
        self.rules_ = self.rulesets_[0]
        return self

    def _with_evidence(self, activations: Activations, layers: Sequence[str],
                       on_progress: Callable[[str, float], None] | None = None) -> list[RuleSet]:
        """Each layer pair's rules with stability and held-out confidence from half-samples of the rows
        (:mod:`nnrules.miners.evidence`): each half is a fit with the same parameters; a half-sample's rules are
        measured on the other rows, quantised with that half's thresholds."""
        fits, held = [], []
        for b, (mined, other) in enumerate(half_samples(activations.n_samples, self.resamples, self.random_state)):
            if on_progress is not None:
                on_progress(f"ERIC: half-sample {b + 1} of {self.resamples}", b / self.resamples)
            m = clone(self).set_params(resamples=0).fit(activations.subset(rows=mined), layers)
            fits.append(m)
            held.append(m.quantise(activations.subset(rows=other)))
        def measure(upper: str, lower: str):
            return lambda b, r: held_out_counts(r, held[b][upper], held[b][lower], "tail→head")

        return [with_evidence(rs, [m.rulesets_[p] for m in fits], measure(upper, lower))
                for p, (rs, upper, lower) in enumerate(zip(self.rulesets_, self.layers_[:-1], self.layers_[1:]))]

    def quantise(self, activations: Activations) -> dict[str, np.ndarray]:
        """Truth values ``(n, units)`` of every layer of the program on ``activations`` (recorded with
        ``reduce="l1"``): kernels above their training mean (eq. 3), the output one-hot of the prediction."""
        check_fitted(self, "thresholds_")
        b = self._quantise(activations)
        b[OUTPUT] = np.eye(len(self.class_names_), dtype=bool)[activations.predictions]
        return b

    def _quantise(self, activations: Activations) -> dict[str, np.ndarray]:
        return {l: np.asarray(activations[l]) > self.thresholds_[l] for l in self.layers_[1:]}  # eq. 3

    @staticmethod
    def _holds(X: np.ndarray, antecedent) -> np.ndarray:
        ok = np.ones(len(X), dtype=bool)
        for u, v in antecedent:
            ok &= X[:, u] == v
        return ok

    # --- the program --------------------------------------------------------------------------
    def infer(self, activations: Activations) -> dict[str, np.ndarray]:
        """Truth values of every layer: the entry layer quantised (eq. 1), the rest inferred (eq. 2)."""
        if self.entry_ not in activations.values:
            raise ValueError(f"the entry layer {self.entry_!r} was not recorded; recorded: {activations.layers}")
        n = activations.n_samples
        b = {self.entry_: self._quantise_one(activations)}
        for upper, lower in reversed(list(zip(self.layers_[:-1], self.layers_[1:]))):
            width = len(self.class_names_) if upper == OUTPUT else len(self.thresholds_[upper])
            out = np.zeros((n, width), dtype=bool)
            for r in self.program_:
                if r.upper == upper:
                    out[np.ix_(self._holds(b[lower], r.antecedent), np.asarray(r.consequent, dtype=np.int64))] = True
            b[upper] = out
        return b

    def _quantise_one(self, activations: Activations) -> np.ndarray:
        a = np.asarray(activations[self.entry_])
        if activations.reduce != "l1" or a.shape[1] != len(self.thresholds_[self.entry_]):
            raise ValueError(f"record {self.entry_!r} with reduce='l1' as for fit ({len(self.thresholds_[self.entry_])} "
                             f"units)")
        return a > self.thresholds_[self.entry_]

    def predict(self, activations: Activations) -> np.ndarray:
        """Classes ``(n,)`` from the logic program (see the module docstring for conflicts)."""
        b = self.infer(activations)
        lower = self.layers_[1]
        best = np.full(activations.n_samples, -1.0)
        pred = np.full(activations.n_samples, self.majority_)
        for r in sorted((r for r in self.program_ if r.upper == OUTPUT), key=lambda r: -r.precision):
            fire = self._holds(b[lower], r.antecedent) & (best < r.precision)
            pred[fire] = r.consequent[0]
            best[fire] = r.precision
        return pred

    def accuracy(self, activations: Activations) -> float:
        """Agreement with the true labels (samples labelled -1 are ignored)."""
        if activations.labels is None:
            raise ValueError("the activations carry no labels; accuracy needs labelled data")
        keep = activations.labels >= 0
        return float((self.predict(activations)[keep] == activations.labels[keep]).mean())

    def fidelity(self, activations: Activations) -> float:
        """Agreement with the model's own predictions."""
        return float((self.predict(activations) == activations.predictions).mean())

    @property
    def size_(self) -> int:
        """Program size: the total number of antecedent literals (seed 001 Table 1)."""
        return sum(len(r.antecedent) for r in self.program_)

    @property
    def variables_(self) -> int:
        return len({(r.lower, lit) for r in self.program_ for lit in r.antecedent})

    # --- reading ------------------------------------------------------------------------------
    def _name(self, layer: str, unit: int) -> str:
        name = self.unit_names_[layer][unit]  # the output's units are named "class <name>"
        return (self.labels or {}).get(name, name)

    def describe(self, rule: EricRule) -> str:
        """``¬relu2:c12 ∧ relu2:c40 → class 3`` (labels replace unit names where set)."""
        ante = " ∧ ".join(("" if v else "¬") + self._name(rule.lower, u) for u, v in rule.antecedent) or "⊤"
        return f"{ante} → {' ∧ '.join(self._name(rule.upper, k) for k in rule.consequent)}"

    def to_frame(self) -> pd.DataFrame:
        """The program, one row per rule: upper, lower, rule (text), antecedent, consequent, length, support,
        precision."""
        check_fitted(self, "program_")
        return pd.DataFrame([{"upper": r.upper, "lower": r.lower, "rule": self.describe(r),
                              "antecedent": [("" if v else "¬") + self._name(r.lower, u) for u, v in r.antecedent],
                              "consequent": [self._name(r.upper, k) for k in r.consequent],
                              "length": len(r.antecedent), "support": r.support, "precision": r.precision}
                             for r in self.program_],
                            columns=["upper", "lower", "rule", "antecedent", "consequent", "length", "support",
                                     "precision"])

    def _rulesets(self) -> list[RuleSet]:
        """The program as one :class:`RuleSet` per layer pair, output first (``direction="tail→head"``: the
        lower layer's literals imply the upper units), for the shared views and tables."""
        out = []
        for upper, lower in zip(self.layers_[:-1], self.layers_[1:]):
            rules = [Rule(head=r.consequent, tail=tuple(u for u, _ in r.antecedent), head_min=len(r.consequent),
                          tail_min=len(r.antecedent), support=r.support, holds=round(r.support * r.precision),
                          negated=tuple(u for u, v in r.antecedent if not v))
                     for r in self.program_ if r.upper == upper]
            out.append(RuleSet(rules, [self._name(upper, k) for k in range(len(self.unit_names_[upper]))],
                               [self._name(lower, k) for k in range(len(self.unit_names_[lower]))], upper, lower,
                               direction="tail→head"))
        return out

    def to_flow(self):
        """The program as a :class:`~nnrules.miners.flow.Flow` (one RuleSet per layer pair) for the views."""
        from ..flow import Flow

        check_fitted(self, "rulesets_")
        return Flow(list(self.layers_), list(self.rulesets_))

    def to_asp(self, activations: Activations | None = None) -> str:
        """The program in ASP (clingo): ``on(Layer, Unit, Sample)`` per unit, default negation, and
        ``class(Sample, Class)`` for each class it derives; with ``activations`` (recorded as for fit) the
        entry layer's true literals on those samples as facts. Stratified: one stable model, equal to
        :meth:`infer` (see :mod:`._program`)."""
        from ._program import to_asp
        check_fitted(self, "program_")
        return to_asp(self, activations)

    def to_prolog(self, activations: Activations | None = None) -> str:
        """The program in Prolog (``\\+`` as default negation), facts as in :meth:`to_asp`."""
        from ._program import to_prolog
        check_fitted(self, "program_")
        return to_prolog(self, activations)

    def decisions(self, activations: Activations) -> dict[str, float]:
        """Shares of samples for which the program itself derives exactly one class (``"one"``), none, or
        several: what :meth:`predict` owes to the program, and what to its tie-breaks (precision, majority)."""
        k = self.infer(activations)[OUTPUT].sum(axis=1)
        n = max(len(k), 1)
        return {"one": float((k == 1).sum() / n), "none": float((k == 0).sum() / n),
                "several": float((k > 1).sum() / n)}

    def to_json(self) -> str:
        """The program as JSON: layers, parameters and one record per rule (see :meth:`to_frame`)."""
        check_fitted(self, "program_")
        return json.dumps({"layers": self.layers_, "depth": self.depth, "alpha": self.alpha, "output": self.output,
                           "rules": self.to_frame().to_dict(orient="records")}, ensure_ascii=False)


def _run_in_app(ctx, miner: ERIC):
    """The app's adapter: record l1 norms of the chosen layers, fit the program (see registry)."""
    acts = ctx.record("l1")
    ctx.report(f"ERIC: trees for {' → '.join(ctx.layers)}", 0.5)

    def on_progress(stage: str, fraction: float) -> None:
        ctx.check()  # Cancel is seen between half-samples
        ctx.report(stage, 0.5 + fraction / 2)
    miner.fit(acts, ctx.layers, on_progress)
    share = miner.decisions(acts)
    return miner.to_flow(), (f"ERIC program: fidelity {miner.fidelity(acts):.2f} on the mining data, "
                             f"{len(miner.program_)} rules, size {miner.size_}; the program itself decides "
                             f"{share['one']:.0%} of the samples (no class {share['none']:.0%}, several "
                             f"{share['several']:.0%}: tie-breaks decide those)")


MINERS.register("eric", "ERIC logic program", ERIC, layers="chain", reduce="l1", run=_run_in_app,
                          help="decision-tree rules with negated literals over kernels, a program that replays "
                               "the network (seed 001); the last layer chosen is the entry point")
