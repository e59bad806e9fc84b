"""Shared timing helper for the benchmark scripts (run as scripts: this folder is on sys.path)."""
import time


def best_of(fn, repeats: int = 3, warmup: bool = False) -> float:
    """Fastest of ``repeats`` wall-clock runs of ``fn()`` in seconds (after one untimed run if ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_interleaved(fns, repeats: int = 5) -> list[float]:
    """Fastest of ``repeats`` wall-clock runs of each of ``fns`` in seconds, the calls taken in turns
    (f1, f2, …, f1, f2, …) so that a slow spell of a shared machine falls on all of them, not on one."""
    times = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i] = min(times[i], time.perf_counter() - t)
    return times
