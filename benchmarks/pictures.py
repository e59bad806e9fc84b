"""What each picture part of a rule detail costs, against the cost model the page estimates with
(widgets/state/picture_budget.py), and the detail within the default 30 s budget — in one run.

Models: digits-cnn and cifar10-cnn (zoo), a random-weight torchvision ResNet-18 (3 classes, 30 images of 64 px,
"Your files") and ResNet-50 of the pretrained shape (1000 classes, 20 photos prepared at 224 px); ERIC and
ExplaiNN with the app's defaults (a miner that finds no rule on a random net is skipped in words). Per rule:
the forward pass measured at load, each part in full (budget None) in seconds and as ratios to the exemplars
part and to the cost model's estimate, then the same detail within the budget (fresh caches): its first part,
its total and what it cut. The ratios ``heatmaps fwd`` and ``step fwd`` are the cost model's two constants.

Run: .venv/bin/python benchmarks/pictures.py [--quick]
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
from nnrules.widgets.state.picture_budget import HEATMAP_FIXED, HEATMAP_PASSES, STEP_FIXED, STEP_PASSES, PictureBudget

QUICK = "--quick" in sys.argv


def _folders(root: Path, classes: list[str], n: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / "imgs" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(root / "imgs" / c / f"{i}.png")


def _state(name: str, root: Path) -> ExplorerState:
    s = ExplorerState(pictures=None, results=None, data_root=str(root))
    torch.manual_seed(0)
    if name == "resnet18@64":
        _folders(root, ["a", "b", "c"], 10, (64, 64))
        torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), root / "w.pt")
        s.load_files("w.pt", "imgs", architecture="resnet18")
    elif name == "resnet50@224":
        _folders(root, ["tabby", "tench"], 10, (300, 260))
        torch.save(torchvision.models.resnet50().state_dict(), root / "w.pt")
        s.load_files("w.pt", "imgs", architecture="resnet50")
    else:
        s.load_zoo(name)
    return s


def _detail(s: ExplorerState, rule: int, full: bool) -> tuple[list[float], float, dict]:
    s.chosen._cache.clear()
    s.select_rule(rule)
    marks: list[float] = []
    t = time.perf_counter()
    d = s.detail(partial=lambda d, coming: marks.append(time.perf_counter() - t), full=full)
    return marks, time.perf_counter() - t, d.degraded


def main() -> None:
    models = ["digits-cnn", "resnet18@64"] if QUICK else ["digits-cnn", "cifar10-cnn", "resnet18@64", "resnet50@224"]
    print(f"cost model: heatmaps = {HEATMAP_FIXED} s + {HEATMAP_PASSES:.0f} fwd; prototype step = {STEP_FIXED} s + "
          f"{STEP_PASSES:.0f} fwd")
    print(f"{'model':<13} {'miner':<8} {'layer':<9} {'fwd ms':>7} {'exempl s':>8} {'heatm s':>8} {'×ex':>6} "
          f"{'heatmaps fwd':>12} {'/est':>5} {'proto s':>8} {'×ex':>6} {'step fwd':>8} {'/est':>5} "
          f"{'full s':>7} | {'1st s':>6} {'budget s':>8} cut")
    for name in models:
        with tempfile.TemporaryDirectory(prefix="nnrules-pictures-") as tmp:
            s = _state(name, Path(tmp))
            fwd = s.loaded.forward_seconds
            for miner in ("eric", "explainn"):
                s.mine(s.default_settings(miner))
                if s.rules.empty:
                    print(f"{name:<13} {miner:<8} no rule on this model: nothing to draw")
                    continue
                rule = int(s.rules["id"].iloc[0])
                _detail(s, rule, True)  # warm: the first detail of a process imports Captum and Zennit (~1.5 s)
                marks, total, _ = _detail(s, rule, True)
                ex, heat, proto = marks[0], marks[1] - marks[0], total - marks[1]
                est = PictureBudget(None, fwd)
                steps = s.prototype_steps
                layer = s.chosen._group(rule, None)[0]
                b_marks, b_total, cut = _detail(s, rule, False)
                print(f"{name:<13} {miner:<8} {layer:<9} {fwd * 1e3:>7.2f} {ex:>8.3f} {heat:>8.2f} {heat / ex:>6.0f} "
                      f"{(heat - HEATMAP_FIXED) / fwd:>12.0f} {heat / est.estimate('heatmaps'):>5.2f} {proto:>8.2f} "
                      f"{proto / ex:>6.0f} {(proto / steps - STEP_FIXED) / fwd:>8.2f} "
                      f"{proto / est.estimate('prototype', steps):>5.2f} {total:>7.1f} | {b_marks[0]:>6.2f} "
                      f"{b_total:>8.1f} {'; '.join(f'{k}: {v}' for k, v in cut.items()) or '-'}", flush=True)


if __name__ == "__main__":
    main()
