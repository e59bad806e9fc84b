"""The time the page estimates before Mine (widgets/state/mining.py ``estimate_seconds``) against the time the
Mine takes, in one run: the app's default settings of each miner on zoo models (the model was fitted on
digits-cnn and cifar10-cnn; fashion-cnn and mnist-cnn are held out) and on a random-weight torchvision ResNet-18
(3 classes, 30 images of 64 px, "Your files"; held out). ``measured/est`` is the accuracy the page states (0.25–1.6× when this was written).

Run: .venv/bin/python benchmarks/mine_estimate.py [--quick]
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from nnrules.widgets.state.explorer import ExplorerState
from nnrules.widgets.state.mining import estimate_seconds

QUICK = "--quick" in sys.argv
MINERS = ["explainn", "eric", "patches", "neurochains"]


def _resnet18(root: Path) -> ExplorerState:
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (root / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "imgs" / c / f"{i}.png")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), root / "w.pt")
    s = ExplorerState(pictures=None, results=None, data_root=str(root))
    s.load_files("w.pt", "imgs", architecture="resnet18")
    return s


def main() -> None:
    models = ["digits-cnn"] if QUICK else ["digits-cnn", "cifar10-cnn", "fashion-cnn", "mnist-cnn", "resnet18@64"]
    print(f"{'model':<13} {'miner':<12} {'fwd ms':>7} {'est s':>7} {'measured s':>10} {'measured/est':>12}")
    ratios = []
    for name in models:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "resnet18@64":
                s = _resnet18(Path(tmp))
            else:
                s = ExplorerState(pictures=None, results=None)
                s.load_zoo(name)
            for miner in MINERS:
                settings = s.default_settings(miner)
                est = estimate_seconds(s.loaded, settings)
                t = time.perf_counter()
                s.mine(settings)
                took = time.perf_counter() - t
                ratios.append(took / est)
                print(f"{name:<13} {miner:<12} {s.loaded.forward_seconds * 1e3:>7.2f} {est:>7.1f} {took:>10.1f} "
                      f"{took / est:>12.2f}", flush=True)
    print(f"measured/est: {min(ratios):.2f} … {max(ratios):.2f} over {len(ratios)} runs")


if __name__ == "__main__":
    main()
