"""ExplaiNN past one machine: pairs in Zarr stores mined on a Dask LocalCluster with 1 and 2 workers.

Cases (both written into Zarr first, outside the timings):

- ``generated``: 1,280,000 rows (ImageNet's training set), 1,000 one-hot classes → 4,096 FC7-like units
  (``class_tuned``'s model in benchmarks/explainn.py, drawn block by block straight into the store).
- ``fashion``: 60,000 real Fashion-MNIST training images through mnist-cnn, recorded with
  ``record(..., store=)`` (pool and relu2 per position, 62,720 units), binarized at each unit's mean in passes
  into the store; the pair: the 1,000 live pool units → the 4,096 live relu2 units nearest the centre.

Per case and worker count: the fit's wall time, rules, code length (equal across worker counts: checked),
the peak memory of each worker process (RSS, from the workers themselves), and the counting's own costs
(``ExplaiNN.counting_``): seconds computed per row range summed over workers, unit tasks, wall time spent
waiting for them, and the rest (the search here). The extrapolation to N workers uses the 1-worker run:

    T(N) ≈ search + calls · latency + (range seconds + unit seconds) / N

(latency per call = wall time waiting for row-range calls minus the slowest worker's compute). Usage:
``python benchmarks/scaleout.py [--rows 1280000] [--fashion-rows 60000] [--only generated|fashion]``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("NNRULES_BENCH_CACHE", HERE / ".cache")) / "scaleout"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def generated(path: Path, n: int, n_classes: int = 1000, n_units: int = 4096, seed: int = 0, block: int = 1 << 16):
    """class_tuned's model (benchmarks/explainn.py) drawn ``block`` rows at a time into two stores."""
    from nnrules.data.bits import pack_columns
    from nnrules.data.bits import BitsWriter

    rng = np.random.default_rng(seed)
    clusters = []  # (classes, [(copy rate, base rate)] per unit)
    u = 0
    while u < n_units:
        size = min(int(rng.integers(1, 17)), n_units - u)
        classes = rng.choice(n_classes, int(rng.integers(3, 16)), replace=False)
        clusters.append((classes, [rng.uniform(0.02, 0.15) for _ in range(size)]))
        u += size
    hw = BitsWriter(path / "head.zarr", n, n_classes, layer="class", chunk_rows=block)
    tw = BitsWriter(path / "tail.zarr", n, n_units, layer="fc7", chunk_rows=block)
    for start in range(0, n, block):
        m = min(block, n - start)
        r = np.random.default_rng([seed, start])
        cls = r.integers(0, n_classes, m)
        onehot = np.zeros((m, n_classes), bool)
        onehot[np.arange(m), cls] = True
        hw.write(pack_columns(onehot))
        tail = np.empty((m, n_units), bool)
        j = 0
        for classes, bases in clusters:
            feature = np.isin(cls, classes) & (r.random(m) < 0.85)
            for base in bases:
                tail[:, j] = (feature & (r.random(m) < 0.95)) | (r.random(m) < base)
                j += 1
        tw.write(pack_columns(tail))
    return hw.close(), tw.close()


def fashion(path: Path, n: int):
    """The 60,000-row real recording (see the module docstring); returns (head, tail) StoredBits."""
    import torch

    import nnrules
    from nnrules.scale import open_activations

    store = path / "fashion.zarr"
    if not (store / "zarr.json").exists() or "bits" not in os.listdir(store):
        raw = np.frombuffer(gzip.open(FASHION / "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
        x = torch.from_numpy(raw.reshape(-1, 1, 28, 28)[:n].astype(np.float32) / 255)
        model = nnrules.zoo.load("mnist-cnn").model
        t = time.perf_counter()
        acts = nnrules.record(model, (x, torch.zeros(len(x), dtype=torch.long)), ["relu2", "pool"], reduce="none",
                              progress=False, store=store, batch_size=500)
        print(f"  recorded {acts} into {store} in {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        nnrules.Binarizer("mean").fit_transform(acts)
        print(f"  binarized in passes in {time.perf_counter() - t:.0f} s", flush=True)
    acts = open_activations(store)
    from nnrules.scale import StoredBits
    layers = [k for k in acts.layers if k != "output"]
    bits = {name: StoredBits(store, f"bits/{i}") for i, name in enumerate(layers)}

    def centre(b, q, side):
        s = b.support()
        alive = np.flatnonzero((s > 0) & (s < b.n_samples))
        pos = alive % (side * side)
        r, c = pos // side, pos % side
        mid = (side - 1) / 2
        return np.sort(alive[np.lexsort((alive, (r - mid) ** 2 + (c - mid) ** 2))[:q]])

    return bits["pool"].select(centre(bits["pool"], 1000, 14)), bits["relu2"].select(centre(bits["relu2"], 4096, 28))


def run(case: str, workers: int, rows: int) -> dict:
    """One fit on a fresh LocalCluster of ``workers`` processes (1 thread, 2 GiB each), in this process."""
    from nnrules import ExplaiNN
    from nnrules.scale import local_cluster, open_bits

    if case == "generated":
        head, tail = open_bits(CACHE / f"gen-{rows}" / "head.zarr"), open_bits(CACHE / f"gen-{rows}" / "tail.zarr")
    else:
        head, tail = fashion(CACHE, rows)
    client = local_cluster(workers)
    try:
        client.run(lambda: __import__("nnrules").ExplaiNN().fit(np.eye(4, dtype=bool), np.eye(4, dtype=bool)))
        t = time.perf_counter()
        m = ExplaiNN().fit(head, tail, client=client)
        sec = time.perf_counter() - t
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    finally:
        client.close()
        client.cluster.close()
    return {"case": case, "workers": workers, "n": head.n_samples, "p": head.n_units, "q": tail.n_units,
            "sec": sec, "rules": len(m.rules_), "L": m.codelength_, "base": m.baseline_codelength_,
            "pairs": m.n_pairs_, "peak_gb": sorted(peaks.values()), "counting": m.counting_,
            "packed_gb": (head.nbytes() + tail.nbytes()) / 2**30,
            "driver_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def report(results: list[dict]) -> None:
    print(f"\n{'case':<10}{'rows':>11}{'p→q':>11}{'packed GB':>10}{'workers':>8}{'sec':>9}{'speed-up':>9}"
          f"{'rules':>7}{'L/base':>8}{'same':>6}{'peak GB/worker':>16}{'driver GB':>10}")
    for case in dict.fromkeys(r["case"] for r in results):
        rs = [r for r in results if r["case"] == case]
        one = next(r for r in rs if r["workers"] == 1)
        for r in rs:
            same = abs(r["L"] - one["L"]) <= 1e-9 and r["rules"] == one["rules"]
            pq = f"{r['p']}→{r['q']}"
            print(f"{case:<10}{r['n']:>11,}{pq:>11}{r['packed_gb']:>10.2f}{r['workers']:>8}"
                  f"{r['sec']:>9.1f}{one['sec'] / r['sec']:>9.2f}{r['rules']:>7}{r['L'] / r['base']:>8.3f}"
                  f"{str(same):>6}{', '.join(f'{g:.2f}' for g in r['peak_gb']):>16}{r['driver_gb']:>10.2f}")
        c = one["counting"]
        search = one["sec"] - c["range_wall"] - c["unit_wall"]
        latency = (c["range_wall"] - c["range_max_seconds"]) / max(c["range_calls"], 1)
        work = c["range_seconds"] + c["unit_seconds"]
        print(f"  1 worker: {c['range_calls']} row-range calls computing {c['range_seconds']:.1f} s "
              f"(latency {1000 * latency:.0f} ms a call), {c['unit_tasks']} unit tasks {c['unit_seconds']:.1f} s, "
              f"search here {search:.1f} s")
        est = "  extrapolated: " + ", ".join(f"N={n}: {search + c['range_calls'] * latency + work / n:.0f} s"
                                             for n in (1, 2, 4, 8, 16, 32, 64))
        print(est + f"  (floor: search + latency = {search + c['range_calls'] * latency:.0f} s)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_280_000)
    ap.add_argument("--fashion-rows", type=int, default=60_000)
    ap.add_argument("--only", choices=("generated", "fashion"))
    ap.add_argument("--run", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run:  # one fit in a process of its own (peak memory of the driver is its own)
        print(json.dumps(run(a.run[0], int(a.run[1]), int(a.run[2]))))
        sys.exit()
    CACHE.mkdir(parents=True, exist_ok=True)
    cases = [c for c in ("generated", "fashion") if a.only in (None, c)]
    if "fashion" in cases and not FASHION.is_dir():
        print(f"(no {FASHION}: the real recording is left out; apt-get install dataset-fashion-mnist)")
        cases.remove("fashion")
    print(f"# benchmarks/scaleout.py, {os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}", flush=True)
    if "generated" in cases and not (CACHE / f"gen-{a.rows}" / "tail.zarr" / "words" / "zarr.json").exists():
        t = time.perf_counter()
        generated(CACHE / f"gen-{a.rows}", a.rows)
        print(f"  generated {a.rows:,} rows into Zarr in {time.perf_counter() - t:.0f} s", flush=True)
    if "fashion" in cases:
        fashion(CACHE, a.fashion_rows)
    results = []
    for case in cases:
        for workers in (1, 2):
            rows = a.rows if case == "generated" else a.fashion_rows
            out = subprocess.run([sys.executable, __file__, "--run", case, str(workers), str(rows)],
                                 capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:])
                raise SystemExit(f"{case} with {workers} workers failed")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"  {case} {workers} worker(s): {r['sec']:.1f} s, {r['rules']} rules, peak {r['peak_gb']} GB",
                  flush=True)
    report(results)
