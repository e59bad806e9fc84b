"""``nnrules precompute``: a workshop's result and pictures made before the room opens the app.

Mines a zoo model with the app's default settings for a miner (what a fresh page mines when Mine is pressed; the
result is stored, so a page or a link opens it without mining) and draws the detail of the rules the Sankey shows
first (the top ``rules`` by support) and of their groups, in full, into the disk cache (:mod:`.picture_cache`)
that every page of the app reads: the room's first clicks then read pictures instead of computing them.

The cheap parts come first for every rule (exemplars and heatmaps: a few forward passes each), the prototypes
(hundreds of passes each) last, so a time budget (``minutes``) that runs out leaves every rule with its cheap
parts. A progress bar (tqdm) counts the parts with an estimate from the start, from the pictures' cost model
(:mod:`.picture_budget`: one forward pass timed at load).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .errors import UserInputError
from .picture_budget import PictureBudget
from .picture_cache import PictureCache
from .explorer import ExplorerState

__all__ = ["precompute", "PARTS"]

#: what precompute can draw: "pictures" (each rule's and group's exemplars and heatmaps) and "prototypes"
PARTS = ("pictures", "prototypes")


def precompute(model: str, miner: str = "explainn", rules: int = 60, pictures: PictureCache | None = None,
               say: Callable[[str], None] = print, minutes: float | None = None,
               parts: tuple[str, ...] | list[str] = PARTS, progress: bool = True) -> dict:
    """Store ``model``'s result mined by ``miner`` with the app's defaults and draw the top ``rules`` rules' and
    their groups' ``parts`` into ``pictures`` (default: :meth:`PictureCache.default`), the cheap parts of all
    first; stop after ``minutes`` (None: no limit), saying what is left. Returns counts and seconds."""
    if isinstance(rules, bool) or not isinstance(rules, int) or rules < 1:
        raise UserInputError(f"rules must be a positive number of rules, got {rules!r}")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
                                or not minutes > 0):
        raise UserInputError(f"minutes must be a positive number of minutes, got {minutes!r}")
    parts = tuple(parts)
    if not parts or any(p not in PARTS for p in parts):
        raise UserInputError(f"parts must be some of {list(PARTS)}, got {list(parts)!r}")
    pictures = pictures or PictureCache.default()
    if pictures is None:
        raise UserInputError("the picture cache is off (NNRULES_PICTURES=off): nothing to precompute into")
    start = time.perf_counter()
    deadline = float("inf") if minutes is None else start + 60 * float(minutes)
    s = ExplorerState(pictures=pictures)
    s.load_zoo(model)
    s.mine(s.default_settings(miner), stored=True)  # stored: a page and a link open it without mining
    say(f"{model}: {miner} {'opened a stored result of' if s.result.stored_at else 'mined'} {len(s.rules)} rules "
        f"with the app's defaults in {time.perf_counter() - start:.1f} s (stored for the pages)")
    if s.flow is None or s.rules.empty:
        raise UserInputError(f"{miner} found no rules on {model} with the app's defaults: nothing to draw")
    top = s.rules.nlargest(rules, "support")
    keep = set(zip(top["pair"], top["rule"]))
    links = s.links[[(p, r) in keep for p, r in zip(s.links["pair"], s.links["rule"])]]
    nodes = np.unique(np.concatenate([links["source"].to_numpy(), links["target"].to_numpy()])).astype(int)
    jobs = [("rule", int(r), False) for r in top["id"]] + [("group", int(n), False) for n in nodes]
    todo = (jobs if "pictures" in parts else []) + \
        ([(kind, i, True) for kind, i, _ in jobs] if "prototypes" in parts else [])
    cost = PictureBudget(None, s.loaded.forward_seconds)
    steps = s.prototype_steps
    # a prototype per group of units, not per rule (a rule's tail is also a node): one per node at most
    expected = (len(jobs) * (cost.estimate("exemplars") + cost.estimate("heatmaps")) if "pictures" in parts else 0) \
        + (len(nodes) * cost.estimate("prototype", steps) if "prototypes" in parts else 0)
    say(f"drawing {len(top)} rules and {len(nodes)} groups: {', '.join(parts)} (cheap parts first); "
        f"estimate ≈ {expected / 60:.1f} min" + ("" if minutes is None else f", budget {minutes:g} min"))
    from tqdm.auto import tqdm

    done, stopped = 0, False
    with tqdm(total=len(todo), desc="parts", unit="part", disable=not progress) as bar:
        for kind, i, proto in todo:
            if time.perf_counter() > deadline:
                stopped = True
                break
            if kind == "rule":
                s.select_rule(i)
            else:
                s.select_node(i)
            s.chosen.detail(full=True, prototype=proto)  # in full: only full pictures go to disk
            done += 1
            bar.update(1)
    seconds = time.perf_counter() - start
    left = len(todo) - done
    say(f"{done} of {len(todo)} parts drawn into {pictures.root} in {seconds:.0f} s ({pictures.writes} pictures "
        f"written)" + (f"; stopped at the {minutes:g}-minute budget with {left} parts left (prototypes last): "
                       "run it again to go on" if stopped else ""))
    return {"rules": len(top), "groups": len(nodes), "parts": done, "left": left, "written": pictures.writes,
            "seconds": seconds}
