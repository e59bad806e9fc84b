"""The nnrules explorer (installed as ``nnrules.widgets``): ipywidgets panels over ``nnrules``, the UI layer only.

``Explorer()`` is the app (displayed by a notebook or served by Voila); ``ExplorerState`` is its
browser-free model. Panels are built from ``nnrules.registry``.
"""
from .app import Explorer
from .state import ExplorerState, MiningSettings, UserInputError

__all__ = ["Explorer", "ExplorerState", "MiningSettings", "UserInputError"]
