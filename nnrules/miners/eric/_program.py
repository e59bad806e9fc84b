"""ERIC's program as text a logic system reads: ASP (clingo, DLV) and Prolog (seed 001 eq. 1–2).

One predicate for every layer: ``on(Layer, Unit, Sample)`` — unit ``Unit`` of layer ``Layer`` is true on
sample ``Sample``. A rule ``x1 ∧ ¬x2 → y`` of ERIC becomes ``on(upper, y, S) :- sample(S), on(lower, x1, S),
not on(lower, x2, S).``: negation is default negation (a unit no rule makes true is false), as in ``infer``.
The layers form a chain, so the program is stratified and has exactly one stable model (one answer in Prolog);
``class(S, C)`` holds for each class C the program derives for sample S — none, one or several (``ERIC.predict``
then breaks ties by training precision and falls back to the majority class; those choices are not in the
program). With activations, the entry layer's true literals are facts (``sample(S).``, ``on(entry, U, S).``).
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ...data.activations import OUTPUT


class FittedProgram(Protocol):
    """What the export reads of a fitted :class:`~nnrules.miners.eric.ERIC` (so this module needs not import it)."""

    layers_: list[str]
    entry_: str
    class_names_: list[str]
    program_: Sequence[Any]

    def describe(self, rule: Any) -> str: ...

    def _quantise_one(self, activations: Any) -> np.ndarray: ...


def _inert(text: str) -> str:
    """``text`` on one line: every control or line-separating character written as an escape (``\\n``,
    ``\\u2028``), so a name (a class from a folder name, a user's kernel label) can never end a comment or a
    quoted name and start program text — a Prolog ``:- initialization(shell(…))`` or an ASP ``#script``."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _program(eric: FittedProgram, layer: Callable[[str], str], neg: str, header: list[str], footer: list[str],
             activations, comment: str) -> str:
    note = lambda text: f"{comment} {_inert(text)}"  # noqa: E731 — a comment line that stays one
    lines = [note(f"ERIC program (seed 001): layers {' <- '.join(eric.layers_)} (entry {eric.entry_!r})."),
             note("on(Layer, Unit, Sample): the unit is true on the sample; class(Sample, Class): the program "
                  "derives the class."),
             note("classes: " + ", ".join(f"{i} = {n}" for i, n in enumerate(eric.class_names_))),
             *header]
    for r in eric.program_:
        body = ["sample(S)"] + [(f"on({layer(r.lower)}, {u}, S)" if v else f"{neg}on({layer(r.lower)}, {u}, S)")
                                for u, v in r.antecedent]
        for k in r.consequent:
            lines.append(f"on({layer(r.upper)}, {k}, S) :- {', '.join(body)}.  {note(eric.describe(r))}")
    lines.append(f"class(S, C) :- on({layer(OUTPUT)}, C, S).")
    lines += footer
    if activations is not None:
        x = eric._quantise_one(activations)
        lines.append(note(f"facts: the entry layer's true literals on {len(x)} samples"))
        lines += [f"sample({s})." for s in range(len(x))]
        entry = layer(eric.entry_)
        lines += [f"on({entry}, {u}, {s})." for s, u in zip(*np.nonzero(x))]
    return "\n".join(lines) + "\n"


def _quoted(q: str) -> Callable[[str], str]:
    """A layer name as a quoted Prolog atom / ASP string: backslash and the quote escaped, control characters
    written as escapes (never a raw newline inside quotes)."""
    return lambda name: q + _inert(name.replace("\\", "\\\\").replace(q, "\\" + q)) + q


def to_asp(eric: FittedProgram, activations=None) -> str:
    """The program in ASP (clingo's input language); see the module docstring."""
    return _program(eric, _quoted('"'), "not ", [], ["#show class/2."], activations, "%")


def to_prolog(eric: FittedProgram, activations=None) -> str:
    """The program in (ISO/SWI) Prolog: ``\\+`` for default negation; query ``class(S, C)``."""
    return _program(eric, _quoted("'"), "\\+ ", [":- dynamic on/3.", ":- dynamic sample/1.",
                                                 ":- discontiguous on/3."], [], activations, "%")
