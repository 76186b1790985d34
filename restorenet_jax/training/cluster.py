"""What every process of a multi-process run must do together, and what only one of them does.

The rules the trainer follows on N processes (one per host of a TPU VM pod or GPU cluster, or several on one
machine): collective operations (orbax checkpoint saves, gathers of parameters sharded across processes, the
combining of evaluation sums) are entered by every process in the same order; only process 0 writes plain files
(model directories, reports, images); a process reads what another wrote only after a `barrier`. On one process
every function here is a cheap no-op or a plain copy.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np

from restorenet_jax.models.predictor import local_array


def is_main() -> bool:
    """True on the process that writes plain files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier called `name` (no-op on one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def host_tree(tree: Any) -> Any:
    """Every leaf as a float32 numpy array on this host. Collective: every process must call it.

    Leaves replicated over the processes are read from a local copy; leaves sharded across processes are gathered
    (a collective all-gather), which is why no process may skip this call even if it only needs the result on
    process 0.
    """
    return jax.tree_util.tree_map(lambda a: np.asarray(local_array(a), np.float32), tree)


def sum_over_processes(values: np.ndarray) -> np.ndarray:
    """The element-wise sum of a float64 array over all processes (every process gets the same result).

    The all-gather moves float32 (JAX's default), so each value travels as a float32 pair (high part + remainder)
    and is summed in float64 on the host: the sums keep about 1e-14 relative precision, and the result equals the
    single-process sum to rounding.
    """
    values = np.asarray(values, np.float64)
    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils

    high = values.astype(np.float32)
    low = (values - high.astype(np.float64)).astype(np.float32)
    gathered = np.asarray(multihost_utils.process_allgather(np.stack([high, low])), np.float64)
    return gathered.sum(axis=(0, 1))


def my_part(count: int) -> range:
    """The contiguous share of `count` items this process handles (the first processes take one more when the
    count does not divide evenly)."""
    n, i = jax.process_count(), jax.process_index()
    base, extra = divmod(count, n)
    start = i * base + min(i, extra)
    return range(start, start + base + (1 if i < extra else 0))
