"""Device mesh and shardings: data parallel over every device of every process, parameters replicated by default.

One `jax.sharding.Mesh` with a single 'data' axis spans all devices (all hosts of a TPU pod). Batches are sharded on
their leading axis; each process contributes its own local slice (`global_batch`). With `shard_params_min_size`
> 0, parameters at least that large are split over the 'data' axis along their largest divisible dimension
(ZeRO-3/FSDP style); XLA inserts the gathers.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def maybe_initialize_distributed(cluster: Any = None) -> None:
    """Joins a multi-process cluster when the environment describes one (TPU VM pods, SLURM, or explicit
    JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID); a single process is left alone.

    `cluster` (config.cluster) bounds the waits: start-up, the heartbeat after which a silent process counts as
    lost (the others then stop with an error naming it instead of hanging), and the exit barrier.
    """
    explicit = "JAX_COORDINATOR_ADDRESS" in os.environ
    is_cluster = explicit or "SLURM_NTASKS" in os.environ and int(os.environ["SLURM_NTASKS"]) > 1 \
        or "TPU_WORKER_HOSTNAMES" in os.environ and "," in os.environ["TPU_WORKER_HOSTNAMES"]
    if not is_cluster:
        return
    if os.environ.get("JAX_PLATFORMS", "") == "cpu":
        # CPU-only clusters (tests, debugging on one machine) need a collectives backend across processes.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = {}
    if cluster is not None:
        timeouts = dict(initialization_timeout=int(cluster.initialization_timeout_s),
                        heartbeat_timeout_seconds=int(cluster.heartbeat_timeout_s),
                        shutdown_timeout_seconds=int(cluster.shutdown_timeout_s))
    if explicit:
        jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["JAX_NUM_PROCESSES"]),
                                   int(os.environ["JAX_PROCESS_ID"]), **timeouts)
    else:
        jax.distributed.initialize(**timeouts)
    logging.info("joined cluster: process %d of %d, %d local / %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())


def make_mesh() -> Mesh:
    """A 1-D mesh over all devices, named 'data'."""
    return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def param_sharding(mesh: Mesh, tree: Any, min_size: int = 0) -> Any:
    """Shardings for a tree of arrays: replicated, or (min_size > 0) large leaves split over 'data'."""
    n = mesh.shape[DATA_AXIS]

    def spec(x):
        shape = getattr(x, "shape", ())
        if min_size <= 0 or n == 1 or int(np.prod(shape)) < min_size:
            return replicated(mesh)
        for axis in np.argsort(shape)[::-1]:
            if shape[axis] % n == 0:
                parts = [None] * len(shape)
                parts[axis] = DATA_AXIS
                return NamedSharding(mesh, P(*parts))
        return replicated(mesh)

    return jax.tree_util.tree_map(spec, tree)


def global_batch(mesh: Mesh, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's slice of the batch -> global arrays sharded on the 'data' axis."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}
