"""The nnrules explorer (installed as ``nnrules.widgets``): ipywidgets panels over ``nnrules``, the UI layer only.

``Startup()`` then ``.explorer()`` (or ``launch()``) show the app with a progress bar while it starts;
``Explorer()`` is the app itself (displayed by a notebook); ``ExplorerState`` is its browser-free model.
Panels are built from ``nnrules.registry``. Names are imported on first use, so ``launch`` can draw before
PyTorch is imported.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .startup import Startup, launch

_NAMES = {"Explorer": "app", "ExplorerState": "state", "MiningSettings": "state", "UserInputError": "state"}

__all__ = ["Explorer", "ExplorerState", "MiningSettings", "Startup", "UserInputError", "launch"]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'nnrules.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .app import Explorer  # noqa: F401
    from .state import ExplorerState, MiningSettings, UserInputError  # noqa: F401
