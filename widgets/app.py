"""The explorer app: model and mining panels, flow views, rule table and detail panel, wired together."""
from __future__ import annotations

import ipywidgets as W
from torch import nn

from ._ui import message
from .ask import ClassPanel, Gallery, SearchBox
from .detail import DetailPanel
from .glossary import glossary_panel
from .state.jobs import warm_miners
from .panels import MinePanel, ModelPanel
from .state.explorer import ExplorerState, UserInputError
from .table import RuleTable
from .compare import CompareView
from .state.query import ViewQuery, parse_query
from .views import FlowView

__all__ = ["Explorer", "NARROW_CSS"]

#: Below 700 px (a phone, a split screen) the controls stack above the views and both take the whole width; the
#: detail's title keeps two lines (its tooltip holds all of it). The widgets' own layouts are inline styles, hence
#: ``!important``.
NARROW_CSS = """<style>
@media (max-width: 700px) {
  .nnr-main { flex-direction: column !important; }
  .nnr-main > .nnr-controls, .nnr-main > .nnr-views { width: 100% !important; min-width: 0 !important;
    max-width: 100% !important; flex: 0 0 auto !important; }
  .nnr-controls .widget-inline-hbox, .nnr-controls .widget-dropdown, .nnr-controls .widget-text,
  .nnr-controls .widget-select-multiple { max-width: 100% !important; }
  .nnr-detail-title { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
    overflow: hidden; }
  .nnr-app .widget-tab > .p-TabBar .p-TabBar-tab, .nnr-app .widget-tab > .lm-TabBar .lm-TabBar-tab {
    min-width: 0 !important; flex: 1 1 auto !important; }
  .nnr-app img { max-width: 100%; height: auto; }
}
</style>"""


class Explorer:
    """``Explorer().widget`` is the whole app; in a notebook the object displays itself.

    ``model`` is loaded at start: a zoo name, your own ``nn.Module`` with its ``data`` (and ``class_names``;
    see :meth:`ExplorerState.load_module`), or None to wait for the user; ``threaded=False`` runs
    mining in the calling thread (scripts, tests); the app stays responsive either way. ``data_root``: the
    only folder whose files the app reads (default ``$NNRULES_DATA``, else ``data/`` beside the notebook).
    ``query``: a view's link (:meth:`ExplorerState.to_query`; the served notebook passes Voila's
    ``$QUERY_STRING``): its zoo model is loaded instead of ``model``, mined with its settings, and its focus
    and selection shown; a bad link says what is wrong and the app starts as without it.
    """

    def __init__(self, model: "str | nn.Module | None" = "digits-cnn", threaded: bool = True,
                 state: ExplorerState | None = None, data_root: str | None = None, data=None,
                 class_names: list[str] | None = None, query: str | None = None) -> None:
        self.state = state or ExplorerState(data_root=data_root)
        self.msg = W.HTML()
        self._view: ViewQuery | None = None  # a link's view, shown once its model is loaded and mined
        if query and query.strip("?"):
            try:
                self._view = parse_query(query)
                model = self._view.model
            except UserInputError as err:
                message(self.msg, str(err), "error")
        self.model_panel = ModelPanel(self.state, self._loaded, threaded=threaded,
                                      on_busy=lambda busy: setattr(self.mine_panel.mine, "disabled", busy))
        self.mine_panel = MinePanel(self.state, self._mined, threaded=threaded,
                                     on_busy=lambda busy: setattr(self.model_panel.load, "disabled", busy))
        self.flow = FlowView(self.state, self.select_rule, self.select_node)
        self.table = RuleTable(self.state, self.select_rule)
        self.detail = DetailPanel(self.state, threaded=threaded)
        self.compare = CompareView(self.state, threaded=threaded)
        self.search = SearchBox(self.state, self.show_class, self.show_unit, self.select_rule)
        self.classes = ClassPanel(self.state, self.select_rule, on_class=self._focus_class)
        self.gallery = Gallery(self.state, self.show_sample, self.select_rule)
        self.link = W.HTML()
        self.link.add_class("nnr-link")
        self.flow.on_focus = self._show_link
        self.tabs = tabs = W.Tab([W.VBox([self.classes.widget, self.flow.widget]), self.gallery.widget,
                                  self.table.widget, self.compare.widget])
        tabs.set_title(0, "3 · Flow")
        tabs.set_title(1, "This image")
        tabs.set_title(2, "Rule table")
        tabs.set_title(3, "Compare with…")
        self._gallery_new_data = True
        tabs.observe(lambda _: self._gallery_stale(), names="selected_index")
        # the controls keep their width (they never shrink below it, so no label is cut); the views take the
        # rest and shrink with the window: at 1024 px the views still get ~660 px
        self.help = glossary_panel()
        left = W.VBox([self.model_panel.widget, self.mine_panel.widget, self.help],
                      layout=W.Layout(width="340px", min_width="340px", flex="0 0 340px"))
        right = W.VBox([self.search.widget, tabs, W.HBox([self.msg, self.link], layout=W.Layout(justify_content="space-between")),
                        self.detail.widget], layout=W.Layout(flex="1 1 0%", min_width="0"))
        left.add_class("nnr-controls")
        right.add_class("nnr-views")
        header = W.HTML("<h2 style='margin:4px 0'>nnrules explorer</h2><small>Rules between groups of neurons "
                        "(ExplaiNN, ERIC, Grad-CAM patches) and local chains (NeuroChains), with prototypes, "
                        "exemplars and heatmaps.</small>")
        main = W.HBox([left, right])
        main.add_class("nnr-main")
        self.widget = W.VBox([W.HTML(NARROW_CSS), header, main])
        self.widget.add_class("nnr-app")
        if isinstance(model, str):
            if model not in self.model_panel.zoo.options and self._view is not None:
                message(self.msg, f"link: no zoo model {model!r}; choose one of {list(self.model_panel.zoo.options)}",
                        "error")
                self._view, model = None, "digits-cnn"
            if model not in self.model_panel.zoo.options:
                raise UserInputError(f"model: no zoo model {model!r}; choose one of {list(self.model_panel.zoo.options)}, "
                                     "or pass your own torch.nn.Module with data=")
            self.model_panel.zoo.value = model
            self.model_panel.run_load()
        elif model is not None:
            if data is None:
                raise UserInputError("data: your model needs data to mine on, e.g. Explorer(model, data=(inputs, "
                                     "labels)) or data=a Dataset or an image folder")
            self.model_panel.run_load(module=(model, data, class_names))

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)

    # --- wiring ----------------------------------------------------------------------------------
    def _loaded(self) -> None:
        self.mine_panel.refresh()
        self._gallery_stale(new_data=True)
        self._mined()
        view = self._view
        if view is not None and view.settings is not None and self.state.loaded.zoo_name == view.model:
            try:
                self.mine_panel.show(view.settings)
            except UserInputError as err:
                message(self.msg, f"link: {err}", "error")
                self._view = None
            else:
                asks = self.state.link_asks(view.settings)
                if asks:  # a costly link waits for a click; the view is shown once it is mined
                    message(self.msg, asks, "info")
                else:
                    self.mine_panel.start(stored=True)  # a stored result opens at once; _mined shows the view
        else:
            self._view = None
        # numba's kernels compile (first run after an install, ~20 s) or load from its cache (~0.4 s) now,
        # not behind the first Mine; a Mine pressed before it ends waits with a message
        warm_miners.start(self.mine_panel.threaded)

    def _mined(self) -> None:
        view, rule = self._view, None
        if view is None or not self.state.mined:
            view = None  # a link's view is shown once its model is mined (this call may come before)
        else:
            self._view = None
            try:
                self.state.show_view(view)
                rule = self.state.selected_rule
            except UserInputError as err:
                message(self.msg, f"link: {err}", "error")
                view = None
        self.flow.refresh()
        self.table.refresh()
        self.compare.refresh()
        self.classes.refresh()
        self._gallery_stale()
        self.detail.clear()
        if view is not None and (view.rule is not None or view.node is not None):
            self.flow.show_rule(rule)
            self.table.show_rule(rule)
            self.detail.refresh()
        if view is not None and view.cls is not None:
            self.classes.show(view.cls)
        if view is not None and view.unit is not None:
            self.detail.show_unit_page(view.unit)
        self._show_link()

    # --- direct answers: a class, a unit, an image ------------------------------------------------
    def _gallery_stale(self, new_data: bool = False) -> None:
        """The gallery draws its thumbnails when its tab is shown (predicting every sample and drawing them is
        not done behind a load or a Mine that nobody looks at in it)."""
        self._gallery_new_data = self._gallery_new_data or new_data
        if self.tabs.selected_index == 1:
            self.gallery.refresh(keep_filters=not self._gallery_new_data)
            self._gallery_new_data = False

    def show_class(self, cls: int) -> None:
        """The class view of class index ``cls`` (in the Flow tab, whose flow then shows the class's chain)."""
        self.tabs.selected_index = 0
        self.classes.show(cls)
        self._show_link()

    def _focus_class(self, name: str) -> None:
        if name in [v for _, v in self.flow.focus.options]:
            self.flow.focus.value = name  # the class's chain from the output down (redraws)

    def show_unit(self, name: str) -> None:
        """The page of unit ``name`` (``relu3:28``, any recorded layer) in the detail panel."""
        try:
            self.state.unit_id(name)
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return
        self.state.unit = name
        self.detail.show_unit_page(name)
        self._show_link()

    def show_sample(self, i: int) -> None:
        """A data sample picked in the gallery: its path in the flow, its most specific rule opened."""
        self.flow.show_sample(i)
        self.gallery.msg.value = self.flow.sample_msg.value
        self._show_link()

    def _show_link(self) -> None:
        """The link to what is on screen (a zoo model's view): open it to see the same again."""
        try:
            query = self.state.to_query()
        except UserInputError:
            self.link.value = ""
            return
        self.link.value = (f'<a class="nnr-permalink" href="?{query}" target="_blank" title="the same model, settings, '
                           'focus and selection: copy it to send this view">link to this view</a>')

    def select_rule(self, rule_id: int) -> None:
        self._select(self.state.select_rule, rule_id, rule_id)

    def select_node(self, node_id: int) -> None:
        self._select(self.state.select_node, node_id, None)

    def _select(self, select, ident: int, rule_id: int | None) -> None:
        """Select in the state, mirror it in the rule choosers, show the detail; bad ids give a message."""
        try:
            select(ident)
        except UserInputError as err:
            message(self.msg, str(err), "error")
            return
        message(self.msg, "")
        self.state.unit = None  # the detail now shows the selection, not a unit's page
        self.flow.show_rule(rule_id)
        self.table.show_rule(rule_id)
        self.detail.refresh()
        self._show_link()
