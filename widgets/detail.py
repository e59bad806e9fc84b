"""The detail panel: prototype, exemplars and heatmaps of the selected rule's tail group (or group)."""
from __future__ import annotations

import base64
import html

import ipywidgets as W

from nnrules.attribution.viz import colorbar, to_png

from ._ui import image, message
from .state.jobs import MODEL_LOCK, Background, checker
from .state.picture_budget import PictureBudget
from .state.selection import Detail
from .state.explorer import ExplorerState, UserInputError

__all__ = ["DetailPanel"]


#: Displayed widths of an exemplar and of a heatmap (CSS): the same for every picture of a kind, so that a
#: misclassified exemplar (a longer caption) is not drawn larger than the others.
EXEMPLAR_WIDTH = "112px"
HEATMAP_WIDTH = "160px"


def _caption(text: str, width: str) -> W.HTML:
    """A caption that wraps within ``width``."""
    return W.HTML(f"<div class='nnr-caption' style='font-size:11px;line-height:1.25;overflow-wrap:anywhere;"
                  f"white-space:normal'>{html.escape(text)}</div>", layout=W.Layout(width=width))


def _legend() -> W.HTML:
    """The heatmaps' colour legend (the library's colour map, as a PNG strip) in words."""
    png = base64.b64encode(to_png(colorbar(160, 10))).decode()
    return W.HTML(f"<div class='nnr-legend' style='font-size:10px;width:170px'><img src='data:image/png;base64,{png}' "
                  "style='width:160px;height:10px'><br><span style='float:left'>against</span>"
                  "<span style='float:right'>for the target</span><div style='text-align:center'>0</div>"
                  "<small>scaled to the 99.5th percentile of |relevance| in each map</small></div>")


def _cells(pngs: list[bytes], labels: list[str], css: str) -> list[W.VBox]:
    """Pictures at one width whatever their caption (a long caption wraps under, never widens them)."""
    return [W.VBox([image(png, css, EXEMPLAR_WIDTH), _caption(lbl, EXEMPLAR_WIDTH)],
                   layout=W.Layout(width=EXEMPLAR_WIDTH, margin="0 6px 4px 0")) for png, lbl in zip(pngs, labels)]


class DetailPanel:
    """Pictures of the selection, computed in a background job (``threaded``): the page stays live, and a
    newer click supersedes the running computation — only the newest selection's pictures are shown."""

    def __init__(self, state: ExplorerState, threaded: bool = True) -> None:
        self.state = state
        self.jobs = Background(threaded, tick=self._tick)
        self.title = W.HTML("<b>4 · Detail</b> — select a rule or a group in the views above")
        self.text = W.HTML()
        self.msg = W.HTML()
        self.msg.add_class("nnr-detail-msg")
        self.prototype = W.VBox()
        self.exemplars = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.choose = W.Dropdown(options=[], description="Exemplar")
        self.choose.observe(self._exemplar, names="value")
        self.heatmaps = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        # a rule's "where else": samples where its tail fires but the rule does not apply
        self.elsewhere = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.elsewhere.add_class("nnr-elsewhere")
        self.elsewhere_box = W.VBox([W.HTML("<b>Where else its units fire</b> <small>(samples where the tail fires "
                                            "but the rule does not apply)</small>"), self.elsewhere],
                                    layout=W.Layout(display="none"))
        self.legend = _legend()
        # "this unit": one unit of the group, its top samples over the whole data cropped to its field
        self.unit = W.Dropdown(options=[], description="Unit", layout=W.Layout(width="260px"))
        self.unit.add_class("nnr-unit")
        self.unit_go = W.Button(description="Its top samples", tooltip="the samples where this unit fires most, "
                                "over the whole data; a conv unit's cropped to its receptive field where it fires")
        self.unit_go.add_class("nnr-unit-go")
        self.unit_go.on_click(lambda _: self.show_unit())
        self.unit_text = W.HTML()
        self.unit_crops = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.unit_crops.add_class("nnr-unit-crops")
        self.unit_jobs = Background(threaded)
        # "why it matters": zero the rule's tail units, against as many random units (on demand)
        self.effect_go = W.Button(description="Effect of zeroing it", tooltip="zero the rule's tail units and "
                                  "measure its head, next to zeroing as many random units of the same layer")
        self.effect_go.add_class("nnr-effect-go")
        self.effect_go.on_click(lambda _: self.show_effect())
        self.effect_text = W.HTML()
        self.effect_text.add_class("nnr-effect")
        self._pending = ""
        self._expected = 1.0  # seconds all parts are expected to take (the progress bar's end)
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(display="none", width="95%"))
        self.bar.add_class("nnr-detail-progress")
        # parts drawn at lower fidelity to stay within the budget: drawn again in full on a click
        self.full = W.Button(description="Compute in full", layout=W.Layout(display="none", width="auto"),
                             tooltip="draw the parts the picture budget cut short, however long they take")
        self.full.add_class("nnr-detail-full")
        self.full.on_click(lambda _: self.refresh(full=True))
        self._syncing = False
        # hidden until a selection is drawn: no empty "Top exemplars" heading or Exemplar box before that
        self.exemplars_title = W.HTML("<b>Top exemplars</b>")
        self.pictures = W.VBox([W.HBox([self.prototype, W.VBox([self.exemplars_title, self.exemplars])]),
                                self.elsewhere_box, self.choose, self.heatmaps,
                                W.HBox([self.unit, self.unit_go], layout=W.Layout(flex_flow="row wrap")),
                                self.unit_text, self.unit_crops], layout=W.Layout(display="none"))
        self.widget = W.VBox([self.title, self.text, W.HBox([self.effect_go, self.effect_text]), self.msg,
                              self.bar, self.full, self.pictures])
        self.widget.add_class("nnr-detail")

    def clear(self) -> None:
        self.jobs.cancel()
        self.title.value = "<b>4 · Detail</b> — select a rule or a group in the views above"
        self.text.value = ""
        message(self.msg, "")
        self.bar.layout.display, self.full.layout.display = "none", "none"
        self.prototype.children, self.exemplars.children, self.heatmaps.children = (), (), ()
        self.elsewhere.children, self.elsewhere_box.layout.display = (), "none"
        self.pictures.layout.display = "none"
        self.unit_jobs.cancel()
        self.unit.options, self.unit_text.value, self.unit_crops.children = [], "", ()
        self._syncing = True
        self.choose.options = []
        self._syncing = False

    def refresh(self, full: bool = False) -> None:
        """Compute (or fetch from the cache) and show the pictures for the state's selection; ``full``: the parts
        the picture budget cut short, in full."""
        selection = self.state.selection()
        loaded = self.state.loaded
        budget = PictureBudget(None if full else loaded.picture_budget, loaded.forward_seconds)
        total = sum(budget.estimate(p) for p in ("exemplars", "heatmaps")) + \
            budget.estimate("prototype", self.state.prototype_steps)
        self._expected = max(min(total, budget.seconds or total), 1.0)
        self._pending = "exemplars"
        self.full.layout.display = "none"
        message(self.msg, f"computing exemplars… (all parts ≈ {self._expected:.0f} s"
                          f"{'' if full or total <= self._expected else f', within the {budget.seconds:.0f} s budget'})")

        def work(event):
            def partial(d, coming: str) -> None:  # the cheap parts first, while this job is the newest
                if not event.is_set():
                    self._show(d, selection[2], coming)
            with MODEL_LOCK:  # not while a mining run or a load uses the model
                return self.state.detail(selection, checker(event), partial, full)
        self.jobs.run(work, lambda d: self._show(d, selection[2]), self._failed)

    def _tick(self, seconds: float) -> None:
        message(self.msg, f"computing {self._pending}… {seconds:.0f} s")
        self.bar.layout.display = ""
        self.bar.value = min(seconds / self._expected, 0.99)

    def _failed(self, err: BaseException) -> None:
        self.bar.layout.display, self.bar.value = "none", 0.0
        if isinstance(err, UserInputError):
            message(self.msg, str(err), "error")
        else:
            message(self.msg, f"Could not compute the pictures: {err}", "error")

    def _show(self, d: Detail, exemplar: int, coming: str | None = None) -> None:
        """Show ``d``; ``coming`` names the part still computing (None: all done)."""
        self._pending = coming or ""
        self.pictures.layout.display = ""
        self._offer_units()
        # the whole title as its tooltip: a narrow screen shows two lines of it (see the app's NARROW_CSS)
        self.title.value = (f"<div class='nnr-detail-title' title='{html.escape(d.title, quote=True)}'>"
                            f"<b>4 · Detail</b> — {html.escape(d.title)}</div>")
        self.text.value = f"<pre style='white-space:pre-wrap;font-size:11px'>{html.escape(d.text)}</pre>"
        proto = [W.HTML("<b>Prototype</b> (activation maximisation)")]
        if d.prototype:
            proto.append(image(d.prototype, "nnr-prototype"))
        elif coming:
            proto.append(W.HTML("<small>computing…</small>"))
        else:
            proto.append(W.HTML(html.escape(d.errors.get("prototype", "no prototype"))))
        self.prototype.children = proto
        # every picture at one width whatever its caption (a long caption wraps under it, never widens it)
        self.exemplars_title.value = "<b>Top exemplars</b>"
        self.exemplars.children = _cells(d.exemplars, d.exemplar_labels, "nnr-exemplar")
        self.elsewhere.children = _cells(d.elsewhere, d.elsewhere_labels, "nnr-elsewhere-img")
        self.elsewhere_box.layout.display = "" if d.elsewhere else "none"
        self.choose.layout.display = ""
        self._syncing = True
        self.choose.options = [(lbl, i) for i, lbl in enumerate(d.exemplar_labels)]
        self.choose.value = min(exemplar, len(d.exemplar_labels) - 1) if d.exemplar_labels else None
        self._syncing = False
        cells = []
        for key in sorted(k for k in {**d.heatmaps, **d.errors} if k != "prototype"):  # Grad-CAM, then LRP
            body = (image(d.heatmaps[key], "nnr-heatmap", HEATMAP_WIDTH) if key in d.heatmaps
                    else W.HTML(f"<small>{html.escape(d.errors[key])}</small>", layout=W.Layout(width=HEATMAP_WIDTH)))
            cells.append(W.VBox([_caption(key, HEATMAP_WIDTH), body],
                                layout=W.Layout(width=HEATMAP_WIDTH, margin="0 6px 0 0")))
        if cells:
            cells.append(W.VBox([W.Label("colour scale"), self.legend], layout=W.Layout(margin="0 0 0 8px")))
        self.heatmaps.children = cells
        if coming:
            message(self.msg, f"computing {coming}…")
            return
        self.bar.layout.display, self.bar.value = "none", 0.0
        if d.degraded:  # said in words, with the button that draws them in full
            how = "; ".join(f"{part}: {text}" for part, text in d.degraded.items())
            message(self.msg, f"Drawn within the {self.state.loaded.picture_budget or 0:.0f} s picture budget — "
                              f"{how}.", "info")
            self.full.layout.display = ""
        else:
            message(self.msg, "")

    def show_unit_page(self, name: str) -> None:
        """The page of one unit of any recorded layer (``relu3:28``): its top samples, its rules, its prototype
        (a background job, like the pictures of a selection)."""
        self._pending = f"unit {name}'s page"
        message(self.msg, f"computing unit {name}'s page…")

        def work(event):
            with MODEL_LOCK:
                return self.state.unit_page(name)

        def done(d: Detail) -> None:
            self._show(d, 0)
            self.exemplars_title.value = "<b>Top samples over the whole data</b>"
            self.choose.layout.display = "none"  # a unit's samples are not a rule's exemplars to explain
            self.heatmaps.children = ()
        self.jobs.run(work, done, self._failed)

    def _offer_units(self) -> None:
        """The selected group's units in the Unit box (kept if unchanged)."""
        try:
            layer, units = self.state.chosen.group_units()
        except UserInputError:
            return
        options = [(name, (layer, col)) for col, name in units]
        if list(self.unit.options) != options:
            self.unit.options = options
            self.unit.value = options[0][1] if options else None  # the first unit is chosen
            self.unit_text.value, self.unit_crops.children = "", ()

    def show_effect(self) -> None:
        """The selected rule's effect (a background job; cached on the state)."""
        rule = self.state.selected_rule
        if rule is None:
            self.effect_text.value = "<small>select a rule first</small>"
            return
        self.effect_text.value = "<small>zeroing its units…</small>"

        def work(event):
            with MODEL_LOCK:
                return self.state.effect(int(rule))

        def done(text: str) -> None:
            self.effect_text.value = f"<small>{html.escape(text)}</small>"

        def failed(err: BaseException) -> None:
            self.effect_text.value = f"<small style='color:#b00020'>{html.escape(str(err))}</small>"
        self.unit_jobs.run(work, done, failed)

    def show_unit(self) -> None:
        """The chosen unit's top samples (a background job: the page stays live)."""
        if self.unit.value is None:
            return
        layer, col = self.unit.value
        self.unit_text.value = "<small>computing the unit's top samples…</small>"

        def work(event):
            with MODEL_LOCK:
                return self.state.unit_view(layer, col)

        def done(d: Detail) -> None:
            self.unit_text.value = f"<small><b>{html.escape(d.title)}</b>: {html.escape(d.text)}</small>"
            self.unit_crops.children = _cells(d.exemplars, d.exemplar_labels, "nnr-unit-crop")

        def failed(err: BaseException) -> None:
            self.unit_text.value = f"<small style='color:#b00020'>{html.escape(str(err))}</small>"
        self.unit_jobs.run(work, done, failed)

    def _exemplar(self, change) -> None:
        if self._syncing or change["new"] is None:
            return
        self.state.select_exemplar(int(change["new"]))
        self.refresh()
