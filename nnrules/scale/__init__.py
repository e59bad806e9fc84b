"""Past one machine: activations streamed to Zarr, ExplaiNN's counts summed over row ranges on a Dask cluster.

- :func:`nnrules.record` with ``store=`` writes activations into a Zarr store; a :class:`~nnrules.Binarizer`
  binarizes them in passes into bit-packed rows beside them (:class:`StoredBits`);
  ``BinaryMatrix.to_zarr`` / ``BinaryMatrix.from_zarr`` store any packed matrix.
- :class:`~nnrules.ExplaiNN` fitted on :class:`StoredBits` counts on the workers of a
  ``dask.distributed.Client`` (the active one, or ``fit(..., client=)``): each worker loads its row range of
  the store once and returns partial counts, which are summed; the search stays here
  (:mod:`nnrules.miners.explainn._distributed`). Without a client the matrices are loaded and nothing changes.

The Zarr format lives with the data it stores (:mod:`nnrules.data.zarr_io`, :class:`~nnrules.data.bits.StoredBits`,
:mod:`nnrules.data.stored_activations`); this package adds only the Dask side (:mod:`nnrules.scale.cluster`)
and keeps the names users import from here.

Needs the optional dependencies ``nnrules[scale]`` (dask[array], distributed, zarr); the rest of nnrules
works without them.
"""
from ..data.bits import StoredBits, open_bits, write_bits
from ..data.stored_activations import open_activations

__all__ = ["StoredBits", "open_bits", "write_bits", "open_activations", "local_cluster"]


def local_cluster(n_workers: int, memory_limit: str = "2GiB"):
    """A ``dask.distributed.Client`` on a new local cluster of ``n_workers`` processes, one thread each
    (numba's parallel kernels use it; the counts of a worker's row range run in one task), started with
    ``nnrules.scale.cluster.WORKER_CONFIG``. On a real cluster make the client yourself (``Client("tcp://scheduler:8786")``, dask-jobqueue, dask-kubernetes)."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer ≥ 1, got {n_workers!r}")
    import dask

    from .cluster import WORKER_CONFIG, distributed_module
    distributed = distributed_module()
    with dask.config.set(WORKER_CONFIG):  # the client owns its cluster: closing it (or `with`) stops the workers
        return distributed.Client(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  memory_limit=memory_limit, dashboard_address=None)
