"""The time a rule's pictures may take, and what each part costs (issue 44).

A detail is drawn in parts, the cheap ones first: exemplars (cached activations: no model pass), heatmaps (four
attributions of one exemplar and where the units fire) and the prototype (``steps`` gradient-ascent passes).
The cost model is one number measured when the model is loaded — ``forward``, seconds of one forward pass of one
input — times a ratio per part, fitted in ``benchmarks/pictures.py`` over digits-cnn, cifar10-cnn, a ResNet-18
at 64 px and a ResNet-50 at 224 px (``docs/pictures-benchmark.txt``): the four heatmaps take 40–160 forward
passes (LRP works on a copy of the model with its rules attached), a prototype step 1.6–4.4 (a forward and a
backward pass, ended at the group's layer). A part that would pass the budget is drawn at lower fidelity and
says so: the prototype stops at the budget with the steps it reached; heatmaps past it are skipped. ``budget``
None draws everything in full (the page's "Compute in full").
"""
from __future__ import annotations

import time

__all__ = ["PictureBudget", "DEFAULT_BUDGET", "HEATMAP_PASSES", "STEP_PASSES"]

#: seconds all parts of a detail may take together on this machine (the page's default)
DEFAULT_BUDGET = 30.0
#: forward passes the heatmaps part takes (four attributions and "where the units fire"), and a fixed cost
HEATMAP_PASSES, HEATMAP_FIXED = 80.0, 0.1
#: forward passes one prototype step takes, and a fixed cost per step (the optimiser, clipping, blurs)
STEP_PASSES, STEP_FIXED = 3.0, 0.0005
#: a prototype with fewer steps than this is noise: skipped instead (with a button to compute it)
MIN_STEPS = 16


class PictureBudget:
    """The clock of one detail: estimates per part from ``forward`` (s, one forward pass of one input), what is
    left of ``seconds`` (None: no limit), and in ``degraded`` what was drawn at lower fidelity and how."""

    def __init__(self, seconds: float | None, forward: float) -> None:
        self.seconds, self.forward = seconds, max(float(forward), 0.0)
        self.start = time.monotonic()
        self.degraded: dict[str, str] = {}

    def estimate(self, part: str, steps: int = 0) -> float:
        """Seconds the part is expected to take: "exemplars", "heatmaps", "heatmap" (one of four) or "prototype"
        (of ``steps`` steps)."""
        if part == "exemplars":
            return 0.05
        if part == "heatmaps":
            return HEATMAP_FIXED + HEATMAP_PASSES * self.forward
        if part == "heatmap":
            return (HEATMAP_FIXED + HEATMAP_PASSES * self.forward) / 4
        if part == "prototype":
            return steps * (STEP_FIXED + STEP_PASSES * self.forward)
        raise ValueError(f"unknown picture part {part!r}")

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()

    def allows(self, part: str, steps: int = 0) -> bool:
        """Whether the part's estimate fits in what is left."""
        return self.estimate(part, steps) <= self.left()

    def prototype_stop(self, steps: int, check=lambda: None):
        """A ``maximize`` callback: ``check()`` (Cancel) each step, and True (stop) once the budget is spent
        after at least MIN_STEPS steps; the steps reached are noted in ``degraded``."""
        def callback(step: int) -> bool:
            check()
            if step + 1 >= MIN_STEPS and step + 1 < steps and self.left() <= 0:
                self.degraded["prototype"] = (f"{step + 1} of {steps} ascent steps (the {self.seconds:.0f} s "
                                              f"budget; ≈ {self.estimate('prototype', steps):.0f} s in full)")
                return True
            return False
        return callback

    def describe(self) -> str:
        """One line for the page: what was degraded, or ''."""
        return "; ".join(f"{part}: {how}" for part, how in self.degraded.items())
