"""Degradations inside the training step (make_device_inputs): deterministic per (seed, step), pass-through of
host-degraded batches, the step trains on uint8 crops, and the degraded batch stays sharded on 8 devices."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.data import device_degrade, pipeline
from restorenet_jax.training.step import make_device_inputs

ROOT = Path(__file__).resolve().parents[2]


def _cfg(ratio="13:2:2:1", noise=None):
    cfg = get_data_config()
    cfg.blur.motion.size_range = (3, 7)
    cfg.ratio = ratio
    if noise:
        cfg.noise.kind = noise
    return cfg


def _uint8_batch(seed=0, n=4, size=16):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return {"target": target, "degraded": np.clip(target.astype(int) - 3, 0, 255).astype(np.uint8),
            "pair_kind": np.zeros(n, np.int32)}


def test_same_seed_and_step_same_inputs_another_step_differs():
    prepare = jax.jit(make_device_inputs(_cfg(), seed=3))
    batch = _uint8_batch()
    a, b, c = prepare(batch, 5), prepare(batch, 5), prepare(batch, 6)
    np.testing.assert_array_equal(np.asarray(a["input"]), np.asarray(b["input"]))
    assert not np.array_equal(np.asarray(a["input"]), np.asarray(c["input"]))
    assert a["input"].dtype == jnp.float32 and a["input"].shape == (4, 16, 16, 3)
    assert float(a["input"].min()) >= 0.0 and float(a["input"].max()) <= 1.0
    np.testing.assert_allclose(np.asarray(a["target"]), batch["target"] / 255.0, atol=1e-7)
    # The key is the documented one: the same as calling degrade with step_key(seed, step); another seed differs.
    # (One compiled program for both keys: the 'mixed' degradations are costly to compile and to run op by op.)
    degrade = jax.jit(lambda key: device_degrade.degrade(batch["target"], batch["degraded"], key, _cfg(),
                                                         batch["pair_kind"])[0])
    expected, other_seed = degrade(device_degrade.step_key(3, 5)), degrade(device_degrade.step_key(4, 5))
    np.testing.assert_allclose(np.asarray(a["input"]), np.asarray(expected), atol=1e-6)  # two programs' rounding
    assert not np.array_equal(np.asarray(a["input"]), np.asarray(other_seed))


def test_kinds_follow_the_ratio_and_host_batches_pass_through():
    batch = _uint8_batch()
    # Which pairs pass through is the point here, not the noise: Gaussian, the cheapest to run op by op.
    gt = make_device_inputs(_cfg("0:0:0:1", "gaussian"), seed=0)(batch, 0)
    np.testing.assert_allclose(np.asarray(gt["input"]), batch["target"] / 255.0, atol=1e-7)
    blur = make_device_inputs(_cfg("0:1:0:0", "gaussian"), seed=0)(batch, 0)  # blur pairs: B = the real blurred crop
    np.testing.assert_allclose(np.asarray(blur["input"]), batch["degraded"] / 255.0, atol=1e-7)
    host = {"input": np.zeros((2, 8, 8, 3), np.float32), "target": np.ones((2, 8, 8, 3), np.float32)}
    assert make_device_inputs(_cfg(), seed=0)(host, 0) is host


def test_where_the_degradations_run():
    cfg = _cfg()
    assert cfg.degrade_on == "auto"
    assert pipeline.degrades_on_device(cfg) == (jax.default_backend() != "cpu")
    cfg.degrade_on = "device"
    assert pipeline.degrades_on_device(cfg)
    cfg.noise.kind = "danet"  # its generator runs in the training step too
    assert pipeline.degrades_on_device(cfg)
    cfg.blur.kind = "unknown_kind"  # a model the device does not have: the host path
    assert not pipeline.degrades_on_device(cfg)
    cfg.blur.kind = "motion"
    cfg.noise.kind = "gaussian"
    cfg.degrade_on = "host"
    assert not pipeline.degrades_on_device(cfg)


def test_train_step_learns_from_uint8_crops():
    """The jitted step with the device degradation: finite loss, and the step counter drives the key."""
    from tests.training.tiny import extra_stage_step, tiny_config

    c = tiny_config()
    c.data.blur.motion.size_range = (3, 7)
    step, state = extra_stage_step(c, 4, make_device_inputs(c.data, c.seed))
    fn = jax.jit(step)
    batch = _uint8_batch(n=2)
    s1, m1 = fn(state, batch)
    _, m1_again = fn(state, batch)
    _, m2 = fn(s1, batch)  # same crops, next step: other degradations
    assert np.isfinite(float(m1["loss"])) and int(s1.step) == 1
    assert float(m1["loss"]) == float(m1_again["loss"])
    assert float(m1["loss"]) != float(m2["loss"])


def test_degraded_batch_stays_sharded_on_eight_devices():
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, "tests/training/device_inputs_sharding.py"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["input_spec_is_data"] and result["target_spec_is_data"], result
    assert result["devices"] == 8 and result["slice_shapes"] == [[2, 24, 24, 3]], result
    assert result["collectives"] == [], result  # nothing gathered: each device degrades its own examples
    assert result["max_diff_to_one_device"] < 1e-5, result  # and sharding does not change the batch


def test_bad_data_path_fields_are_named():
    import pytest

    from restorenet_jax.training.config_check import ConfigError, check_config
    from tests.training.tiny import tiny_config

    for field, value, expected in (("degrade_on", "gpu",
                                    "config.data.degrade_on = 'gpu': expected one of 'auto'"),
                                   ("crops_per_read", 0, "config.data.crops_per_read = 0: expected an integer >= 1")):
        c = tiny_config()
        c.data[field] = value
        with pytest.raises(ConfigError, match=expected):
            check_config(c)
    check_config(tiny_config())
