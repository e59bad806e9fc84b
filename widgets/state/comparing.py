"""Compare with… (headless): a second model mined with the last Mine's settings on this model's data, its rules
lined up with these (:func:`nnrules.compare`); the Compare tab (:mod:`nnrules.widgets.compare`) draws it.

The second model is a copy of this one trained further on some classes (seed 000 Sec. 3.2 compares a model
with its fine-tuned copy) or a zoo model with the same layer names and input size.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import TensorDataset

import nnrules.zoo as zoo
from nnrules.miners.comparison import Comparison, compare
from nnrules.miners.flow import Flow

from .errors import Cancelled, UserInputError
from .jobs import MODEL_LOCK
from .loading import LoadedModel
from .mining import mine

__all__ = ["Compared", "compare_with", "comparable_models", "FINE_TUNED"]

#: the choice "a copy of this model fine-tuned on the chosen classes"
FINE_TUNED = "fine-tuned copy"


@dataclass
class Compared:
    """A comparison and what it compares: this model's flow ``a``, the other's ``b``, their names."""

    comparison: Comparison
    a: Flow
    b: Flow
    names: tuple[str, str]


def comparable_models(state) -> list[str]:
    """Zoo models (other than this one) that have every layer of the last Mine and run on this model's inputs:
    each architecture built with random weights and run once on one input (nothing trained or downloaded)."""
    if state.settings is None or state.inputs is None:
        return []
    from nnrules.recording.hooks import layers as layer_table

    out = []
    for name in zoo.available():
        if name == state.model_name or name not in zoo.ARCHITECTURES:
            continue
        try:
            with torch.random.fork_rng(devices=[]):
                table = layer_table(zoo.ARCHITECTURES[name](), state.inputs[:1])
        except (ValueError, TypeError, RuntimeError):  # another input size or channel count
            continue
        if set(state.settings.layers) <= set(table["name"]):
            out.append(name)
    return out


def compare_with(state, other: str, classes: list[int] | None = None, epochs: int = 3,
                 check: Callable[[], None] = lambda: None,
                 progress: Callable[[str, float], None] = lambda stage, fraction: None,
                 cancel: threading.Event | None = None) -> Compared:
    """Mine ``other`` (a zoo model name, or :data:`FINE_TUNED`: this model trained ``epochs`` more on its data
    of ``classes``) with the settings of ``state``'s last Mine on ``state``'s data, and compare the flows.
    ``progress(stage, fraction)`` as the training and the mining advance; ``cancel`` set stops either at its
    next epoch, batch or layer pair (:class:`Cancelled`)."""
    def stop() -> None:
        check()
        if cancel is not None and cancel.is_set():
            raise Cancelled("comparing cancelled")

    def epoch(done: int, total: int) -> None:
        stop()
        progress("training the other model", done / max(total, 1))
    if not state.mined or state.flow is None or state.settings is None:
        raise UserInputError("mine this model first (a miner of rules: ExplaiNN, ERIC or patches): the other model "
                             "is mined with the same settings")
    model, x, y = state.loaded.need()
    if other == FINE_TUNED:
        if not classes:
            raise UserInputError("choose the classes the copy is fine-tuned on")
        if y is None or not bool((y >= 0).any()):
            raise UserInputError("fine-tuning needs labelled data; these inputs have no labels")
        keep = torch.isin(y, torch.as_tensor(classes, dtype=y.dtype))
        if not bool(keep.any()):
            raise UserInputError(f"the data hold no sample of the classes {classes}")
        with MODEL_LOCK, zoo.training_progress(epoch):
            other_model = zoo.train_classifier(copy.deepcopy(model), TensorDataset(x[keep], y[keep]), epochs=epochs,
                                               lr=1e-3, seed=0)
        name = f"fine-tuned on {', '.join(state.class_names[c] for c in classes)}"
    else:
        if other not in zoo.available():
            raise UserInputError(f"no zoo model {other!r}; choose one of {zoo.available()} or {FINE_TUNED!r}")
        with zoo.training_progress(epoch):  # a zoo model trains once on first use
            other_model = zoo.load(other).model
        name = other
    stop()
    loaded = LoadedModel(state.loaded.data_root)
    try:
        loaded._set_model(name, other_model, x, y, list(state.class_names), float("nan"), "", stop)
    except UserInputError as err:
        raise UserInputError(f"{name} cannot run on this model's data: {err}") from err
    stop()
    with MODEL_LOCK:
        result = mine(loaded, state.settings, progress=lambda stage, f: progress(f"mining it: {stage}", f),
                      cancel=cancel)
    if result.flow is None:
        raise UserInputError("this miner draws chains, not rules: compare after mining ExplaiNN, ERIC or patches")
    try:
        found = compare(state.flow, result.flow, names=(state.model_name, name))
    except ValueError as err:
        raise UserInputError(f"the two models share no layer pair ({err}); compare models with the same layer names")
    return Compared(found, state.flow, result.flow, (state.model_name, name))
