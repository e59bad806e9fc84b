"""The left column: the model panel (zoo or your own files) and the mining panel (layers, thresholds)."""
from __future__ import annotations

import html
import threading
from typing import Callable

import ipywidgets as W

from ._ui import message
from .state import BINARIZERS, MINERS, REDUCTIONS, Cancelled, ExplorerState, MiningSettings, UserInputError

__all__ = ["ModelPanel", "MinePanel"]

_PARAM_DEFAULTS = {"q": 0.1, "k": 5, "value": 0.0}
_KNOWN_ERRORS = (UserInputError, ValueError, TypeError, ImportError)


class ModelPanel:
    """Pick a zoo model or load a model file and an image folder; shows accuracy and the layer table."""

    def __init__(self, state: ExplorerState, on_loaded: Callable[[], None]) -> None:
        self.state, self.on_loaded = state, on_loaded
        self.source = W.ToggleButtons(options=[("Zoo", "zoo"), ("Your files", "files")], value="zoo")
        self.zoo = W.Dropdown(options=state.zoo_models(), value="digits-cnn", description="Model")
        self.model_path = W.Text(placeholder="/path/to/model.pt", description="Model file")
        self.data_path = W.Text(placeholder="/path/to/images/ (a folder per class) or data.pt", description="Data")
        self.size = W.IntText(value=0, description="Resize to", tooltip="0 keeps the images' size")
        self.load = W.Button(description="Load", button_style="primary")
        self.msg = W.HTML()
        self.summary = W.HTML()
        self.files = W.VBox([self.model_path, self.data_path, self.size])
        self.files.layout.display = "none"
        self.source.observe(self._toggle, names="value")
        self.load.on_click(lambda _: self.run_load())
        for w in (self.load, self.zoo, self.model_path, self.data_path):
            w.add_class(f"nnr-{'load' if w is self.load else 'model-input'}")
        self.msg.add_class("nnr-model-msg")
        self.widget = W.VBox([W.HTML("<b>1 · Model</b>"), self.source, self.zoo, self.files, self.load,
                              self.msg, self.summary])

    def _toggle(self, change) -> None:
        files = change["new"] == "files"
        self.files.layout.display = "" if files else "none"
        self.zoo.layout.display = "none" if files else ""

    def run_load(self) -> bool:
        message(self.msg, "loading… (a zoo model trains once on first use; up to a few minutes)")
        self.load.disabled = True
        try:
            if self.source.value == "zoo":
                self.state.load_zoo(self.zoo.value)
            else:
                self.state.load_files(self.model_path.value, self.data_path.value, self.size.value or None)
        except _KNOWN_ERRORS as err:
            message(self.msg, f"Could not load: {err}", "error")
            return False
        except Exception as err:  # noqa: BLE001 — a broken user model must not take the app down
            message(self.msg, f"Could not load ({type(err).__name__}): {err}", "error")
            return False
        finally:
            self.load.disabled = False
        message(self.msg, "")
        self.refresh()
        self.on_loaded()
        return True

    def refresh(self) -> None:
        s = self.state
        acc = "not measured (no labelled test set)" if s.accuracy != s.accuracy else f"{s.accuracy:.1%}"
        rows = "".join(f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(r['type'])}</td>"
                       f"<td>{html.escape(str(r['output_shape']))}</td><td>{r['n_units']}</td></tr>"
                       for _, r in s.layer_table.iterrows())
        self.summary.value = (
            f"<div class='nnr-model-summary'><b>{html.escape(s.model_name)}</b> — accuracy {acc}<br>"
            f"<small>{html.escape(s.info)}</small>"
            "<table style='font-size:11px'><tr><th>layer</th><th>type</th><th>shape</th><th>units</th></tr>"
            f"{rows}</table></div>")


class MinePanel:
    """Layers to chain, reduction, binarization, ExplaiNN's θ and μ, and Mine/Cancel with progress."""

    def __init__(self, state: ExplorerState, on_mined: Callable[[], None], threaded: bool = True) -> None:
        self.state, self.on_mined, self.threaded = state, on_mined, threaded
        self.miner = W.Dropdown(options=[(v, k) for k, v in MINERS.items()], value="explainn", description="Miner")
        self.miner.add_class("nnr-miner")
        self.layers = W.SelectMultiple(options=[], rows=6, description="Layers")
        self.layers.add_class("nnr-layers")
        self.reduce = W.Dropdown(options=list(REDUCTIONS), value="max", description="Conv → unit")
        self.binarize = W.Dropdown(options=list(BINARIZERS), value="mean", description="On when")
        self.param = W.FloatText(value=0.1, description="q")
        self.param.layout.display = "none"
        self.theta = W.BoundedFloatText(value=0.3, min=0.01, max=0.99, step=0.05, description="θ")
        self.mu = W.IntText(value=0, description="μ (0 = ∞)")
        self.depth = W.IntSlider(value=5, min=1, max=8, description="Tree depth")
        self.alpha = W.BoundedFloatText(value=0.01, min=0.0, max=0.99, step=0.01, description="α (stop)")
        self.patch_size = W.IntText(value=0, description="Patch (0=auto)")
        self.top = W.IntText(value=10, description="Top filters")
        self.min_support = W.BoundedFloatText(value=0.5, min=0.01, max=1.0, step=0.05, description="Support")
        self.q = W.IntText(value=10, description="Rules/class")
        self.groups = {"explainn": W.VBox([W.HTML("<small>'On when' binarizes units: above their mean, &gt; 0, "
                                                  "top quantile q, top-k per sample, or above a value.</small>"),
                                           self.reduce, self.binarize, self.param, self.theta, self.mu]),
                       "eric": W.VBox([W.HTML("<small>ERIC: kernels are on above their mean l1 norm; the last "
                                              "layer chosen is the logical entry point.</small>"),
                                       self.depth, self.alpha]),
                       "patches": W.VBox([W.HTML("<small>Choose one conv layer; patches come from Grad-CAM "
                                                 "of the predicted class.</small>"),
                                          self.patch_size, self.top, self.min_support, self.q])}
        for key, box in self.groups.items():
            box.layout.display = "" if key == "explainn" else "none"
        self.miner.observe(self._miner_visibility, names="value")
        self.mine = W.Button(description="Mine", button_style="success")
        self.mine.add_class("nnr-mine")
        self.cancel_button = W.Button(description="Cancel", disabled=True)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0)
        self.stage = W.Label("")
        self.msg = W.HTML()
        self.msg.add_class("nnr-mine-msg")
        self._cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.binarize.observe(self._param_visibility, names="value")
        self.mine.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self._cancel.set())
        help_ = "<small>Chain: output → the deepest chosen layer → … → the shallowest.</small>"
        self.widget = W.VBox([W.HTML("<b>2 · Layers and thresholds</b>"), self.miner, self.layers, W.HTML(help_),
                              *self.groups.values(),
                              W.HBox([self.mine, self.cancel_button]), self.progress, self.stage, self.msg])

    def _miner_visibility(self, change) -> None:
        for key, box in self.groups.items():
            box.layout.display = "" if key == change["new"] else "none"

    def _param_visibility(self, change) -> None:
        name = BINARIZERS[change["new"]]
        self.param.layout.display = "" if name else "none"
        if name:
            self.param.description = name
            self.param.value = _PARAM_DEFAULTS[name]

    def refresh(self) -> None:
        """New model: offer its layers, preselect the default chain."""
        self.layers.options = self.state.chainable_layers()
        self.layers.value = tuple(self.state.default_chain())
        message(self.msg, "")
        self.progress.value, self.stage.value = 0.0, ""

    def settings(self) -> MiningSettings:
        return MiningSettings(layers=list(self.layers.value), miner=self.miner.value, reduce=self.reduce.value,
                              binarize=self.binarize.value, param=self.param.value, theta=self.theta.value,
                              mu=self.mu.value or None, depth=self.depth.value, alpha=self.alpha.value,
                              patch_size=self.patch_size.value, top=self.top.value,
                              min_support=self.min_support.value, q=self.q.value)

    def start(self) -> None:
        """Validate, then mine (in a background thread, so the page stays live and Cancel works)."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            settings = self.settings()
            self.state.check_chain(settings.layers, "l1" if settings.miner == "eric" else settings.reduce)
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return
        message(self.msg, "")
        self._cancel.clear()
        self.mine.disabled, self.cancel_button.disabled = True, False
        if self.threaded:
            self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
            self.thread.start()
        else:
            self._run(settings)

    def _report(self, stage: str, fraction: float) -> None:
        self.progress.value = fraction
        self.stage.value = f"recording activations… {fraction:.0%}" if stage == "record" else f"{stage}…"

    def _run(self, settings: MiningSettings) -> None:
        try:
            self.state.mine(settings, progress=self._report, cancel=self._cancel)
            n = len(self.state.rules)
            self.stage.value = f"{n} rules over {len(self.state.flow.rulesets)} layer pairs. {self.state.summary}"
            message(self.msg, "" if n else "No rules found: try other layers, a lower θ or another "
                    "binarization.", "info")
            self.on_mined()
        except Cancelled:
            self.stage.value, self.progress.value = "cancelled", 0.0
            message(self.msg, "Mining cancelled; the previous results are kept.", "info")
        except Exception as err:  # noqa: BLE001 — a worker thread must report, never die silently
            self.stage.value = "failed"
            message(self.msg, f"Mining failed: {err}", "error")
        finally:
            self.mine.disabled, self.cancel_button.disabled = False, True
