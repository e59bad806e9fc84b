"""The left column: the model panel (zoo or your own files); the mining panel is in :mod:`.mine_panel`."""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as W

from ._ui import message
from nnrules.zoo import ARCHITECTURES as _ZOO_ARCHITECTURES

from .state.jobs import Background, checker
from .state.files import MAX_UPLOAD_BYTES
from .mine_panel import MinePanel
from .state.explorer import ExplorerState, UserInputError

__all__ = ["ModelPanel", "MinePanel"]  # MinePanel lives in .mine_panel

_KNOWN_ERRORS = (UserInputError, ValueError, TypeError, ImportError)


def zoo_architectures() -> list[str]:
    """Architecture names offered for a weights file: the zoo's, then torchvision's classifiers."""
    from torchvision import models

    return list(_ZOO_ARCHITECTURES) + sorted(models.list_models(module=models))


class ModelPanel:
    """Pick a zoo model or load a model file and an image folder; shows accuracy and the layer table."""

    def __init__(self, state: ExplorerState, on_loaded: Callable[[], None], threaded: bool = True,
                 on_busy: Callable[[bool], None] | None = None) -> None:
        self.state, self.on_loaded = state, on_loaded
        self.on_busy = on_busy or (lambda busy: None)
        self.jobs = Background(threaded, tick=self._tick)
        self.source = W.ToggleButtons(options=[("Zoo", "zoo"), ("Your files", "files")], value="zoo")
        self.zoo = W.Dropdown(options=state.zoo_models(), value="digits-cnn", description="Model")
        root = state.data_root
        self.model_path = W.Combobox(placeholder="weights.pt (in the data folder)", description="Weights",
                                     options=[p for p in root.listing() if p.endswith((".pt", ".pth"))],
                                     ensure_option=False,
                                     tooltip=f"a file in the data folder {root.name!r} saved with "
                                             "torch.save(model.state_dict(), path)")
        self.architecture = W.Combobox(placeholder="digits-cnn, resnet18, …", description="Architecture",
                                       options=list(_ZOO_ARCHITECTURES), ensure_option=False,
                                       tooltip="the model the weights belong to: a zoo or torchvision model name")
        self.data_path = W.Combobox(placeholder="images/ or data.pt", description="Data",
                                    options=root.listing(), ensure_option=False,
                                    tooltip=f"in the data folder {root.name!r}: an image folder with one "
                                            "sub-folder per class, or torch.save((inputs, labels), path)")
        self.size = W.IntText(value=0, description="Resize to", tooltip="0 keeps the images' size")
        self.prepare = W.Dropdown(options=[("as the weights were trained", "auto"), ("RGB in [0, 1]", "none")],
                                  value="auto", description="Prepare",
                                  tooltip="torchvision weights of the pretrained shape (1000 outputs): their own "
                                          "resize, centre crop and ImageNet mean/std; otherwise (or with a size) "
                                          "the images are read as RGB in [0, 1]")
        self.names = W.Combobox(placeholder="classes.txt (optional)", description="Class names",
                                options=[p for p in root.listing() if p.endswith(".txt")], ensure_option=False,
                                tooltip=f"a text file in the data folder {root.name!r}: one class name a line, "
                                        "in the order of the model's outputs")
        # uploads land in this session's temporary folder under the data root and fill the boxes above
        self.upload_weights = W.FileUpload(accept=".pt,.pth", multiple=False, description="Upload weights",
                                           tooltip="a state_dict saved with torch.save(model.state_dict(), path), "
                                                   f"up to {MAX_UPLOAD_BYTES // 2**20} MB")
        self.upload_images = W.FileUpload(accept=".zip", multiple=False, description="Upload images (.zip)",
                                          tooltip="a zip of an image folder: one sub-folder per class",
                                          layout=W.Layout(width="auto"))
        self.architecture.add_class("nnr-architecture")
        self.size.add_class("nnr-size")
        self.prepare.add_class("nnr-prepare")
        self.names.add_class("nnr-names")
        self.upload_weights.add_class("nnr-upload-weights")
        self.upload_images.add_class("nnr-upload-images")
        self.upload_weights.observe(lambda c: self._uploaded(c, "weights"), names="value")
        self.upload_images.observe(lambda c: self._uploaded(c, "images"), names="value")
        self.load = W.Button(description="Load", button_style="primary")
        self.cancel_button = W.Button(description="Cancel", disabled=True)
        self.cancel_button.add_class("nnr-load-cancel")
        self.cancel_button.on_click(lambda _: self._cancel())
        self.msg = W.HTML()
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(display="none", width="95%"))
        self.bar.add_class("nnr-load-progress")
        self._stage = self._LOADING
        self.summary = W.HTML()
        self.files = W.VBox([self.model_path, self.architecture, self.data_path, self.size, self.prepare, self.names,
                             W.HBox([self.upload_weights, self.upload_images])])
        self.files.layout.display = "none"
        self.source.observe(self._toggle, names="value")
        self.load.on_click(lambda _: self.run_load())
        for w in (self.load, self.zoo, self.model_path, self.data_path):
            w.add_class(f"nnr-{'load' if w is self.load else 'model-input'}")
        self.msg.add_class("nnr-model-msg")
        self.widget = W.VBox([W.HTML("<b>1 · Model</b>"), self.source, self.zoo, self.files,
                              W.HBox([self.load, self.cancel_button]), self.bar, self.msg, self.summary])

    def _uploaded(self, change, what: str) -> None:
        """Save an uploaded weights file or unpack a zip of images; the path box then names it."""
        files = change["new"]
        if not files:
            return
        f = files[0]
        root = self.state.data_root
        try:
            if what == "weights":
                path = root.save_upload(f["name"], f["content"])
                self.model_path.value = root.show(path)
            else:
                path = root.extract_zip(f["name"], f["content"])
                self.data_path.value = root.show(path) + "/"
        except UserInputError as err:
            message(self.msg, f"Upload refused: {err}", "error")
            return
        message(self.msg, f"uploaded {f['name']}: now Load", "ok")

    def _toggle(self, change) -> None:
        files = change["new"] == "files"
        if files and len(self.architecture.options) == len(_ZOO_ARCHITECTURES):
            # torchvision's names on first use: importing torchvision costs ~1.5 s of the app's first draw
            self.architecture.options = zoo_architectures()
        self.files.layout.display = "" if files else "none"
        self.zoo.layout.display = "none" if files else ""

    _LOADING = "loading… (a zoo model trains once on first use; up to a few minutes)"

    def run_load(self, module: tuple | None = None) -> bool:
        """Load in a background job (the page stays live; Cancel keeps the previous model). Returns whether
        the load succeeded when run inline (``threaded=False``), else True once started. ``module``: ``(model,
        data, class_names)`` of a model from the notebook (:meth:`ExplorerState.load_module`) instead of the
        panel's choice."""
        if self.jobs.busy:
            return False
        self._stage, self.bar.value = self._LOADING, 0.0
        message(self.msg, self._LOADING)
        self._busy(True)
        source, zoo_name = self.source.value, self.zoo.value
        files = (self.model_path.value, self.data_path.value, self.size.value or None, self.architecture.value)
        prepared = {"transform": self.prepare.value, "names": self.names.value}
        outcome = {"ok": False}

        def work(event):
            check = checker(event)
            if module is not None:
                self.state.load_module(*module, check=check)
            elif source == "zoo":
                self.state.load_zoo(zoo_name, check=check, progress=self._progress)
            else:
                self.state.load_files(*files, check=check, **prepared)

        def done(_):
            self._busy(False)
            message(self.msg, "")
            self.refresh()
            self.on_loaded()
            outcome["ok"] = True

        def fail(err):
            self._busy(False)
            if isinstance(err, _KNOWN_ERRORS):
                message(self.msg, f"Could not load: {err}", "error")
            else:  # a broken user model must not take the app down
                message(self.msg, f"Could not load ({type(err).__name__}): {err}", "error")

        def cancelled():
            self._busy(False)
            message(self.msg, "Loading cancelled; the previous model is kept.", "info")

        self.jobs.run(work, done, fail, cancelled)
        return outcome["ok"] if not self.jobs.threaded else True

    def _cancel(self) -> None:
        self.jobs.cancel()
        self._busy(False)
        message(self.msg, "Loading cancelled; the previous model is kept.", "info")

    def _progress(self, fraction: float, text: str) -> None:
        """A training epoch ended (from the loading worker): move the bar, name the epoch."""
        self.bar.value, self._stage = fraction, text
        message(self.msg, text)

    def _tick(self, seconds: float) -> None:
        message(self.msg, f"{self._stage} · {seconds:.0f} s")

    def _busy(self, busy: bool) -> None:
        self.load.disabled, self.cancel_button.disabled = busy, not busy
        self.bar.layout.display = "" if busy else "none"
        self.on_busy(busy)

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
