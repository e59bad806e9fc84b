"""Declared parameters: one description of each hyperparameter serves validation, the registry and the app.

A class lists its ``Param``s in ``params``; ``validate()`` checks the current values against them and
raises a ``ValueError``/``TypeError`` that names the class, the parameter and what is allowed. The
app builds its input widgets from the same list (type, range, default, label, help).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

__all__ = ["Param", "Parametrized", "InvalidParameterError", "NotFittedError", "check_fitted"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a wrong type or value (both a ``ValueError`` and a ``TypeError``, as in scikit-learn)."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    ``kind``: ``int``, ``float``, ``str`` or ``bool``; ``low``/``high`` bounds (``low_open``/``high_open``
    make them exclusive); ``choices`` for strings; ``optional``: ``None`` is allowed and means
    ``none_means``; ``when=(other, values)``: only checked (and shown) while parameter ``other`` is one of
    ``values``; ``ui``: offered in the app.
    """

    name: str
    kind: type
    default: Any
    help: str
    label: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False
    none_means: str = ""
    when: tuple[str, tuple] | None = None
    ui: bool = True

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str, dict):
            raise TypeError(f"Param {self.name!r}: kind must be int, float, bool, str or dict, got {self.kind!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Param {self.name!r}: low {self.low} > high {self.high}")
        self.check(self.default, "Param default")  # a declaration's own default must be allowed

    @property
    def title(self) -> str:
        return self.label or self.name

    def describe(self) -> str:
        """What is allowed, in words: ``an integer in [1, 10]``, ``one of ('a', 'b')``."""
        if self.choices:
            text = f"one of {self.choices}"
        else:
            text = {int: "an integer", float: "a finite number", bool: "True or False", str: "a string",
                    dict: "a dict"}[self.kind]
            if self.low is not None or self.high is not None:
                lo = "−∞" if self.low is None else f"{self.low:g}"
                hi = "∞" if self.high is None else f"{self.high:g}"
                text += f" in {'(' if self.low_open or self.low is None else '['}{lo}, {hi}" \
                        f"{')' if self.high_open or self.high is None else ']'}"
        if self.optional:
            text += f", or None ({self.none_means or 'not set'})"
        return text

    def check(self, value: Any, owner: str) -> None:
        """Raise a clear error if ``value`` is not allowed (``owner`` names the class in the message)."""
        where = f"{owner}: {self.name}"
        if value is None:
            if self.optional:
                return
            raise InvalidParameterError(f"{where} must be {self.describe()}, got None")
        if self.choices:
            if value not in self.choices:
                raise InvalidParameterError(f"{where} must be {self.describe()}, got {value!r}")
            return
        kind_ok = {int: isinstance(value, numbers.Integral) and not isinstance(value, bool),
                   float: isinstance(value, numbers.Real) and not isinstance(value, bool),
                   bool: isinstance(value, (bool, np.bool_)),
                   str: isinstance(value, str), dict: isinstance(value, dict)}[self.kind]
        if not kind_ok:
            raise InvalidParameterError(f"{where} must be {self.describe()}, got {value!r} ({type(value).__name__})")
        if self.kind is float and not math.isfinite(float(value)):
            raise InvalidParameterError(f"{where} must be {self.describe()}, got {value!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise InvalidParameterError(f"{where} must be {self.describe()}, got {value!r}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise InvalidParameterError(f"{where} must be {self.describe()}, got {value!r}")

    def active(self, values: dict[str, Any]) -> bool:
        """Whether the parameter applies given the other parameters' ``values``."""
        return self.when is None or values.get(self.when[0]) in self.when[1]


def check_fitted(obj, attribute: str, how: str = "fit(...)") -> None:
    """Raise :class:`NotFittedError` (a ``ValueError`` and ``AttributeError``) if ``attribute`` is not learned."""
    if attribute not in vars(obj):
        raise NotFittedError(f"this {type(obj).__name__} is not fitted yet: call {how} first")


class Parametrized(BaseEstimator):
    """scikit-learn's estimator base (``get_params``, ``set_params``, ``clone``, repr) plus ``validate()``
    against the declared ``params``. Subclasses keep every parameter an explicit ``__init__`` keyword
    stored unchanged; cross-parameter checks go in ``_validate_extra``."""

    params: ClassVar[tuple[Param, ...]] = ()

    def validate(self) -> "Parametrized":
        """Check every parameter (``fit`` calls this first; the app calls it before slow work)."""
        values = self.get_params(deep=False)
        for p in self.params:
            if p.active(values):
                p.check(values[p.name], type(self).__name__)
        self._validate_extra()
        return self

    def _validate_extra(self) -> None:
        """Checks that involve several parameters (override)."""

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: a learned attribute (``rules_``) before fit
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet ({name} is learned): "
                                 f"call fit(...) first")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
