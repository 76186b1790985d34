"""Optimiser, learning-rate schedule and freezing, all from the config.

Parameters are split into named groups by regexes over their '/'-joined paths (`config.freeze.groups`). A
*phase* is a set of trainable groups; the stage (`config.freeze.stage`) is a sequence of phases:
  'extra'      backbones frozen, the extra network trains (RestoreNet's main recipe);
  'alternate'  cycles: deblur trains with extra frozen, then extra with deblur frozen (cycle lengths in config);
  'full'       every group trains.
Each trainable-at-some-point group gets AdamW moments of its own (optax.multi_transform); groups that never train
have no optimiser state (nor EMA copy) at all. The train step applies updates only to the current phase's groups and
keeps the other groups' parameters and moments bit-identical.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import optax

from restorenet_jax.training import param_tree

Phase = frozenset  # of group names

# apply_if_finite's limit of consecutive non-finite updates before it applies one anyway: never (int32 max).
NEVER_GIVE_UP = 2**31 - 1

STAGES = ("extra", "alternate", "full")


def group_labels(params: Mapping[str, Any], groups: Mapping[str, str]) -> Any:
    """A tree shaped like `params` whose leaves are group names (the one regex that matches the path).

    Raises ValueError naming a parameter that matches no group or several, so a typo cannot silently freeze it.
    """
    compiled = [(name, re.compile(rx)) for name, rx in groups.items()]

    def label(path, _):
        key = "/".join(str(getattr(k, "key", k)) for k in path)
        names = [name for name, rx in compiled if rx.search(key)]
        if len(names) != 1:
            problem = "matches no group" if not names else f"matches several groups {names}"
            raise ValueError(f"parameter {key!r} {problem} in config.freeze.groups "
                             f"{ {n: rx.pattern for n, rx in compiled} }")
        return names[0]

    return jax.tree_util.tree_map_with_path(label, dict(params))


def stage_phases(freeze: ml_collections.ConfigDict, group_names: Sequence[str]) -> list[tuple[Phase, int]]:
    """The stage as [(trainable groups, steps)], cycled; steps 0 means "for the rest of training"."""
    names = set(group_names)
    backbones = {"deblur", "denoise"} & names
    if freeze.stage == "full":
        return [(frozenset(names), 0)]
    if freeze.stage == "extra":
        trainable = names - backbones
        if not trainable:
            raise ValueError("stage 'extra' needs an extra network: this model has only backbones "
                             f"({sorted(names)}); use stage 'full'")
        return [(frozenset(trainable), 0)]
    if freeze.stage == "alternate":
        cycle = []
        for part, steps in zip(freeze.alternate_order, freeze.alternate_steps):
            phase = frozenset(g for g in part.split(",") if g)
            unknown = phase - names
            if unknown:
                raise ValueError(f"alternate phase {part!r} names unknown groups {sorted(unknown)}")
            cycle.append((phase, int(steps)))
        if not cycle or any(s <= 0 for _, s in cycle):
            raise ValueError("stage 'alternate' needs alternate_order and positive alternate_steps")
        return cycle
    raise ValueError(f"unknown freeze stage {freeze.stage!r}; expected one of {STAGES}")


def phase_at(phases: Sequence[tuple[Phase, int]], step: int) -> Phase:
    """The phase in force at `step` (phases cycle)."""
    if len(phases) == 1:
        return phases[0][0]
    period = sum(s for _, s in phases)
    t = step % period
    for phase, steps in phases:
        if t < steps:
            return phase
        t -= steps
    raise AssertionError("unreachable")


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warm-up (optional) then cosine decay from `lr` to `end_lr` at `num_steps` (official recipe).

    A run shorter than its warm-up (a shortened recipe, a brief pre-training stage) warms up over all but its last
    step, so that it still reaches `lr` and still decays."""
    decay_steps = max(num_steps, 1)
    warmup = min(optim.warmup_steps, decay_steps - 1)
    if warmup > 0:
        return optax.warmup_cosine_decay_schedule(0.0, optim.lr, warmup, decay_steps, optim.end_lr)
    return optax.cosine_decay_schedule(optim.lr, decay_steps, alpha=optim.end_lr / optim.lr)


def trainable_mask(labels: Any, trainable_groups: set[str] | frozenset[str]) -> Any:
    """A tree of bools shaped like `labels`: True where the parameter's group is in `trainable_groups`."""
    return jax.tree_util.tree_map(lambda g: g in trainable_groups, labels)


def make_optimizer(optim: ml_collections.ConfigDict, labels: Any, trainable_groups: set[str]) -> optax.GradientTransformation:
    """The update direction *without* the learning rate (the train step multiplies by -lr(step), so that alternating
    groups follow one global schedule), over the parameters of the ever-trainable groups only (see
    `param_tree.prune`): frozen-forever groups have no optimiser state at all.

    Built from optax's pieces: `apply_if_finite` (a non-finite gradient leaves parameters and moments untouched and
    is counted; it never gives up, the run stops instead after config.max_nonfinite_steps), then
    `clip_by_global_norm` over the trainable gradients (as torch's clip_grad_norm_ over all trainable parameters),
    then AdamW moments per group (`multi_transform`, so that an alternating phase can keep the resting group's
    moments exactly).
    """
    group_labels = param_tree.prune(labels, trainable_mask(labels, trainable_groups))
    transforms = {g: optax.chain(optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
                                 optax.add_decayed_weights(optim.weight_decay))
                  for g in set(jax.tree_util.tree_leaves(group_labels))}
    inner = optax.multi_transform(transforms, group_labels)
    if optim.grad_clip > 0:
        inner = optax.chain(optax.clip_by_global_norm(optim.grad_clip), inner)
    return optax.apply_if_finite(inner, max_consecutive_errors=NEVER_GIVE_UP)



def group_states(opt_state: Any) -> dict:
    """The per-group AdamW states (multi_transform's inner_states) inside `make_optimizer`'s state."""
    inner = opt_state.inner_state
    if isinstance(inner, tuple) and not hasattr(inner, "inner_states"):  # chain(clip, multi_transform)
        inner = inner[-1]
    return inner.inner_states


def with_group_states(opt_state: Any, states: dict) -> Any:
    """`opt_state` with its per-group states replaced."""
    inner = opt_state.inner_state
    if isinstance(inner, tuple) and not hasattr(inner, "inner_states"):
        inner = (*inner[:-1], inner[-1]._replace(inner_states=states))
    else:
        inner = inner._replace(inner_states=states)
    return opt_state._replace(inner_state=inner)
