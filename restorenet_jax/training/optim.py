"""Optimiser, learning-rate schedule and freezing, all from the config.

Parameters are split into named groups by regexes over their '/'-joined paths (`config.freeze.groups`). A
*phase* is a set of trainable groups; the stage (`config.freeze.stage`) is a sequence of phases:
  'extra'      backbones frozen, the extra network trains (RestoreNet's main recipe);
  'alternate'  cycles: deblur trains with extra frozen, then extra with deblur frozen (cycle lengths in config);
  'full'       every group trains.
Each trainable-at-some-point group gets AdamW moments of its own (optax.multi_transform); groups that never train
get `set_to_zero` (no optimiser memory). The train step applies updates only to the current phase's groups and
keeps the other groups' parameters and moments bit-identical.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import optax

Phase = frozenset  # of group names

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
    """Linear warm-up (optional) then cosine decay from `lr` to `end_lr` at `num_steps` (official recipe)."""
    decay_steps = max(num_steps, 1)
    if optim.warmup_steps > 0:
        return optax.warmup_cosine_decay_schedule(0.0, optim.lr, optim.warmup_steps, decay_steps, optim.end_lr)
    return optax.cosine_decay_schedule(optim.lr, decay_steps, alpha=optim.end_lr / optim.lr)


def make_optimizer(optim: ml_collections.ConfigDict, labels: Any, trainable_groups: set[str]) -> optax.GradientTransformation:
    """AdamW direction per trainable group *without* the learning rate (the train step multiplies by -lr(step),
    so that alternating groups follow one global schedule); frozen-forever groups get `set_to_zero`.

    Gradient clipping is not here: the train step clips by the global norm over the trainable parameters, as
    torch's clip_grad_norm_ over all trainable parameters does.
    """
    all_groups = set(jax.tree_util.tree_leaves(labels))
    transforms = {}
    for g in all_groups:
        if g in trainable_groups:
            transforms[g] = optax.chain(optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
                                        optax.add_decayed_weights(optim.weight_decay))
        else:
            transforms[g] = optax.set_to_zero()
    return optax.multi_transform(transforms, labels)
