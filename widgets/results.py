"""The rule table behind the explorer's views: one row per rule, filters, sorting, CSV/JSON export."""
from __future__ import annotations

import pandas as pd

from nnrules.miners.flow import Flow

from .errors import UserInputError

__all__ = ["ResultsMixin", "RULE_COLUMNS"]

RULE_COLUMNS = ["id", "pair", "rule", "text", "classes", "head", "tail", "head_idx", "tail_idx", "tail_size",
                "head_layer", "tail_layer", "kind", "head_min", "tail_min", "support", "holds", "confidence", "gain"]


class ResultsMixin:
    """Rule rows of :class:`~nnrules.widgets.state.ExplorerState` (``self.flow``, ``self.rules``)."""

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
        classes = []
        for _, row in df.iterrows():
            classes.append(sorted(self._classes_of(int(row["pair"]), int(row["rule"]))))
        df["classes"] = classes
        return df

    def _classes_of(self, pair: int, rule: int) -> set[str]:
        """Classes a rule descends from: its head for the first pair, else its upstream rules' classes."""
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

    def rules_table(self, cls: str | None = None, layer: str | None = None, min_size: int = 1,
                    max_size: int | None = None, sort_by: str = "support", ascending: bool = False) -> pd.DataFrame:
        """Rules filtered by class (a name in ``class_names``), tail layer and tail size, sorted."""
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
        return df[keep].sort_values(sort_by, ascending=ascending, kind="stable")

    def export(self, fmt: str, table: pd.DataFrame | None = None) -> str:
        """The rule table (all rules, or ``table``) as CSV or JSON text."""
        df = (self.rules if table is None else table)
        cols = ["id", "head_layer", "tail_layer", "head", "tail", "head_min", "tail_min", "kind", "support",
                "holds", "confidence", "gain", "classes", "text"]
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
