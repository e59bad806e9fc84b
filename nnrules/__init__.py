"""nnrules: record a PyTorch model's activations, mine rules between groups of neurons, show them.

Subpackages by concern: ``data`` (binary matrices, rules, binarization), ``recording`` (hooks, activations,
loading), ``miners`` (ExplaiNN, ERIC, patches + Eclat, NeuroChains, flows), ``attribution`` (heatmaps, LRP,
prototypes), ``evaluation`` (interventions, attribution metrics), ``zoo`` (trained models), ``registry``
(what the app offers), ``scale`` (Zarr stores and counting on a Dask cluster: optional dependencies). The names below are the public API.

Names are imported on first use (PEP 562): ``import nnrules`` costs milliseconds, so the app can draw its
first progress line before PyTorch, numba and scikit-learn are loaded; ``nnrules.ExplaiNN`` imports what
it needs then.
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _version("nnrules")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_SUBPACKAGES = ("attribution", "data", "evaluation", "miners", "recording", "registry", "scale", "zoo")
#: public name -> the module that defines it
_NAMES = {
    "attribute": "attribution",
    "Binarizer": "data", "BinaryMatrix": "data", "Rule": "data", "RuleSet": "data", "binarize": "data",
    "Transactions": "data", "read_fimi": "data",
    "Itemsets": "miners", "frequent_itemsets": "miners",
    "ERIC": "miners", "ExplaiNN": "miners", "Flow": "miners", "NeuroChains": "miners", "PatchMiner": "miners",
    "association_rules": "miners", "eclat": "miners", "trace": "miners", "compare": "miners",
    "Comparison": "miners",
    "NotFittedError": "miners.base",
    "Activations": "recording", "image_folder": "recording", "layers": "recording", "load_model": "recording",
    "record": "recording",
}

__all__ = sorted([*_NAMES, *_SUBPACKAGES], key=str.lower)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'nnrules' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from . import attribution, data, evaluation, miners, recording, registry, scale, zoo  # noqa: F401
    from .attribution import attribute  # noqa: F401
    from .data import Binarizer, BinaryMatrix, Rule, RuleSet, Transactions, binarize, read_fimi  # noqa: F401
    from .miners import (ERIC, Comparison, ExplaiNN, Flow, Itemsets, NeuroChains, PatchMiner,  # noqa: F401
                         association_rules, compare, eclat, frequent_itemsets, trace)
    from .miners.base import NotFittedError  # noqa: F401
    from .recording import Activations, image_folder, layers, load_model  # noqa: F401
    from .recording.record import record  # noqa: F401
