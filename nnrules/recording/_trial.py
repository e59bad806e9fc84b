"""A first load and forward pass of an untrusted ``torch.export`` archive in a child process with limits.

The member checks of :mod:`._archives` keep torch's loader from running code, but a plain program of ATen
operators can still ask for 4 TB at its first forward, or make the loader's symbolic maths or a large graph
run for minutes while holding the GIL (the page, Cancel and the kernel would freeze). So the archive's bytes are
loaded and run once, on its own sample inputs, in a child Python with an address-space limit (the memory this
machine may give, :func:`nnrules.data.memory.memory_budget`) and a time limit (:data:`TRIAL_SECONDS`,
``$NNRULES_TRIAL_SECONDS``); only bytes that passed are loaded here. The child imports only the standard
library and torch, and is run as a file in isolated mode, so it reads nothing from the user's folders.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

__all__: list[str] = []  # used by nnrules.recording.loading; TrialFailed reaches users as a ValueError

#: Seconds a child may take to import torch, load the archive and run one forward pass.
TRIAL_SECONDS = 90.0


class TrialFailed(ValueError):
    """The archive did not load and run once within the limits (the message says which)."""


def _seconds() -> float:
    env = os.environ.get("NNRULES_TRIAL_SECONDS", "").strip()
    try:
        return float(env) if env else TRIAL_SECONDS
    except ValueError:
        raise ValueError(f"NNRULES_TRIAL_SECONDS must be a number of seconds, got {env!r}") from None


def trial_load(data: bytes, name: str, seconds: float | None = None, max_bytes: int | None = None,
               check: Callable[[], None] = lambda: None) -> None:
    """Load ``data`` (a ``.pt2`` archive's bytes) and run one forward pass in a child process; raise
    :class:`TrialFailed` naming ``name`` when it needs more than ``max_bytes`` of memory (default: the memory
    budget), more than ``seconds`` (default :data:`TRIAL_SECONDS`) or fails. ``check`` is called every 0.2 s
    (the app's Cancel raises there: the child is killed)."""
    from ..data.memory import memory_budget

    seconds = _seconds() if seconds is None else float(seconds)
    max_bytes = memory_budget() if max_bytes is None else int(max_bytes)
    with tempfile.TemporaryDirectory(prefix="nnrules-trial-") as tmp:
        archive = Path(tmp) / "archive.pt2"
        archive.write_bytes(data)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        child = subprocess.Popen([sys.executable, "-I", __file__, str(archive), str(max_bytes)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 cwd=tmp, env=env)
        start = time.monotonic()
        try:
            while child.poll() is None:
                if time.monotonic() - start > seconds:
                    raise TrialFailed(f"{name!r} did not load and run once within {seconds:.0f} s (a graph or "
                                      "symbolic shapes too costly to read?); NNRULES_TRIAL_SECONDS sets the limit")
                check()
                time.sleep(0.2)
        finally:
            if child.poll() is None:
                child.kill()
            out = child.communicate()[0]
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise TrialFailed(f"{name!r} stopped the process that loads it (exit {child.returncode}) before it "
                          "ran once: it cannot be loaded") from None
    if report.get("memory"):
        raise TrialFailed(f"{name!r} asks for more memory than may be used here ({max_bytes / 2**30:,.1f} GiB; "
                          f"NNRULES_MAX_BYTES sets a cap) when it is loaded or run once: {report['error']}")
    if report.get("error"):
        raise TrialFailed(f"{name!r} could not be loaded and run once: {report['error']}")


def _main(path: str, max_bytes: int) -> None:
    """The child: import torch, cap the address space, load, run once on the archive's sample inputs (or zeros
    of its input shapes), print one line of JSON."""
    import io
    import resource
    import warnings

    import torch

    torch.set_num_threads(1)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = mapped + max_bytes if hard == resource.RLIM_INFINITY else min(mapped + max_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(Path(path).read_bytes()))
            module = program.module()
            args, kwargs = program.example_inputs or (_zeros(program), {})
            with torch.no_grad():
                module(*args, **kwargs)
        report: dict = {"ok": True}
    except MemoryError:
        report = {"memory": True, "error": "out of memory"}
    except BaseException as err:  # noqa: BLE001 — report any failure in words; the parent decides
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        report = {"memory": "allocate" in text.lower() or "out of memory" in text.lower(), "error": text}
    print(json.dumps(report), flush=True)


def _zeros(program) -> tuple:
    """Zeros of the program's input shapes, a symbolic size at its lower bound (at least 1)."""
    import torch

    out = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            val = node.meta.get("val")
            shape = [int(d) if isinstance(d, int) else max(int(getattr(d.node, "hint", None) or 1), 1)
                     for d in val.shape]
            out.append(torch.zeros(shape, dtype=val.dtype))
    return tuple(out)


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]))
