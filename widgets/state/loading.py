"""The explorer's loaded model and data (:class:`LoadedModel`): the zoo, a user's model file and images, or a
module from a notebook; the layers that can be mined."""
from __future__ import annotations

import time

from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

import nnrules.zoo as zoo
from nnrules.recording.hooks import OUTPUT, on_model
from nnrules.recording.hooks import layers as layer_table
from nnrules.recording.loading import as_loader, iterate_inputs
from nnrules.recording.pretrained import describe_transform
from nnrules.registry import REDUCTIONS

from .errors import UserInputError
from .files import DataRoot
from .jobs import MODEL_LOCK
from .picture_budget import DEFAULT_BUDGET
from .user_files import (MAX_LOAD_BYTES, MAX_SAMPLES, fit_channels, listing, load_data, load_weights, output_width,
                         pretrained, read_names)

__all__ = ["LoadedModel", "MAX_SAMPLES", "MAX_UNITS", "MAX_LOAD_BYTES"]

#: Activation layer types: their outputs are what "firing" means, preferred for default chains.
_ACTIVATIONS = ("ReLU", "ReLU6", "LeakyReLU", "GELU", "ELU", "SiLU", "Hardswish", "Mish", "PReLU", "Softplus")
#: Layer types whose output is their input (in eval mode): never offered for mining.
_PASS_THROUGH = ("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Flatten", "Identity", "Unflatten")
#: More units than this in one layer makes mining slow and the views unreadable.
MAX_UNITS = 4096


class LoadedModel:
    """The model and the data rules are mined on, and which of its layers can be mined.

    ``on_change()`` is called (under ``MODEL_LOCK``) whenever a load replaces the model: the explorer drops
    the results mined on the previous one. Every load checks first and changes nothing when it fails or
    is cancelled."""

    def __init__(self, data_root: DataRoot, on_change: Callable[[], None] = lambda: None) -> None:
        self.data_root = data_root  # the only folder user paths may name (see .files)
        self.on_change = on_change
        self.model_name: str = ""
        self.zoo_name: str | None = None  # the zoo model loaded, if it is one (a link can name it again)
        self.held_out: tuple | None = None  # (inputs, labels) no rule is mined on (a zoo model's test split)
        self.model: nn.Module | None = None
        self.inputs: torch.Tensor | None = None  # (n, C, H, W) the mined data set
        self.labels: torch.Tensor | None = None  # (n,) class indices, −1 where unknown
        self.class_names: list[str] = []
        self.accuracy: float = float("nan")
        self.info: str = ""
        self.transform: str = ""  # how the images were prepared when not as RGB in [0, 1] (a pretrained model's)
        self.layer_table: pd.DataFrame = pd.DataFrame()
        self.forward_seconds = 0.0  # one forward pass of one input, measured at load (the pictures' cost model)
        self.picture_budget: float | None = DEFAULT_BUDGET  # seconds a rule's pictures may take (None: in full)
        self._predicted: list[int] | None = None  # predicted_classes() of the loaded model and inputs
        self._predictions: torch.Tensor | None = None  # predictions() of the loaded model and inputs
        self._fingerprint: str | None = None

    def need(self) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        """(model, inputs, labels), or :class:`UserInputError` when nothing is loaded yet."""
        if self.model is None or self.inputs is None or self.labels is None:
            raise UserInputError("load a model first (pick one from the zoo or load your own)")
        return self.model, self.inputs, self.labels

    @staticmethod
    def zoo_models() -> list[str]:
        return zoo.available()

    def fingerprint(self) -> str:
        """A digest of the loaded weights, data and class names (the disk cache's key; computed once)."""
        if self._fingerprint is None:
            from .picture_cache import fingerprint
            model, inputs, _ = self.need()
            self._fingerprint = fingerprint(model, inputs, self.class_names)
        return self._fingerprint

    def load_zoo(self, name: str, check: Callable[[], None] = lambda: None,
                 progress: Callable[[float, str], None] | None = None) -> "LoadedModel":
        """Load a zoo model; its training split is the data that rules are mined on. ``check()`` raises to
        cancel (also between training epochs; it is called before the state changes: a cancelled load keeps
        the previous model). A model that trains on first use reports ``progress(fraction, text)`` per epoch."""
        if name not in zoo.available():
            raise UserInputError(f"unknown zoo model {name!r}; choose one of {zoo.available()}")

        def epoch(done: int, total: int) -> None:
            check()
            if progress is not None:
                progress(done / total, f"training {name} on first use (then cached): epoch {done} of {total}")
        try:
            with zoo.training_progress(epoch):
                z = zoo.load(name)
        except zoo.MissingPackageError as err:
            raise UserInputError(str(err)) from err
        x, y = z.train.tensors
        check()
        self._set_model(name, z.model, x, y, z.class_names, z.accuracy,
                        f"{z.info.get('data', '')} Mining data: the {len(x)} training inputs.", check)
        self.zoo_name = name
        self.held_out = z.test.tensors  # samples no rule was mined on: a rule's effect is measured there
        return self

    def load_files(self, model_path: str, data_path: str, size: int | None = None,
                   architecture: str = "", check: Callable[[], None] = lambda: None,
                   transform: str = "auto", names: str = "") -> "LoadedModel":
        """Load a user's weights and data. The model file is a ``state_dict``
        (``torch.save(model.state_dict(), path)``) of ``architecture`` — a zoo model name or a torchvision
        model name; the number of classes is read from the weights. Pickled modules are refused: the app
        never runs code from a file (in a notebook, pass your module to ``Explorer(model=..., data=...)``, see
        :meth:`load_module`). The data are
        an image folder (one sub-folder per class; resized to ``size`` pixels if given) or a saved data set
        (``torch.save((inputs, labels), path)`` with inputs ``(n, C, H, W)``).

        Weights of a torchvision architecture *of the pretrained shape* (1000 outputs) are read as ImageNet's: the
        class names are ImageNet's (:func:`nnrules.recording.pretrained.imagenet_names`), image folders named
        after an ImageNet class (or its index) are labelled with it, and with ``transform="auto"`` and no
        ``size`` the images are prepared by the weights' own transforms (resize, centre crop, ImageNet's mean
        and std); ``transform="none"`` (or a ``size``) reads them as RGB in [0, 1], resized to ``size``.
        ``names``: a text file in the data folder with one class name a line, in the order of the outputs (as
        many as the model has): the class names, and folders named after them are labelled with them."""
        if not str(model_path).strip():
            raise UserInputError("enter the path of a model file: weights saved with "
                                 "torch.save(model.state_dict(), path)")
        if not str(data_path).strip():
            raise UserInputError("enter the path of an image folder (one sub-folder per class) or of a data "
                                 "set saved with torch.save((inputs, labels), path)")
        architecture = str(architecture).strip()
        if ":" in architecture or "/" in architecture:
            raise UserInputError("the architecture is a zoo model name (e.g. digits-cnn) or a torchvision model "
                                 "name (e.g. resnet18); code from a module path is not run from the dashboard")
        model_file = self.data_root.resolve(model_path, "model file")
        data = self.data_root.resolve(data_path, "data")
        if model_file.is_dir():
            raise UserInputError(f"the model file {self.data_root.show(model_file)!r} is a folder: choose a file")
        if not model_file.is_file():
            raise UserInputError(f"the model file {self.data_root.show(model_file)!r} is not a regular file")
        if transform not in ("auto", "none"):
            raise UserInputError(f"transform must be 'auto' (the pretrained weights' own) or 'none', got {transform!r}")
        try:
            model = load_weights(model_file, architecture, check)
            check()
            categories, prep = pretrained(model, architecture)
            prep = prep if transform == "auto" and not size else None
            if str(names).strip():  # the user's own names file: one class name a line, in the outputs' order
                path = self.data_root.resolve(names, "names file")
                categories = read_names(path, self.data_root.show(path), output_width(model))
            x, y, classes, skipped = load_data(self.data_root, data, size, prep, categories)
        except ValueError as err:
            raise UserInputError(str(err)) from err
        check()
        if isinstance(model, torch.jit.ScriptModule):  # refused before anything calls it (never reached untrusted)
            raise UserInputError("a TorchScript model cannot take the forward hooks the explorer records with")
        x = fit_channels(model, x)
        note = f" Skipped {len(skipped)} unreadable file{'s' * (len(skipped) > 1)}: {listing(skipped)}." if skipped else ""
        if categories is not None:
            present = sorted({int(c) for c in y.tolist() if c >= 0})
            source = "Class names from the names file" if str(names).strip() else "ImageNet's class names (weights of the pretrained shape)"
            note += (f" {source}; the data hold "
                     f"{', '.join(categories[c] for c in present[:6])}{' …' if len(present) > 6 else ''}.")
        if prep is not None:
            note += f" Prepared as the pretrained weights were: {describe_transform(prep)}."
        self._set_model(model_file.name, model, x, y, classes, float("nan"),
                        f"{len(x)} samples from {self.data_root.show(data)} ({len(set(y.tolist()))} classes).{note}",
                        check)
        self.transform = "" if prep is None else describe_transform(prep)
        self._predictions = self._predict(model, x)  # the layer table checked it runs
        self.accuracy = float((self._predictions == y).float().mean())
        return self

    def load_module(self, model: nn.Module, data, class_names: list[str] | None = None, name: str | None = None,
                    check: Callable[[], None] = lambda: None) -> "LoadedModel":
        """A model from your notebook: ``model`` any ``nn.Module`` that returns ``(batch, n_classes)`` logits,
        on any device (it stays there; inputs are moved to it); ``data`` anything ``nnrules.record`` takes — a
        pair ``(inputs, labels)``, a ``Dataset``, a ``DataLoader`` without shuffling, a tensor of inputs, an
        image folder — of which the first MAX_SAMPLES samples are kept (on the CPU). Samples without a label
        get −1; the accuracy is measured on the labelled ones. ``class_names`` default to "0", "1", …"""
        if not isinstance(model, nn.Module):
            raise UserInputError(f"model must be your network, a torch.nn.Module, got {type(model).__name__}")
        if class_names is not None and (isinstance(class_names, str)
                                        or not all(isinstance(c, str) for c in class_names)):
            raise UserInputError("class_names must be a list of strings, one per output of the model")
        try:
            loader, _ = as_loader(data, 256)
            xs, ys, count = [], [], 0
            for xb, yb in iterate_inputs(loader):
                xs.append(xb.detach().cpu())
                ys.append(torch.full((len(xb),), -1) if yb is None else torch.as_tensor(yb).detach().cpu().long())
                count += len(xb)
                if count >= MAX_SAMPLES:
                    break
        except (ValueError, TypeError) as err:
            raise UserInputError(f"data: {err}") from err
        if not xs:
            raise UserInputError("data holds no samples")
        x, y = torch.cat(xs)[:MAX_SAMPLES], torch.cat(ys)[:MAX_SAMPLES]
        check()
        labelled = y >= 0
        self._set_model(name or type(model).__name__, model, x, y, list(class_names or []), float("nan"),
                        f"your model {type(model).__name__}; mining data: {len(x)} samples"
                        f"{'' if labelled.all() else f' ({int(labelled.sum())} labelled)'}.", check)
        if labelled.any():
            self.accuracy = float((self._predict(model, x[labelled]) == y[labelled]).float().mean())
        return self

    @staticmethod
    def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        loader, _ = as_loader(x, 256)
        out = []
        with torch.no_grad():
            for xb, _ in iterate_inputs(loader):
                out.append(model.eval()(on_model(model, xb)).argmax(1).cpu())
        return torch.cat(out)

    @staticmethod
    def _forward_seconds(model: nn.Module, x: torch.Tensor) -> float:
        """Seconds of one forward pass of one input (the least of 3, after the layer table's warm pass)."""
        best = float("inf")
        with torch.no_grad():
            for _ in range(3):
                t = time.perf_counter()
                model.eval()(on_model(model, x))
                best = min(best, time.perf_counter() - t)
        return best

    def _set_model(self, name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_names: list[str],
                   accuracy: float, info: str, check: Callable[[], None] = lambda: None) -> None:
        if isinstance(model, torch.jit.ScriptModule):
            raise UserInputError("a TorchScript model cannot take the forward hooks the explorer records with; "
                                 "save the module itself with torch.save(model, path) and load that file")
        try:
            table = layer_table(model, x[:1])
        except (ValueError, TypeError) as err:
            raise UserInputError(f"the model does not run on these images: {err}") from err
        out = table[table["name"] == OUTPUT]
        if out.empty or len(out.iloc[0]["output_shape"]) != 1:
            raise UserInputError("the model must return (batch, n_classes) logits")
        n_classes = int(out.iloc[0]["output_shape"][0])
        if len(class_names) != n_classes:
            class_names = [str(i) for i in range(n_classes)]
        check()
        forward = self._forward_seconds(model, x[:1])
        with MODEL_LOCK:  # a detail job may still be drawing with the previous model
            self.model_name, self.model, self.inputs, self.labels = name, model.eval(), x, y
            self.zoo_name = None
            self.held_out = None
            self._fingerprint = None
            self.class_names, self.accuracy, self.info = list(class_names), accuracy, info
            self.transform = ""
            self.layer_table = table
            self.forward_seconds = forward  # the pictures' cost model (picture_budget) counts in these
            self._predicted = None
            self._predictions = None
            self.on_change()

    # --- layers --------------------------------------------------------------------------------
    def chainable_layers(self) -> list[str]:
        """Layers that can be mined, deepest first (the order a chain from the output takes): the layers (leaf
        modules) that run once per forward pass, and the blocks whose output is their own (a residual block's
        sum, a dense block's concatenation — not a container that returns its last layer's output). Left out:
        modules that run more than once (a ReLU reused inside a ResNet block: its block is offered instead),
        layers that only pass their input on (Dropout, Flatten, Identity: their units are the previous layer's)
        and the logits — the class layer and what follows it with one unit per class (a ReLU or softmax on the
        logits): they are the output again, which every chain starts from."""
        self.need()
        t = self.layer_table
        own = t["leaf"] | (t["passes_on"] == "")
        leaves = t[(t["name"] != OUTPUT) & own & (t["calls"] == 1) & ~t["type"].isin(_PASS_THROUGH)]
        names = leaves["name"].tolist()
        units, types = leaves["n_units"].astype(int).tolist(), leaves["type"].tolist()
        start = len(names)  # the trailing layers with one unit per class: the class layer and what follows it
        while start > 0 and units[start - 1] == len(self.class_names):
            start -= 1
        # the class layer is the first dense (or 1 × 1 conv, as SqueezeNet's) layer of that run
        cls = [i for i in range(start, len(names)) if types[i] in ("Linear", "Conv2d", "Conv1d")]
        if cls:
            names = names[:cls[0]]
        return list(reversed(names))

    def default_chain(self) -> list[str]:
        """The two deepest activations — ReLU-like layers and block outputs — that are not one inside the other
        (or the two deepest layers)."""
        names = self.chainable_layers()
        t = self.layer_table.set_index("name")
        acts = [n for n in names if t.loc[n, "type"] in _ACTIVATIONS or not t.loc[n, "leaf"]] or names
        if not acts:
            return []
        nested = lambda a, b: a.startswith(b + ".") or b.startswith(a + ".")  # noqa: E731
        second = [n for n in acts[1:] if not nested(n, acts[0])]
        return acts[:1] + second[:1]

    def feature_maps(self) -> list[str]:
        """Chainable layers with spatial maps larger than 1 × 1, deepest first, activations and blocks before
        the others (what Grad-CAM patches can mine)."""
        t = self.layer_table.set_index("name")
        maps = [n for n in self.chainable_layers() if t.loc[n, "kind"] == "conv"
                and int(np.prod(t.loc[n, "output_shape"][1:])) > 1]
        first = [n for n in maps if t.loc[n, "type"] in _ACTIVATIONS or not t.loc[n, "leaf"]]
        return first + [n for n in maps if n not in first]

    def predictions(self) -> torch.Tensor:
        """``(n,)`` the class the model predicts for each loaded input (cached per load)."""
        model, x, _ = self.need()
        if self._predictions is None or len(self._predictions) != len(x):
            self._predictions = self._predict(model, x)
        return self._predictions

    def present_classes(self) -> list[int]:
        """Indices of the classes the data hold, and those the model predicts on them where that is known already
        (or must be: unlabelled data of a model with over 50 classes), in order — what the page offers (a
        1000-class model on photos of three classes offers those and its predictions, never 1000 entries).
        Unlabelled data of a model with few classes (cifar10-cnn's crops) offer all of them: no forward pass."""
        y = self.need()[2]
        labels = {int(c) for c in y.tolist() if c >= 0}
        if self._predictions is None and (labels or len(self.class_names) <= 50):
            return sorted(labels) or list(range(len(self.class_names)))  # unlabelled, few classes: all of them
        return sorted(labels | {int(c) for c in self.predictions().tolist()})

    def predicted_classes(self) -> list[int]:
        """Class indices the model predicts on the loaded inputs, most often first (cached per load)."""
        if self._predicted is None:
            counts = torch.bincount(self.predictions(), minlength=len(self.class_names))
            self._predicted = [int(c) for c in torch.argsort(counts, descending=True, stable=True) if counts[c] > 0]
        return self._predicted

    def check_chain(self, layers: list[str], reduce: str = "max") -> list[str]:
        """The chosen layers ordered output-side first; raises UserInputError if they cannot be chained."""
        self.need()
        layers = [l for l in layers if l != OUTPUT]
        if not layers:
            raise UserInputError("choose at least one layer below the output to mine rules into "
                                 f"(e.g. {', '.join(self.default_chain())})")
        valid = self.chainable_layers()
        unknown = [l for l in layers if l not in valid]
        if unknown:
            raise UserInputError(f"{unknown} cannot be mined: pick from {valid}")
        if reduce not in REDUCTIONS:
            raise UserInputError(f"reduction must be one of {list(REDUCTIONS)}")
        t = self.layer_table.set_index("name")
        for l in layers:
            shape = t.loc[l, "output_shape"]
            units = int(np.prod(shape)) if reduce == "none" else int(t.loc[l, "n_units"])
            if units > MAX_UNITS:
                raise UserInputError(f"layer {l!r} has {units} units with reduction {reduce!r}; at most {MAX_UNITS} "
                                     "can be mined here: pick reduction 'max' or a smaller layer")
        rank = {n: i for i, n in enumerate(valid)}
        ordered = sorted(layers, key=rank.__getitem__)
        values = t.loc[ordered, "output_shape"].tolist()
        for a, b, sa, sb in zip(ordered, ordered[1:], values, values[1:]):
            if int(np.prod(sa)) == int(np.prod(sb)) and t.loc[a, "type"] in ("Flatten", "Dropout", "Identity"):
                raise UserInputError(f"{a!r} holds the same values as {b!r} (a {t.loc[a, 'type']}); rules between "
                                     "them are trivial: drop one of the two")
        return ordered
