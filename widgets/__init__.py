"""The nnrules explorer (installed as ``nnrules.widgets``): ipywidgets panels over ``nnrules``, the UI layer only.

``Startup()`` then ``.explorer()`` (or ``launch()``) show the app with a progress bar while it starts;
``Explorer()`` is the app itself (displayed by a notebook); ``ExplorerState`` is its browser-free model.
Panels are built from ``nnrules.registry``. Names are imported on first use, so ``launch`` can draw before
PyTorch is imported.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nnrules._lazy import lazy_names

from .startup import Startup, launch

_NAMES = {"Explorer": "app", "ExplorerState": "state", "MiningSettings": "state", "UserInputError": "state"}

__all__ = ["Explorer", "ExplorerState", "MiningSettings", "Startup", "UserInputError", "launch"]


__getattr__ = lazy_names(__name__, _NAMES, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .app import Explorer  # noqa: F401
    from .state import ExplorerState, MiningSettings, UserInputError  # noqa: F401
