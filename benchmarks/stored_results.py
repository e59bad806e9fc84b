"""A link with a stored result (widgets/state/result_store.py) against mining it, measured in one run.

For each zoo model, the app's default ExplaiNN settings: (a) load + mine (a fresh run, as a link did before
results were stored), (b) a link opened from the store in a fresh state (load + read + binarizer fit, nothing
mined), (c) the open alone, without the load both share. Ratios to (a); the store is a fresh temporary folder.

Run: .venv/bin/python benchmarks/stored_results.py [--quick]
"""
import sys
import tempfile
import time

from nnrules.widgets.state.explorer import ExplorerState
from nnrules.widgets.state.result_store import ResultStore

QUICK = "--quick" in sys.argv


def main() -> None:
    print(f"{'model':<14} {'rules':>6} {'load+mine s':>12} {'link s':>8} {'link/mine':>10} {'open s':>8} "
          f"{'open/mine':>10} {'store MB':>9}")
    for name in (["digits-cnn"] if QUICK else ["digits-cnn", "mnist-cnn", "fashion-cnn", "cifar10-cnn"]):
        root = tempfile.mkdtemp(prefix="nnrules-results-")
        try:
            t = time.perf_counter()
            s = ExplorerState(pictures=None, results=ResultStore(root))
            s.load_zoo(name)
            loaded = time.perf_counter() - t
            s.mine(s.default_settings())
            fresh = time.perf_counter() - t
        except Exception as err:  # noqa: BLE001 — a zoo model whose data is not installed here
            print(f"{name:<14} skipped: {err}")
            continue
        q = s.to_query()
        t = time.perf_counter()
        back = ExplorerState.from_query(q, pictures=None, results=ResultStore(root))
        link = time.perf_counter() - t
        assert back.result.stored_at and len(back.rules) == len(s.rules)
        t = time.perf_counter()
        back.mine(s.settings, stored=True)
        opened = time.perf_counter() - t
        size = sum(p.stat().st_size for p in ResultStore(root).root.glob("*")) / 2 ** 20
        print(f"{name:<14} {len(s.rules):>6} {fresh:>12.2f} {link:>8.2f} {link / fresh:>10.2f} {opened:>8.3f} "
              f"{opened / (fresh - loaded):>10.3f} {size:>9.1f}")


if __name__ == "__main__":
    main()
