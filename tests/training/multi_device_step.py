"""Run as a script under XLA_FLAGS=--xla_force_host_platform_device_count=8: one train step on a mesh of all 8
devices (large parameters sharded, small ones replicated) and on a mesh of 1 device; prints the largest relative parameter difference as JSON."""
import json
import sys

import jax
import numpy as np
from jax.sharding import Mesh

from restorenet_jax.training import sharding
from tests.training.tiny import extra_stage_step, tiny_config


def one_step(devices, batch, shard_params_min_size=0):
    step, state = extra_stage_step(tiny_config(), 10)
    mesh = Mesh(np.asarray(devices), (sharding.DATA_AXIS,))
    state_sh = sharding.param_sharding(mesh, state, shard_params_min_size)
    fn = jax.jit(step, in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sh, sharding.replicated(mesh)))
    state, metrics = fn(jax.device_put(state, state_sh), sharding.global_batch(mesh, batch))
    split = sum(not a.sharding.is_fully_replicated for a in jax.tree_util.tree_leaves(state.params))
    return jax.device_get(state.params), float(metrics["loss"]), split


if __name__ == "__main__":
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    batch = {"input": rng.random((8, 16, 16, 3), dtype=np.float32), "target": rng.random((8, 16, 16, 3),
                                                                                          dtype=np.float32)}
    p1, l1, _ = one_step(jax.devices()[:1], batch)
    # Large parameters (and their optimiser moments) split over the 8 devices, small ones (biases, norms)
    # replicated: both layouts in one step. (All-replicated on 4 devices is test_cluster.py's reference run.)
    p8, l8, split = one_step(jax.devices(), batch, shard_params_min_size=64)
    diffs = [float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
             for a, b in zip(jax.tree_util.tree_leaves(p8), jax.tree_util.tree_leaves(p1))]
    replicated = sum(a.size < 64 for a in jax.tree_util.tree_leaves(p8))
    json.dump({"max_rel_diff": max(diffs), "loss8": l8, "loss1": l1, "sharded_leaves": split,
               "replicated_leaves": replicated}, sys.stdout)
