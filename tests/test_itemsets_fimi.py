"""Itemsets on data nobody here made: the FIMI benchmark files (tests/data/fimi), against pyfim."""
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nnrules import BinaryMatrix, Transactions, frequent_itemsets, read_fimi
from nnrules.miners.itemsets import eclat, min_count

fim = pytest.importorskip("fim", reason="pyfim (in the dev extra) is the reference")

FIMI = Path(__file__).parent / "data" / "fimi"


@pytest.fixture(scope="module")
def files():
    return {name: read_fimi(FIMI / f"{name}.dat.gz") for name in ("chess", "retail", "T10I4D100K")}


def as_counts(found):
    out = {found[i]: c for i, c in enumerate(found.counts.tolist())}
    assert len(out) == len(found), f"{len(found) - len(out)} sets listed twice"
    return out


def pyfim(tr, support, target):
    lists = tr.to_lists()
    return {frozenset(s): c for s, c in fim.eclat(lists, target=target[0].replace("a", "s"),
                                                   supp=-min_count(support, len(lists)), report="a")}


def test_read_fimi_reads_the_files_as_they_are(files):
    import gzip
    for name, tr in files.items():
        with gzip.open(FIMI / f"{name}.dat.gz", "rt") as f:
            want = [[int(x) for x in line.split()] for line in f]
        assert tr.to_lists() == want
    assert (len(files["chess"]), len(np.unique(files["retail"].ids)), len(files["T10I4D100K"])) == (3196, 16470, 100000)


@pytest.mark.parametrize("name, support", [("chess", 0.7), ("retail", 0.001), ("T10I4D100K", 0.005)])
@pytest.mark.parametrize("target", ["all", "closed", "maximal"])
def test_same_as_pyfim_on_fimi_files(files, name, support, target):
    tr = files[name]
    got = as_counts(frequent_itemsets(tr, support, target=target))
    assert len(got) > 100 and got == pyfim(tr, support, target)


def test_chess_at_half_gives_its_closed_and_maximal_sets_without_the_cap(files):
    """The audit: chess at 0.5 raised 'more than max_itemsets=1,000,000' for maximal (all 1.27 M sets were
    enumerated, then filtered); mined in the search, the default cap is never near."""
    chess = files["chess"]
    maximal = frequent_itemsets(chess, 0.5, target="maximal")
    closed = frequent_itemsets(chess, 0.5, target="closed")
    assert (len(maximal), len(closed)) == (11_463, 369_450)
    assert as_counts(maximal) == pyfim(chess, 0.5, "maximal")
    with pytest.raises(ValueError, match=r"more than max_itemsets=1,000,000 frequent itemsets"):
        frequent_itemsets(chess, 0.5)  # 1,272,932 of them
    with pytest.raises(ValueError, match=r"max_itemsets=1,000 maximal itemsets.*raise min_support"):
        frequent_itemsets(chess, 0.5, target="maximal", max_itemsets=1_000)


def test_every_input_form_gives_the_same_sets(files):
    tr = files["T10I4D100K"]
    want = as_counts(frequent_itemsets(tr, 0.01, target="closed"))
    packed = BinaryMatrix.from_transactions(tr)
    dense = packed.to_dense()
    assert packed.shape == (100_000, tr.n_items)
    assert (BinaryMatrix.from_dense(dense).words == packed.words).all()
    assert (BinaryMatrix.from_sparse(sp.csr_matrix(dense)).words == packed.words).all()
    assert (BinaryMatrix.from_transactions(tr.to_lists()).words == packed.words).all()
    for X in (packed, dense, sp.csr_matrix(dense), Transactions.from_lists(tr.to_lists())):
        assert as_counts(frequent_itemsets(X, 0.01, target="closed")) == want
    frame = eclat(packed, 0.01, target="closed")
    assert dict(zip(frame.itemsets, (frame.support * len(tr)).round().astype(int))) == want


def test_from_dense_packs_a_wide_matrix_in_seconds(files):
    """retail's shape (88,162 × 16,470) took 363 s when a transposed view was packed along its rows."""
    import time
    dense = BinaryMatrix.from_transactions(files["retail"]).to_dense()
    t = time.perf_counter()
    packed = BinaryMatrix.from_dense(dense)
    assert time.perf_counter() - t < 20
    assert np.array_equal(packed.support(), dense.sum(axis=0))


def test_read_fimi_says_which_line_is_wrong(tmp_path):
    good = tmp_path / "ok.dat"
    good.write_text("1 2 3\n\n4\t5 \r\n6")
    assert read_fimi(good).to_lists() == [[1, 2, 3], [], [4, 5], [6]]
    bad = tmp_path / "bad.dat"
    bad.write_text("1 2\n3 -4\n")
    with pytest.raises(ValueError, match=r"line 2.*non-negative integers"):
        read_fimi(bad)
