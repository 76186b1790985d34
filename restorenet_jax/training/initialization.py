"""Where a run's parameters come from: checkpoint in workdir > config.init.resume > backbone files > pre-training
> scratch. A frozen backbone is never silently random (the original code trained against frozen random backbones
by accident); that needs config.init.allow_random_backbones=True.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import ml_collections
from absl import logging

from restorenet_jax.models import model_dir, restorenet
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.restorenet import abstract_params
from restorenet_jax.training import checkpoints, cluster, optim
from restorenet_jax.training.stage import run_stage

BRANCHES = ("deblur", "denoise")


class InitError(ValueError):
    """A configuration whose initial parameters cannot be found; the message says how to make them."""


def initial_params(config: ml_collections.ConfigDict, arch: ModelArch, workdir: Path, make_train_iter=None,
                   resuming: bool = False) -> Any:
    """Initial parameters of the main stage (ignored by the caller's restore when the workdir has a checkpoint)."""
    key = jax.random.PRNGKey(config.seed)
    if resuming:  # shapes only: the checkpoint provides the values
        return abstract_params(arch)
    if config.init.resume:
        src_arch, params = checkpoints.resolve_model(config.init.resume)
        if src_arch.replace(tlc=False, train_size=arch.train_size) != arch.replace(tlc=False):
            raise InitError(f"init.resume {config.init.resume} holds a different architecture than config.model")
        return params
    params = init_params(arch, key)
    if arch.kind == "baseline":
        return params
    labels = optim.group_labels(params, config.freeze.groups)
    phases = optim.stage_phases(config.freeze, sorted(set(jax.tree_util.tree_leaves(labels))))
    ever_trained = set().union(*[p for p, _ in phases])
    for branch in BRANCHES:
        path = config.init[branch]
        if path:
            if not Path(path).exists():
                raise InitError(
                    f"config.init.{branch} = {path!r} does not exist. Convert the official checkpoint first: "
                    f"`python -m convert.torch_to_flax {_official_name(branch)} {path}`, or pass "
                    f"--config.init.{branch}=DIR")
            params = model_dir.load_backbone_into(params, branch, path, expected=getattr(arch, branch))
            logging.info("%s initialised from %s", branch, path)
        elif config.pretrain.steps > 0:
            params = model_dir.load_backbone_into(params, branch, pretrain_backbone(
                config, arch, branch, workdir, make_train_iter, start=params[branch]))
        elif branch not in ever_trained and not config.init.allow_random_backbones:
            raise InitError(
                f"the {branch} backbone is frozen in stage {config.freeze.stage!r} but no weights are given: set "
                f"config.init.{branch} to a converted model dir (`python -m convert.torch_to_flax "
                f"{_official_name(branch)} models/{branch}`), or config.pretrain.steps > 0, or (deliberately) "
                f"config.init.allow_random_backbones=True")
    return params


def init_params(arch: ModelArch, rng: jax.Array) -> Any:
    """Freshly initialised parameters. The init program runs once, so on a CPU it is compiled for compile speed
    rather than run speed (XLA optimisation level 0: the demo model's init compile 42 s -> 24 s)."""
    options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
    return restorenet.init_params(arch, rng, compiler_options=options)


def _official_name(branch: str) -> str:
    return "GoPro-Baseline-width64.pth" if branch == "deblur" else "SIDD-Baseline-width64.pth"


def pretrain_backbone(config: ml_collections.ConfigDict, arch: ModelArch, branch: str, workdir: Path,
                      make_train_iter=None, start: Any = None) -> Path:
    """Briefly trains one backbone alone (deblur on blur pairs, denoise on noise pairs) in
    WORKDIR/pretrain/<branch>; returns its model directory. Resumable; skipped when already complete.

    `start`: the backbone's initial parameters (the branch of an initialised RestoreNet: no second initialisation
    to compile); None initialises it from the seed."""
    stage_dir = Path(workdir) / "pretrain" / branch
    out = stage_dir / "model"
    if model_dir.is_model_dir(out):
        return out
    sub = ml_collections.ConfigDict(config.to_dict())
    sub.seed = config.seed + 1 + BRANCHES.index(branch)  # its own data order, still derived from the seed
    sub.model.kind = "baseline"
    sub.num_train_steps = config.pretrain.steps
    sub.data.ratio = config.pretrain[f"{branch}_ratio"]
    sub.freeze.stage = "full"
    sub.freeze.groups = ml_collections.ConfigDict({"backbone": ".*"})
    sub.eval_every_steps = 0
    backbone_arch = ModelArch("baseline", backbone=getattr(arch, branch), train_size=arch.train_size)
    logging.info("pre-training the %s backbone for %d steps (ratio %s)", branch, sub.num_train_steps,
                 sub.data.ratio)
    if start is None:
        start = init_params(backbone_arch, jax.random.PRNGKey(sub.seed))
    state = run_stage(sub, backbone_arch, stage_dir, start, make_train_iter)
    host = cluster.host_tree(state.params)  # collective: parameters may be sharded across processes
    if cluster.is_main():
        model_dir.save_model_dir(out, host, backbone_arch, overwrite=True,
                                 info={"source": f"pretrain {branch}", "steps": sub.num_train_steps})
    cluster.barrier(f"pretrain-{branch}-saved")  # the others read it next
    return out
