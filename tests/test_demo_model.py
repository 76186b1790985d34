"""The demo recipe (configs/bsd64.py:demo, shortened) trains a model that restores held-out photos — chelsea and
coffee, which are not in the embedded training set — with a PSNR gain, through the user's path: `make demo`'s
command, then `restore --checkpoint WORKDIR` on degraded PNG files. (`make demo` runs the full-length recipe; its
figures are in the README.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import bsd64
from restorenet_jax.evaluation import metrics
from restorenet_jax.apps import restore
from restorenet_jax.data import pipeline
from tests.conftest import FAST_COMPILE_FLAG

ROOT = Path(__file__).resolve().parents[1]


def _to_png(img, path):
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


@pytest.mark.slow
def test_demo_recipe_restores_unseen_photos(tmp_path):
    workdir = tmp_path / "demo"
    # Hundreds of real training steps: run them with XLA's optimised code, not the suite's fast-compile setting.
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "").replace(FAST_COMPILE_FLAG, ""))
    done = subprocess.run([sys.executable, "-m", "restorenet_jax.main", "--config=configs/bsd64.py:demo",
                           f"--workdir={workdir}", "--config.pretrain.steps=100", "--config.num_train_steps=120",
                           "--config.checkpoint_every_steps=60", "--config.eval.limit=4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    overall = json.loads((workdir / "report.json").read_text())["overall"]
    assert overall["gain_db"] > 1.0, overall

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
    assert np.mean(gains) > 1.0, gains
