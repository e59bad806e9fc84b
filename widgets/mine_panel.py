"""The mining panel: miner, layers or classes, the miner's parameters — all from ``nnrules.registry`` — and
Mine/Cancel with progress; parameter inputs built from a miner's declared parameters."""
from __future__ import annotations

import html
import threading
from typing import Callable

import ipywidgets as W

from nnrules.params import Param
from nnrules.registry import BINARIZERS, MINERS, REDUCTIONS

from .state import jobs
from ._ui import message
from .state.jobs import MODEL_LOCK
from .state.mining import estimate_seconds
from .state.explorer import Cancelled, ExplorerState, MiningSettings, UserInputError

__all__ = ["MinePanel", "ParamBox", "param_widget", "read_param", "APP_DEFAULTS"]


#: The app's defaults where they differ from the library's (binarize above the unit's mean, as ERIC does).
APP_DEFAULTS = {"binarize": "mean"}
_STYLE = {"description_width": "initial"}


def param_widget(p: Param) -> W.Widget:
    """An input for one declared parameter; its label and tooltip come from the registry."""
    kw = dict(description=p.title, tooltip=p.help, style=_STYLE, layout=W.Layout(width="95%"))
    if p.choices:
        w = W.Dropdown(options=list(p.choices), value=p.default, **kw)
    elif p.kind is bool:
        w = W.Checkbox(value=bool(p.default), indent=False, **kw)
    elif p.optional:  # empty text = None
        w = W.Text(value="" if p.default is None else str(p.default), placeholder=p.none_means, **kw)
    elif p.kind is int:
        w = W.IntText(value=p.default, **kw)
    else:
        w = W.FloatText(value=p.default, **kw)
    w.add_class(f"nnr-param-{p.name}")
    return w


def read_param(p: Param, w: W.Widget):
    """The widget's value as the parameter's type (``None`` for an empty optional)."""
    if isinstance(w, W.Text) and not isinstance(w, W.Textarea):
        text = w.value.strip()
        if not text:
            return None
        try:
            return p.kind(float(text)) if p.kind is int and float(text).is_integer() else p.kind(text)
        except ValueError:
            raise UserInputError(f"{p.title}: {text!r} is not {p.describe()}") from None
    return w.value


class ParamBox:
    """Inputs for a list of parameters (those offered in the app), read back as a dict."""

    def __init__(self, params, help_text: str = "") -> None:
        self.params = [p for p in params if p.ui]
        self.inputs = {p.name: param_widget(p) for p in self.params}
        help_ = [W.HTML(f"<small>{html.escape(help_text)}</small>")] if help_text else []
        self.widget = W.VBox(help_ + list(self.inputs.values()))

    def values(self) -> dict:
        return {p.name: read_param(p, self.inputs[p.name]) for p in self.params}

    def show(self, values: dict) -> None:
        """Put ``values`` (by parameter name; others keep theirs) into the inputs; an unknown name raises."""
        known = {p.name: p for p in self.params}
        for name, value in values.items():
            if name not in known:
                raise UserInputError(f"no parameter {name!r} here; the parameters are {sorted(known)}")
            w = self.inputs[name]
            try:
                w.value = ("" if value is None else str(value)) if isinstance(w, W.Text) else value
            except Exception as err:  # noqa: BLE001 — a traitlets error: the value does not fit the input
                raise UserInputError(f"{known[name].title}: {value!r} is not {known[name].describe()}") from err


class MinePanel:
    """Miner, layers (or classes), the miner's parameters — all from ``nnrules.registry`` — and Mine/Cancel
    with progress. A miner registered in the core appears here with its parameters and help."""

    def __init__(self, state: ExplorerState, on_mined: Callable[[], None], threaded: bool = True,
                 on_busy: Callable[[bool], None] | None = None) -> None:
        self.state, self.on_mined, self.threaded = state, on_mined, threaded
        self.on_busy = on_busy or (lambda busy: None)
        self.miner = W.Dropdown(options=[(e.label, e.name) for e in MINERS.entries()], value="explainn",
                                description="Miner", style=_STYLE)
        self.miner.add_class("nnr-miner")
        self.miner_help = W.HTML()
        self.layers = W.SelectMultiple(options=[], rows=6, description="Layers")
        self.layers.add_class("nnr-layers")
        self.layers_help = W.HTML("<small>Chain: output → the deepest chosen layer → … → the shallowest.</small>")
        self.classes = W.SelectMultiple(options=[], rows=5, description="Classes",
                                        tooltip="inputs the model predicts as these classes are kept")
        self.classes.add_class("nnr-classes")
        self.samples = W.BoundedIntText(value=10, min=1, max=100, description="Samples/class", style=_STYLE,
                                        tooltip="how many inputs of each chosen class the chain must keep")
        self.class_box = W.VBox([self.classes, self.samples])
        self.reduce = W.Dropdown(options=[(e.label, e.name) for e in REDUCTIONS.entries()], value="max",
                                 description="Conv → unit", style=_STYLE,
                                 tooltip="how a conv channel's map becomes a unit")
        # short choices, the chosen one explained below (long labels were cut in the 340-px column)
        self.binarize = W.Dropdown(options=[(e.name, e.name) for e in BINARIZERS.entries()],
                                   value=APP_DEFAULTS["binarize"], description="On when", style=_STYLE,
                                   tooltip="when a unit counts as firing")
        self.binarize.add_class("nnr-binarize")
        self.binarize_help = W.HTML()
        self.binarize_boxes = {e.name: ParamBox(e.params) for e in BINARIZERS.entries()}
        self.uses = {"reduction": self.reduce,
                     "binarizer": W.VBox([self.binarize, self.binarize_help]
                                         + [b.widget for b in self.binarize_boxes.values()])}
        self.param_boxes = {e.name: ParamBox(e.params) for e in MINERS.entries()}
        self.mine = W.Button(description="Mine", button_style="success")
        self.mine.add_class("nnr-mine")
        self.cancel_button = W.Button(description="Cancel", disabled=True)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(visibility="hidden"))
        self.progress.add_class("nnr-mine-progress")  # shown while a run goes, empty and hidden after it
        self.stage = W.HTML("")
        self.stage.add_class("nnr-stage")
        self.msg = W.HTML()
        self.msg.add_class("nnr-mine-msg")
        self.estimate = W.HTML()  # before Mine: the time this miner should take with these settings
        self.estimate.add_class("nnr-mine-estimate")
        for w in (self.layers, self.classes, self.samples):
            w.observe(lambda _: self._estimate(), names="value")
        self._cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.miner.observe(self._miner_changed, names="value")
        self.binarize.observe(lambda _: self._visibility(), names="value")
        self.mine.on_click(lambda _: self.start(stored=True))  # a stored result of these settings opens at once
        # shown when the result on screen was opened from the store: mine it afresh
        self.mine_again = W.Button(description="Mine again", tooltip="this result was opened from the store: mine "
                                   "it afresh with the same settings", layout=W.Layout(display="none"))
        self.mine_again.add_class("nnr-mine-again")
        self.mine_again.on_click(lambda _: self.start(stored=False))
        self.cancel_button.on_click(lambda _: self._cancel.set())
        self.widget = W.VBox([W.HTML("<b>2 · Miner and settings</b>"), self.miner, self.miner_help, self.layers,
                              self.layers_help, self.class_box, *self.uses.values(),
                              *(b.widget for b in self.param_boxes.values()),
                              W.HBox([self.mine, self.cancel_button, self.mine_again]), self.estimate, self.progress,
                              self.stage, self.msg])
        self._visibility()

    def _visibility(self) -> None:
        """Show what the chosen miner takes (registry: layers, uses, params) and hide the rest."""
        entry = MINERS[self.miner.value]
        self.miner_help.value = f"<small>{html.escape(entry.help)}</small>"
        show = lambda w, on: setattr(w.layout, "display", "" if on else "none")  # noqa: E731
        show(self.layers, entry.layers != "none")
        show(self.layers_help, entry.layers == "chain")
        show(self.class_box, entry.layers == "none")
        for name, w in self.uses.items():
            show(w, name in entry.uses)
        for name, box in self.param_boxes.items():
            show(box.widget, name == entry.name)
        for name, box in self.binarize_boxes.items():
            show(box.widget, name == self.binarize.value)
        self.binarize_help.value = f"<small>on when {html.escape(BINARIZERS[self.binarize.value].label)}</small>"
        self._estimate()

    def _estimate(self) -> None:
        """"≈ 6 s on this machine" for the chosen miner and settings (``estimate_seconds``: a rough cost model
        from the model's forward pass), or nothing before a model is loaded."""
        if self.state.model is None:
            self.estimate.value = ""
            return
        try:
            seconds = estimate_seconds(self.state.loaded, self.settings())
        except (ValueError, KeyError, TypeError):  # a parameter box mid-edit: no estimate yet
            self.estimate.value = ""
            return
        when = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        self.estimate.value = (f"<small title='a rough estimate (a Mine took 0.25–1.6× it on the zoo) from this model's forward "
                               f"pass, its data and the chosen layers'>Mine takes ≈ {when} here</small>")

    def refresh(self) -> None:
        """New model: offer its layers and classes, preselect the default chain."""
        names = self.state.chainable_layers()
        if any(n.split(".")[-1].isdigit() for n in names):  # nn.Sequential children ("6"): say what they are
            kind = dict(zip(self.state.layer_table["name"], self.state.layer_table["type"]))
            self.layers.options = [(f"{n} · {kind.get(n, '')}" if n.split(".")[-1].isdigit() else n, n)
                                   for n in names]
        else:
            self.layers.options = names
        names = self.state.class_names  # the classes the data hold or the model predicts (not 1000 entries)
        self.classes.options = [(names[i], i) for i in self.state.loaded.present_classes()] \
            if self.state.inputs is not None else []
        self._preselect()
        message(self.msg, "")
        self.progress.value, self.stage.value = 0.0, ""

    def _miner_changed(self, _change: object) -> None:
        self._visibility()
        self._preselect()

    def _preselect(self) -> None:
        """The chosen miner's default layers or classes on the loaded model (``ExplorerState.default_settings``):
        called for a new model and when the miner changes."""
        if self.state.model is None:
            return
        d = self.state.default_settings(self.miner.value)
        if d.layers:
            self.layers.value = tuple(d.layers)
        self.param_boxes[self.miner.value].show(d.params)  # the app's own defaults (half-samples for evidence)
        offered = [v for _, v in self.classes.options]
        self.classes.value = tuple(c for c in d.classes if c in offered) or tuple(offered[:1])
        self._estimate()

    def settings(self) -> MiningSettings:
        return MiningSettings(layers=list(self.layers.value), miner=self.miner.value,
                              params=self.param_boxes[self.miner.value].values(), reduce=self.reduce.value,
                              binarize=self.binarize.value,
                              binarize_params=self.binarize_boxes[self.binarize.value].values(),
                              classes=list(self.classes.value), samples=self.samples.value)

    def show(self, settings: MiningSettings) -> None:
        """Put ``settings`` into the panel (a link's view), as if the user had chosen them."""
        if settings.miner not in [v for _, v in self.miner.options]:
            raise UserInputError(f"miner: no miner {settings.miner!r}; choose one of "
                                 f"{[v for _, v in self.miner.options]}")
        self.miner.value = settings.miner
        offered = [o if isinstance(o, str) else o[1] for o in self.layers.options]
        missing = [l for l in settings.layers if l not in offered]
        if missing:
            raise UserInputError(f"layers: {missing} are not layers of this model; choose among {offered}")
        if settings.layers:
            self.layers.value = tuple(settings.layers)
        for widget, value, name in ((self.reduce, settings.reduce, "reduce"), (self.binarize, settings.binarize,
                                                                                "binarize")):
            if value not in [v for _, v in widget.options]:
                raise UserInputError(f"{name}: {value!r} is not one of {[v for _, v in widget.options]}")
            widget.value = value
        self.param_boxes[settings.miner].show(settings.params)
        self.binarize_boxes[settings.binarize].show(settings.binarize_params)
        if settings.classes:
            n = len(self.classes.options)
            if not all(0 <= c < n for c in settings.classes):
                raise UserInputError(f"classes: {settings.classes} must be class indices 0..{n - 1}")
            self.classes.value = tuple(settings.classes)
        self.samples.value = max(self.samples.min, min(self.samples.max, settings.samples))

    def _busy(self, busy: bool) -> None:
        self.mine.disabled, self.cancel_button.disabled = busy, not busy
        self.miner.disabled = self.layers.disabled = busy
        self.on_busy(busy)

    def start(self, stored: bool = False) -> None:
        """Validate, then mine (in a background thread, so the page stays live and Cancel works); ``stored``:
        open the result stored for these settings when there is one (a link), else mine."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            settings = self.settings()
            self.state.prepare(settings)
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return
        message(self.msg, "")
        self._cancel.clear()
        self.progress.value, self.progress.layout.visibility = 0.0, "visible"
        self._busy(True)
        if self.threaded:
            self.thread = threading.Thread(target=self._run, args=(settings, stored), daemon=True)
            self.thread.start()
        else:
            self._run(settings, stored)

    def _report(self, stage: str, fraction: float) -> None:
        self.progress.value = fraction
        text = f"recording activations… {fraction:.0%}" if stage == "record" else f"{stage}…"
        self.stage.value = html.escape(text)

    _PREPARING = "preparing the miners (numba compiles them once per install, ~20 s)"

    def _run(self, settings: MiningSettings, stored: bool = False) -> None:
        try:
            warm = jobs.warm_miners
            if warm.started and not warm.ready.is_set():  # the app's background warm-up is still compiling
                self._report(self._PREPARING, 0.0)
                while not warm.ready.wait(0.2):
                    if self._cancel.is_set():
                        raise Cancelled()
            with MODEL_LOCK:  # a detail job must not hook the model while it records
                self.state.mine(settings, progress=self._report, cancel=self._cancel, stored=stored)
            s = self.state
            if s.flow is not None:
                n = len(s.rules)
                pairs = len(s.flow.rulesets)
                done = (f"{n} rule{'' if n == 1 else 's'} over {pairs} layer pair{'' if pairs == 1 else 's'}. "
                        f"{s.summary}")
                empty = "No rules found: try other layers, a lower θ or another binarization."
            else:
                n = len(s.nodes)
                done, empty = s.summary, "No filter kept: try a smaller λ or τ."
            self.stage.value = f"<span class='nnr-done'>{html.escape(done)}</span>"
            note = f"Mined afresh: {s.store_note}." if s.store_note else ""
            self.mine_again.layout.display = "" if s.result.stored_at else "none"
            message(self.msg, " ".join(t for t in (note, "" if n else empty) if t), "info")
            self.on_mined()
        except Cancelled:
            self.stage.value, self.progress.value = "cancelled", 0.0
            message(self.msg, "Mining cancelled; the previous results are kept.", "info")
        except UserInputError as err:
            self.stage.value = "failed"
            message(self.msg, str(err), "error")
        except Exception as err:  # noqa: BLE001 — a worker thread must report, never die silently
            self.stage.value = "failed"
            message(self.msg, f"Mining failed ({type(err).__name__}): {err}", "error")
        finally:
            self.progress.value, self.progress.layout.visibility = 0.0, "hidden"  # the bar never stays full
            self._busy(False)
