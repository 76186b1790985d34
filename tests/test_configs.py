"""Every experiment config loads, describes a valid model, and its freezing groups cover the parameters."""
import functools
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from restorenet_jax.training import optim
from restorenet_jax.models.restorenet import abstract_params
from restorenet_jax.training.config_check import ConfigError, check_config
from restorenet_jax.training.loop import model_arch

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = [("bsd64", None), ("bsd64", "demo"), ("bsd64", "demo_cctv"), ("bsd32", None), ("blno_only", None), ("serial", None),
           ("baseline", "gopro64"), ("baseline", "sidd64"), ("default", None)] + \
          [("ratio_mix", r) for r in ("13_2_2_1", "13_3_3_2", "11_4_4_1", "8_4_4_1")]


@functools.lru_cache(maxsize=None)
def _shapes(arch):
    return abstract_params(arch)  # most configs share the full-size RestoreNet: trace it once


def _load(name, variant):
    module = importlib.import_module(f"configs.{name}")
    return module.get_config(variant) if variant else module.get_config()


@pytest.mark.parametrize("name,variant", CONFIGS)
def test_config_builds_a_valid_model_and_stage(name, variant):
    c = _load(name, variant)
    arch = model_arch(c)
    params = _shapes(arch.replace(tlc=False))
    labels = optim.group_labels(params, c.freeze.groups)
    phases = optim.stage_phases(c.freeze, sorted(set(jax.tree_util.tree_leaves(labels))))
    assert phases and all(p for p, _ in phases)
    assert c.batch_size > 0 and c.num_train_steps >= 0


def test_seed_experiments_have_their_ratios_and_widths():
    assert _load("ratio_mix", "8_4_4_1").data.ratio == "8:4:4:1"
    assert _load("blno_only", None).data.ratio == "1:0:0:0"
    assert _load("bsd32", None).model.extra.width == 32 and _load("bsd64", None).model.extra.width == 64
    assert _load("bsd64", None).data.datasets == "bsd_b"
    assert model_arch(_load("serial", None)).kind == "serial"
    gopro = model_arch(_load("baseline", "gopro64"))
    assert gopro.kind == "baseline" and gopro.backbone.enc_blk_nums == (1, 1, 1, 28) and gopro.tlc
    with pytest.raises(ValueError, match="unknown"):
        _load("ratio_mix", "1_2_3_4")


@pytest.mark.parametrize("name,variant", CONFIGS)
def test_every_experiment_config_passes_the_checks(name, variant):
    check_config(_load(name, variant))


@pytest.mark.parametrize("field,value,expected", [
    ("num_train_steps", -5, "config.num_train_steps = -5: expected an integer >= 0"),
    ("data.ratio", "foo", "config.data.ratio = 'foo': expected four non-negative numbers"),
    ("data.ratio", "1:0:0", "config.data.ratio = '1:0:0'"),
    ("data.noise.kind", "pink", "config.data.noise.kind = 'pink': expected one of 'low_light'"),
    ("keep_checkpoints", 1, "config.keep_checkpoints = 1: expected an integer >= 2"),
    ("freeze.stage", "most", "config.freeze.stage = 'most'"),
])
def test_bad_fields_are_named_with_their_value(field, value, expected):
    c = _load("bsd64", "demo")
    node = c
    *parents, leaf = field.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ConfigError, match=re.escape(expected)):
        check_config(c)


def test_training_command_reports_a_bad_field_and_exits_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "restorenet_jax.main", "--config=configs/bsd64.py:demo",
                           f"--workdir={tmp_path / 'run'}", "--config.num_train_steps=-5", "--config.data.ratio=foo"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert done.returncode == 2
    assert "config.num_train_steps = -5" in done.stderr and "config.data.ratio = 'foo'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing started
