"""Names a package imports on first use (PEP 562): a package's ``__init__`` stays light to import."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from the submodule ``names[name]`` of ``package`` on
    first use and keeps it in ``namespace`` (the package's ``globals()``: the next lookup is plain)."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{names[name]}", package), name)
        namespace[name] = value
        return value

    return __getattr__
