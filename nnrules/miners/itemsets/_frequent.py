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
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

import nnrules.data.transactions as _t
import nnrules.miners.itemsets._closed_kernels as _ck
import nnrules.miners.itemsets._eclat_kernels as _k

from ...data.bits import BinaryMatrix, popcount_rows
from ...data.transactions import Transactions

__all__ = ["Itemsets", "frequent_itemsets", "eclat", "association_rules", "top_rules", "min_count", "MAX_ITEMSETS",
           "RULE_METRICS", "TARGETS", "BITSET_DENSITY"]


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


_NOT_BINARY = ("transactions must be binary (bool or 0/1); binarize first, e.g. with nnrules.Binarizer or "
               "X > threshold")


def _csr_of(X) -> tuple[np.ndarray, np.ndarray, int, int, list | None]:
    """Any transaction input but a BinaryMatrix -> CSR ``(indptr, ids, n rows, n item ids, column names)``."""
    names = None
    if isinstance(X, Transactions):
        return X.indptr, X.ids, len(X), X.n_items, None
    if isinstance(X, pd.DataFrame):
        names = list(X.columns)
        if len(X.columns) and all(isinstance(t, pd.SparseDtype) for t in X.dtypes):
            X = X.sparse.to_coo()
        else:
            X = X.to_numpy()
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        X.eliminate_zeros()
        if X.nnz and not np.all(X.data == 1):
            raise ValueError(_NOT_BINARY)
        if X.ndim != 2:
            raise ValueError(f"transactions must be 2-D, got shape {X.shape}")
        return X.indptr.astype(np.int64), X.indices.astype(np.int32), X.shape[0], X.shape[1], names
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"transactions must be a 2-D (n_transactions, n_items) matrix, got shape {X.shape}; "
                         "lists of item ids go through nnrules.Transactions.from_lists")
    if X.dtype != bool:
        if X.dtype == object or not np.isin(X, (0, 1)).all():
            raise ValueError(_NOT_BINARY)
        X = X.astype(bool)
    r, c = np.nonzero(X)
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=X.shape[0]), out=indptr[1:])
    return indptr, c.astype(np.int32), X.shape[0], X.shape[1], names


#: Item bitsets are built (and ANDed) when the frequent items fill at least this fraction of the matrix;
#: sparser data is searched on tid-lists alone (its bitsets would take more memory than the data).
BITSET_DENSITY = 1 / 32

_EMPTY_BITS = np.zeros((0, 1), dtype=np.uint64)


@dataclass
class _Search:
    """What the kernels search: the frequent items (ranked by ascending support) as transactions and tid-sets."""

    n: int
    minsup: int
    ids: np.ndarray        # (m,) int64: the item id (column) of each rank
    supp: np.ndarray       # (m,) int64
    indptr: np.ndarray     # (n+1,) int64: CSR transactions over ranks
    rows: np.ndarray       # (nnz,) int32, ascending per row
    B: np.ndarray          # (m, n_words) uint64 item bitsets, or (0, 1) on sparse data
    vptr: np.ndarray       # (m+1,) int64: the items' tid-lists
    vtids: np.ndarray      # (nnz,) int32
    names: list | None


def _prepare(X, min_support: float) -> _Search:
    """Rank the frequent items of ``X`` and lay them out for the search: O(nnz + n + items)."""
    names = None
    if isinstance(X, BinaryMatrix):
        n = X.n_samples
        names = X.names
        minsup = min_count(min_support, max(n, 1))
        supp_all = popcount_rows(X.words)
    present = None  # a sparse id space (ids up to 2**31 on a few items): counted over the ids present
    if not isinstance(X, BinaryMatrix):
        indptr0, ids0, n, n_items, names = _csr_of(X)
        if names is None and n_items > 2 * len(ids0) + 4096:  # O(nnz log nnz), never an array per id value
            present, inverse = np.unique(ids0, return_inverse=True)
            ids0, n_items = inverse.astype(np.int32).ravel(), len(present)
        minsup = min_count(min_support, max(n, 1))
        supp_all = _t.distinct_counts(indptr0, ids0, n_items)
    if n == 0:
        raise ValueError("no transactions: X has 0 rows")
    order = np.flatnonzero(supp_all >= minsup)
    order = order[np.argsort(supp_all[order], kind="stable")].astype(np.int64)
    m = len(order)
    if isinstance(X, BinaryMatrix):
        indptr, rows, vptr, vtids = _t.bits_layout(X.words, order, supp_all[order], n)
    else:
        rank = np.full(len(supp_all), -1, dtype=np.int64)
        rank[order] = np.arange(m)
        indptr, rows, vptr, vtids = _t.ranked_layout(indptr0, ids0, rank, m)
    dense = m > 0 and len(rows) >= BITSET_DENSITY * m * n
    B = _EMPTY_BITS
    if dense and isinstance(X, BinaryMatrix):
        B = np.ascontiguousarray(X.words[order])
    elif dense:
        B = _t.bits_from_tidlists(vptr, vtids, n)
    ids = order if present is None else present[order].astype(np.int64)  # ranks → the item ids as given
    return _Search(n, minsup, ids, supp_all[order].astype(np.int64), indptr, rows, B, vptr, vtids, names)


_SEARCH_MODE = -1  # tests force one way of finding children everywhere: 0 deliver, 1 probe, 2 AND
#: sparse data: a node's subtree is mined on bitsets over its own s transactions when its f children cost
#: f·⌈s/64⌉ words ≤ _LOCAL_RATIO × their occurrences (0: never; tests set 0 / 1e9 as well)
_LOCAL_RATIO = 1.0
#: closed sets, a local search: its ppc probes of the items below its root's take their counts there (one walk)
#: once they have cost _BELOW_WORK tests per transaction (0: at once; tests)
_BELOW_WORK = 8.0

#: What :func:`eclat` can return: all frequent itemsets, the closed ones, or the maximal ones.
TARGETS = ("all", "closed", "maximal")


@dataclass(eq=False)
class Itemsets:
    """Itemsets as flat arrays: set i holds ``items[offsets[i]:offsets[i+1]]`` (item ids or columns, in the
    search's order), in ``counts[i]`` of ``n_transactions`` transactions. No Python object per set until asked:
    :meth:`to_frame` (mlxtend's layout), :meth:`sets`, ``itemsets[i]`` (a frozenset). Memory 8·(2·n_sets +
    total items) bytes. In search order; :meth:`to_frame` orders by length, then items."""

    items: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray
    n_transactions: int
    target: str = "all"
    names: list | None = None

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def support(self) -> np.ndarray:
        """``(n_sets,)`` fraction of the transactions holding each set."""
        return self.counts / self.n_transactions

    @property
    def lengths(self) -> np.ndarray:
        """``(n_sets,)`` items per set."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> frozenset:
        i = range(len(self))[i]
        return frozenset(self.items[self.offsets[i]:self.offsets[i + 1]].tolist())

    def _order(self) -> np.ndarray:
        """Set indices by length, then lexicographically by items."""
        lens = self.lengths
        by_len = np.argsort(lens, kind="stable")
        out = np.empty(len(self), dtype=np.int64)
        bounds = np.flatnonzero(np.diff(lens[by_len], prepend=-1, append=-2))
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            idx = by_len[a:b]
            M = np.sort(self.items[self.offsets[idx][:, None] + np.arange(lens[idx[0]])], axis=1)
            out[a:b] = idx[np.lexsort(M.T[::-1])] if M.shape[1] else idx
        return out

    def sets(self, use_colnames: bool = False, ordered: bool = True) -> list[frozenset]:
        """The sets as frozensets (of column names with ``use_colnames``), by length then items if ``ordered``."""
        if use_colnames and self.names is None:
            raise ValueError("use_colnames=True needs named items (a DataFrame's columns or a BinaryMatrix's "
                             "names)")
        idx = self._order() if ordered else np.arange(len(self))
        lens = self.lengths[idx]
        out: list = []
        bounds = np.flatnonzero(np.diff(lens, prepend=-1, append=-2))
        with _gc_paused():  # many small containers: cyclic GC passes would cost more than building them
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                M = self.items[self.offsets[idx[a:b]][:, None] + np.arange(lens[a])]
                cols = [M[:, c].tolist() for c in range(M.shape[1])]
                if use_colnames:
                    names = self.names
                    assert names is not None
                    cols = [[names[i] for i in col] for col in cols]
                out.extend(map(frozenset, zip(*cols)) if cols else [frozenset()] * (b - a))
        return out

    def to_frame(self, use_colnames: bool = False) -> pd.DataFrame:
        """mlxtend's layout: ``support`` (fraction) and ``itemsets`` (frozensets), by length then items."""
        order = self._order()
        sets = self.sets(use_colnames)
        return pd.DataFrame({"support": self.counts[order] / self.n_transactions, "itemsets": sets})

    def __repr__(self) -> str:
        return f"Itemsets({self.target}, n_sets={len(self)}, n_transactions={self.n_transactions})"


def frequent_itemsets(X, min_support: float, target: str = "all", max_len: int | None = None,
                      max_itemsets: int = MAX_ITEMSETS) -> Itemsets:
    """The itemsets with support ≥ ``min_support`` (a fraction of the transactions), as flat arrays.

    ``X``: :class:`~nnrules.Transactions` (lists of item ids, :func:`~nnrules.read_fimi`), a ``(n, n_items)``
    bool/0-1 matrix or DataFrame, a DataFrame of sparse columns, a scipy.sparse matrix, or a
    :class:`BinaryMatrix` (used as is, no unpacking). ``target``: ``"all"`` frequent itemsets (Eclat),
    ``"closed"`` (no superset with the same support; LCM's prefix-preserving closure extension) or
    ``"maximal"`` (no frequent superset; a depth-first search with MAFIA's pruning), each mined directly;
    with ``max_len``, those of at most ``max_len`` items (pyfim's ``zmax``). The answers equal pyfim's
    ``eclat(target="s"/"c"/"m")`` (tested on the FIMI files), except that a set of items present in every
    transaction is reported (pyfim drops it).

    More than ``max_itemsets`` sets to return raise a ``ValueError`` naming the target, instead of
    exhausting memory. Items are ranked by ascending support; sparse data (frequent items filling under
    :data:`BITSET_DENSITY` of the matrix) is searched on tid-lists, dense data on bitsets as well, each
    node choosing occurrence deliver (cost s·L) or bitset ANDs (cost items·n/64) by its estimate.
    """
    if isinstance(max_itemsets, bool) or not isinstance(max_itemsets, numbers.Integral) or max_itemsets < 1:
        raise ValueError(f"max_itemsets must be a positive integer, got {max_itemsets!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral)
                                or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    S = _prepare(X, min_support)
    m = len(S.ids)
    if m == 0:
        return Itemsets(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64), S.n, target, S.names)
    depth = min(m, max_len if max_len is not None else m)
    ids = S.ids.astype(np.int32 if S.ids.size == 0 or S.ids.max() < 2 ** 31 else np.int64)
    args = (S.B, S.supp, ids, S.indptr, S.rows, S.vptr, S.vtids)
    if target == "all":
        items, lens, counts, complete = _k.eclat_kernel(*args, S.minsup, depth, int(max_itemsets), _SEARCH_MODE,
                                                        local_ratio=float(_LOCAL_RATIO))
    elif target == "closed":
        items, lens, counts, complete = _ck.lcm_closed(*args, S.minsup, depth, int(max_itemsets), _SEARCH_MODE,
                                                       local_ratio=float(_LOCAL_RATIO),
                                                       below_work=float(_BELOW_WORK))
    else:
        items, lens, counts, complete = _ck.mafia_maximal(*args, S.minsup, depth, int(max_itemsets), _SEARCH_MODE,
                                                          local_ratio=float(_LOCAL_RATIO))
    if not complete:
        what = "frequent" if target == "all" else target
        advice = ("raise min_support, set max_len, mine target='closed' or 'maximal' (fewer sets, the same "
                  "frequent itemsets implied), or raise max_itemsets") if target == "all" else \
            "raise min_support or raise max_itemsets"
        raise ValueError(f"more than max_itemsets={max_itemsets:,} {what} itemsets at min_support={min_support} "
                         f"over {m} frequent items: {advice}")
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return Itemsets(items, offsets, counts.astype(np.int64), S.n, target, S.names)


def eclat(X, min_support: float, max_len: int | None = None, max_itemsets: int = MAX_ITEMSETS,
          use_colnames: bool = False, target: str = "all") -> pd.DataFrame:
    """:func:`frequent_itemsets` as mlxtend's DataFrame: ``support`` (fraction) and ``itemsets`` (frozensets
    of column indices / item ids, or of column names with ``use_colnames=True``), by length, then items.

    The frequent itemsets are those of mlxtend's ``fpgrowth`` and pyfim's ``eclat``; ``target="closed"`` /
    ``"maximal"`` those of pyfim's ``target="c"``/``"m"``. For millions of sets keep the flat arrays of
    :func:`frequent_itemsets`: this builds one frozenset per set."""
    found = frequent_itemsets(X, min_support, target, max_len, max_itemsets)
    if use_colnames and found.names is None:
        raise ValueError("use_colnames=True needs a DataFrame X (its columns name the items) or a BinaryMatrix")
    return found.to_frame(use_colnames)


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
