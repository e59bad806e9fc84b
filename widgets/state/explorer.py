"""The explorer's state: what the user loaded, what was mined, what is selected — composed of four parts.

No ipywidgets here: every action is a method that calls ``nnrules`` and either updates the state or
raises :class:`UserInputError` with a message meant for the panel. The views only read this object and
call its methods, so the whole app is testable without a browser. The parts, each a class with its own
attributes and tests (``docs/architecture.md`` draws who calls whom):

- ``loaded`` — :class:`~.loading.LoadedModel`: model, data, class names, the layers that can be mined;
- ``result`` — :class:`~.mining.MiningResult`: one finished run (made by :func:`~.mining.mine`);
- ``table`` — :class:`~.results.RuleRows`: the result's rules as rows, filters, chains, export;
- ``chosen`` — :class:`~.selection.Selection`: the selected rule/group/exemplar and its pictures.

A load replaces ``result``, ``table`` and ``chosen`` with empty ones; a finished run replaces all three.
``ExplorerState`` keeps the app's one-object API (``s.load_zoo(...)``, ``s.mine(...)``, ``s.rules``) by
forwarding to the parts.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from nnrules.miners.flow import Flow
from nnrules.recording.record import Activations

from .errors import Cancelled, UserInputError
from .files import DataRoot
from .loading import MAX_SAMPLES, MAX_UNITS, LoadedModel
from .mining import MiningResult, MiningSettings, default_settings, prepare
from .picture_cache import PictureCache
from .result_store import ResultStore
from .query import ViewQuery, check_focus, format_query, parse_query
from .results import RuleRows
from .selection import Selection
from .types import Detail

__all__ = ["ExplorerState", "MiningSettings", "Detail", "UserInputError", "Cancelled", "MAX_UNITS", "MAX_SAMPLES"]


class ExplorerState:
    """The explorer's model. Typical use::

        s = ExplorerState(); s.load_zoo("digits-cnn")
        s.mine(MiningSettings(["relu3", "relu2"]))
        s.select_rule(0); d = s.detail()
    """

    def __init__(self, exemplars: int = 8, prototype_steps: int = 200, scale: int = 4,
                 data_root: str | os.PathLike | None = None, pictures: PictureCache | None | str = "default",
                 results: ResultStore | None | str = "default") -> None:
        self.n_exemplars, self.prototype_steps, self.scale = exemplars, prototype_steps, scale
        # details on disk across sessions (PictureCache.default(): $NNRULES_PICTURES, else nnrules' cache)
        self.pictures = PictureCache.default() if isinstance(pictures, str) and pictures == "default" else pictures
        if self.pictures is not None and not isinstance(self.pictures, PictureCache):
            raise UserInputError(f"pictures must be a PictureCache, None or 'default', got {pictures!r}")
        self.loaded = LoadedModel(DataRoot(data_root), on_change=self._clear_results)
        # mined results on disk (ResultStore.default(): $NNRULES_RESULTS, else nnrules' cache): links open them
        if results is not None and not isinstance(results, ResultStore) and results != "default":
            raise UserInputError(f"results must be a ResultStore, None or 'default', got {results!r}")
        self.results: ResultStore | None = ResultStore.default() if isinstance(results, str) else results
        self.store_note = ""  # why a stored result was not used (the last mine(stored=True))
        self.focus = ""  # which rules the flow draws (a FlowView focus value; "" = the top rules)
        self.min_stability = 0.0  # rules found again in fewer of the half-samples are drawn faint
        self.this_prediction: int | None = None  # the predicted class of the last rules_for input
        self.unit: str | None = None  # the unit whose page was opened last (a link's unit=)
        self.shown_class: int | None = None  # the class whose view was opened last (a link's class=)
        self._clear_results()

    def _clear_results(self) -> None:
        self._show(MiningResult())

    def _show(self, result: MiningResult) -> None:
        """Make ``result`` the current one, with its rule table and a fresh selection."""
        self.result = result
        self.unit, self.shown_class = None, None
        self._effects: dict[int, str] = {}
        self.table = RuleRows(result.flow, self.loaded.class_names)
        # pictures on disk only for zoo models: what a visitor loads or uploads (a .pt2 with the zoo's weights and
        # inputs has the zoo's fingerprint) never writes where the zoo model's visitors read
        self.chosen = Selection(self.loaded, result, self.table, self.n_exemplars, self.prototype_steps, self.scale,
                                self.pictures if self.loaded.zoo_name is not None else None)

    # --- the view as a link (query) ----------------------------------------------------------------
    def view(self) -> ViewQuery:
        """What is on screen (zoo model, settings, focus, selection); raises :class:`UserInputError` for a model
        that is not from the zoo (no name another page could load)."""
        if self.loaded.zoo_name is None:
            raise UserInputError("only a zoo model's view can be linked: a model from files or from the notebook "
                                 "has no name another page could load")
        if not self.mined or self.settings is None:
            return ViewQuery(self.loaded.zoo_name)
        rule, node, exemplar = self.selection()
        return ViewQuery(self.loaded.zoo_name, self.settings, self.focus, rule, None if rule is not None else node,
                         self.chosen.sample, exemplar, self.unit, self.shown_class)

    def to_query(self) -> str:
        """The view (zoo model, settings, focus, selection) as a URL query: see :mod:`.query`."""
        return format_query(self.view())

    def show_view(self, view: ViewQuery) -> None:
        """The view's focus and selection, on a state that already holds its model and result (each checked:
        a focus the flow cannot draw is refused, not stored)."""
        n = len(self.activations.predictions) if self.activations is not None else 0
        self.focus = check_focus(view.focus, self.class_names, len(self.rules), n)
        if view.sample is not None:
            self.select_sample(view.sample)
        if view.rule is not None:
            self.select_rule(view.rule)
        elif view.node is not None:
            self.select_node(view.node)
        if view.exemplar:
            self.select_exemplar(view.exemplar)
        if view.cls is not None:
            self.class_view(view.cls)
        if view.unit is not None:
            self.unit_id(view.unit)  # checked now; the page draws it
            self.unit = view.unit

    @classmethod
    def from_query(cls, query: str, check: Callable[[], None] = lambda: None, **kwargs: Any) -> ExplorerState:
        """A state showing the view of ``query`` (:meth:`to_query`): its model loaded, its result opened from the
        store or mined with the view's settings (the same data and settings mine the same rules), selected;
        ``kwargs`` go to the constructor."""
        view = parse_query(query)  # checked before anything loads
        state = cls(**kwargs)
        state.load_zoo(view.model, check)
        if view.settings is not None:
            state.mine(view.settings, stored=True)  # a stored result opens without mining
            state.show_view(view)
        return state

    # --- loading (LoadedModel) ------------------------------------------------------------------
    @staticmethod
    def zoo_models() -> list[str]:
        return LoadedModel.zoo_models()

    def load_zoo(self, name: str, check: Callable[[], None] = lambda: None,
                 progress: Callable[[float, str], None] | None = None) -> ExplorerState:
        """See :meth:`LoadedModel.load_zoo`."""
        self.loaded.load_zoo(name, check, progress)
        return self

    def load_files(self, model_path: str, data_path: str, size: int | None = None, architecture: str = "",
                   check: Callable[[], None] = lambda: None, transform: str = "auto", names: str = "") -> ExplorerState:
        """See :meth:`LoadedModel.load_files` (``transform``: "auto" or "none"; ``names``: a names file)."""
        self.loaded.load_files(model_path, data_path, size, architecture, check, transform, names)
        return self

    def load_module(self, model: nn.Module, data: Any, class_names: list[str] | None = None, name: str | None = None,
                    check: Callable[[], None] = lambda: None) -> ExplorerState:
        """See :meth:`LoadedModel.load_module`."""
        self.loaded.load_module(model, data, class_names, name, check)
        return self

    def chainable_layers(self) -> list[str]:
        return self.loaded.chainable_layers()

    def default_chain(self) -> list[str]:
        return self.loaded.default_chain()

    def check_chain(self, layers: list[str], reduce: str = "max") -> list[str]:
        return self.loaded.check_chain(layers, reduce)

    @property
    def data_root(self) -> DataRoot:
        return self.loaded.data_root

    @property
    def model_name(self) -> str:
        return self.loaded.model_name

    @property
    def model(self) -> nn.Module | None:
        return self.loaded.model

    @property
    def inputs(self) -> torch.Tensor | None:
        return self.loaded.inputs

    @property
    def labels(self) -> torch.Tensor | None:
        return self.loaded.labels

    @property
    def class_names(self) -> list[str]:
        return self.loaded.class_names

    @property
    def accuracy(self) -> float:
        return self.loaded.accuracy

    @property
    def info(self) -> str:
        return self.loaded.info

    @property
    def layer_table(self) -> pd.DataFrame:
        return self.loaded.layer_table

    # --- mining (mining.prepare / mining.mine → MiningResult) ------------------------------------
    def default_settings(self, miner: str = "explainn") -> MiningSettings:
        """See :func:`.mining.default_settings`."""
        return default_settings(self.loaded, miner)

    def prepare(self, settings: MiningSettings) -> tuple[Any, Any, list[str], str]:
        """See :func:`.mining.prepare`."""
        return prepare(self.loaded, settings)

    def mine(self, settings: MiningSettings, progress: Callable[[str, float], None] | None = None,
             cancel: threading.Event | None = None, stored: bool = False) -> ExplorerState:
        """Run a miner (:func:`.mining.mine`); on success its result replaces the previous one, on error or
        cancel the previous one is kept. ``stored``: open the result stored for this zoo model and these
        settings instead, when there is one (:mod:`.result_store`: nothing mined; :attr:`store_note` says why
        a stored file was not used). A fresh run of a zoo model is stored for the next link or visitor."""
        from .result_store import mine_or_open

        store = self.results if self.loaded.zoo_name is not None else None  # never a visitor's own model
        result, self.store_note = mine_or_open(self.loaded, settings, store, progress, cancel, stored)
        self._show(result)
        return self

    def link_asks(self, settings: MiningSettings) -> str:
        """Why a link's ``settings`` wait for a click ("" when they mine on their own): :func:`.result_store.link_asks`."""
        from .result_store import link_asks
        return link_asks(self.loaded, self.results, settings)

    def compare_with(self, other: str, classes: list[int] | None = None, epochs: int = 3,
                     check: Callable[[], None] = lambda: None):
        """Mine another model with the last Mine's settings on this data and line its rules up with these
        (:func:`.compare.compare_with`: a fine-tuned copy on ``classes`` or a zoo model)."""
        from .comparing import compare_with
        return compare_with(self, other, classes, epochs, check)

    @property
    def mined(self) -> bool:
        """Whether a mining run finished (its result may be empty)."""
        return self.result.mined

    @property
    def settings(self) -> MiningSettings | None:
        return self.result.settings

    @property
    def summary(self) -> str:
        return self.result.summary

    @property
    def miner(self) -> Any:
        return self.result.miner

    @property
    def binarizer(self) -> Any:
        return self.result.binarizer

    @property
    def activations(self) -> Activations | None:
        return self.result.activations

    @property
    def flow(self) -> Flow | None:
        return self.result.flow

    @property
    def view_layers(self) -> list[str]:
        return self.result.view_layers

    @property
    def nodes(self) -> pd.DataFrame:
        return self.result.nodes

    @property
    def links(self) -> pd.DataFrame:
        return self.result.links

    # --- the rule table (RuleRows) ---------------------------------------------------------------
    @property
    def rules(self) -> pd.DataFrame:
        return self.table.rules

    def rules_table(self, cls: str | None = None, layer: str | None = None, min_size: int = 1,
                    max_size: int | None = None, sort_by: str = "support", ascending: bool = False,
                    min_stability: float = 0.0) -> pd.DataFrame:
        return self.table.rules_table(cls, layer, min_size, max_size, sort_by, ascending, min_stability)

    def effect(self, rule_id: int, n_random: int = 10) -> str:
        """What zeroing rule ``rule_id``'s tail units does to its head, next to zeroing as many random units of the
        same layer, in one sentence (:func:`.rule_effects.effect_in_words`); cached for the result."""
        if rule_id not in self._effects:
            from .rule_effects import effect_in_words
            self._effects[rule_id] = effect_in_words(self.loaded, self.flow, self.rules, rule_id, n_random)
        return self._effects[rule_id]

    @property
    def has_evidence(self) -> bool:
        """Whether the rules carry their evidence (mined with resamples: stability, held-out interval)."""
        return self.table.has_evidence

    def faint(self, rule_id: int) -> bool:
        """Whether the flow draws rule ``rule_id`` faint: it carries evidence and is found again in fewer
        half-samples than ``min_stability``."""
        s = self.rules["stability"].iloc[rule_id] if not self.rules.empty else float("nan")
        return bool(s == s and s < self.min_stability)

    def chain_of(self, cls: str, per_pair: int = 6) -> list[int]:
        return self.table.chain_of(cls, per_pair)

    def chain_through(self, rule_id: int, per_pair: int = 6) -> list[int]:
        return self.table.chain_through(rule_id, per_pair)

    def export(self, fmt: str, table: pd.DataFrame | None = None) -> str:
        return self.table.export(fmt, table)

    # --- the selection and its pictures (Selection) -------------------------------------------------
    def select_rule(self, rule_id: int) -> None:
        self.chosen.select_rule(rule_id)

    def select_node(self, node_id: int) -> None:
        self.chosen.select_node(node_id)

    def select_link(self, link: int) -> None:
        self.chosen.select_link(link)

    def select_exemplar(self, i: int) -> None:
        self.chosen.select_exemplar(i)

    def rule_node(self, rule_id: int) -> int:
        return self.chosen.rule_node(rule_id)

    def unit_view(self, layer: str, unit: int, k: int = 8) -> Detail:
        """One unit's top samples over the whole data, a conv unit's cropped to its receptive field where it fires
        most (:func:`.unit_pictures.unit_view`; cached per unit)."""
        from .unit_pictures import unit_view
        return unit_view(self.chosen, layer, unit, k)

    def unit_page(self, name: str, k: int = 8) -> Detail:
        """The page of one unit of any recorded layer, named like ``relu3:28`` (:meth:`unit_id`): its top samples
        (conv units cropped to their receptive field), the rules that name it, its prototype."""
        from .unit_pictures import unit_page
        layer, unit = self.unit_id(name)
        page = unit_page(self.chosen, layer, unit, k)
        self.unit = page.title.removeprefix("Unit ")  # its own name: relu2:c5 for relu2:5
        return page

    def select_sample(self, i: int | None) -> None:
        self.chosen.select_sample(i)

    def rules_for(self, inputs: int | torch.Tensor | str | os.PathLike | Any) -> list[int]:
        """Ids of the rules that hold for one input, the most specific to its predicted class first
        (:func:`.this_image.rules_for`): ``inputs`` a sample of the data (its index), an input tensor shaped like
        the data, a PIL image or an image file in the data folder (made like the data; nothing re-mined, the
        data unchanged). The predicted class is kept in :attr:`this_prediction`."""
        from .this_image import rules_for
        ids, self.this_prediction = rules_for(self.chosen, inputs)
        return ids

    def photo(self, filename: str, content: bytes) -> tuple[torch.Tensor, str]:
        """An uploaded PNG or JPEG (``content`` bytes) made like the data: ``(input (C, H, W), what was done)``.
        Saved in this session's upload folder under the data folder, read within the image bounds; never
        added to the data."""
        from .this_image import like_data
        if not content:
            raise UserInputError(f"{filename!r} is empty (0 bytes): upload a PNG or JPEG photo")
        path = self.loaded.data_root.save_upload(filename, content, (".png", ".jpg", ".jpeg"))
        return like_data(path, self.loaded.need()[1], show=lambda _: path.name)  # the user's name, not the folder

    def class_view(self, cls: int | str, per_layer: int = 10) -> pd.DataFrame:
        """The unit groups that matter for one class (index or name), from the output down the chosen layers,
        with precision, recall and lift on the data and the rules they come from, the most specific first
        (:func:`.answers.class_view`); ``df.attrs["answer"]`` says it in one sentence."""
        from .answers import class_index, class_view
        df = class_view(self.chosen, cls, per_layer)
        self.shown_class = class_index(self.chosen, cls)
        return df

    def search(self, text: str, limit: int = 20) -> list:
        """Classes, units, rules and layers matching ``text``, exact first (:func:`.answers.search`)."""
        from .answers import search
        return search(self.chosen, text, limit)

    def unit_id(self, name: str) -> tuple[str, int]:
        from .answers import unit_id  # (layer, column) of relu3:28, relu2:c5 or relu2:5
        return unit_id(self.chosen, name)

    def gallery(self, label: int | str | None = None, predicted: int | str | None = None, wrong: bool = False,
                limit: int = 48) -> pd.DataFrame:
        """Samples to pick "this image" from, filtered by class, predicted class and wrong predictions
        (:func:`.this_image.gallery`)."""
        from .this_image import gallery
        return gallery(self.chosen, label, predicted, wrong, limit)

    def thumbnails(self, samples: list[int]) -> list[bytes]:
        from .this_image import thumbnails  # PNGs of data samples, drawn as the exemplars are
        return thumbnails(self.chosen, samples)

    def selection(self) -> tuple[int | None, int | None, int]:
        """(rule, group, exemplar) selected now: a background job works on this snapshot."""
        return self.chosen.current()

    def detail(self, selection: tuple[int | None, int | None, int] | None = None,
               check: Callable[[], None] = lambda: None,
               partial: Callable[[Detail, str], None] | None = None, full: bool = False) -> Detail:
        """See :meth:`Selection.detail` (``full``: every part in full, past ``loaded.picture_budget``)."""
        return self.chosen.detail(selection, check, partial, full)

    @property
    def selected_rule(self) -> int | None:
        return self.chosen.selected_rule

    @property
    def selected_node(self) -> int | None:
        return self.chosen.selected_node

    @property
    def exemplar(self) -> int:
        return self.chosen.exemplar
