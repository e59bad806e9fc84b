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
