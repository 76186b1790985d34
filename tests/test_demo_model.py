"""The demo recipe (configs/bsd64.py:demo, shortened) through the user's path: `make demo`'s command trains a model
that restores held-out photos — chelsea and coffee, which are not in the embedded training set — with a PSNR gain
(`restore --checkpoint WORKDIR` on degraded PNG files); it prints a handful of lines besides its progress bars; and
its final evaluation (the demo evaluates only at the end) leaves `best/`, which `restore --best` and
`evaluate --best` accept. (`make demo` runs the full-length recipe; its figures are in the README.)

One training subprocess serves every test here: it is the suite's longest (minutes on 2 cores).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import bsd64
from restorenet_jax.apps import evaluate, restore
from restorenet_jax.data import pipeline
from restorenet_jax.evaluation import metrics
from restorenet_jax.models import model_dir
from tests.conftest import FAST_COMPILE_FLAG

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
DEMO = bsd64.get_config("demo")
PRETRAIN_STEPS, STEPS, BATCH = 40, 40, 6  # the demo's schedule shortened (600 and 400 steps of 8 in full)
# tqdm's bar: "train run:  50%|█████     | 3/6 [00:01<00:01, 2.5it/s, ...]" (updates joined by carriage returns).
BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+ \[")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(workdir, stdout + stderr) of the shortened demo recipe, run as `make demo` runs it."""
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    # Hundreds of real training steps: run them with XLA's optimised code, not the suite's fast-compile setting.
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "").replace(FAST_COMPILE_FLAG, ""))
    done = subprocess.run([sys.executable, "-m", "restorenet_jax.main", "--config=configs/bsd64.py:demo",
                           f"--workdir={workdir}", f"--config.pretrain.steps={PRETRAIN_STEPS}",
                           f"--config.num_train_steps={STEPS}", f"--config.batch_size={BATCH}",
                           f"--config.checkpoint_every_steps={STEPS // 2}",
                           "--config.eval.limit=4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir, done.stdout + done.stderr


def _to_png(img, path):
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def test_demo_recipe_restores_unseen_photos(demo_run, tmp_path):
    workdir, _ = demo_run
    overall = json.loads((workdir / "report.json").read_text())["overall"]
    # 40 steps per stage: +1.01 dB here (60 steps: +1.48; the full demo: +2.3); a broken recipe gains nothing.
    assert overall["gain_db"] > 0.75, overall

    c = bsd64.get_config("demo")
    c.data.eval_kinds = "blur_noise,noise"
    examples = pipeline.make_eval_examples(c.data, split="test", seed=123, limit=3)
    names = {e["name"] for e in examples}
    assert all(n.startswith(("test/chelsea", "test/coffee")) for n in names), names
    inputs = []
    for i, ex in enumerate(examples):
        inputs.append(tmp_path / f"in_{i}.png")
        _to_png(ex["input"], inputs[-1])
    out = tmp_path / "out"
    assert restore.main(["--checkpoint", str(workdir), *map(str, inputs), "--output", str(out), "-q"]) == 0
    gains = []
    for i, ex in enumerate(examples):
        target = np.round(ex["target"] * 255) / 255
        gains.append(metrics.psnr(_read(out / f"in_{i}.png"), target) - metrics.psnr(_read(inputs[i]), target))
    assert np.mean(gains) > 1.0, gains  # +1.42 dB here


def test_demo_settings_evaluate_only_at_the_end():
    # What makes the `best/` test meaningful: the demo has no periodic evaluation, only the final one.
    assert DEMO.eval_every_steps == 0 and bsd64.get_config("demo_cctv").eval_every_steps == 0


def test_demo_run_prints_few_lines_besides_its_progress_bars(demo_run):
    _, output = demo_run
    lines = [ln for ln in re.split(r"[\r\n]+", output) if ln.strip() and not BAR.search(ln)]
    assert any(ln.startswith("held-out: input") for ln in lines), output[-2000:]
    assert any(BAR.search(ln) for ln in re.split(r"[\r\n]+", output)), "no progress bar seen"
    assert len(lines) < 60, "\n".join(lines)


def test_final_evaluation_writes_best_and_best_loads_everywhere(demo_run, tmp_path, capsys):
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
