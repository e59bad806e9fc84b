"""Types the app's state and its views both read: what the detail panel shows (:class:`Detail`). The errors a
user sees are in :mod:`.errors`."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Detail"]


@dataclass
class Detail:
    """What the detail panel shows for the selection (PNG bytes; ``errors`` by image key)."""

    title: str
    text: str
    prototype: bytes | None = None
    exemplars: list[bytes] = field(default_factory=list)
    exemplar_labels: list[str] = field(default_factory=list)
    heatmaps: dict[str, bytes] = field(default_factory=dict)  # "LRP · class 3" → PNG
    errors: dict[str, str] = field(default_factory=dict)
    # a rule's "where else": samples where its tail fires but the rule does not apply (what else the units answer)
    elsewhere: list[bytes] = field(default_factory=list)
    elsewhere_labels: list[str] = field(default_factory=list)
    # parts drawn at lower fidelity to stay within the picture budget: part → how ("57 of 200 ascent steps …")
    degraded: dict[str, str] = field(default_factory=dict)
