"""A run killed with SIGKILL between checkpoints, restarted with the same command, ends with the same parameters
as an uninterrupted run (same data order after resume, same RNG-free deterministic steps)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from restorenet_jax.training import checkpoints

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "tests/training/tiny_main_config.py"


def _command(workdir):
    return [sys.executable, "-m", "restorenet_jax.main", f"--config={CONFIG}", f"--workdir={workdir}"]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")


def _last_logged_step(workdir) -> int:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return max(steps, default=0)


@pytest.mark.slow
def test_sigkill_then_restart_matches_uninterrupted_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_command(killed), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # Kill strictly between checkpoints: after step 10's checkpoint, before the final step 40.
    while time.time() < deadline and proc.poll() is None:
        if (killed / "checkpoints" / "10").is_dir() and _last_logged_step(killed) > 10:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    interrupted_at = checkpoints.TrainCheckpointer(killed).latest_step()
    assert interrupted_at is not None and 10 <= interrupted_at < 40
    assert not (killed / "report.json").exists()

    for workdir in (killed, clean):  # restart the killed run; run the reference uninterrupted
        done = subprocess.run(_command(workdir), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    assert checkpoints.TrainCheckpointer(killed).latest_step() == 40
    (_, resumed), (_, reference) = checkpoints.resolve_model(killed), checkpoints.resolve_model(clean)
    for a, b in zip(jax.tree_util.tree_leaves(resumed), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(a, b)
