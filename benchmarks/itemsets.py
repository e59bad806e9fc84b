"""Frequent, closed and maximal itemsets on the FIMI benchmark files: nnrules vs pyfim (C, Borgelt), same run.

Data (not generated): chess (dense), retail and T10I4D100K (sparse), read as they are from
``tests/data/fimi/*.dat.gz`` (copies of the FIMI repository's files). Per data set, support and target
(all / closed / maximal):

* nnrules from the file's natural form, the ``Transactions`` that ``read_fimi`` returns ("file");
  from the same Python lists of item ids pyfim gets, turned into ``Transactions`` inside the timed call
  ("lists": ~17 ns per item in ``np.fromiter``, which decides the millisecond rows); and from a pre-packed
  ``BinaryMatrix`` (packing not timed) — each mined to flat arrays (``frequent_itemsets``);
  reading the file is timed for neither library;
* pyfim ``eclat`` and ``fpgrowth`` on the lists (``report="a"``: itemsets as tuples with counts);
* "= pyfim": nnrules' sets and counts equal pyfim eclat's, each set listed once (checked on every row; sets
  made only of items in every transaction are not in pyfim's output, see ``same``);
* peak memory: the mining call's peak resident memory above the process's before it (``VmHWM`` after
  ``clear_refs``), each in a fresh process, for nnrules from the lists and pyfim eclat.

Times are the best of 5 in one process, the five calls of a row taken in turns (a slow spell of a shared
machine falls on all of them); ratios below 1 mean nnrules is faster. ``--generators`` adds the
older table on the project's generated data (retail-like, dense, patch-like) with mlxtend's fpgrowth.

Other FIMI files (mushroom, connect, accidents, kosarak, …) join the table with ``--file PATH:s1,s2,…``
(repeatable; ``.dat`` or ``.dat.gz``); the three shared files always run.

Run: .venv/bin/python benchmarks/itemsets.py [--quick] [--no-memory] [--generators] [--file PATH:SUPPORTS]
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from _timing import best_interleaved, best_of
from nnrules import BinaryMatrix, Transactions, frequent_itemsets, read_fimi
from nnrules.miners.itemsets import min_count

try:
    import fim
except ImportError:  # pragma: no cover
    sys.exit("pyfim is the reference here: pip install pyfim (it is in the dev extra: pip install -e '.[dev]')")

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "fimi"
SUPPORTS = {"chess": [0.9, 0.8, 0.7, 0.6, 0.5], "retail": [0.01, 0.005, 0.001, 0.0005, 0.0002],
            "T10I4D100K": [0.01, 0.005, 0.001, 0.0005]}
QUICK = {"chess": [0.8, 0.6], "retail": [0.005, 0.0005], "T10I4D100K": [0.005, 0.001]}
TARGETS = {"all": "s", "closed": "c", "maximal": "m"}


def path_of(name):
    return DATA / f"{name}.dat.gz" if name in SUPPORTS else Path(name)


def lists_of(name):
    return read_fimi(path_of(name)).to_lists()


def ours(lists, support, target):
    return frequent_itemsets(Transactions.from_lists(lists), support, target=target, max_itemsets=10 ** 8)


def pyfim(lists, support, target, algo="eclat"):
    return getattr(fim, algo)(lists, target=TARGETS[target], supp=-min_count(support, len(lists)), report="a")


def _rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_child(lib, name, support, target):
    """In a fresh process: the mining call's peak RSS above the RSS before it, MiB."""
    lists = lists_of(name)
    tiny = [[0, 1], [1, 2], [0, 2], [0, 1, 2]]
    ours(tiny, 0.5, target)  # load the compiled kernels first
    pyfim(tiny, 0.5, target)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
    before = _rss_kib("VmRSS:")
    out = ours(lists, support, target) if lib == "nnrules" else pyfim(lists, support, target)
    print((_rss_kib("VmHWM:") - before) / 1024, len(out))


def peak(lib, name, support, target):
    res = subprocess.run([sys.executable, __file__, "--peak", lib, name, str(support), target], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).parent)
    return float(res.stdout.split()[0])


def same(found, ref, everywhere=frozenset()):
    """Equal sets and counts, each set listed once — except the sets made only of items present in every
    transaction (``everywhere``), which pyfim leaves out (mushroom's {85}, connect's 15 items; mlxtend lists them,
    as nnrules does)."""
    mine = {found[i]: c for i, c in enumerate(found.counts.tolist())}
    theirs = {frozenset(s): c for s, c in ref}
    return len(found) == len(mine) and theirs.keys() <= mine.keys() and all(mine[k] == v for k, v in theirs.items()) \
        and all(s <= everywhere for s in mine.keys() - theirs.keys())


def fimi_table(quick, memory, extra=()):
    frequent_itemsets(np.eye(3, dtype=bool), 0.5)
    rows = []
    for name, supports in [*(QUICK if quick else SUPPORTS).items(), *extra]:
        tr = read_fimi(path_of(name))
        lists = tr.to_lists()
        packed = BinaryMatrix.from_transactions(tr)
        everywhere = frozenset(set.intersection(*map(set, lists)))
        for s in supports:
            for target in TARGETS:
                found = ours(lists, s, target)
                ok = same(found, pyfim(lists, s, target), everywhere)
                t_file, t_lists, t_packed, t_eclat, t_fp = best_interleaved([
                    lambda: frequent_itemsets(tr, s, target=target, max_itemsets=10 ** 8),
                    lambda: ours(lists, s, target),
                    lambda: frequent_itemsets(packed, s, target=target, max_itemsets=10 ** 8),
                    lambda: pyfim(lists, s, target), lambda: pyfim(lists, s, target, "fpgrowth")])
                mem = (peak("nnrules", name, s, target), peak("pyfim", name, s, target)) if memory else (np.nan,) * 2
                rows.append((Path(name).name.split(".")[0], s, target, len(found), ok, t_file, t_lists, t_packed, t_eclat,
                             t_fp, *mem))
                print(".", end="", flush=True)
    print()
    print(f"{'data':<11} {'support':>7} {'target':>7} {'sets':>9} {'=pyfim':>6} {'file s':>7} {'lists s':>7} "
          f"{'packed s':>8} {'eclat s':>7} {'fpgrowth s':>10} {'file/eclat':>10} {'lists/eclat':>11} "
          f"{'packed/eclat':>12} {'peak MiB':>8} {'pyfim MiB':>9} {'mem ratio':>9}")
    for name, s, target, n, ok, t, a, p, e, f, mo, mf in rows:
        print(f"{name:<11} {s:>7} {target:>7} {n:>9} {str(ok):>6} {t:>7.3f} {a:>7.3f} {p:>8.3f} {e:>7.3f} "
              f"{f:>10.3f} {t / e:>10.2f} {a / e:>11.2f} {p / e:>12.2f} {mo:>8.1f} {mf:>9.1f} "
              f"{mo / max(mf, 1.0):>9.2f}")
    print(f"\nall identical to pyfim: {all(r[4] for r in rows)}; slowest ratio to pyfim eclat: from the file "
          f"{max(r[5] / r[8] for r in rows):.2f}, from lists {max(r[6] / r[8] for r in rows):.2f}, pre-packed "
          f"{max(r[7] / r[8] for r in rows):.2f}; largest peak-memory ratio (from lists; MiB over max(pyfim, "
          f"1 MiB)): {max(r[10] / max(r[11], 1.0) for r in rows):.2f}")
    pack_times = []
    for name in SUPPORTS:
        lists = lists_of(name)
        dense = BinaryMatrix.from_transactions(lists).to_dense()
        pack_times.append((name, dense.shape, best_of(lambda: BinaryMatrix.from_dense(dense), repeats=1)))
    print("\nBinaryMatrix.from_dense on the files' (rows × item ids) bool matrices: " + "; ".join(
        f"{n} {sh[0]:,}×{sh[1]:,} {t:.2f} s" for n, sh, t in pack_times))


def generators_table():
    from mlxtend.frequent_patterns import fpgrowth
    import pandas as pd

    from nnrules.miners.itemsets import eclat
    rng = np.random.default_rng(0)
    pop = np.minimum(rng.pareto(1.2, 1_587) + 0.05, 1e9)
    retail_like = rng.random((33_841, 1_587)) < np.minimum(pop / pop.sum() * 0.006 * 1_587, 0.6)
    print(f"\n{'generated data':<24} {'support':>8} {'itemsets':>9} {'= pyfim':>8} {'nnrules s':>10} {'pyfim s':>8} "
          f"{'ratio':>6} {'fpgrowth s':>11}")
    for name, X, supports in [("retail-like 33841×1587", retail_like, [0.005, 0.001, 0.0005]),
                              ("dense 10000×128 (30 %)", rng.random((10_000, 128)) < 0.3, [0.1, 0.05])]:
        tracts = [np.flatnonzero(r).tolist() for r in X]
        for s in supports:
            got = eclat(X, s)
            ref = {frozenset(t): k for t, k in fim.eclat(tracts, supp=-min_count(s, len(X)), report="a")}
            ok = {t: int(round(v * len(X))) for t, v in zip(got.itemsets, got.support)} == ref
            a = best_of(lambda: frequent_itemsets(X, s))
            f = best_of(lambda: fim.eclat(tracts, supp=-min_count(s, len(X)), report="a"))
            m = best_of(lambda: fpgrowth(pd.DataFrame(X), min_support=s), repeats=1)
            print(f"{name:<24} {s:>8} {len(got):>9} {str(ok):>8} {a:>10.4f} {f:>8.4f} {a / f:>6.2f} {m:>11.3f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak"]:
        lib, name, support, target = sys.argv[2:6]
        peak_child(lib, name, float(support), target)
    else:
        extra = [(a.rsplit(":", 1)[0], [float(x) for x in a.rsplit(":", 1)[1].split(",")])
                 for flag, a in zip(sys.argv, sys.argv[1:]) if flag == "--file"]
        fimi_table("--quick" in sys.argv, "--no-memory" not in sys.argv, extra)
        if "--generators" in sys.argv:
            generators_table()
    os.sys.stdout.flush()
