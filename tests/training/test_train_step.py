"""The train step: finite loss, overfitting a fixed batch, freezing (bit-identical frozen groups), alternation."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from restorenet_jax.training import optim
from restorenet_jax.training.losses import psnr_loss
from restorenet_jax.models.restorenet import build_model, init_params
from restorenet_jax.training.loop import model_arch
from restorenet_jax.training.step import create_train_state, make_train_step
from tests.training.tiny import tiny_config


def _setup(stage="extra", kind="restorenet", steps=100, **freeze):
    c = tiny_config(**{"freeze.stage": stage, "model.kind": kind, "num_train_steps": steps,
                       "optim.grad_clip": 1.0, "optim.lr": 3e-3})
    for k, v in freeze.items():
        c.freeze[k] = v
    if kind == "baseline":
        c.model.backbone = c.model.deblur
        c.freeze.groups = ml_collections.ConfigDict(dict(backbone=".*"))
    arch = model_arch(c)
    params = init_params(arch, jax.random.PRNGKey(0))
    labels = optim.group_labels(params, c.freeze.groups)
    phases = optim.stage_phases(c.freeze, sorted(set(jax.tree_util.tree_leaves(labels))))
    ever = set().union(*[p for p, _ in phases])
    tx = optim.make_optimizer(c.optim, labels, ever)
    state = create_train_state(params, tx, labels, ever, use_ema=False)
    sched = optim.learning_rate_schedule(c.optim, steps)
    model = build_model(arch)
    fns = {p: jax.jit(make_train_step(model, psnr_loss, tx, sched, labels, p, ever, 0.0)) for p, _ in phases}
    return state, fns, phases


def _batch(seed=0, n=2, size=16):
    rng = np.random.default_rng(seed)
    target = rng.random((n, size, size, 3), dtype=np.float32)
    noisy = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0, 1).astype(np.float32)
    return {"input": jnp.asarray(noisy), "target": jnp.asarray(target)}


@pytest.fixture(scope="module")
def extra_stage():
    """One compiled stage-'extra' step shared by several tests (compiling dominates their time)."""
    return _setup("extra", steps=20)


def test_one_step_is_finite_and_changes_only_trainable_params(extra_stage):
    state, fns, phases = extra_stage
    new, m = fns[phases[0][0]](state, _batch())
    assert np.isfinite(float(m["loss"])) and int(new.step) == 1 and int(m["skipped"]) == 0
    for branch in ("deblur", "denoise"):
        for a, b in zip(jax.tree_util.tree_leaves(state.params[branch]), jax.tree_util.tree_leaves(new.params[branch])):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(state.params["extra"]),
                                                           jax.tree_util.tree_leaves(new.params["extra"]))]
    assert any(changed)


def test_overfits_a_fixed_batch():
    state, fns, phases = _setup("full", kind="baseline", steps=300)
    fn = fns[phases[0][0]]
    batch = _batch(1)
    losses = []
    for _ in range(300):
        state, m = fn(state, batch)
        losses.append(float(m["loss"]))
    assert np.isfinite(losses).all()
    # PSNR loss is -PSNR: the fitted batch must gain several dB.
    assert losses[-1] < losses[0] - 5.0, (losses[0], losses[-1])


def test_extra_stage_keeps_backbones_bit_identical_over_many_steps(extra_stage):
    state, fns, phases = extra_stage
    start = jax.tree_util.tree_map(np.asarray, state.params)
    for i in range(20):
        state, _ = fns[phases[0][0]](state, _batch(i))
    for branch in ("deblur", "denoise"):
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), start[branch],
                               state.params[branch])


def test_alternate_stage_alternates_the_frozen_side():
    state, fns, phases = _setup("alternate", steps=8, alternate_order=("deblur", "extra"), alternate_steps=(2, 2))
    assert [sorted(p) for p, _ in phases] == [["deblur"], ["extra"]]
    history = []
    for step in range(8):
        before = jax.tree_util.tree_map(np.asarray, state.params)
        state, _ = fns[optim.phase_at(phases, step)](state, _batch(step))
        moved = {g: any(not np.array_equal(a, np.asarray(b)) for a, b in
                        zip(jax.tree_util.tree_leaves(before[g]), jax.tree_util.tree_leaves(state.params[g])))
                 for g in ("deblur", "denoise", "extra")}
        history.append(moved)
    expected_deblur = [True, True, False, False, True, True, False, False]
    assert [h["deblur"] for h in history] == expected_deblur
    assert [h["extra"] for h in history] == [not d for d in expected_deblur]
    assert not any(h["denoise"] for h in history)


def test_nan_batch_is_skipped_and_counted(extra_stage):
    state, fns, phases = extra_stage
    fn = fns[phases[0][0]]
    state, _ = fn(state, _batch(0))
    bad = _batch(1)
    bad["input"] = bad["input"].at[0, 3, 3, 0].set(jnp.nan)
    before = jax.tree_util.tree_map(np.asarray, state.params)
    state, m = fn(state, bad)
    assert int(m["skipped"]) == 1 and int(state.nonfinite_total) == 1 and int(state.nonfinite_streak) == 1
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), before, state.params)
    state, m = fn(state, _batch(2))
    assert int(m["skipped"]) == 0 and int(state.nonfinite_streak) == 0 and int(state.nonfinite_total) == 1


def test_group_typo_is_an_error_not_a_silent_freeze():
    c = tiny_config()
    params = init_params(model_arch(c), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="matches no group"):
        optim.group_labels(params, {"deblur": "^deblur/", "denoise": "^denoise/", "extra": "^extr/"})
    with pytest.raises(ValueError, match="several groups"):
        optim.group_labels(params, {"a": "^deblur/", "b": "deblur", "denoise": "^denoise/", "extra": "^extra/"})


def test_frozen_backbones_cost_no_backward_pass():
    """Stage 'extra' differentiates only the extra network: its compiled step does far fewer FLOPs than 'full'."""
    flops = {}
    for stage in ("extra", "full"):
        state, fns, phases = _setup(stage, steps=2)
        analysis = fns[phases[0][0]].lower(state, _batch()).cost_analysis()  # HLO cost model, no XLA compile
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        flops[stage] = float(analysis["flops"])
    # The tiny backbones hold most of the compute; without their backward pass the step is much cheaper.
    assert flops["extra"] < 0.7 * flops["full"], flops


def test_ema_tracks_the_parameters():
    c = tiny_config(**{"model.kind": "baseline", "freeze.stage": "full", "optim.ema_decay": 0.5})
    c.model.backbone = c.model.deblur
    c.freeze.groups = ml_collections.ConfigDict(dict(backbone=".*"))
    arch = model_arch(c)
    params = init_params(arch, jax.random.PRNGKey(0))
    labels = optim.group_labels(params, c.freeze.groups)
    tx = optim.make_optimizer(c.optim, labels, {"backbone"})
    state = create_train_state(params, tx, labels, {"backbone"}, use_ema=True)
    fn = jax.jit(make_train_step(build_model(arch), psnr_loss, tx, optim.learning_rate_schedule(c.optim, 4),
                                 labels, frozenset({"backbone"}), {"backbone"}, 0.5))
    new, _ = fn(state, _batch())
    jax.tree_util.tree_map(lambda e, p0, p1: np.testing.assert_allclose(e, 0.5 * p0 + 0.5 * p1, rtol=1e-6),
                           new.ema_params, state.params, new.params)
    # A skipped (non-finite) step leaves the EMA as it was.
    bad = _batch(1)
    bad["input"] = bad["input"].at[0, 0, 0, 0].set(jnp.nan)
    skipped, m = fn(new, bad)
    assert int(m["skipped"]) == 1
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                           skipped.ema_params, new.ema_params)


def test_stage_extra_state_holds_no_backbone_sized_arrays():
    """Full-size RestoreNet-w64, stage 'extra' with the EMA on (shapes only, nothing computed): the optimiser
    moments and the EMA cover the extra network alone."""
    from restorenet_jax.configs import bench as bench_config
    from restorenet_jax.models.arch import ModelArch
    from restorenet_jax.models.restorenet import abstract_params

    c = tiny_config()
    arch = ModelArch.from_dict(bench_config.get_config().models.restorenet64.to_dict())
    params = abstract_params(arch)
    labels = optim.group_labels(params, c.freeze.groups)
    tx = optim.make_optimizer(c.optim, labels, {"extra"})
    state = jax.eval_shape(lambda p: create_train_state(p, tx, labels, {"extra"}, use_ema=True), params)

    def sizes(tree):
        return sorted(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree) if np.ndim(x) > 0 or x.shape)

    extra_sizes = sizes(params["extra"])
    backbone_sizes = set(sizes(params["deblur"]) + sizes(params["denoise"])) - set(extra_sizes)
    assert sizes(state.ema_params) == extra_sizes
    moments = [x for x in jax.tree_util.tree_leaves(state.opt_state) if x.shape]
    assert sorted(int(np.prod(x.shape)) for x in moments) == sorted(extra_sizes * 2)  # Adam's mu and nu
    assert not backbone_sizes & set(sizes(state.opt_state))
    total = sum(extra_sizes)
    assert total < 0.15 * sum(sizes(params)), (total, sum(sizes(params)))


@pytest.mark.parametrize("steps", [6, 100])
def test_learning_rate_warms_up_then_decays_even_in_a_run_shorter_than_its_warmup(steps):
    c = tiny_config(**{"optim.lr": 8e-3, "optim.warmup_steps": 20, "optim.end_lr": 1e-7})
    sched = optim.learning_rate_schedule(c.optim, steps)
    peak = min(20, steps - 1)
    assert float(sched(0)) == 0.0
    assert float(sched(peak)) == pytest.approx(8e-3)
    assert 0 < float(sched(peak // 2)) < 8e-3  # warming up
    assert float(sched(steps)) == pytest.approx(1e-7, rel=1e-3)
