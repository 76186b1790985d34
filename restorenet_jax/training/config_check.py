"""Checks a training configuration before any work starts, naming the bad field and its value.

Without it, a negative step count trains nothing and exits 0, and a malformed ratio fails deep inside the data
pipeline with a message that does not say which field to fix.
"""
from __future__ import annotations

from typing import Any, Callable

import ml_collections

from restorenet_jax.data import degradations, pipeline, transforms
from restorenet_jax.training import losses, optim

DTYPES = ("float32", "bfloat16")
SMALL_IMAGES = ("pad", "skip")
ON_CORRUPT = ("skip", "raise")


class ConfigError(ValueError):
    """A configuration field has an unusable value; the message names the field, the value and what is expected."""


def _get(config: ml_collections.ConfigDict, field: str) -> Any:
    node = config
    for part in field.split("."):
        node = node[part]
    return node


def _at_least(minimum: int) -> Callable[[Any], str | None]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}"
        return None

    return check


def _one_of(choices) -> Callable[[Any], str | None]:
    return lambda value: None if value in choices else "one of " + ", ".join(repr(c) for c in choices)


def _ratio(value) -> str | None:
    try:
        transforms.parse_ratio(value)
    except (ValueError, TypeError, AttributeError):
        return "four non-negative numbers 'BN:B:N:GT' with a positive sum, e.g. '13:2:2:1'"
    return None


def _kinds(value) -> str | None:
    bad = [k for k in str(value).split(",") if k.strip() and k.strip() not in transforms.KINDS]
    return f"comma-separated kinds among {', '.join(transforms.KINDS)}" if bad or not str(value).strip() else None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "num_train_steps": _at_least(0),
    "batch_size": _at_least(1),
    "log_every_steps": _at_least(1),
    "eval_every_steps": _at_least(0),
    "checkpoint_every_steps": _at_least(1),
    # At least two: when the newest checkpoint turns out unreadable, training resumes from the one before.
    "keep_checkpoints": _at_least(2),
    "max_nonfinite_steps": _at_least(1),
    "compute_dtype": _one_of(DTYPES),
    "loss": _one_of(tuple(losses.LOSSES)),
    "freeze.stage": _one_of(optim.STAGES),
    "pretrain.steps": _at_least(0),
    "pretrain.deblur_ratio": _ratio,
    "pretrain.denoise_ratio": _ratio,
    "data.ratio": _ratio,
    "data.crop_size": _at_least(1),
    "data.small_images": _one_of(SMALL_IMAGES),
    "data.on_corrupt": _one_of(ON_CORRUPT),
    "data.noise.kind": _one_of(degradations.NOISE_KINDS),
    "data.blur.kind": _one_of(degradations.BLUR_KINDS),
    "data.eval_kinds": _kinds,
    "data.num_shards": _at_least(0),
    "data.degrade_on": _one_of(pipeline.DEGRADE_ON),
    "data.crops_per_read": _at_least(1),
    "data.crop_shuffle_window": _at_least(1),
    "cluster.initialization_timeout_s": _at_least(1),
    "cluster.heartbeat_timeout_s": _at_least(1),
    "cluster.shutdown_timeout_s": _at_least(1),
    "eval.limit": _at_least(0),
    "eval.num_samples": _at_least(0),
}


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError listing every bad field (name, value, expectation); fields a config lacks are skipped."""
    problems = []
    for field, check in CHECKS.items():
        try:
            value = _get(config, field)
        except (KeyError, AttributeError):
            continue
        expected = check(value)
        if expected:
            problems.append(f"config.{field} = {value!r}: expected {expected}")
    if config.get("data", {}).get("noise", {}).get("kind") == "danet" and not config.data.noise.danet_checkpoint:
        problems.append("config.data.noise.danet_checkpoint = '': noise kind 'danet' needs the directory written by "
                        "`python -m convert.danet`")
    problems += _family_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _family_problems(config: ml_collections.ConfigDict) -> list[str]:
    """eval.families / held_out_families: known noise kinds (not 'danet': it needs its own weights), held-out
    ones among the families and never the training noise; family_kinds: known input kinds."""
    ev = config.get("eval", {})
    names = [s.strip() for s in str(ev.get("families", "")).split(",") if s.strip()]
    held = [s.strip() for s in str(ev.get("held_out_families", "")).split(",") if s.strip()]
    known = [k for k in degradations.NOISE_KINDS if k != "danet"]
    problems = [f"config.eval.families: {n!r} is not a noise family; expected some of {known}"
                for n in names if n not in known]
    problems += [f"config.eval.held_out_families: {n!r} is not among config.eval.families {names}"
                 for n in held if n not in names]
    training = config.get("data", {}).get("noise", {}).get("kind")
    problems += [f"config.eval.held_out_families: {n!r} is the training noise kind" for n in held if n == training]
    if names:
        kinds = [s.strip() for s in str(ev.get("family_kinds", "")).split(",") if s.strip()]
        if not kinds or any(k not in transforms.KINDS for k in kinds):
            problems.append(f"config.eval.family_kinds = {ev.get('family_kinds')!r}: expected some of "
                            f"{transforms.KINDS}, comma-separated")
    return problems
