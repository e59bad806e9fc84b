"""Frequent itemsets (Eclat) and association rules over transactions (seed 002 Sec. 3.3–3.4).

Transactions are the rows of a ``(n, m)`` bool matrix or a :class:`~nnrules.BinaryMatrix` (items are its
columns/units). Eclat walks the itemset lattice depth first on *vertical* bit-packed tid-lists: the
tid-list of ``prefix ∪ {j}`` is the AND of two packed rows and its support a popcount (numba).
"""
from __future__ import annotations

import math
import numbers
from itertools import combinations
from typing import Iterable

import numba
import numpy as np
import pandas as pd
from numba.typed import List

from ..data.bits import BinaryMatrix, _popcount64

__all__ = ["eclat", "association_rules", "top_rules", "min_count", "MAX_ITEMSETS"]


def min_count(min_support: float, n: int) -> int:
    """The smallest count c with c / n ≥ min_support (what "support ≥ min_support" means for n rows)."""
    if isinstance(min_support, bool) or not isinstance(min_support, numbers.Real) or not 0 < min_support <= 1:
        raise ValueError(f"min_support must be a fraction in (0, 1], got {min_support!r}")
    c = max(1, math.ceil(min_support * n))
    while c > 1 and (c - 1) / n >= min_support:  # float rounding of min_support * n
        c -= 1
    while c / n < min_support:
        c += 1
    return c


#: Default cap on the number of frequent itemsets eclat returns (about 0.3 KB each as a DataFrame row).
MAX_ITEMSETS = 1_000_000


@numba.njit(cache=True)
def _eclat(words: np.ndarray, minsup: int, max_depth: int, max_out: int):
    """Depth-first Eclat with an explicit stack; returns (flat items, lengths, supports, complete).

    The candidates of all open levels share one growing buffer (level d+1 sits right after level d), so
    memory is Σ_levels |candidates| × n_words words — not max_depth × n_items × n_words. Stops, with
    ``complete = False``, once more than ``max_out`` itemsets were found."""
    n_items, nw = words.shape
    cap = max(16, 2 * n_items)
    tids = np.empty((cap, nw), dtype=np.uint64)
    items = np.empty(cap, dtype=np.int64)
    supps = np.empty(cap, dtype=np.int64)
    start = np.zeros(max_depth + 1, dtype=np.int64)  # level d's candidates: [start[d], start[d] + n_cand[d])
    n_cand = np.zeros(max_depth, dtype=np.int64)
    pos = np.zeros(max_depth, dtype=np.int64)
    prefix = np.empty(max_depth, dtype=np.int64)
    out_items = List.empty_list(numba.int64)
    out_len = List.empty_list(numba.int64)
    out_supp = List.empty_list(numba.int64)
    c = 0
    for i in range(n_items):
        s = 0
        for w in range(nw):
            s += _popcount64(words[i, w])
        if s >= minsup:
            items[c] = i
            supps[c] = s
            tids[c, :] = words[i, :]
            c += 1
    n_cand[0] = c
    n_out = 0
    d = 0
    while d >= 0:
        if pos[d] >= n_cand[d]:
            d -= 1
            continue
        k = start[d] + pos[d]
        pos[d] += 1
        prefix[d] = items[k]
        for t in range(d + 1):
            out_items.append(prefix[t])
        out_len.append(d + 1)
        out_supp.append(supps[k])
        n_out += 1
        if n_out > max_out:
            return np.asarray(out_items), np.asarray(out_len), np.asarray(out_supp), False
        if d + 1 >= max_depth:
            continue
        first = start[d] + n_cand[d]
        need = first + (start[d] + n_cand[d] - k - 1)
        if need > cap:  # grow the shared buffer
            cap = max(need, 2 * cap)
            t2 = np.empty((cap, nw), dtype=np.uint64)
            t2[:first] = tids[:first]
            i2 = np.empty(cap, dtype=np.int64)
            i2[:first] = items[:first]
            s2 = np.empty(cap, dtype=np.int64)
            s2[:first] = supps[:first]
            tids, items, supps = t2, i2, s2
        c = 0
        for j in range(k + 1, start[d] + n_cand[d]):
            s = 0
            for w in range(nw):
                x = tids[k, w] & tids[j, w]
                tids[first + c, w] = x
                s += _popcount64(x)
            if s >= minsup:
                items[first + c] = items[j]
                supps[first + c] = s
                c += 1
        if c > 0:
            start[d + 1] = first
            n_cand[d + 1] = c
            pos[d + 1] = 0
            d += 1
    return np.asarray(out_items), np.asarray(out_len), np.asarray(out_supp), True


def _as_items(X) -> BinaryMatrix:
    if isinstance(X, BinaryMatrix):
        return X
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"transactions must be a 2-D (n_transactions, n_items) matrix, got shape {X.shape}")
    if X.dtype != bool:
        if not np.isin(X, (0, 1)).all():
            raise ValueError("transactions must be binary (bool or 0/1); binarize first, e.g. with "
                             "nnrules.Binarizer or X > threshold")
        X = X.astype(bool)
    return BinaryMatrix.from_dense(X)


def eclat(X, min_support: float, max_len: int | None = None, max_itemsets: int = MAX_ITEMSETS) -> pd.DataFrame:
    """All itemsets with support ≥ ``min_support`` (a fraction of the transactions).

    ``X``: ``(n_transactions, n_items)`` bool/0-1 matrix, DataFrame or :class:`BinaryMatrix`. Returns a
    DataFrame with ``itemsets`` (frozensets of column indices) and ``support`` (fraction), the same set
    and values as mlxtend's ``fpgrowth`` (tested), ordered by length, then by items.

    The count of frequent itemsets can be exponential in the number of items (dense data, low support):
    more than ``max_itemsets`` raises a ``ValueError`` saying so, instead of exhausting memory. Time is
    O(#frequent itemsets × n_items × n/64), memory O(depth × n_items × n/64) words at worst.
    """
    if isinstance(max_itemsets, bool) or not isinstance(max_itemsets, numbers.Integral) or max_itemsets < 1:
        raise ValueError(f"max_itemsets must be a positive integer, got {max_itemsets!r}")
    bm = _as_items(X)
    n, m = bm.shape
    if n == 0:
        raise ValueError("no transactions: X has 0 rows")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral)
                                or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    minsup = min_count(min_support, n)
    if m == 0:
        return pd.DataFrame({"itemsets": [], "support": []})
    # no itemset is longer than the longest transaction
    longest = int(bm.to_dense().sum(axis=1).max()) if n else 0
    depth = max(1, min(longest, max_len if max_len is not None else m, m))
    items, lens, supp, complete = _eclat(bm.words, minsup, depth, int(max_itemsets))
    if not complete:
        raise ValueError(f"more than max_itemsets={max_itemsets:,} frequent itemsets at min_support={min_support} "
                         f"over {m} items: raise min_support, set max_len, or raise max_itemsets")
    ends = np.cumsum(lens)
    sets = [frozenset(items[e - l: e].tolist()) for e, l in zip(ends, lens)]
    df = pd.DataFrame({"itemsets": sets, "support": supp / n})
    order = sorted(range(len(sets)), key=lambda i: (lens[i], sorted(sets[i])))
    return df.iloc[order].reset_index(drop=True)


def association_rules(frequent: pd.DataFrame, min_confidence: float = 0.0,
                      antecedent_items: Iterable[int] | None = None,
                      consequent_items: Iterable[int] | None = None) -> pd.DataFrame:
    """Rules A → B from frequent itemsets (as :func:`eclat` returns them) with confidence ≥ ``min_confidence``.

    Every split of each itemset S into non-empty A and B = S \\ A is a rule, unless constrained:
    ``antecedent_items``/``consequent_items`` restrict which items may appear on each side (seed 002 Sec.
    3.4: antecedent = filters only, consequent = the class label). Columns: ``antecedents``,
    ``consequents`` (frozensets), ``support`` (of S), ``confidence`` (supp S / supp A), ``lift``
    (confidence / supp B), ``score`` (support × confidence).
    """
    if not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if not isinstance(frequent, pd.DataFrame):
        raise TypeError(f"frequent must be the DataFrame nnrules.eclat returns, got {type(frequent).__name__}")
    if not {"itemsets", "support"} <= set(frequent.columns):
        raise ValueError("frequent must have the columns 'itemsets' and 'support' (from nnrules.itemsets.eclat)")
    supp = dict(zip(frequent["itemsets"], frequent["support"]))
    ante = None if antecedent_items is None else frozenset(int(i) for i in antecedent_items)
    cons = None if consequent_items is None else frozenset(int(i) for i in consequent_items)
    rows = []
    for s, s_supp in supp.items():
        if len(s) < 2:
            continue
        if ante is not None and cons is not None:
            splits = [(s & ante, s & cons)] if (s & ante) and (s & cons) and (s & ante) | (s & cons) == s else []
        else:
            splits = [(frozenset(a), s - frozenset(a)) for r in range(1, len(s)) for a in combinations(sorted(s), r)]
        for a, b in splits:
            if (ante is not None and not a <= ante) or (cons is not None and not b <= cons):
                continue
            if a not in supp or b not in supp:
                raise ValueError(f"the support of {sorted(a)} or {sorted(b)} is missing: pass all frequent "
                                 "itemsets (subsets of a frequent itemset are frequent)")
            conf = s_supp / supp[a]
            if conf >= min_confidence - 1e-12:
                rows.append((a, b, s_supp, conf, conf / supp[b]))
    df = pd.DataFrame(rows, columns=["antecedents", "consequents", "support", "confidence", "lift"])
    df["score"] = df["support"] * df["confidence"]
    return df


def top_rules(rules: pd.DataFrame, q: int) -> pd.DataFrame:
    """The ``q`` rules with the largest support × confidence for each consequent (seed 002 Sec. 3.4)."""
    if q < 1:
        raise ValueError(f"q must be ≥ 1, got {q}")
    if rules.empty:
        return rules
    key = rules["consequents"].map(lambda b: tuple(sorted(b)))
    return (rules.assign(_key=key).sort_values(["_key", "score"], ascending=[True, False], kind="stable")
            .groupby("_key", sort=True).head(q).drop(columns="_key").reset_index(drop=True))
