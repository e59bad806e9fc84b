"""The explorer's state model: what the user picked, what was mined, what is selected.

No ipywidgets here: every action is a method that calls ``nnrules`` and either updates the state or
raises :class:`UserInputError` with a message meant for the panel. The views only read this object and
call its methods, so the whole app is testable without a browser. The roles live in their own modules:
loading (:mod:`.loading`), mining through the registry (:mod:`.mining`), the rule table and export
(:mod:`.results`), selection and pictures (:mod:`.selection`).
"""
from __future__ import annotations

import os

import pandas as pd
import torch
from torch import nn

from .errors import Cancelled, UserInputError
from .files import DataRoot
from .loading import MAX_SAMPLES, MAX_UNITS, LoadingMixin
from .mining import MiningMixin, MiningSettings
from .results import RULE_COLUMNS, ResultsMixin
from .selection import Detail, SelectionMixin

__all__ = ["ExplorerState", "MiningSettings", "Detail", "UserInputError", "Cancelled", "MAX_UNITS", "MAX_SAMPLES"]


class ExplorerState(LoadingMixin, MiningMixin, ResultsMixin, SelectionMixin):
    """The explorer's model. Typical use::

        s = ExplorerState(); s.load_zoo("digits-cnn")
        s.mine(MiningSettings(["relu3", "relu2"]))
        s.select_rule(0); d = s.detail()
    """

    def __init__(self, exemplars: int = 8, prototype_steps: int = 200, scale: int = 4,
                 data_root: str | os.PathLike | None = None) -> None:
        self.data_root = DataRoot(data_root)  # the only folder user paths may name (see .files)
        self.n_exemplars = exemplars
        self.prototype_steps = prototype_steps
        self.scale = scale  # image upscaling in the panel (pixels per input pixel for small inputs)
        self.model_name: str = ""
        self.model: nn.Module | None = None
        self.inputs: torch.Tensor | None = None  # (n, C, H, W) the mined data set
        self.labels: torch.Tensor | None = None
        self.class_names: list[str] = []
        self.accuracy: float = float("nan")
        self.info: str = ""
        self.layer_table: pd.DataFrame = pd.DataFrame()
        self._clear_results()

    def _clear_results(self) -> None:
        self.settings: MiningSettings | None = None
        self.summary: str = ""
        self.miner = None
        self.binarizer = None  # fitted by the run when the miner uses one
        self.activations = None
        self.flow = None  # a Flow when the miner found rules (NeuroChains: None, the chain is in nodes/links)
        self.view_layers: list[str] = []
        self.nodes: pd.DataFrame = pd.DataFrame(columns=["id", "layer", "units", "label"])
        self.links: pd.DataFrame = pd.DataFrame(columns=["source", "target", "value", "pair", "rule"])
        self.rules: pd.DataFrame = pd.DataFrame(columns=RULE_COLUMNS)
        self.selected_rule: int | None = None
        self.selected_node: int | None = None
        self.exemplar: int = 0
        self._cache: dict = {}

    @property
    def mined(self) -> bool:
        """Whether a mining run finished (its result may be empty)."""
        return self.settings is not None
