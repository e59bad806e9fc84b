"""The explorer's headless state (never imports ipywidgets or plotly): what is loaded, what was mined, what is
selected and its pictures; the views above (:mod:`nnrules.widgets`) ask it what to show.

- :mod:`.explorer` — :class:`ExplorerState`, the one object the views, notebooks and tests use; it composes
- :mod:`.loading` (:class:`~.loading.LoadedModel`: the model and its data), :mod:`.mining` (settings, a run and
  its :class:`~.mining.MiningResult`), :mod:`.results` (the rule table), :mod:`.selection` (the chosen rule or
  group and its pictures, cached through :mod:`.picture_cache`), :mod:`.unit_pictures` (one unit);
- :mod:`.query` (the view as a link), :mod:`.comparing` (Compare with…), :mod:`.precompute` (pictures ahead of a
  workshop), :mod:`.jobs` (background work, Cancel), :mod:`.files` (the data root);
- :mod:`.types` and :mod:`.errors` — what both the state and the views read (:class:`~.types.Detail`,
  :class:`UserInputError`, :class:`Cancelled`).
"""
from __future__ import annotations

from .errors import Cancelled, UserInputError
from .explorer import ExplorerState
from .mining import MiningSettings

__all__ = ["Cancelled", "ExplorerState", "MiningSettings", "UserInputError"]
