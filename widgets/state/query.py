"""The explorer's view as a URL query ("send me that view"): model, miner and settings, focus, selection.

:func:`format_query` writes a :class:`ViewQuery` (``ExplorerState.view()``: what is on screen) as
``model=digits-cnn&miner=explainn&layers=relu3,relu2&rule=12``; :func:`parse_query` reads it back (every key
checked: a typo or a bad value is a :class:`UserInputError` naming the key), and ``ExplorerState.from_query``
loads, mines and selects it. This module is the codec only: it knows nothing of the state. Voila hands the page's query to the kernel as ``$QUERY_STRING``; the served notebook
passes it to the app, which restores the view after its first load. Only a zoo model can be named in a link:
a model from files or from the notebook has no name another browser could load.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from .errors import UserInputError
from .mining import MiningSettings

__all__ = ["ViewQuery", "format_query", "parse_query", "check_focus", "KEYS", "BY_GAIN", "RULE_CHAIN", "SAMPLE"]

#: The keys a view's query may hold (in the order written).
KEYS = ("model", "miner", "layers", "reduce", "binarize", "params", "bparams", "classes", "samples", "focus",
        "rule", "node", "sample", "exemplar", "unit", "class")


@dataclass
class ViewQuery:
    """A view read from a query: the zoo ``model``, the run's ``settings`` (None: not mined), the flow's
    ``focus`` (a :class:`~.views.FlowView` focus value), and the selection."""

    model: str
    settings: MiningSettings | None = None
    focus: str = ""
    rule: int | None = None
    node: int | None = None
    sample: int | None = None
    exemplar: int = 0
    unit: str | None = None  # a unit's page, "relu3:28"
    cls: int | None = None  # a class's view (its index)


def format_query(view: ViewQuery) -> str:
    """The view as a URL query (without ``?``): the settings and selection only when it was mined."""
    q: dict[str, str] = {"model": view.model}
    s = view.settings
    if s is not None:
        q.update(miner=s.miner, layers=",".join(s.layers), reduce=s.reduce, binarize=s.binarize)
        if s.params:
            q["params"] = json.dumps(s.params, separators=(",", ":"), sort_keys=True)
        if s.binarize_params:
            q["bparams"] = json.dumps(s.binarize_params, separators=(",", ":"), sort_keys=True)
        if s.classes and _takes_classes(s.miner):  # only a miner of classes (NeuroChains) reads them
            q["classes"] = ",".join(str(int(c)) for c in s.classes)
            q["samples"] = str(int(s.samples))
        if view.focus:
            q["focus"] = view.focus
        if view.rule is not None:
            q["rule"] = str(view.rule)
        elif view.node is not None:
            q["node"] = str(view.node)
        if view.sample is not None:
            q["sample"] = str(view.sample)
        if view.exemplar:
            q["exemplar"] = str(view.exemplar)
        if view.unit is not None:
            q["unit"] = view.unit
        if view.cls is not None:
            q["class"] = str(view.cls)
    return urlencode(q)


def _check_params(settings: MiningSettings) -> None:
    """A link's parameters are the miner's own that the page offers (``ui``), with values its registry accepts:
    an unknown or hidden parameter, or a bad value, is refused naming it — never passed on silently."""
    from nnrules.registry import BINARIZERS, MINERS
    try:
        entry = MINERS[settings.miner]
    except ValueError as err:
        raise UserInputError(f"link: miner={settings.miner!r}: {err}") from None
    offered = {p.name for p in entry.params if p.ui}
    bad = sorted(set(settings.params) - offered)
    if bad:
        raise UserInputError(f"link: params= names {bad[0]!r}, which {entry.label} does not take from a link; it "
                             f"takes {', '.join(sorted(offered)) or 'none'}")
    try:
        entry.create(**settings.params).validate()
        BINARIZERS[settings.binarize].create(**settings.binarize_params).validate()
    except (ValueError, TypeError) as err:
        raise UserInputError(f"link: {str(err).splitlines()[0]}") from None


def _takes_classes(miner: str) -> bool:
    from nnrules.registry import MINERS
    try:
        return MINERS[miner].layers == "none"
    except (KeyError, ValueError):
        return True  # an unknown miner: keep what was chosen (parse_query's caller reports the name)


def _int(key: str, text: str, low: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserInputError(f"link: {key}={text!r} is not a whole number") from None
    if value < low:
        raise UserInputError(f"link: {key}={value} must be at least {low}")
    return value


#: A link's ``params=`` / ``bparams=`` text is at most this long (a miner's parameters take ~100 characters).
MAX_PARAMS_CHARS = 2000
#: Focus values that are not a class name (``flow_figures`` draws them): the top rules by gain with the rest as
#: "other", ``RULE_CHAIN + id`` (a rule's chain) and ``SAMPLE + index`` (a sample's rules).
BY_GAIN, RULE_CHAIN, SAMPLE = " top by gain + other", " rule ", " sample "


def check_focus(focus: str, class_names: list[str], n_rules: int, n_samples: int) -> str:
    """``focus`` if it is one the flow can draw ("", :data:`BY_GAIN`, a rule's chain, a sample's rules, a class
    name), else :class:`UserInputError` naming what is offered."""
    if focus in ("", BY_GAIN) or focus in class_names:
        return focus
    for prefix, n, what in ((RULE_CHAIN, n_rules, "rule"), (SAMPLE, n_samples, "sample")):
        if focus.startswith(prefix) and focus[len(prefix):].isdigit():
            if int(focus[len(prefix):]) < n:
                return focus
            raise UserInputError(f"link: focus={focus.strip()!r}: there is no {what} {focus[len(prefix):]} "
                                 f"(0..{n - 1})")
    raise UserInputError(f"link: focus={focus[:60]!r} is not a view of this flow: a class name, "
                         f"'{RULE_CHAIN.strip()} N', '{SAMPLE.strip()} N' or the top rules")


def _json(key: str, text: str) -> dict[str, Any]:
    if len(text) > MAX_PARAMS_CHARS:
        raise UserInputError(f"link: {key}= is {len(text):,} characters long; a miner's parameters take far fewer "
                             f"(at most {MAX_PARAMS_CHARS:,})")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UserInputError(f"link: {key}= must be a JSON object of parameters, got {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise UserInputError(f"link: {key}= must be a JSON object of parameters, got {text!r}")
    return value


def parse_query(query: str) -> ViewQuery:
    """Read a view from a URL query (with or without ``?``): every key known, every value checked."""
    if not isinstance(query, str):
        raise UserInputError(f"query must be text such as 'model=digits-cnn&rule=3', got {type(query).__name__}")
    try:
        raw = parse_qs(query.lstrip("?"), keep_blank_values=True, strict_parsing=bool(query.strip("?")))
    except ValueError:
        raise UserInputError(f"link: {query!r} is not a URL query (key=value&key=value)") from None
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise UserInputError(f"link: unknown key {unknown[0]!r}; a view's link holds {', '.join(KEYS)}")
    one = {}
    for k, v in raw.items():
        if len(v) > 1:
            raise UserInputError(f"link: {k} is given {len(v)} times")
        one[k] = v[0]
    if not one.get("model"):
        raise UserInputError("link: model= is missing (a zoo model's name, e.g. model=digits-cnn)")
    settings = None
    if one.get("miner"):
        settings = MiningSettings(
            layers=[l for l in one.get("layers", "").split(",") if l], miner=one["miner"],
            params=_json("params", one["params"]) if "params" in one else {},
            reduce=one.get("reduce", "max"), binarize=one.get("binarize", "mean"),
            binarize_params=_json("bparams", one["bparams"]) if "bparams" in one else {},
            classes=[_int("classes", c) for c in one.get("classes", "").split(",") if c],
            samples=_int("samples", one["samples"], 1) if "samples" in one else 10)
    elif any(k in one for k in ("layers", "rule", "node", "sample", "focus", "unit", "class")):
        raise UserInputError("link: a rule, group, sample, unit, class or focus needs miner= (what was mined)")
    unit = one.get("unit")
    if unit is not None and not re.fullmatch(r"[\w.\-]{1,200}:[\w.\-]{1,40}", unit):
        raise UserInputError(f"link: unit={unit[:60]!r} is not a unit name such as relu3:28")
    if "rule" in one and "node" in one:
        raise UserInputError("link: give rule= or node=, not both")
    if settings is not None:
        _check_params(settings)
    return ViewQuery(model=one["model"], settings=settings, focus=one.get("focus", ""),
                     rule=_int("rule", one["rule"]) if "rule" in one else None,
                     node=_int("node", one["node"]) if "node" in one else None,
                     sample=_int("sample", one["sample"]) if "sample" in one else None,
                     exemplar=_int("exemplar", one["exemplar"]) if "exemplar" in one else 0,
                     unit=unit, cls=_int("class", one["class"]) if "class" in one else None)
