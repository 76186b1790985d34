"""Every experiment config loads, describes a valid model, and its freezing groups cover the parameters."""
import functools
import importlib

import jax
import pytest

from restorenet_jax.training import optim
from restorenet_jax.models.restorenet import abstract_params
from restorenet_jax.training.loop import model_arch

CONFIGS = [("bsd64", None), ("bsd64", "demo"), ("bsd32", None), ("blno_only", None), ("serial", None),
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
