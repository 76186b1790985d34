"""Data parallelism: 8 simulated CPU devices equal one device; two processes on localhost train together."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from restorenet_jax.training import checkpoints

ROOT = Path(__file__).resolve().parents[2]


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
    assert result["sharded_leaves"] > 0 and result["sharded_max_rel_diff"] < 1e-5, result
    assert abs(result["loss8"] - result["loss1"]) < 1e-5 * abs(result["loss1"]), result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_train_together(tmp_path):
    port = _free_port()
    cmd = [sys.executable, "-m", "restorenet_jax.main", "--config=tests/training/tiny_main_config.py",
           f"--workdir={tmp_path}", "--config.num_train_steps=4", "--config.checkpoint_every_steps=2",
           "--config.batch_size=2"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                       JAX_PROCESS_ID=str(i)))
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "process 1 of 2" in outs[1][1] or "process 1 of 2" in outs[1][0]
    assert checkpoints.TrainCheckpointer(tmp_path).latest_step() == 4
    assert (tmp_path / "report.json").is_file()
