"""The Dask side of the scale-out that does not depend on a miner: finding the client, starting local clusters,
the configuration workers that run numba kernels need. A miner's distributed computation lives with the miner
(ExplaiNN's: :mod:`nnrules.miners.explainn._distributed`); the Zarr format with the data
(:mod:`nnrules.data.zarr_io`)."""
from __future__ import annotations

__all__ = ["WORKER_CONFIG", "active_client"]


#: Dask configuration for workers that run these kernels: Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536,
#: which turns off glibc's adaptive mmap threshold, so every work array of a kernel over 128 KiB is mapped and
#: unmapped again (page faults): measured 3.2× slower merge counts (14.0 s vs 4.3 s, 131,072 rows). Pass it to
#: ``dask.config.set`` where the workers are started (``dask worker`` reads it from the Dask config file too).
#: Dask's worker memory manager is off too: the row ranges are kept on purpose (a worker's cache, not Dask's
#: data), and a worker paused at 80 % of its limit would wait forever for memory it never frees.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                 "distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                 "distributed.worker.memory.pause": False}


def distributed_module():
    try:
        import distributed
    except ImportError:
        raise ImportError("counting on a cluster needs the optional dependencies of nnrules[scale]: "
                          "pip install 'nnrules[scale]' (dask[array], distributed, zarr)") from None
    return distributed


def active_client(client=None):
    """``client`` if given (a ``distributed.Client``), else the active one, else None."""
    if client is not None:
        if not hasattr(client, "submit") or not hasattr(client, "scheduler_info"):
            raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
        return client
    try:
        import distributed
    except ImportError:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None
