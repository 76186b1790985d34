"""The demo recipe (configs/bsd64.py:demo, shortened) trains a model that restores held-out photos — chelsea and
coffee, which are not in the embedded training set — with a PSNR gain, through the user's path:
`restore --checkpoint WORKDIR` on degraded PNG files. (`make demo` runs the full-length recipe; its figures are in
the README.)"""
import numpy as np
import pytest
from PIL import Image

from configs import bsd64
from restorenet_jax import metrics, restore, train
from restorenet_jax.data import pipeline


def _to_png(img, path):
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


@pytest.mark.slow
def test_demo_recipe_restores_unseen_photos(tmp_path):
    c = bsd64.get_config("demo")
    c.pretrain.steps = 100
    c.num_train_steps = 120
    c.checkpoint_every_steps = 60
    c.eval.limit = 4
    workdir = tmp_path / "demo"
    report = train.train_and_evaluate(c, workdir)
    assert report["overall"]["gain_db"] > 1.0, report["overall"]

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
