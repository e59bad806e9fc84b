"""``nnrules precompute``: a workshop's pictures drawn before the room opens the app.

Mines a zoo model with the app's default settings for a miner (what a fresh page mines when Mine is pressed)
and draws the detail of the rules the Sankey shows first (the top ``rules`` by support) and of their groups,
into the disk cache (:mod:`.picture_cache`) that every page of the app reads: the room's first clicks then
show their pictures in well under a second instead of computing them (seconds to minutes on a busy machine).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .errors import UserInputError
from .picture_cache import PictureCache
from .explorer import ExplorerState

__all__ = ["precompute"]


def precompute(model: str, miner: str = "explainn", rules: int = 60, pictures: PictureCache | None = None,
               say: Callable[[str], None] = print) -> dict:
    """Draw the top ``rules`` rules' details and their groups' for ``model`` (a zoo name) mined by ``miner``
    with the app's defaults, into ``pictures`` (default: :meth:`PictureCache.default`). Returns counts and
    seconds."""
    if isinstance(rules, bool) or not isinstance(rules, int) or rules < 1:
        raise UserInputError(f"rules must be a positive number of rules, got {rules!r}")
    pictures = pictures or PictureCache.default()
    if pictures is None:
        raise UserInputError("the picture cache is off (NNRULES_PICTURES=off): nothing to precompute into")
    start = time.perf_counter()
    s = ExplorerState(pictures=pictures)
    s.load_zoo(model)
    settings = s.default_settings(miner)
    s.mine(settings)
    say(f"{model}: {miner} mined {len(s.rules)} rules with the app's defaults in {time.perf_counter() - start:.1f} s")
    if s.flow is None or s.rules.empty:
        raise UserInputError(f"{miner} found no rules on {model} with the app's defaults: nothing to draw")
    top = s.rules.nlargest(rules, "support")
    keep = set(zip(top["pair"], top["rule"]))
    links = s.links[[(p, r) in keep for p, r in zip(s.links["pair"], s.links["rule"])]]
    nodes = np.unique(np.concatenate([links["source"].to_numpy(), links["target"].to_numpy()])).astype(int)
    t = time.perf_counter()
    for i, rid in enumerate(top["id"]):
        s.select_rule(int(rid))
        s.detail()
        if (i + 1) % 10 == 0:
            say(f"  {i + 1} of {len(top)} rules drawn ({time.perf_counter() - t:.0f} s)")
    for n in nodes:
        s.select_node(int(n))
        s.detail()
    seconds = time.perf_counter() - start
    say(f"{len(top)} rules and {len(nodes)} groups drawn into {pictures.root} in {seconds:.0f} s "
        f"({pictures.writes} pictures written)")
    return {"rules": len(top), "groups": len(nodes), "written": pictures.writes, "seconds": seconds}
