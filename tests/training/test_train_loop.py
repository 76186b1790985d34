"""train_and_evaluate end to end on tiny models and the embedded set: outputs, NaN handling, init errors."""
import json

import jax
import numpy as np
import pytest

from restorenet_jax.training import checkpoints
from restorenet_jax.training import loop, stage
from restorenet_jax.data import pipeline
from restorenet_jax.training.initialization import InitError
from restorenet_jax.inference.restorer import Restorer
from tests.training.tiny import tiny_config


class NanInjector:
    """Wraps the real train iterator and poisons the inputs of chosen batches (checkpointable like the original)."""

    def __init__(self, inner, poison_from: int, poison_to: int):
        self.inner, self.poison, self.count = inner, range(poison_from, poison_to), 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = dict(next(self.inner))
        if self.count in self.poison:
            batch["input"] = batch["input"].copy()
            batch["input"][0, 0, 0, 0] = np.nan
        self.count += 1
        return batch

    def get_state(self):
        return json.dumps({"inner": self.inner.get_state(), "count": self.count}).encode()

    def set_state(self, state):
        s = json.loads(state)
        self.inner.set_state(s["inner"])
        self.count = s["count"]

    def start_prefetch(self):
        pass


def _injecting(poison_from, poison_to):
    def make(cfg, **kw):
        cfg = cfg.copy_and_resolve_references()
        cfg.degrade_on = "host"  # float inputs that can hold a NaN (the step passes degraded batches through)
        return NanInjector(pipeline.make_train_iterator(cfg, **kw), poison_from, poison_to)

    return make


def _metrics(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


class RecordingPredictor(loop.Predictor):
    """The trainer's Predictor, recording each instance and whether parameters were used in place."""

    instances: list = []

    def __init__(self, *args, **kwargs):
        self.in_place = []
        super().__init__(*args, **kwargs)
        RecordingPredictor.instances.append(self)

    def set_params(self, params):
        super().set_params(params)
        given, used = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(self.params)
        self.in_place.append(all(isinstance(g, jax.Array) and g is u for g, u in zip(given, used)))


def test_tiny_run_writes_everything_and_restores(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "Predictor", RecordingPredictor)
    RecordingPredictor.instances.clear()
    report = loop.train_and_evaluate(tiny_config(**{"eval_every_steps": 3}), tmp_path)
    # Two periodic evals and the final report share one predictor: one trace for the one eval shape, and the
    # training state's device parameters are used where they are (no re-upload per eval or per image).
    [predictor] = RecordingPredictor.instances
    assert predictor.traces == 1
    assert predictor.in_place == [True, True, True]
    for name in ("report.json", "report.md", "side_by_side.png", "metrics.jsonl", "arch.json", "config.json"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tensorboard").iterdir()), "TensorBoard event file missing"
    rows = [m for m in _metrics(tmp_path) if m["split"] == "train"]
    assert [m["step"] for m in rows] == [2, 4, 6]
    for key in ("loss", "psnr", "learning_rate", "grad_norm", "step_time_s", "images_per_s"):
        assert all(np.isfinite(m[key]) for m in rows), key
    assert set(report["overall"]) >= {"input_psnr", "output_psnr", "input_ssim", "output_ssim", "gain_db"}
    # Periodic eval: overall and per dataset/kind rows, sample strips as PNG, and the best model directory.
    evals = [m for m in _metrics(tmp_path) if m["split"].startswith("eval")]
    assert {m["split"] for m in evals} == {"eval", "eval/embedded/blur_noise"}
    assert [m["step"] for m in evals if m["split"] == "eval"] == [3, 6]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["eval_samples_0000003.png",
                                                                      "eval_samples_0000006.png"]
    assert checkpoints.resolve_model(tmp_path, which="best")[0] == loop.model_arch(tiny_config())
    assert json.loads((tmp_path / "report.json").read_text())["overall"] == report["overall"]
    assert checkpoints.TrainCheckpointer(tmp_path).latest_step() == 6
    # The workdir is a checkpoint for inference, giving the final parameters.
    arch, params = checkpoints.resolve_model(tmp_path)
    assert arch == loop.model_arch(tiny_config())
    y = Restorer(arch, params)(np.full((11, 13, 3), 0.5, np.float32))
    assert y.shape == (11, 13, 3)


def test_injected_nan_is_skipped_counted_and_checkpoint_stays_finite(tmp_path):
    loop.train_and_evaluate(tiny_config(), tmp_path, make_train_iter=_injecting(1, 2))
    last = [m for m in _metrics(tmp_path) if m["split"] == "train"][-1]
    assert last["nonfinite_total"] == 1
    _, params = checkpoints.resolve_model(tmp_path)
    assert all(np.isfinite(v).all() for v in jax.tree_util.tree_leaves(params))


def test_repeated_nonfinite_steps_stop_the_run_keeping_good_checkpoints(tmp_path):
    config = tiny_config(**{"max_nonfinite_steps": 3, "num_train_steps": 12})
    with pytest.raises(stage.NonFiniteError, match="consecutive non-finite"):
        loop.train_and_evaluate(config, tmp_path, make_train_iter=_injecting(1, 100))
    step = checkpoints.TrainCheckpointer(tmp_path).latest_step()
    assert step is not None and step < 12
    _, params = checkpoints.resolve_model(tmp_path)
    assert all(np.isfinite(v).all() for v in jax.tree_util.tree_leaves(params))


def test_frozen_random_backbones_are_refused(tmp_path):
    with pytest.raises(InitError, match="python -m convert.torch_to_flax"):
        loop.train_and_evaluate(tiny_config(**{"init.allow_random_backbones": False}), tmp_path / "a")
    with pytest.raises(InitError, match="does not exist"):
        loop.train_and_evaluate(tiny_config(**{"init.deblur": str(tmp_path / "missing")}), tmp_path / "b")


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    """A truncated params file in the newest checkpoint: the restart warns, resumes from the previous checkpoint,
    and (deterministic data order and steps) ends with exactly the parameters the first run had."""
    config = tiny_config(**{"num_train_steps": 6, "checkpoint_every_steps": 3})
    loop.train_and_evaluate(config, tmp_path)
    _, first = checkpoints.resolve_model(tmp_path)
    files = [p for p in (tmp_path / "checkpoints" / "6" / "params").rglob("*") if p.is_file() and p.stat().st_size]
    assert files
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with caplog.at_level("WARNING"):
        loop.train_and_evaluate(config, tmp_path)
    assert any("step 6" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "corrupt_checkpoints" / "6").is_dir()
    assert checkpoints.TrainCheckpointer(tmp_path).latest_step() == 6
    _, again = checkpoints.resolve_model(tmp_path)
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(a, b)
