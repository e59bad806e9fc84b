"""Size estimates before allocation: a reader or a packer asks :func:`check_allocation` before it allocates
what its input asks for, and refuses with the sizes in words instead of running the machine out of memory.

The budget is the memory available now (Linux' ``MemAvailable``, else the physical pages free) times
:data:`HEADROOM`, or ``$NNRULES_MAX_BYTES`` when set (a server operator's cap, e.g. for a room of visitors).
"""
from __future__ import annotations

import os

__all__ = ["check_allocation", "memory_budget", "HEADROOM"]

#: The share of the available memory one allocation may take.
HEADROOM = 0.8


def _available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 ** 62  # unknown: no bound from here


def memory_budget() -> int:
    """Bytes one allocation may take now (see the module's text)."""
    env = os.environ.get("NNRULES_MAX_BYTES", "").strip()
    if env:
        try:
            return max(int(float(env)), 0)
        except ValueError:
            raise ValueError(f"NNRULES_MAX_BYTES must be a number of bytes, got {env!r}") from None
    return int(_available() * HEADROOM)


def check_allocation(nbytes: float, what: str) -> None:
    """ValueError when ``nbytes`` exceed :func:`memory_budget`: "<what> would take 16.0 GiB; 11.2 GiB are
    available: …"."""
    budget = memory_budget()
    if nbytes > budget:
        raise ValueError(f"{what} would take {nbytes / 2 ** 30:,.1f} GiB; {budget / 2 ** 30:,.1f} GiB may be used "
                         "here (the memory available; NNRULES_MAX_BYTES sets a cap): use a smaller input, fewer "
                         "items, or map item ids to 0..k-1 first")
