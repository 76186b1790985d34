"""Training through the user's command (`python -m restorenet_jax.main`), with backbone pre-training, periodic
evaluation, `best/` and the final report, interrupted and resumed: one process of four simulated CPU devices killed
with SIGKILL between checkpoints and restarted ends bit for bit where the uninterrupted run ends; and, as on a pod,
two processes x two devices on localhost lose a process partway, the survivor stops in bounded time, the same
command restarted on every process resumes, and the result equals one process. Both compare against one
uninterrupted one-process run, whose compiled programs the killed one-process runs reuse."""
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

# The shortened demo recipe (tiny widths): the deblur backbone given as a converted model directory (as with the
# official GoPro checkpoint), 2 pre-training steps of the denoise backbone, 12 main steps, a checkpoint every 4 and
# an evaluation every 6 steps (the evaluation gives a kill between checkpoints a window of a second or more).
# data.num_shards fixes the data order whatever the number of processes, so the runs see the same batches.
# (Pre-training one backbone instead of two spares every process of every run a traced and compiled train step.)
RECIPE = ["--config=tests/training/tiny_main_config.py", "--config.num_train_steps=12",
          "--config.checkpoint_every_steps=4", "--config.eval_every_steps=6", "--config.log_every_steps=1",
          "--config.batch_size=4", "--config.pretrain.steps=2", "--config.data.num_shards=2", "--config.eval.limit=3",
          "--config.eval.num_samples=2"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """RECIPE with a random deblur backbone written as a model directory (no compiling: random numpy values)."""
    from restorenet_jax.models.arch import ModelArch
    from restorenet_jax.training.stage import model_arch
    from tests.checkpoint_fixtures import random_params
    from tests.training.tiny_main_config import get_config

    backbone = ModelArch("baseline", backbone=model_arch(get_config()).deblur)
    path = tmp_path_factory.mktemp("deblur") / "model"
    model_dir.save_model_dir(path, random_params(backbone, seed=1, scale=0.1), backbone)
    return [*RECIPE, f"--config.init.deblur={path}"]


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
def one_process(tmp_path_factory, recipe):
    workdir = tmp_path_factory.mktemp("one") / "run"
    _run(workdir, 1, 4, *recipe)
    return workdir


def _final_params(workdir: Path) -> dict:
    _, params = checkpoints.resolve_model(workdir)
    return params


def _last_logged_step(workdir: Path) -> int:
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return max(steps, default=0)


def test_one_process_killed_between_checkpoints_resumes_bit_exact(one_process, recipe, tmp_path):
    """SIGKILL strictly between checkpoints of the main stage (after step 4's, before the final step 12's), then the
    same command again: same data order after the resume and deterministic steps, so the same bits as the
    uninterrupted run."""
    workdir = tmp_path / "run"
    [proc] = _start(workdir, 1, 4, *recipe)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if (workdir / "checkpoints" / "4").is_dir() and _last_logged_step(workdir) > 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed\n" + _errors(workdir)
    interrupted_at = checkpoints.TrainCheckpointer(workdir).latest_step()
    assert interrupted_at is not None and 4 <= interrupted_at < 12
    assert not (workdir / "report.json").exists()

    _run(workdir, 1, 4, *recipe)
    assert checkpoints.TrainCheckpointer(workdir).latest_step() == 12
    import jax

    jax.tree_util.tree_map(np.testing.assert_array_equal, _final_params(workdir), _final_params(one_process))


def _kill_second_process_once_training_started(procs: list[subprocess.Popen], workdir: Path) -> float:
    """SIGKILLs process 1 as soon as the denoise backbone is pre-trained (the main stage and the final evaluation
    are still ahead: seconds of work even with every program cached); returns the kill time."""
    deadline = time.monotonic() + 600
    while not model_dir.is_model_dir(workdir / "pretrain" / "denoise" / "model"):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), _errors(workdir)
        time.sleep(0.05)
    assert all(p.poll() is None for p in procs), "the run finished before a process could be lost"
    procs[1].send_signal(signal.SIGKILL)
    return time.monotonic()


def test_two_processes_lose_one_resume_and_equal_one_process(one_process, recipe, tmp_path):
    # One run covers both parameter layouts: with a 64-element threshold the tiny model's large kernels are split
    # over the devices of both processes and its biases and norms stay replicated. The run loses a process partway
    # and is restarted with the same command, as an operator would: it must still end where one process ends.
    shard_params_min_size = 64
    bound = 15
    workdir = tmp_path / "run"
    flags = [*recipe, f"--config.shard_params_min_size={shard_params_min_size}",
             f"--config.cluster.heartbeat_timeout_s={bound}", "--config.cluster.shutdown_timeout_s=10"]
    procs = _start(workdir, 2, 2, *flags)
    killed_at = _kill_second_process_once_training_started(procs, workdir)
    code = procs[0].wait(timeout=120)
    elapsed = time.monotonic() - killed_at
    assert code != 0
    assert elapsed < bound + 20, elapsed  # the heartbeat bound, plus the coordination service's polling
    # The survivor names the lost process, whichever way it noticed: in a collective (the peer's connection closes,
    # then the shutdown barrier times out waiting for task 1) or between collectives (task 1's heartbeats stop).
    survivor = _logs(workdir)[0].replace("\r", "")
    assert ("unhealthy (stopped sending heartbeats):\n1\n" in survivor
            or ("Connection closed by peer" in survivor and "Some timed out task names:\n1\n" in survivor)), \
        survivor[-3000:]
    assert not (workdir / "report.json").exists()
    denoise = workdir / "pretrain" / "denoise" / "model"
    kept = {str(f.relative_to(denoise)): f.stat().st_mtime_ns for f in denoise.rglob("*") if f.is_file()}

    # Every process restarted with the same command: the finished backbone is kept, the rest resumes and completes.
    _run(workdir, 2, 2, *flags)
    assert {str(f.relative_to(denoise)): f.stat().st_mtime_ns for f in denoise.rglob("*") if f.is_file()} == kept
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

    # The pre-trained backbone, the best model and the side-by-side image, each written once by process 0.
    assert model_dir.is_model_dir(workdir / "pretrain" / "denoise" / "model")
    assert not (workdir / "pretrain" / "deblur").exists()  # given as a model directory
    best_arch, best = model_dir.load_model_dir(workdir / checkpoints.BEST)
    assert best_arch.kind == "restorenet" and set(best) == set(got)
    assert (workdir / "side_by_side.png").is_file() and (workdir / "report.md").is_file()
