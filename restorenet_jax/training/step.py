"""The train state and the pure train step (one phase of trainable groups at a time).

Frozen groups enter the forward pass through `stop_gradient` and are not differentiated, so a RestoreNet step in
stage 'extra' runs the backbones forward only. A non-finite loss or gradient norm skips the update (parameters and
optimiser state unchanged) and is counted in the state.
"""
from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from restorenet_jax.training.losses import batch_psnr


class TrainState(flax.struct.PyTreeNode):
    """Everything a resumed run needs besides the data iterator."""

    step: jax.Array  # int32 scalar
    params: Any
    opt_state: Any
    ema_params: Any  # None when EMA is off
    nonfinite_streak: jax.Array  # consecutive skipped steps
    nonfinite_total: jax.Array  # all skipped steps


def create_train_state(params: Any, tx: optax.GradientTransformation, use_ema: bool) -> TrainState:
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      ema_params=jax.tree_util.tree_map(jnp.copy, params) if use_ema else None,
                      nonfinite_streak=jnp.zeros((), jnp.int32), nonfinite_total=jnp.zeros((), jnp.int32))


def _select(pred: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def make_train_step(model: nn.Module, loss_fn: Callable, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, labels: Any, trainable: frozenset, grad_clip: float,
                    ema_decay: float) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Builds `train_step(state, batch) -> (state, metrics)` for one phase (`trainable` groups).

    Args:
      model: the Flax module; labels: group name per parameter leaf (same tree as params).
      tx: from optim.make_optimizer (direction only); schedule: learning rate by step.
      grad_clip: global-norm clip over trainable gradients (<= 0: off).
      ema_decay: EMA of parameters (used only if the state carries ema_params).
    """

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        flat, treedef = jax.tree_util.tree_flatten(state.params)
        flat_labels = treedef.flatten_up_to(labels)
        train_idx = [i for i, g in enumerate(flat_labels) if g in trainable]

        def compute_loss(train_leaves):
            leaves = [jax.lax.stop_gradient(v) for v in flat]
            for i, v in zip(train_idx, train_leaves):
                leaves[i] = v
            pred = model.apply({"params": jax.tree_util.tree_unflatten(treedef, leaves)}, batch["input"])
            return loss_fn(pred, batch["target"]), pred

        (loss, pred), g_train = jax.value_and_grad(compute_loss, has_aux=True)([flat[i] for i in train_idx])
        grad_norm = optax.global_norm(g_train)
        if grad_clip > 0:
            scale = jnp.minimum(1.0, grad_clip / (grad_norm + 1e-6))
            g_train = [g * scale for g in g_train]
        grads = [jnp.zeros_like(v) for v in flat]
        for i, g in zip(train_idx, g_train):
            grads[i] = g
        grads = jax.tree_util.tree_unflatten(treedef, grads)

        updates, new_opt = tx.update(grads, state.opt_state, state.params)
        # Groups outside this phase keep their optimiser moments exactly (they resume when their phase returns).
        inner = {g: (s if g in trainable else state.opt_state.inner_states[g])
                 for g, s in new_opt.inner_states.items()}
        new_opt = new_opt._replace(inner_states=inner)
        lr = schedule(state.step)
        flat_updates = treedef.flatten_up_to(updates)
        new_flat = list(flat)
        for i in train_idx:
            new_flat[i] = (flat[i] - lr * flat_updates[i]).astype(flat[i].dtype)
        new_params = jax.tree_util.tree_unflatten(treedef, new_flat)

        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        params = _select(finite, new_params, state.params)
        opt_state = _select(finite, new_opt, state.opt_state)
        ema = state.ema_params
        if ema is not None:
            ema = _select(finite, jax.tree_util.tree_map(
                lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, new_params), ema)
        skipped = (~finite).astype(jnp.int32)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema,
                                  nonfinite_streak=(state.nonfinite_streak + skipped) * skipped,
                                  nonfinite_total=state.nonfinite_total + skipped)
        metrics = {"loss": loss, "psnr": batch_psnr(pred, batch["target"]), "grad_norm": grad_norm,
                   "learning_rate": lr, "skipped": skipped}
        return new_state, metrics

    return train_step
