"""The app's first draw: a progress bar at once, the explorer when its imports are done.

Importing PyTorch, numba, scikit-learn, Captum, Zennit and plotly and building the panels takes ~6 s on
2 cores, before any of the app can be shown. :class:`Startup` draws a small progress panel first (this
module needs only ipywidgets); :meth:`Startup.explorer` names each import as it runs, then puts the
explorer in the panel's place, which then loads its model with its own progress (a zoo model that trains
shows its epochs).

Voila with progressive rendering (the repository's ``voila.json``) sends a cell's output when the cell
ends, so the served notebook has two cells: ``startup = Startup()`` (drawn after ~2 s), then
``app = startup.explorer()`` (the bar moves while it runs). In JupyterLab outputs are drawn as they come,
so :func:`launch` does both in one cell.
"""
from __future__ import annotations

import importlib
from typing import Any

import ipywidgets as W

__all__ = ["Startup", "launch", "STEPS"]

#: (what the progress line says, the module imported then), in import order
STEPS = [("PyTorch", "torch"), ("scikit-learn and numba", "nnrules.data"), ("the miners", "nnrules.miners"),
         ("attribution (Captum, Zennit)", "nnrules.attribution"), ("plots (plotly)", "plotly.graph_objs._figurewidget"),
         ("the app", "nnrules.widgets.app")]


class Startup:
    """A progress panel, displayed at once (``display=False``: not displayed; tests)."""

    def __init__(self, display: bool = True) -> None:
        n = len(STEPS) + 1
        self.bar = W.IntProgress(value=0, min=0, max=n, layout=W.Layout(width="340px"))
        self.text = W.HTML(f"<small>starting: importing {STEPS[0][0]}… (step 1 of {n})</small>")
        self.widget = W.VBox([W.HTML("<h2 style='margin:4px 0'>nnrules explorer</h2>"), self.bar, self.text])
        self.widget.add_class("nnr-starting")
        self.app: Any = None  # the Explorer, once built (its module is imported late: see STEPS)
        if display:
            from IPython.display import display as show

            show(self.widget)

    def _step(self, i: int, what: str) -> None:
        n = len(STEPS) + 1
        self.bar.value = i
        self.text.value = f"<small>starting: {what}… (step {i + 1} of {n})</small>"

    def explorer(self, model: str | None = "digits-cnn", **explorer_kwargs: Any):
        """Import step by step, build the :class:`~nnrules.widgets.Explorer` and show it in the panel's place.
        Returns the explorer; ``explorer_kwargs`` go to it (``threaded``, ``data_root``, ``state``)."""
        for i, (what, module) in enumerate(STEPS):
            self._step(i, f"importing {what}")
            importlib.import_module(module)
        self._step(len(STEPS), "building the panels")
        from .app import Explorer

        app = self.app = Explorer(model=model, **explorer_kwargs)
        self.widget.children = [app.widget]
        self.widget.remove_class("nnr-starting")
        return self.app


def launch(model: str | None = "digits-cnn", **explorer_kwargs: Any):
    """:class:`Startup` and :meth:`Startup.explorer` in one call (JupyterLab draws the bar as it moves)."""
    return Startup().explorer(model, **explorer_kwargs)
