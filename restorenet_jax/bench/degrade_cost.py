"""Cost of the device-side data degradations (`data.device_degrade.degrade`) on one batch of uint8 crops.

The training step makes its inputs from the host's uint8 crops on the device (`training.step.make_device_inputs`);
this entry times that work alone, jitted, on the same device and batch shape as the train entries, so a run reports
it next to (and as a fraction of) a training step: see the `degrade/...` targets in configs/bench.py.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.data import device_degrade


def data_config(noise_kind: str, blur_kind: str) -> Any:
    """The default data config (13:2:2:1 mix) with the given noise and synthetic-blur kinds."""
    c = get_data_config()
    c.noise.kind = noise_kind
    c.blur.kind = blur_kind
    return c


def degrade_program(noise_kind: str, blur_kind: str, batch: int, size: int, seed: int):
    """(jitted degrade(target, degraded, pair_kind, step), example arguments) for a [batch, size, size, 3] batch.

    Half the examples are real blur pairs and half clean pairs (synthetic blur), as in a mix of a paired dataset
    with one's own clean frames; every kind is computed per example either way (selected with `where`).
    """
    cfg = data_config(noise_kind, blur_kind)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    target = jax.random.randint(k1, (batch, size, size, 3), 0, 256, jnp.int32).astype(jnp.uint8)
    degraded = jax.random.randint(k2, (batch, size, size, 3), 0, 256, jnp.int32).astype(jnp.uint8)
    pair_kind = (jnp.arange(batch) % 2 * device_degrade.PAIR_KINDS.index("clean")).astype(jnp.int32)

    def run(target, degraded, pair_kind, step):
        inputs, _ = device_degrade.degrade(target, degraded, device_degrade.step_key(seed, step), cfg, pair_kind)
        return inputs

    return jax.jit(run), (target, degraded, pair_kind, jnp.int32(0))
