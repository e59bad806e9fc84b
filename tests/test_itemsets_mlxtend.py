"""A ported subset of mlxtend's frequent-pattern test suite (mlxtend/frequent_patterns/tests): their data and
expected values, our calls. Where we differ on purpose the test says so (clear errors instead of KeyError)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from nnrules.miners.itemsets import association_rules, eclat

ONE_ARY = np.array([[0, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1],
                    [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1],
                    [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0],
                    [0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1],
                    [0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0]])
COLS = ["Apple", "Corn", "Dill", "Eggs", "Ice cream", "Kidney Beans", "Milk", "Nutmeg", "Onion", "Unicorn",
        "Yogurt"]
DF = pd.DataFrame(ONE_ARY, columns=COLS)
FREQ = eclat(DF, 0.6)
FREQ_NAMES = eclat(DF, 0.6, use_colnames=True)


def rows(df):
    return sorted((sorted(s), round(v, 12)) for s, v in zip(df["itemsets"], df["support"]))


def test_fpbase_default_example():  # FPTestEx1All.test_default, min_support 0.5 (mlxtend's default)
    expect = [(0.8, [3]), (1.0, [5]), (0.6, [6]), (0.6, [8]), (0.6, [10]), (0.8, [3, 5]), (0.6, [3, 8]),
              (0.6, [5, 6]), (0.6, [5, 8]), (0.6, [5, 10]), (0.6, [3, 5, 8])]
    assert rows(eclat(DF, 0.5)) == sorted((s, v) for v, s in expect)


def test_fpbase_max_len_and_types():
    assert eclat(DF, 0.5)["itemsets"].map(len).max() == 3
    assert eclat(DF, 0.5, max_len=2)["itemsets"].map(len).max() == 2
    assert all(isinstance(s, frozenset) for s in eclat(DF, 0.5, use_colnames=True)["itemsets"])


def test_fpbase_frozenset_selection_with_names():
    res = eclat(DF, 0.5, use_colnames=True)
    assert res.shape == eclat(DF, 0.5).shape
    assert (res["itemsets"] == "nothing").sum() == 0
    assert (res["itemsets"] == {"Milk", "Kidney Beans"}).sum() == 1
    assert (res["itemsets"] == frozenset(("Kidney Beans", "Milk"))).sum() == 1


@pytest.mark.parametrize("fill", [0, False])
def test_fpbase_sparse_dataframe(fill):
    sdf = DF.astype(pd.SparseDtype(type(fill), fill_value=fill))
    res = eclat(sdf, 0.5, use_colnames=True)
    assert res.shape == eclat(DF, 0.5).shape and (res["itemsets"] == {"Milk", "Kidney Beans"}).sum() == 1


def test_fpbase_sparse_with_explicit_zeros():
    ary = ONE_ARY.copy()
    ary[3, :] = 1
    m = sp.csr_matrix(ary)
    m[3, :] = ONE_ARY[3, :]  # stored zeros
    sdf = pd.DataFrame.sparse.from_spmatrix(m, columns=COLS)
    assert rows(eclat(sdf, 0.5)) == rows(eclat(DF, 0.5))


def test_fpbase_not_binary_and_empty():
    bad = DF.copy()
    bad.iloc[3, 3] = 2
    for X in (bad, bad.astype(pd.SparseDtype("int", fill_value=0))):
        with pytest.raises(ValueError, match="binary"):
            eclat(X, 0.5)
    assert len(eclat(pd.DataFrame([[]]), 0.5)) == 0
    with pytest.raises(ValueError, match=r"min_support.*\(0, 1\]"):
        eclat(DF, 0.0)


def test_fpbase_one_item_per_transaction_with_names():  # FPTestEx2All: [a], [b], [c, d], [e]
    df = pd.DataFrame([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]], columns=list("abcde"))
    got = {s: v for s, v in zip(*eclat(df, 0.001, use_colnames=True)[["itemsets", "support"]].T.values)}
    assert got == {frozenset(x): 0.25 for x in ["a", "b", "c", "d", "e", "cd"]}


METRIC_COLS = ["antecedents", "consequents", "antecedent support", "consequent support", "support", "confidence",
               "lift", "leverage", "conviction", "zhangs_metric"]


def test_rules_default_table():  # test_association_rules.test_default (metric confidence, threshold 0.8)
    res = association_rules(FREQ, metric="confidence", min_threshold=0.8)
    expect = [[(8,), (5,), 0.6, 1.0, 0.6, 1.0, 1.0, 0.0, np.inf, 0],
              [(6,), (5,), 0.6, 1.0, 0.6, 1.0, 1.0, 0.0, np.inf, 0],
              [(8, 3), (5,), 0.6, 1.0, 0.6, 1.0, 1.0, 0.0, np.inf, 0],
              [(8, 5), (3,), 0.6, 0.8, 0.6, 1.0, 1.25, 0.12, np.inf, 0.5],
              [(8,), (3, 5), 0.6, 0.8, 0.6, 1.0, 1.25, 0.12, np.inf, 0.5],
              [(3,), (5,), 0.8, 1.0, 0.8, 1.0, 1.0, 0.0, np.inf, 0],
              [(5,), (3,), 1.0, 0.8, 0.8, 0.8, 1.0, 0.0, 1.0, 0],
              [(10,), (5,), 0.6, 1.0, 0.6, 1.0, 1.0, 0.0, np.inf, 0],
              [(8,), (3,), 0.6, 0.8, 0.6, 1.0, 1.25, 0.12, np.inf, 0.5]]
    key = lambda r: (tuple(sorted(r[0])), tuple(sorted(r[1])))
    got = {key(r): np.array(r[2:], float) for r in res[METRIC_COLS].itertuples(index=False)}
    want = {key(r): np.array(r[2:], float) for r in expect}
    assert got.keys() == want.keys()
    assert all(np.allclose(got[k], want[k], atol=1e-12) for k in want)


@pytest.mark.parametrize("metric, threshold, count", [("leverage", 0.1, 6), ("conviction", 1.5, 11),
                                                      ("lift", 1.1, 6), ("confidence", 0.8, 9),
                                                      ("support", 0.8, 2)])
@pytest.mark.parametrize("frequent", [FREQ, FREQ_NAMES], ids=["indices", "names"])
def test_rules_metric_thresholds(metric, threshold, count, frequent):
    assert len(association_rules(frequent, metric=metric, min_threshold=threshold)) == count


def test_rules_frozensets_from_sets_and_selection():
    as_sets = FREQ.assign(itemsets=FREQ["itemsets"].map(set))
    res = association_rules(as_sets, metric="confidence", min_threshold=0.8)
    assert all(isinstance(s, frozenset) for s in res["antecedents"]) and all(
        isinstance(s, frozenset) for s in res["consequents"])
    assert (res["consequents"] == frozenset((3, 5))).sum() == 1 and (res["consequents"] == {3, 5}).sum() == 1
    assert (res["antecedents"] == frozenset((8, 3))).sum() == 1


def test_rules_missing_columns_metric_and_cropped_itemsets():
    for cols in (["itemsets"], ["support"]):
        with pytest.raises(ValueError, match="columns"):
            association_rules(FREQ.loc[:, cols])
    with pytest.raises(ValueError, match="metric"):
        association_rules(FREQ, metric="unicorn")
    cropped = pd.DataFrame({"itemsets": [["177", "176"], ["177", "179"], ["176", "178"], ["176", "179"],
                                         ["93", "100"], ["177", "178"], ["177", "176", "178"]],
                            "support": [0.253623, 0.253623, 0.217391, 0.217391, 0.181159, 0.108696, 0.108696]})
    with pytest.raises(ValueError, match="missing"):  # mlxtend: a bare KeyError
        association_rules(cropped)
