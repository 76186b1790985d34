"""Run as a script under XLA_FLAGS=--xla_force_host_platform_device_count=8: the device degradation of a batch
sharded over 8 devices, jitted with no output sharding given; prints (as JSON) the output's sharding, each
device's slice, the collectives in the compiled program, and the difference to the same batch on one device."""
import json
import re
import sys

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.training import sharding
from restorenet_jax.training.step import make_device_inputs

if __name__ == "__main__":
    assert jax.device_count() == 8, jax.devices()
    cfg = get_data_config()
    cfg.blur.motion.size_range = (3, 7)
    cfg.ratio = "1:1:1:1"
    mesh = Mesh(np.asarray(jax.devices()), (sharding.DATA_AXIS,))
    rng = np.random.default_rng(0)
    batch = {"target": rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8),
             "degraded": rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8),
             "pair_kind": np.arange(16, dtype=np.int32) % 3}
    # No sharding constraint here (the training step adds one): the partitioner alone must keep the work local.
    prepare = make_device_inputs(cfg, 0)
    fn = jax.jit(prepare, in_shardings=(sharding.batch_sharding(mesh), None))
    sharded = sharding.global_batch(mesh, batch)
    hlo = fn.lower(sharded, 7).compile().as_text()
    out = fn(sharded, 7)
    one = jax.jit(prepare)(jax.device_put(batch, jax.devices()[0]), 7)
    json.dump({
        "input_spec_is_data": out["input"].sharding.spec == P(sharding.DATA_AXIS),
        "target_spec_is_data": out["target"].sharding.spec == P(sharding.DATA_AXIS),
        "devices": len({s.device for s in out["input"].addressable_shards}),
        "slice_shapes": sorted({tuple(s.data.shape) for s in out["input"].addressable_shards}),
        "collectives": sorted(set(re.findall(r"\b(all-gather|all-reduce|collective-permute|all-to-all)", hlo))),
        "max_diff_to_one_device": float(np.max(np.abs(np.asarray(out["input"]) - np.asarray(one["input"])))),
    }, sys.stdout)
