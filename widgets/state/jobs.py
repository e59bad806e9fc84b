"""Slow work off the kernel's main thread: one job at a time per panel, the newest request wins.

A Voila kernel handles widget messages on its main thread: a 30 s computation there freezes the page (no
click, no Cancel). A :class:`Background` runs each job in a daemon thread with a cancel event; a new
request cancels the running one and only the newest job's result reaches ``done`` (an older result that
arrives late is dropped, so a quick second click never shows the first click's pictures). The model is
used by one job at a time across panels (``MODEL_LOCK``): forward hooks of two jobs on one model would see
each other's passes.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable, Iterator

from .errors import Cancelled

__all__ = ["Background", "MODEL_LOCK", "warm_miners", "fair_threads"]

#: Held while a job runs the model (loading, mining, detail pictures): hooks must not interleave.
MODEL_LOCK = threading.RLock()


class _Warm:
    """The miners' numba warm-up, once per process: ``ready`` is set when it ended (also if it failed:
    mining then compiles on its own, as without a warm-up)."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.started = False
        self.lock = threading.Lock()

    def start(self, threaded: bool = True) -> threading.Event:
        with self.lock:
            if self.started:
                return self.ready
            self.started = True
        if threaded:
            threading.Thread(target=self._run, daemon=True, name="nnrules-warm-up").start()
        else:
            self._run()
        return self.ready

    def _run(self) -> None:
        from nnrules.miners.warmup import warm_up

        try:
            warm_up()
        except Exception:  # noqa: BLE001 — only a head start; the first Mine compiles instead
            pass
        finally:
            self.ready.set()


#: ``warm_miners.start()`` after the first model is loaded; Mine waits on ``warm_miners.ready``.
warm_miners = _Warm()


def _others_running() -> int:
    """Threads of other work runnable now (Linux' ``/proc/loadavg`` field 4, less the reader; the least of 5
    looks 5 ms apart, so a passing blip is not taken for a busy machine); 0 where unknown."""
    seen = []
    for _ in range(5):
        try:
            with open("/proc/loadavg") as f:
                seen.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return 0
        time.sleep(0.005)
    return max(min(seen), 0)


_threads_lock = threading.Lock()
_threads_state = {"depth": 0, "saved": 0}


@contextlib.contextmanager
def fair_threads() -> Iterator[int]:
    """torch's intra-op threads for one job: as many as the cores that other work leaves free (at least 1),
    restored when the last job inside ends. On a busy machine torch's OpenMP threads spin for each other: a
    ResNet-18 forward + backward took 1.5 s with 2 threads beside one busy process vs 0.09 s with 1 thread
    (0.034 s quiet, 2 cores) — the cause of the 370 s rule detail under load (issue 44)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with _threads_lock:
        if _threads_state["depth"] == 0:
            _threads_state["saved"] = torch.get_num_threads()
        _threads_state["depth"] += 1
        n = max(1, min(_threads_state["saved"], cores - _others_running()))
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        with _threads_lock:
            _threads_state["depth"] -= 1
            if _threads_state["depth"] == 0:
                torch.set_num_threads(_threads_state["saved"])


class Background:
    """Run ``work(cancel_event)`` in a thread (or inline with ``threaded=False``); report through callbacks.

    ``done(result)``, ``fail(error)`` and ``cancelled()`` run only for the newest job; ``tick(seconds)``
    is called about once a second while it runs (elapsed time for the panel's status line).
    """

    def __init__(self, threaded: bool = True, tick: Callable[[float], None] | None = None) -> None:
        self.threaded = threaded
        self.tick = tick
        self._generation = 0
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ended = 0  # the generation of the last job that ended (its ticks stop)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Ask the running job to stop at its next check; its result will not be shown."""
        with self._lock:
            self._generation += 1
            self._cancel.set()

    def run(self, work: Callable[[threading.Event], Any], done: Callable[[Any], None],
            fail: Callable[[BaseException], None], cancelled: Callable[[], None] = lambda: None) -> None:
        with self._lock:
            self._cancel.set()  # the previous job stops at its next check
            self._generation += 1
            gen, event = self._generation, threading.Event()
            self._cancel = event
        if not self.threaded:
            self._job(gen, event, work, done, fail, cancelled)
            return
        self._thread = threading.Thread(target=self._job, args=(gen, event, work, done, fail, cancelled),
                                        daemon=True)
        self._thread.start()
        if self.tick is not None:
            threading.Thread(target=self._ticker, args=(gen,), daemon=True).start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running job ended (scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._generation

    def _ticker(self, gen: int) -> None:
        start = time.monotonic()
        while True:
            time.sleep(1.0)
            with self._lock:  # never after the job's end: a late "loading… 12 s" stayed under a loaded model
                if gen != self._generation or gen == self._ended or not self.busy:
                    return
                if self.tick is not None:
                    self.tick(time.monotonic() - start)

    def _job(self, gen, event, work, done, fail, cancelled) -> None:
        try:
            try:
                with fair_threads():
                    result = work(event)
            finally:
                with self._lock:
                    self._ended = gen
        except Cancelled:
            if self._current(gen):
                cancelled()
            return
        except Exception as err:  # noqa: BLE001 — a worker must report, never die silently
            if self._current(gen):
                fail(err)
            return
        if event.is_set() or not self._current(gen):
            if self._current(gen):
                cancelled()
            return
        done(result)


def checker(event: threading.Event) -> Callable[[], None]:
    """A ``check()`` that raises :class:`Cancelled` once ``event`` is set (pass it down into slow work)."""
    def check() -> None:
        if event.is_set():
            raise Cancelled()
    return check
