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


def test_readers_estimate_their_memory_before_they_allocate(tmp_path, monkeypatch):
    """Issue 46: a 2 MB .gz of 2 GiB of "0" lines, an 11-byte file "2147483646" (16 GiB of packed words, 48 GiB with its offsets), n_items=2**40,
    a non-gzip or truncated .gz: each a ValueError in words before any large allocation."""
    import gzip

    monkeypatch.setenv("NNRULES_MAX_BYTES", str(64 * 2 ** 20))  # a 64 MiB budget: the machine is never at risk
    bomb = tmp_path / "bomb.dat.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        line = b"0\n" * (1 << 20)
        for _ in range(64):  # 128 MiB of text in ~0.3 MB
            f.write(line)
    assert bomb.stat().st_size < 2 ** 20
    with pytest.raises(ValueError, match="decompresses to more than"):
        read_fimi(bomb)
    one = tmp_path / "one.dat"
    one.write_text("2147483646")
    tr = read_fimi(one)  # reading it is small, and so is mining it: ids are counted where they occur …
    found = frequent_itemsets(tr, min_support=1.0)
    assert [sorted(s) for s in found.sets()] == [[2147483646]]
    with pytest.raises(ValueError, match="2,147,483,647 items would take 48.0 GiB"):
        BinaryMatrix.from_transactions(tr)  # … packing 2**31 item columns is not
    with pytest.raises(ValueError, match="over 1,099,511,627,776 items would take"):
        BinaryMatrix.from_transactions([[1]], n_items=2 ** 40)
    lines = tmp_path / "lines.dat"
    lines.write_bytes(b"\n" * (8 * 2 ** 20))  # 8 MiB of empty transactions: 64 MiB of offsets
    with pytest.raises(ValueError, match="transactions of .* would take"):
        read_fimi(lines)
    (tmp_path / "plain.gz").write_text("1 2 3\n")
    with pytest.raises(ValueError, match="not a whole gzip file"):
        read_fimi(tmp_path / "plain.gz")
    whole = gzip.compress(b"1 2 3\n" * 10000)
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="not a whole gzip file"):
        read_fimi(tmp_path / "cut.gz")
    monkeypatch.delenv("NNRULES_MAX_BYTES")
    assert len(read_fimi(one)) == 1
