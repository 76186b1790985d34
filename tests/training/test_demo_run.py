"""The demo recipe as a user runs it, shrunk: `python -m restorenet_jax.main` prints a handful of lines besides its
progress bars, and a run that evaluates only at the end (the demo's `eval_every_steps = 0`) still leaves `best/`,
which `restore --best` and `evaluate --best` accept.

One training subprocess (~30 s on 2 cores) serves every test here.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import bsd64
from restorenet_jax.models import model_dir

ROOT = Path(__file__).resolve().parents[2]
DEMO = bsd64.get_config("demo")
STEPS = 6
# tqdm's bar: "train run:  50%|█████     | 3/6 [00:01<00:01, 2.5it/s, ...]" (updates joined by carriage returns).
BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+ \[")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(workdir, stdout + stderr) of a tiny training run with the demo's logging and evaluation settings."""
    workdir = tmp_path_factory.mktemp("demo") / "run"
    cmd = [sys.executable, "-m", "restorenet_jax.main", "--config=tests/training/tiny_main_config.py",
           f"--workdir={workdir}", f"--config.num_train_steps={STEPS}", "--config.pretrain.steps=2",
           # What the demo logs and evaluates, not the tiny config's test settings:
           f"--config.log_every_steps={DEMO.log_every_steps}", f"--config.eval_every_steps={DEMO.eval_every_steps}",
           f"--config.eval.families={DEMO.eval.families}", f"--config.eval.held_out_families={DEMO.eval.held_out_families}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc.stdout + proc.stderr


def test_demo_settings_evaluate_only_at_the_end():
    # What makes the next test meaningful: the demo has no periodic evaluation, only the final one.
    assert DEMO.eval_every_steps == 0 and bsd64.get_config("demo_cctv").eval_every_steps == 0


def test_demo_run_prints_few_lines_besides_its_progress_bars(demo_run):
    _, output = demo_run
    lines = [ln for ln in re.split(r"[\r\n]+", output) if ln.strip() and not BAR.search(ln)]
    assert any(ln.startswith("held-out: input") for ln in lines), output[-2000:]
    assert any(BAR.search(ln) for ln in re.split(r"[\r\n]+", output)), "no progress bar seen"
    assert len(lines) < 60, "\n".join(lines)


def test_final_evaluation_writes_best_and_best_loads_everywhere(demo_run, tmp_path, capsys):
    from restorenet_jax.apps import evaluate, restore

    workdir, _ = demo_run
    assert model_dir.is_model_dir(workdir / "best")
    _, info = model_dir.read_arch(workdir / "best")
    report = json.loads((workdir / "report.json").read_text())
    assert info["step"] == STEPS and info["psnr"] == pytest.approx(report["overall"]["output_psnr"])

    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(img)
    assert restore.main(["--checkpoint", str(workdir), "--best", str(img), "-o", str(tmp_path / "out"), "-q",
                         "--engine", "jax"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (28, 20)
    assert evaluate.main(["--checkpoint", str(workdir), "--best", "--dataset", "embedded", "--limit", "1",
                          "--crop", "32", "--kinds", "blur", "--engine", "jax", "--out", str(tmp_path / "ev"),
                          "-q"]) == 0
    [record] = (tmp_path / "ev").glob("*.json")
    assert json.loads(record.read_text())["which"] == "best"
    capsys.readouterr()
