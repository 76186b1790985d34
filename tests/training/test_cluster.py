"""Multi-process training as on a pod: two processes x two simulated CPU devices on localhost, through the user's
command (`python -m restorenet_jax.main`), with backbone pre-training, periodic evaluation, `best/` and the final
report; compared with one process of four devices. Then a cluster that loses a process."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from restorenet_jax.models import model_dir
from restorenet_jax.training import checkpoints

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# The shortened demo recipe (tiny widths): 2 pre-training steps per backbone, 4 main steps, eval every 2 steps.
# data.num_shards fixes the data order whatever the number of processes, so the runs see the same batches.
RECIPE = ["--config=tests/training/tiny_main_config.py", "--config.num_train_steps=4",
          "--config.checkpoint_every_steps=2", "--config.eval_every_steps=2", "--config.batch_size=4",
          "--config.pretrain.steps=2", "--config.data.num_shards=2", "--config.eval.limit=3",
          "--config.eval.num_samples=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir: Path, processes: int, devices: int, *flags: str) -> list[subprocess.Popen]:
    port = _free_port()
    xla = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    procs = []
    for i in range(processes):
        env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS=xla)
        if processes > 1:
            env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes),
                       JAX_PROCESS_ID=str(i))
        log = open(workdir.parent / f"{workdir.name}.log{i}", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "restorenet_jax.main", f"--workdir={workdir}", *flags],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=env))
    return procs


def _logs(workdir: Path) -> list[str]:
    return [p.read_text() for p in sorted(workdir.parent.glob(f"{workdir.name}.log*"))]


def _errors(workdir: Path) -> str:
    """The lines of each process's log that say what went wrong (the logs are long)."""
    wanted = re.compile(r"Error|error|Traceback|^[EF]\d{4} |File \"/")  # glog E/F lines carry MMDD
    return "\n\n".join("\n".join(line[:300] for line in log.splitlines() if wanted.search(line))[-4000:]
                       for log in _logs(workdir))


def _run(workdir: Path, processes: int, devices: int, *flags: str) -> None:
    procs = _start(workdir, processes, devices, *flags)
    codes = [p.wait(timeout=900) for p in procs]
    assert codes == [0] * processes, _errors(workdir)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one") / "run"
    _run(workdir, 1, 4, *RECIPE)
    return workdir


def _final_params(workdir: Path) -> dict:
    _, params = checkpoints.resolve_model(workdir)
    return params


def test_two_processes_equal_one_process(one_process, tmp_path):
    # One run covers both layouts: with a 64-element threshold the tiny model's large kernels are split over the
    # devices of both processes and its biases and norms stay replicated (a second run per layout doubled the cost of this file).
    shard_params_min_size = 64
    workdir = tmp_path / "run"
    _run(workdir, 2, 2, *RECIPE, f"--config.shard_params_min_size={shard_params_min_size}")
    logs = _logs(workdir)
    assert "process 1 of 2" in logs[1]
    assert json.loads((workdir / "config.json").read_text())["shard_params_min_size"] == shard_params_min_size

    # Same final parameters as one process with four devices (the same global batches, the same mesh size).
    # Not bit-exact: the cross-process all-reduce sums in another order than one process does.
    ref, got = _final_params(one_process), _final_params(workdir)
    import jax

    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5), ref, got)

    # Same report, combined from each process's share of the evaluation.
    ref_report = json.loads((one_process / "report.json").read_text())
    report = json.loads((workdir / "report.json").read_text())
    assert report["overall"]["count"] == ref_report["overall"]["count"] == 3
    for key in ("input_psnr", "output_psnr"):
        assert abs(report["overall"][key] - ref_report["overall"][key]) < 1e-4, (key, report, ref_report)
    for key in ("input_ssim", "output_ssim"):
        assert abs(report["overall"][key] - ref_report["overall"][key]) < 1e-6

    # Pre-trained backbones, the best model and the side-by-side image, each written once by process 0.
    for branch in ("deblur", "denoise"):
        assert model_dir.is_model_dir(workdir / "pretrain" / branch / "model")
    best_arch, best = model_dir.load_model_dir(workdir / checkpoints.BEST)
    assert best_arch.kind == "restorenet" and set(best) == set(got)
    assert (workdir / "side_by_side.png").is_file() and (workdir / "report.md").is_file()


def test_a_lost_process_stops_the_survivor_in_bounded_time_and_a_rerun_resumes(tmp_path):
    workdir = tmp_path / "run"
    bound = 15
    flags = ["--config=tests/training/tiny_main_config.py", "--config.num_train_steps=400",
             "--config.checkpoint_every_steps=2", "--config.eval_every_steps=0", "--config.batch_size=4",
             f"--config.cluster.heartbeat_timeout_s={bound}", "--config.cluster.shutdown_timeout_s=10"]
    procs = _start(workdir, 2, 2, *flags)
    deadline = time.monotonic() + 600
    while not (workdir / "checkpoints" / "4").is_dir():  # orbax renames a finished checkpoint into place
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), _errors(workdir)
        time.sleep(0.5)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    code = procs[0].wait(timeout=120)
    elapsed = time.monotonic() - killed_at
    assert code != 0
    assert elapsed < bound + 20, elapsed  # the heartbeat bound, plus the coordination service's polling
    survivor = _logs(workdir)[0]
    assert "stopped sending heartbeats" in survivor, survivor[-3000:]
    assert "unhealthy (stopped sending heartbeats):\n1\n" in survivor.replace("\r", "")  # names the lost process

    # Every process restarted with the same command: resumes from the last complete checkpoint and finishes.
    done_before = checkpoints.TrainCheckpointer(workdir).latest_step()
    assert done_before >= 4
    _run(workdir, 2, 2, *flags[:1], f"--config.num_train_steps={done_before + 4}", *flags[2:])
    logs = _logs(workdir)
    assert f"resumed {workdir} at step {done_before}" in logs[0], logs[0][-3000:]
    assert checkpoints.TrainCheckpointer(workdir).latest_step() == done_before + 4
    assert (workdir / "report.json").is_file()
