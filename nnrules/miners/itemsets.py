"""Frequent itemsets (Eclat) and association rules over transactions (seed 002 Sec. 3.3–3.4).

Transactions are the rows of a ``(n, m)`` bool matrix or a :class:`~nnrules.BinaryMatrix` (items are its
columns/units). Eclat walks the itemset lattice depth first on *vertical* bit-packed tid-lists: the
tid-list of ``prefix ∪ {j}`` is the AND of two packed rows and its support a popcount (numba).
"""
from __future__ import annotations

import gc
import math
import numbers
from contextlib import contextmanager
from itertools import combinations
from typing import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.bits import BinaryMatrix, popcount_rows
from . import _eclat_kernels as _k

__all__ = ["eclat", "association_rules", "top_rules", "min_count", "MAX_ITEMSETS", "RULE_METRICS", "TARGETS"]


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


@contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector, restoring its state after (even on error)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _item_bitsets(X):
    """Transactions -> ``(item bitsets (m, n_words) uint64, n transactions, column names or None)``.

    Accepts a :class:`BinaryMatrix` (used as is), a bool/0-1 array or DataFrame (packed in one pass), a
    DataFrame of sparse columns or a scipy.sparse matrix (packed from its indices)."""
    if isinstance(X, BinaryMatrix):
        return X.words, X.n_samples, None
    names = None
    if isinstance(X, pd.DataFrame):
        names = list(X.columns)
        if len(X.columns) and all(isinstance(t, pd.SparseDtype) for t in X.dtypes):
            X = X.sparse.to_coo()
        else:
            X = X.to_numpy()
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        X.eliminate_zeros()
        if X.nnz and not np.all(X.data == 1):
            raise ValueError("transactions must be binary (bool or 0/1); binarize first, e.g. with "
                             "nnrules.Binarizer or X > threshold")
        return _k.pack_csc(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.shape[0]), X.shape[0], names
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"transactions must be a 2-D (n_transactions, n_items) matrix, got shape {X.shape}")
    if X.dtype != bool:
        if X.dtype == object or not np.isin(X, (0, 1)).all():
            raise ValueError("transactions must be binary (bool or 0/1); binarize first, e.g. with "
                             "nnrules.Binarizer or X > threshold")
        X = X.astype(bool)
    return _k.pack_rows(np.ascontiguousarray(X).view(np.uint8)), X.shape[0], names


#: Eclat counts the supports of all item pairs in one pass over the transactions (an (m, m) int32 table,
#: used to prune candidates) for up to this many frequent items (256 MB), when that pass is cheap.
MAX_PAIR_ITEMS = 8192

_SEARCH_MODE = -1  # tests force one way of finding children everywhere: 0 deliver, 1 probe, 2 AND

#: What :func:`eclat` can return: all frequent itemsets, the closed ones, or the maximal ones.
TARGETS = ("all", "closed", "maximal")


def eclat(X, min_support: float, max_len: int | None = None, max_itemsets: int = MAX_ITEMSETS,
          use_colnames: bool = False, target: str = "all") -> pd.DataFrame:
    """All itemsets with support ≥ ``min_support`` (a fraction of the transactions).

    ``X``: ``(n_transactions, n_items)`` bool/0-1 matrix or DataFrame, a DataFrame of sparse columns, a
    scipy.sparse matrix, or a :class:`BinaryMatrix` (used as is, no unpacking). Returns a DataFrame with
    ``support`` (fraction) and ``itemsets`` (frozensets of column indices, or of column names with
    ``use_colnames=True`` and a DataFrame input), ordered by length, then by items. ``target="closed"`` keeps
    the itemsets no superset of which has the same support, ``"maximal"`` those with no frequent superset
    (both among itemsets of at most ``max_len`` items). The frequent itemsets are those of mlxtend's
    ``fpgrowth`` and pyfim's ``eclat``; closed and maximal ones those of pyfim's ``target="c"``/``"m"``.

    The count of frequent itemsets can be exponential in the number of items (dense data, low support):
    more than ``max_itemsets`` raises a ``ValueError`` saying so, instead of exhausting memory. Search:
    items by ascending support; each node's children found by occurrence deliver, tid probes or bitset ANDs,
    whichever is cheapest for it (:func:`._eclat_kernels.eclat_kernel`): time O(Σ_nodes min(s·L, s·n_sib,
    n_sib·n/64)) for a node of support s, n_sib siblings, mean transaction length L.
    """
    if isinstance(max_itemsets, bool) or not isinstance(max_itemsets, numbers.Integral) or max_itemsets < 1:
        raise ValueError(f"max_itemsets must be a positive integer, got {max_itemsets!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral)
                                or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    words, n, names = _item_bitsets(X)
    if use_colnames and names is None:
        raise ValueError("use_colnames=True needs a DataFrame X (its columns name the items)")
    if n == 0:
        raise ValueError("no transactions: X has 0 rows")
    minsup = min_count(min_support, n)
    supp = popcount_rows(words)
    order = np.flatnonzero(supp >= minsup)
    order = order[np.argsort(supp[order], kind="stable")]
    if len(order) == 0:
        return pd.DataFrame({"support": np.zeros(0), "itemsets": []})
    depth = min(len(order), max_len if max_len is not None else len(order))
    B = np.ascontiguousarray(words[order])
    indptr, rows = _k.horizontal(B, n)
    C = np.zeros((0, 0), dtype=np.int32)
    if depth > 2 and len(order) <= MAX_PAIR_ITEMS:  # pair supports prune candidates at every level
        C = _k.pair_counts(indptr, rows, len(order), 4.0 * len(rows) * np.sqrt(len(order)))
    items, lens, counts, complete = _k.eclat_kernel(B, supp[order], indptr, rows, C, minsup, depth,
                                                    int(max_itemsets), _SEARCH_MODE)
    if not complete:
        raise ValueError(f"more than max_itemsets={max_itemsets:,} frequent itemsets at min_support={min_support} "
                         f"over {words.shape[0]} items: raise min_support, set max_len, or raise max_itemsets")
    pad = _k.sort_sets(items, lens, order.astype(np.int64))
    rank = _by_length_then_items(pad, lens, words.shape[0])
    pad, lens = pad[rank], lens[rank]
    sets: list = []
    bounds = np.flatnonzero(np.diff(lens, prepend=0, append=lens[-1] + 1))  # blocks of one length
    with _gc_paused():  # many small containers: cyclic GC passes would cost more than building them
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            cols = [pad[a:b, c].tolist() for c in range(lens[a])]
            if use_colnames:
                cols = [[names[i] for i in col] for col in cols]
            sets.extend(map(frozenset, zip(*cols)))
    df = pd.DataFrame({"support": counts[rank] / n, "itemsets": sets})
    if target != "all":
        df = _closed_or_maximal(df, counts[rank], target)
    return df


def _by_length_then_items(pad: np.ndarray, lens: np.ndarray, m: int) -> np.ndarray:
    """The order of the sets (rows of ``pad``, sorted items, -1 padded) by length, then lexicographically.

    One integer key per set (items as digits base m) where it fits in 63 bits; a lexsort otherwise."""
    L = pad.shape[1]
    if m ** L < 2 ** 62:
        key = np.zeros(len(pad), dtype=np.int64)
        for c in range(L):
            key = key * m + np.maximum(pad[:, c], 0)
        return np.lexsort((key, lens))
    return np.lexsort(tuple(pad[:, c] for c in range(L - 1, -1, -1)) + (lens,))


def _closed_or_maximal(df: pd.DataFrame, counts: np.ndarray, target: str) -> pd.DataFrame:
    """Keep the closed (no superset with the same count) or maximal (no frequent superset) itemsets.

    Every (L+1)-itemset marks its L-subsets (all frequent, so all in ``df``): O(Σ |S|) set lookups."""
    index = {s: i for i, s in enumerate(df["itemsets"])}
    keep = np.ones(len(df), dtype=bool)
    counts_l = counts.tolist()
    for s, c in zip(df["itemsets"], counts_l):
        if len(s) > 1:
            for x in s:
                i = index[s - {x}]
                if target == "maximal" or counts_l[i] == c:
                    keep[i] = False
    return df[keep].reset_index(drop=True)


#: The columns :func:`association_rules` computes for each rule A → C (mlxtend's names and definitions).
RULE_METRICS = ("antecedent support", "consequent support", "support", "confidence", "lift", "leverage",
                "conviction", "zhangs_metric", "jaccard", "certainty", "kulczynski")


def _itemset(s) -> frozenset:
    """An itemset as a frozenset; sets, lists and tuples are accepted, numpy scalars become Python ones."""
    if isinstance(s, (str, bytes)) or not isinstance(s, Iterable):
        raise TypeError(f"itemsets must be frozensets, sets, lists or tuples of items, got {s!r}")
    return frozenset(x.item() if isinstance(x, np.generic) else x for x in s)


def _rule_metrics(sAC: np.ndarray, sA: np.ndarray, sC: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of RULE_METRICS from the supports of A ∪ C, A and C (fractions)."""
    conf = sAC / sA
    leverage = sAC - sA * sC
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = np.where(conf < 1.0, (1.0 - sC) / (1.0 - conf), np.inf)
        zhang_den = np.maximum(sAC * (1 - sA), sA * (sC - sAC))
        zhang = np.where(zhang_den == 0, 0.0, leverage / zhang_den)
        certainty = np.where(sC == 1, 0.0, (conf - sC) / (1 - sC))
    return {"antecedent support": sA, "consequent support": sC, "support": sAC, "confidence": conf,
            "lift": conf / sC, "leverage": leverage, "conviction": conviction, "zhangs_metric": zhang,
            "jaccard": sAC / (sA + sC - sAC), "certainty": certainty, "kulczynski": (sAC / sA + sAC / sC) / 2}


def association_rules(frequent: pd.DataFrame, min_confidence: float = 0.0,
                      antecedent_items: Iterable | None = None, consequent_items: Iterable | None = None, *,
                      metric: str = "confidence", min_threshold: float | None = None) -> pd.DataFrame:
    """Rules A → C from frequent itemsets (as :func:`eclat` returns them) with confidence ≥ ``min_confidence``.

    Every split of each itemset S into non-empty A and C = S \\ A is a rule, unless constrained:
    ``antecedent_items``/``consequent_items`` restrict which items may appear on each side (seed 002 Sec.
    3.4: antecedent = filters only, consequent = the class label). ``metric``/``min_threshold`` keep only the
    rules whose ``metric`` (one of :data:`RULE_METRICS`) is ≥ ``min_threshold``, as mlxtend's
    ``association_rules`` does. Itemsets may be frozensets, sets, lists or tuples.

    Columns: ``antecedents``, ``consequents`` (frozensets), then :data:`RULE_METRICS` with mlxtend's
    definitions (``support`` is that of S, ``confidence`` supp S / supp A, ``lift`` confidence / supp C,
    ``leverage``, ``conviction`` (inf at confidence 1), ``zhangs_metric``, ``jaccard``, ``certainty``,
    ``kulczynski``; equal to mlxtend's, tested), and ``score`` = support × confidence (seed 002's ranking).
    """
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, numbers.Real) or not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if not isinstance(frequent, pd.DataFrame):
        raise TypeError(f"frequent must be the DataFrame nnrules.eclat returns, got {type(frequent).__name__}")
    if not {"itemsets", "support"} <= set(frequent.columns):
        raise ValueError("frequent must have the columns 'itemsets' and 'support' (from nnrules.itemsets.eclat)")
    if metric not in RULE_METRICS:
        raise ValueError(f"metric must be one of {RULE_METRICS}, got {metric!r}")
    if min_threshold is not None and (isinstance(min_threshold, bool) or not isinstance(min_threshold, numbers.Real)):
        raise ValueError(f"min_threshold must be a number or None, got {min_threshold!r}")
    supp = {_itemset(s): float(v) for s, v in zip(frequent["itemsets"], frequent["support"])}
    ante = None if antecedent_items is None else _itemset(antecedent_items)
    cons = None if consequent_items is None else _itemset(consequent_items)
    A, C, sAC = [], [], []
    for s, s_supp in supp.items():
        if len(s) < 2:
            continue
        if ante is not None and cons is not None:
            splits = [(s & ante, s & cons)] if (s & ante) and (s & cons) and (s & ante) | (s & cons) == s else []
        else:
            items = sorted(s, key=repr)
            splits = [(frozenset(a), s - frozenset(a)) for r in range(1, len(s)) for a in combinations(items, r)]
        for a, b in splits:
            if (ante is None or a <= ante) and (cons is None or b <= cons):
                A.append(a)
                C.append(b)
                sAC.append(s_supp)
    try:
        sA = np.array([supp[a] for a in A], dtype=float)
        sC = np.array([supp[c] for c in C], dtype=float)
    except KeyError as e:
        raise ValueError(f"the support of {sorted(e.args[0], key=repr)} is missing: pass all frequent itemsets "
                         "(subsets of a frequent itemset are frequent)") from None
    metrics = _rule_metrics(np.array(sAC, dtype=float), sA, sC)
    df = pd.DataFrame({"antecedents": pd.Series(A, dtype=object), "consequents": pd.Series(C, dtype=object),
                       **metrics})
    df["score"] = df["support"] * df["confidence"]
    keep = df["confidence"].to_numpy() >= min_confidence - 1e-12
    if min_threshold is not None:
        keep &= df[metric].to_numpy() >= min_threshold
    return df[keep].reset_index(drop=True)


def top_rules(rules: pd.DataFrame, q: int) -> pd.DataFrame:
    """The ``q`` rules with the largest support × confidence for each consequent (seed 002 Sec. 3.4)."""
    if q < 1:
        raise ValueError(f"q must be ≥ 1, got {q}")
    if rules.empty:
        return rules
    key = rules["consequents"].map(lambda b: tuple(sorted(b)))
    return (rules.assign(_key=key).sort_values(["_key", "score"], ascending=[True, False], kind="stable")
            .groupby("_key", sort=True).head(q).drop(columns="_key").reset_index(drop=True))
