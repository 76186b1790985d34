"""The train state and the pure train step (one phase of trainable groups at a time).

Frozen groups enter the forward pass through `stop_gradient` and are not differentiated, so a RestoreNet step in
stage 'extra' runs the backbones forward only; they have no optimiser moments and no EMA copy either (the state
holds those for the ever-trainable groups only, see `param_tree`). A non-finite loss or gradient skips the update
(parameters, moments and EMA unchanged) and is counted by the optimiser's `apply_if_finite` state.

With the degradations on the device (data.degrade_on), the step receives the host's uint8 crops and makes the
network inputs first (`make_device_inputs`), inside the same jitted program and sharded like the batch; the key is
a function of (seed, state.step), so a resumed run draws the same degradations.
"""
from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from restorenet_jax.data import device_degrade
from restorenet_jax.training import optim, param_tree
from restorenet_jax.training.losses import batch_psnr


class TrainState(flax.struct.PyTreeNode):
    """Everything a resumed run needs besides the data iterator.

    `opt_state` and `ema_params` cover the ever-trainable groups only (pruned trees); `ema_params` is None when
    the EMA is off. The non-finite counters live in the optimiser's `apply_if_finite` state.
    """

    step: jax.Array  # int32 scalar
    params: Any
    opt_state: Any
    ema_params: Any

    @property
    def nonfinite_streak(self) -> jax.Array:
        """Consecutive skipped (non-finite) steps up to now."""
        return self.opt_state.notfinite_count

    @property
    def nonfinite_total(self) -> jax.Array:
        """All skipped steps."""
        return self.opt_state.total_notfinite


def create_train_state(params: Any, tx: optax.GradientTransformation, labels: Any, trainable_groups: set[str],
                       use_ema: bool) -> TrainState:
    """The initial state; `trainable_groups`: every group that trains in some phase (tx's groups)."""
    params = jax.tree_util.tree_map(jnp.asarray, params)
    ever = param_tree.prune(params, optim.trainable_mask(labels, trainable_groups))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(ever),
                      ema_params=jax.tree_util.tree_map(jnp.copy, ever) if use_ema else None)


def eval_params(state: TrainState) -> Any:
    """The parameters meant for evaluation: the EMA of the trained groups over the parameters, when kept."""
    return state.params if state.ema_params is None else param_tree.overlay(state.params, state.ema_params)


PrepareBatch = Callable[[dict, jax.Array], dict]


def make_device_inputs(data_cfg: Any, seed: int, sharding: Any = None, noise_model: Any = None) -> PrepareBatch:
    """`prepare(batch, step) -> {'input', 'target'}`: the network inputs made on the device from the host's crops.

    A batch of uint8 crops ({'target', 'degraded', 'pair_kind'}, see data.pipeline) becomes float32 inputs of the
    four kinds drawn with data_cfg.ratio (`device_degrade.degrade`, key `step_key(seed, step)`) and float32
    targets; a batch that already holds 'input' (host degradation, test iterators) passes through unchanged.
    Every operation is per example, so the work stays with each device's slice of the batch; `sharding` (the
    batch sharding) pins the results there. Noise kind 'danet' runs its generator in the same program: pass its
    DanetNoiser as `noise_model` (by default loaded from data_cfg.noise.danet_checkpoint).
    """
    if data_cfg.noise.kind == "danet" and noise_model is None:
        from restorenet_jax.data.degradations import danet_noiser

        noise_model = danet_noiser(str(data_cfg.noise.danet_checkpoint))

    def prepare(batch: dict, step: jax.Array) -> dict:
        if "degraded" not in batch:
            return batch
        inputs, _ = device_degrade.degrade(batch["target"], batch["degraded"], device_degrade.step_key(seed, step),
                                           data_cfg, batch["pair_kind"], noise_model)
        out = {"input": inputs, "target": device_degrade.to_float(batch["target"])}
        if sharding is not None:
            out = jax.lax.with_sharding_constraint(out, sharding)
        return out

    return prepare


def make_train_step(model: nn.Module, loss_fn: Callable, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, labels: Any, trainable: frozenset, ever_trainable: set[str],
                    ema_decay: float, prepare_batch: PrepareBatch | None = None
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Builds `train_step(state, batch) -> (state, metrics)` for one phase (`trainable` groups).

    Args:
      model: the Flax module; labels: group name per parameter leaf (same tree as params).
      tx: from optim.make_optimizer over `ever_trainable` (direction only); schedule: learning rate by step.
      trainable: this phase's groups (a subset of `ever_trainable`).
      ema_decay: EMA of the trained parameters (used only if the state carries ema_params).
      prepare_batch: optional `(batch, state.step) -> {'input', 'target'}` run first, inside the step (e.g.
        `make_device_inputs`); None: the batch already holds float 'input' and 'target'.
    """
    phase_mask = optim.trainable_mask(labels, trainable)
    ever_mask = optim.trainable_mask(labels, ever_trainable)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        if prepare_batch is not None:
            batch = prepare_batch(batch, state.step)
        frozen = jax.tree_util.tree_map(jax.lax.stop_gradient, state.params)

        def compute_loss(train_part):
            pred = model.apply({"params": param_tree.overlay(frozen, train_part)}, batch["input"])
            return loss_fn(pred, batch["target"]), pred

        train_part = param_tree.prune(state.params, phase_mask)
        (loss, pred), grads = jax.value_and_grad(compute_loss, has_aux=True)(train_part)
        grad_norm = optax.global_norm(grads)
        # A non-finite loss with finite gradients must be skipped too: poison the gradients apply_if_finite checks.
        grads = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(loss), g, jnp.nan), grads)
        # Groups resting in this phase get zero gradients (no effect on the global norm); their moments are
        # restored below, so XLA drops their update as dead code.
        ever_params = param_tree.prune(state.params, ever_mask)
        ever_grads = param_tree.overlay(jax.tree_util.tree_map(jnp.zeros_like, ever_params), grads)
        updates, opt_state = tx.update(ever_grads, state.opt_state, ever_params)
        resting = {g: s for g, s in optim.group_states(state.opt_state).items() if g not in trainable}
        opt_state = optim.with_group_states(opt_state, {**optim.group_states(opt_state), **resting})

        lr = schedule(state.step)
        new_part = jax.tree_util.tree_map(lambda p, u: (p - lr * u).astype(p.dtype), train_part,
                                          param_tree.prune(updates, param_tree.prune(phase_mask, ever_mask)))
        params = param_tree.overlay(state.params, new_part)
        finite = opt_state.last_finite
        ema = state.ema_params
        if ema is not None:
            trained = param_tree.prune(params, ever_mask)
            ema = jax.tree_util.tree_map(lambda e, p: jnp.where(finite, ema_decay * e + (1.0 - ema_decay) * p, e),
                                         ema, trained)
        skipped = (~finite).astype(jnp.int32)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema)
        metrics = {"loss": loss, "psnr": batch_psnr(pred, batch["target"]), "grad_norm": grad_norm,
                   "learning_rate": lr, "skipped": skipped}
        return new_state, metrics

    return train_step
