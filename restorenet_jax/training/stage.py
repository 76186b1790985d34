"""One training stage: `run_stage` trains parameters for config.num_train_steps in a workdir.

The stage is data parallel over one Mesh of all devices (jit with shardings, donated state), resumes from the
newest checkpoint in its workdir (state and the deterministic data iterator), skips non-finite steps, and logs to
metrics.jsonl / TensorBoard with a progress bar. The main run and each backbone pre-training are stages.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from tqdm import tqdm

from restorenet_jax.data import pipeline
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.restorenet import build_model
from restorenet_jax.training import checkpoints, optim, sharding
from restorenet_jax.training.losses import get_loss
from restorenet_jax.training.metric_writer import MetricWriter
from restorenet_jax.training.step import (TrainState, create_train_state, eval_params, make_device_inputs,
                                           make_train_step)

MakeIter = Callable[..., Any]


class NonFiniteError(RuntimeError):
    """Too many consecutive non-finite steps: the run stops (the last good checkpoint stays)."""


def model_arch(config: ml_collections.ConfigDict) -> ModelArch:
    """The ModelArch described by config.model."""
    return ModelArch.from_dict(config.model.to_dict())


def run_stage(config: ml_collections.ConfigDict, arch: ModelArch, workdir: Path, params: Any,
              make_train_iter: MakeIter | None = None, evaluate_fn: Callable | None = None) -> TrainState:
    """Trains `params` for config.num_train_steps in `workdir`, resuming from its newest checkpoint if any.

    Args:
      params: the initial parameters; shapes (jax.ShapeDtypeStruct leaves) suffice when the workdir holds a
        checkpoint.
      evaluate_fn: optional callback(step, params, writer) -> overall metrics dict, run every
        config.eval_every_steps (it may write per-group scalars and sample images itself).
    """
    mesh = sharding.make_mesh()
    n_dev, n_proc = jax.device_count(), jax.process_count()
    if config.batch_size % n_dev or config.batch_size % n_proc:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the device count {n_dev}")
    labels = optim.group_labels(params, config.freeze.groups)
    groups = sorted(set(jax.tree_util.tree_leaves(labels)))
    phases = optim.stage_phases(config.freeze, groups)
    trainable_any = set().union(*[p for p, _ in phases])
    tx = optim.make_optimizer(config.optim, labels, trainable_any)
    schedule = optim.learning_rate_schedule(config.optim, config.num_train_steps)
    use_ema = config.optim.ema_decay > 0
    data_iter = (make_train_iter or pipeline.make_train_iterator)(
        config.data, seed=config.seed, global_batch_size=config.batch_size, process_index=jax.process_index(),
        process_count=n_proc)
    abstract = jax.eval_shape(lambda p: create_train_state(p, tx, labels, trainable_any, use_ema), params)
    state_sh = sharding.param_sharding(mesh, abstract, config.shard_params_min_size)
    ckpt = checkpoints.TrainCheckpointer(workdir, keep=config.keep_checkpoints)
    if ckpt.latest_step() is not None:
        # Restore into shapes: the checkpoint supplies every value, so no initial state is computed and thrown away.
        target = jax.tree_util.tree_map(lambda a, sh: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sh),
                                        abstract, state_sh)
        state = jax.device_put(ckpt.restore_newest_readable(target, data_iter), state_sh)
        # Printed whatever the log level: a user must see that a run continued rather than started over.
        print(f"resumed {workdir} at step {int(state.step)}", file=sys.stderr, flush=True)
    else:
        state = jax.device_put(create_train_state(params, tx, labels, trainable_any, use_ema), state_sh)

    model = build_model(arch, dtype=jnp.dtype(config.compute_dtype))
    loss_fn = get_loss(config.loss)
    # Degradations on the device: made inside each jitted step from the host's uint8 crops (a batch the iterator
    # already degraded passes through).
    prepare = make_device_inputs(config.data, config.seed, sharding.batch_sharding(mesh)) \
        if pipeline.degrades_on_device(config.data) else None
    step_fns = {}
    for phase, _ in phases:
        fn = make_train_step(model, loss_fn, tx, schedule, labels, phase, trainable_any, config.optim.ema_decay,
                             prepare)
        step_fns[phase] = jax.jit(fn, in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                                  out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)

    is_main = jax.process_index() == 0
    writer = MetricWriter(workdir, enabled=is_main)  # a no-op writer on processes other than 0
    start = int(state.step)
    total = config.num_train_steps
    bar = tqdm(total=total, initial=start, desc=f"train {workdir.name}", disable=not is_main, dynamic_ncols=True)
    t_last, s_last = time.perf_counter(), start
    data_s = 0.0  # seconds spent getting batches since the last log (the host's share of the step time)
    try:
        for step in range(start, total):
            t_data = time.perf_counter()
            batch = sharding.global_batch(mesh, next(data_iter))
            data_s += time.perf_counter() - t_data
            state, metrics = step_fns[optim.phase_at(phases, step)](state, batch)
            done = step + 1
            bar.update(1)
            if done % config.log_every_steps == 0 or done == total:
                m = jax.device_get(metrics)
                now = time.perf_counter()
                dt = (now - t_last) / max(done - s_last, 1)
                m.update(step_time_s=dt, images_per_s=config.batch_size / dt,
                         data_time_s=data_s / max(done - s_last, 1), nonfinite_total=int(state.nonfinite_total))
                t_last, s_last, data_s = now, done, 0.0
                writer.scalars(done, m)
                bar.set_postfix(loss=f"{m['loss']:.3f}", psnr=f"{m['psnr']:.2f}", lr=f"{m['learning_rate']:.1e}")
                _check_finite(state, config, done)
            if evaluate_fn is not None and config.eval_every_steps and done % config.eval_every_steps == 0:
                writer.scalars(done, evaluate_fn(done, eval_params(state), writer), prefix="eval")
            if done % config.checkpoint_every_steps == 0 or done == total:
                _check_finite(state, config, done)  # never write a checkpoint from a diverged run
                ckpt.save(state, data_iter, force=done == total)
        if ckpt.latest_step() is None:  # num_train_steps == 0: still leave a loadable checkpoint
            ckpt.save(state, data_iter, force=True)
    finally:
        # Also on errors and interrupts: finish the checkpoint in flight so that no completed work is lost.
        bar.close()
        ckpt.wait()
        ckpt.close()
        writer.close()
    return state


def _check_finite(state: TrainState, config, step: int) -> None:
    streak = int(state.nonfinite_streak)
    if streak:
        logging.warning("step %d: %d consecutive non-finite steps skipped (%d in all)", step, streak,
                        int(state.nonfinite_total))
    if streak >= config.max_nonfinite_steps:
        raise NonFiniteError(f"{streak} consecutive non-finite losses/gradients at step {step}; stopping. The last "
                             "checkpoint holds the last good parameters. Lower optim.lr or check the data.")

