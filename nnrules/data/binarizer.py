"""Real-valued activations -> binary items (``BinaryMatrix``), with thresholds learned by ``fit``."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..registry import BINARIZERS
from ..params import Param, Parametrized, check_fitted
from .activations import OUTPUT, Activations, output_onehot
from .bits import BinaryMatrix

__all__ = ["Binarizer", "binarize", "METHODS"]

METHODS = ("positive", "mean", "quantile", "topk", "threshold")
OUTPUT_MODES = ("predicted", "label")


class Binarizer(Parametrized):
    """Binarize each recorded layer; fit on one data set, transform another.

    Parameters
    ----------
    method : ``"positive"`` (a > 0, natural for ReLU); ``"mean"`` (a > the unit's mean over the fitted
        data, ERIC seed 001 eq. 4); ``"quantile"`` (a > the unit's (1-q) quantile, so about a fraction
        q of samples is on); ``"topk"`` (per sample, its k largest units, seed 002 Sec. 3.2);
        ``"threshold"`` (a > value).
    q : fraction in (0, 1) for ``"quantile"``.
    k : units per sample for ``"topk"`` (1 <= k <= n_units).
    value : threshold for ``"threshold"``.
    output : how the output layer binarizes: one-hot of the ``"predicted"`` class or the true ``"label"``.

    Learned state: ``thresholds_`` (layer -> ``(n_units,)`` array; ``None`` for ``"topk"``).
    """

    params = (
        Param("method", str, "positive", "when a unit counts as on", label="On when", choices=METHODS),
        Param("q", float, 0.1, "share of samples on per unit", label="q", low=0, high=1, low_open=True,
              high_open=True, when=("method", ("quantile",))),
        Param("k", int, 5, "units on per sample (its k largest)", label="k", low=1, when=("method", ("topk",))),
        Param("value", float, 0.0, "a unit is on above this value", label="value",
              when=("method", ("threshold",))),
        Param("output", str, "predicted", "the output layer's item: the predicted class or the true label "
              "(unlabelled samples, label −1, get none)",
              choices=OUTPUT_MODES, ui=False),
    )

    def __init__(self, method: str = "positive", q: float = 0.1, k: int = 5, value: float = 0.0,
                 output: str = "predicted") -> None:
        self.method = method
        self.q = q
        self.k = k
        self.value = value
        self.output = output

    @staticmethod
    def _as_layers(acts) -> dict[str, np.ndarray]:
        if isinstance(acts, Activations):
            return {k: v for k, v in acts.values.items() if k != OUTPUT}
        arr = np.asarray(acts)
        if arr.ndim != 2:
            raise ValueError(f"expected an Activations object or a 2-D (n_samples, n_units) array, "
                             f"got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"activations are empty: shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("activations contain NaN or inf")
        return {"": arr}

    def _threshold(self, x: np.ndarray) -> np.ndarray | None:
        m = self.method
        if m == "positive":
            return np.zeros(x.shape[1])
        if m == "threshold":
            return np.full(x.shape[1], float(self.value))
        stored = not isinstance(x, np.ndarray)  # a Zarr array (record(..., store=)): read in passes
        if m == "mean":
            if stored:
                from .stored_activations import column_means
                return column_means(x)
            return np.asarray(x, dtype=np.float64).mean(axis=0)
        if m == "quantile":
            if stored:
                from .stored_activations import column_quantiles
                return column_quantiles(x, 1 - self.q)
            return np.quantile(np.asarray(x, dtype=np.float64), 1 - self.q, axis=0)
        return None  # topk: no threshold

    def fit(self, acts) -> "Binarizer":
        """Learn per-unit thresholds from ``acts`` (an ``Activations`` or an ``(n, units)`` array)."""
        self.validate()
        self.thresholds_: dict[str, np.ndarray | None] = {}
        for name, x in self._as_layers(acts).items():
            if self.method == "topk" and self.k > x.shape[1]:
                raise ValueError(f"k={self.k} exceeds the {x.shape[1]} units of layer {name or 'input'!r}")
            self.thresholds_[name] = self._threshold(x)
        return self

    def _apply(self, name: str, x: np.ndarray) -> np.ndarray:
        if self.method == "topk":
            if self.k > x.shape[1]:
                raise ValueError(f"k={self.k} exceeds the {x.shape[1]} units of layer {name or 'input'!r}")
            # stable sort on -x: ties go to the lower unit index, so the result is deterministic
            top = np.argsort(-np.asarray(x), axis=1, kind="stable")[:, : self.k]
            out = np.zeros(x.shape, dtype=bool)
            np.put_along_axis(out, top, True, axis=1)
            return out
        check_fitted(self, "thresholds_", "fit(...)")
        if name not in self.thresholds_:
            raise ValueError(f"layer {name!r} was not seen in fit; fitted: {list(self.thresholds_)}")
        thr = self.thresholds_[name]
        if thr is None:  # only "topk" keeps no thresholds, and it returned above
            raise ValueError(f"layer {name!r} has no thresholds; refit the binarizer")
        if len(thr) != x.shape[1]:
            raise ValueError(f"layer {name!r} has {x.shape[1]} units, fitted on {len(thr)}")
        return np.asarray(x) > thr

    def transform(self, acts) -> dict[str, BinaryMatrix] | BinaryMatrix:
        """Binary matrices per layer (a dict for ``Activations``, one matrix for an array). Activations in a
        store (``record(..., store=)``) are binarized a row block at a time into that store, and the dict
        holds :class:`~nnrules.data.bits.StoredBits` (read on demand)."""
        self.validate()
        if isinstance(acts, Activations) and acts.store is not None:
            from .stored_activations import binarize_stored
            return binarize_stored(self, acts)  # type: ignore[return-value]
        if not isinstance(acts, Activations):
            (name, x), = self._as_layers(acts).items()
            return BinaryMatrix.from_dense(self._apply(name, x))
        out = {}
        for name, x in self._as_layers(acts).items():
            out[name] = BinaryMatrix.from_dense(self._apply(name, x), acts.unit_names[name], name)
        out[OUTPUT] = output_onehot(acts, self.output)
        return out

    def fit_transform(self, acts):
        return self.fit(acts).transform(acts)


def binarize(acts, method: str = "positive", layers: Sequence[str] | None = None, **params):
    """Fit a :class:`Binarizer` on ``acts`` and apply it (see there for methods and ``params``).

    With an ``Activations`` object returns ``{layer: BinaryMatrix}`` (``layers`` picks a subset);
    with an ``(n_samples, n_units)`` array returns one ``BinaryMatrix``.
    """
    result = Binarizer(method=method, **params).fit_transform(acts)
    if layers is not None and isinstance(result, dict):
        missing = [l for l in layers if l not in result]
        if missing:
            raise ValueError(f"layers {missing} were not recorded; recorded: {list(result)}")
        result = {l: result[l] for l in layers}
    return result


_HELP = {"mean": "above the unit's mean over the data", "positive": "above 0 (natural after a ReLU)",
         "quantile": "in the unit's top share q of samples", "topk": "among the sample's k largest units",
         "threshold": "above a fixed value"}
for _m in ("mean", "positive", "quantile", "topk", "threshold"):
    BINARIZERS.register(_m, _HELP[_m], functools.partial(Binarizer, _m),
                                  params=tuple(p for p in Binarizer.params if p.when and _m in p.when[1]),
                                  help=_HELP[_m])
