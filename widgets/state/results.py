"""The rule table behind the explorer's views: one row per rule, filters, sorting, CSV/JSON export."""
from __future__ import annotations

import pandas as pd

from nnrules.miners.flow import Flow

from .errors import UserInputError

__all__ = ["RuleRows", "RULE_COLUMNS"]

RULE_COLUMNS = ["id", "pair", "rule", "text", "words", "classes", "head", "tail", "head_idx", "tail_idx",
                "tail_size", "head_layer", "tail_layer", "kind", "head_min", "tail_min", "support", "holds",
                "confidence", "gain", "stability", "ci_low", "ci_high", "evidence"]


def evidence_in_words(stability: float | None, low: float | None, high: float | None, resamples: int) -> str:
    """The evidence of a rule as a sentence: "found again in 19 of 20 half-samples; on samples it was not mined on
    it holds 81–90 % of the time"; "" without evidence."""
    if stability is None or stability != stability or not resamples:
        return ""
    found = round(stability * resamples)
    text = f"found again in {found} of {resamples} half-samples of the data"
    if low is None or low != low:
        return text + ("; never measured on samples it was not mined on" if found else
                       " (not a rule resampling reproduces)")
    return text + f"; on samples it was not mined on it holds {low:.0%}–{high:.0%} of the time (95 % interval)"


def _some(need: int, names: list[str]) -> str:
    """"relu3:12", "any of {a, b}", "all of {a, b}", "2 of {a, b, c}"."""
    if len(names) == 1:
        return names[0]
    q = "any" if need == 1 else "all" if need >= len(names) else str(need)
    return f"{q} of {{{', '.join(names)}}}"


def rule_in_words(head: list[str], tail: list[str], head_min: int, tail_min: int, confidence: float,
                  support: int, head_layer: str, direction: str = "head→tail", text: str = "") -> str:
    """A rule as a sentence: "when any of {class 3, class 5} is predicted, all of {relu3:12, relu3:40} fire
    together in 81 % of those 212 samples". Rules read tail→head (ERIC) keep their literals (negations)."""
    plural = lambda need, names: len(names) > 1 and need > 1
    if direction == "tail→head":
        left = text.split("→")[0].strip() if "→" in text else _some(tail_min, tail)
        verb = "is predicted" if head_layer == "output" else "is on"
        return (f"when {left} holds, {_some(len(head), head)} {verb} in {confidence:.0%} of those {support} "
                "samples")
    hverb = ("are" if plural(head_min, head) else "is") + " predicted" if head_layer == "output" else \
        ("fire" if plural(head_min, head) else "fires")
    tverb = "fire together" if plural(tail_min, tail) else "fires"
    return (f"when {_some(head_min, head)} {hverb}, {_some(tail_min, tail)} {tverb} in {confidence:.0%} of "
            f"those {support} samples")


class RuleRows:
    """One row per rule of a :class:`~nnrules.miners.flow.Flow` (``rules``, columns ``RULE_COLUMNS``): the
    rule in symbols and in words, the classes it descends from; filters, sorting, chains, CSV/JSON export.
    ``flow`` ``None`` (nothing mined, or a NeuroChains chain, which has no rules) gives an empty table."""

    def __init__(self, flow: Flow | None = None, class_names: list[str] | None = None) -> None:
        self.flow = flow
        self.class_names = list(class_names or [])
        self.rules: pd.DataFrame = self._rule_frame(flow)

    def _rule_frame(self, flow: Flow | None) -> pd.DataFrame:
        if flow is None:  # a NeuroChains chain: filters and weights, no rules
            return pd.DataFrame(columns=RULE_COLUMNS)
        df = flow.rules_frame()
        if df.empty:
            return pd.DataFrame(columns=RULE_COLUMNS)
        # a pair without rules makes object columns in the concat; views sort on these
        df = df.astype({"support": int, "holds": int, "head_min": int, "tail_min": int, "confidence": float,
                        "gain": float, "pair": int})
        df = df.rename_axis("id").reset_index()
        df["rule"] = df.groupby("pair").cumcount()
        df["text"] = [flow.rulesets[p].describe(flow.rulesets[p][r]) for p, r in zip(df["pair"], df["rule"])]
        df["tail_size"] = df["tail"].map(len)
        df["words"] = [rule_in_words(list(h), list(t), hm, tm, c, su, hl, flow.rulesets[p].direction, tx)
                       for h, t, hm, tm, c, su, hl, p, tx in zip(df["head"], df["tail"], df["head_min"], df["tail_min"],
                                                                df["confidence"], df["support"], df["head_layer"],
                                                                df["pair"], df["text"])]
        # the gain is ExplaiNN's (bits saved); a miner without code lengths has none, not "0.0"
        has_gain = {p: rs.codelength == rs.codelength for p, rs in enumerate(flow.rulesets)}
        df.loc[~df["pair"].map(has_gain).astype(bool), "gain"] = float("nan")
        df = df.astype({"stability": float, "ci_low": float, "ci_high": float})  # NaN: mined without resamples
        df["evidence"] = [evidence_in_words(s, lo, hi, len(flow.rulesets[p].resampled))
                          for s, lo, hi, p in zip(df["stability"], df["ci_low"], df["ci_high"], df["pair"])]
        classes = []
        for _, row in df.iterrows():
            classes.append(sorted(self._classes_of(int(row["pair"]), int(row["rule"]))))
        df["classes"] = classes
        return df

    def _classes_of(self, pair: int, rule: int) -> set[str]:
        """Classes a rule descends from: its head for the first pair, else its upstream rules' classes."""
        assert self.flow is not None  # only called while building the rows of a flow
        rs = self.flow.rulesets[pair]
        r = rs[rule]
        if pair == 0:
            return {rs.head_names[x].removeprefix("class ") for x in r.head}
        prev = self.flow.rulesets[pair - 1]
        heads = {rs.head_names[x] for x in r.head}
        out: set[str] = set()
        for j, pr in enumerate(prev):
            if heads & {prev.tail_names[y] for y in pr.tail}:
                out |= self._classes_of(pair - 1, j)
        return out

    def chain_of(self, cls: str, per_pair: int = 6) -> list[int]:
        """Rule ids of one class's chain, small enough to read in a Sankey: in the first pair the ``per_pair``
        rules whose head holds the class, the most specific first (fewest classes in the head, then most
        support); in each later pair the ``per_pair`` rules whose head shares the most units with the tails
        kept one step before (then most support)."""
        if self.rules.empty or self.flow is None:
            return []
        if cls not in self.class_names:
            raise UserInputError(f"no class {cls!r}; classes: {', '.join(self.class_names)}")
        df = self.rules
        pairs = sorted(df["pair"].unique())
        rows = df[(df["pair"] == pairs[0]) & df["classes"].map(lambda c: cls in c)]
        top = rows.assign(_k=rows["head"].map(len)).sort_values(["_k", "support"], ascending=[True, False],
                                                                  kind="stable").head(per_pair)
        if top.empty:
            return []
        return top["id"].astype(int).tolist() + self._follow(_units(top["tail"]), pairs[1:], "head", "tail", per_pair)

    def chain_through(self, rule_id: int, per_pair: int = 6) -> list[int]:
        """Rule ids of the chain through one rule: the rule, then towards the input the ``per_pair`` rules a
        pair whose head shares the most units with the tails kept one step before, and towards the output
        those whose tail shares the most units with the heads kept (then most support)."""
        if self.rules.empty or self.flow is None:
            return []
        hit = self.rules[self.rules["id"] == rule_id]
        if hit.empty:
            raise UserInputError(f"no rule {rule_id}; rule ids run from 0 to {len(self.rules) - 1}")
        row = hit.iloc[0]
        pairs = sorted(self.rules["pair"].unique())
        up = self._follow(set(row["head"]), [p for p in reversed(pairs) if p < row["pair"]], "tail", "head", per_pair)
        down = self._follow(set(row["tail"]), [p for p in pairs if p > row["pair"]], "head", "tail", per_pair)
        return up[::-1] + [int(rule_id)] + down

    def _follow(self, units: set[str], pairs: list[int], match: str, carry: str, per_pair: int) -> list[int]:
        """Walk ``pairs`` in order: in each, the ``per_pair`` rules whose ``match`` units (head or tail) share
        the most with ``units`` (then most support); their ``carry`` units are matched in the next pair."""
        kept: list[int] = []
        for p in pairs:
            rows = self.rules[self.rules["pair"] == p]
            key = -rows[match].map(lambda u: len(units & set(u)))
            rows, key = rows[key < 0], key[key < 0]
            top = rows.assign(_k=key).sort_values(["_k", "support"], ascending=[True, False], kind="stable")
            top = top.head(per_pair)
            if top.empty:
                break
            kept += top["id"].astype(int).tolist()
            units = _units(top[carry])
        return kept

    @property
    def has_evidence(self) -> bool:
        """Whether the rules carry stability and held-out intervals (mined with resamples)."""
        return not self.rules.empty and bool(self.rules["stability"].notna().all())

    def rules_table(self, cls: str | None = None, layer: str | None = None, min_size: int = 1,
                    max_size: int | None = None, sort_by: str = "support", ascending: bool = False,
                    min_stability: float = 0.0) -> pd.DataFrame:
        """Rules filtered by class (a name in ``class_names``), tail layer, tail size and stability (rules mined
        without resamples have none and are kept), sorted."""
        df = self.rules
        if df.empty:
            return df
        if sort_by not in df.columns:
            raise UserInputError(f"cannot sort by {sort_by!r}; choose one of {list(df.columns)}")
        keep = df["tail_size"] >= min_size
        if max_size is not None:
            keep &= df["tail_size"] <= max_size
        if cls:
            keep &= df["classes"].map(lambda c: cls in c)
        if layer:
            keep &= df["tail_layer"] == layer
        if not 0 <= min_stability <= 1:
            raise UserInputError(f"min_stability must be a share in [0, 1], got {min_stability!r}")
        if min_stability > 0:
            keep &= ~(df["stability"] < min_stability)  # NaN (no evidence) is kept
        return df[keep].sort_values(sort_by, ascending=ascending, kind="stable")

    def export(self, fmt: str, table: pd.DataFrame | None = None) -> str:
        """The rule table (all rules, or ``table``) as CSV or JSON text."""
        df = (self.rules if table is None else table)
        cols = ["id", "head_layer", "tail_layer", "head", "tail", "head_min", "tail_min", "kind", "support",
                "holds", "confidence", "gain", "stability", "ci_low", "ci_high", "classes", "text", "words",
                "evidence"]
        df = df[[c for c in cols if c in df.columns]]
        if fmt == "csv":
            flat = df.copy()
            for c in ("head", "tail", "classes"):
                if c in flat:
                    flat[c] = flat[c].map(" ".join)
            return flat.to_csv(index=False)
        if fmt == "json":
            return df.to_json(orient="records", force_ascii=False)
        raise UserInputError(f"export format must be 'csv' or 'json', got {fmt!r}")


def _units(column: pd.Series) -> set[str]:
    """The union of a column of unit-name lists."""
    return set().union(*map(set, column))
