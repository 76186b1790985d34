"""Data parallelism: 8 simulated CPU devices equal one device (several processes: test_cluster.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # a subprocess compiling two sharded train steps: about a minute on 2 cores


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)


def test_eight_simulated_devices_match_one_device():
    """Replicated parameters and (shard_params_min_size) parameters sharded over the devices."""
    out = subprocess.run([sys.executable, "tests/training/multi_device_step.py"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600,
                         env=_env(XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
                                  + " --xla_force_host_platform_device_count=8"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Not bit-exact (the batch-mean reductions are summed in a different order across devices): 1e-5 relative.
    assert result["max_rel_diff"] < 1e-5, result
    assert result["sharded_leaves"] > 0 and result["replicated_leaves"] > 0, result
    assert abs(result["loss8"] - result["loss1"]) < 1e-5 * abs(result["loss1"]), result
