"""Training checkpoints (orbax CheckpointManager) and resolving a "checkpoint" argument for inference.

A training workdir holds `arch.json` (the model, as in a model directory) and `checkpoints/<step>/` with items
'params', 'ema_params' (when EMA is on), 'train' (step, optimiser state, counters) and 'data' (the grain iterator
state, so a resumed run continues the same data order). Saves are asynchronous and atomic: a run killed mid-save
leaves a temporary directory that orbax ignores, and the previous checkpoint stays the latest. `best/` is a model
directory with the parameters of the best validation PSNR so far.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
# Not exported (the version is pinned): the metadata store orbax's own array handler gets, and the registry itself.
from orbax.checkpoint._src.metadata import array_metadata_store
from orbax.checkpoint._src.serialization import type_handler_registry

from restorenet_jax.models import model_dir
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.training import cluster, param_tree

CHECKPOINTS = "checkpoints"
BEST = "best"
CORRUPT = "corrupt_checkpoints"

# Orbax splits the saving of an array replicated over R devices among the replicas (each slices out and writes 1/R
# of it). For the many small arrays of these models (biases, norms, small convolutions) the slicing costs more than
# it saves: every slice is a separate device operation. Arrays whose per-replica share is below this many bytes are
# written whole by one replica (a tiny model on 4 devices: ~1800 slicing operations and ~4 s of CPU per process's
# run of five checkpoints, gone); large kernels are still split.
MIN_REPLICA_PARALLEL_BYTES = 1 << 20
type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY.add(  # what register_type_handler does, without its warning
    jax.Array, ocp.type_handlers.ArrayHandler(
        min_slice_bytes_for_replica_parallel=MIN_REPLICA_PARALLEL_BYTES,
        array_metadata_store=array_metadata_store.Store()),  # as orbax's default handler has
    None, override=True, ignore_warnings=True)


class CorruptCheckpointError(RuntimeError):
    """Every checkpoint in a workdir is unreadable."""


class TrainCheckpointer:
    """Saves and restores TrainState + data-iterator state under WORKDIR/checkpoints."""

    def __init__(self, workdir: str | os.PathLike, keep: int = 3, async_save: bool = True):
        self.directory = Path(workdir).absolute() / CHECKPOINTS
        # Directories are created before the save returns: grain's data-iterator handler writes each process's
        # file at once, and on several processes the step directory (made by process 0) must already be there.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=async_save,
            async_options=ocp.options.AsyncOptions(create_directories_asynchronously=False))
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state: Any, data_iter: Any | None = None, force: bool = False) -> bool:
        import grain

        step = int(state.step)
        items = dict(params=ocp.args.StandardSave(state.params),
                     train=ocp.args.StandardSave(_train_part(state)))
        if state.ema_params is not None:
            items["ema_params"] = ocp.args.StandardSave(state.ema_params)
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iter)
        return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

    def restore(self, abstract_state: Any, data_iter: Any | None = None, step: int | None = None) -> Any:
        """The state at `step` (default latest), typed like `abstract_state`; restores `data_iter` in place."""
        import grain

        step = self.latest_step() if step is None else step
        items = dict(params=ocp.args.StandardRestore(abstract_state.params),
                     train=ocp.args.StandardRestore(_train_part(abstract_state)))
        if abstract_state.ema_params is not None:
            items["ema_params"] = ocp.args.StandardRestore(abstract_state.ema_params)
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        train = out["train"]
        return abstract_state.replace(params=out["params"], opt_state=train["opt_state"], step=train["step"],
                                      ema_params=out["ema_params"] if abstract_state.ema_params is not None else None)

    def restore_newest_readable(self, abstract_state: Any, data_iter: Any | None = None) -> Any:
        """Like `restore` at the newest step that can be read, newest first.

        A checkpoint that fails to restore (a truncated or corrupted file: a crash of the storage, not of this
        program, since saves are atomic) is logged, moved to WORKDIR/corrupt_checkpoints/<step> (kept for
        inspection, and out of the way of the step being saved again), and the previous one is tried.

        Raises:
          CorruptCheckpointError: no checkpoint could be read.
        """
        errors = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                return self.restore(abstract_state, data_iter, step)
            except Exception as e:  # orbax / TensorStore raise many types for unreadable data
                reason = f"{e.__class__.__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                errors.append(f"step {step} ({reason})")
                logging.warning("checkpoint at step %d of %s is unreadable (%s); trying the previous one",
                                step, self.directory, reason)
                self._set_aside(step)
        raise CorruptCheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(errors))

    def _set_aside(self, step: int) -> None:
        if cluster.is_main():
            aside = self.directory.parent / CORRUPT / str(step)
            aside.parent.mkdir(parents=True, exist_ok=True)
            if aside.exists():
                shutil.rmtree(aside)
            os.replace(self.directory / str(step), aside)
        cluster.barrier(f"set-aside-{step}")  # every process sees the move before listing the steps again
        self.manager.reload()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def _train_part(state: Any) -> dict:
    return dict(step=state.step, opt_state=state.opt_state)


def is_workdir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / model_dir.ARCH_FILE).is_file() and ((p / CHECKPOINTS).is_dir() or (p / BEST).is_dir())


def _restore_workdir_params(workdir: Path, arch: ModelArch) -> dict:
    from restorenet_jax.models.restorenet import abstract_params

    manager = ocp.CheckpointManager(workdir / CHECKPOINTS)
    step = manager.latest_step()
    if step is None:
        raise model_dir.ModelDirError(f"{workdir} has no complete checkpoint in {CHECKPOINTS}/ yet")
    abstract = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), abstract_params(arch))
    items = {"params": ocp.args.StandardRestore(abstract)}
    # EMA parameters, when the run kept them, are the ones meant for inference. They cover the trained groups
    # only: their shapes come from the checkpoint's own metadata, and they are laid over the parameters.
    if (workdir / CHECKPOINTS / str(step) / "ema_params").is_dir():
        meta = manager.item_metadata(step)["ema_params"]
        items["ema_params"] = ocp.args.StandardRestore(
            jax.tree_util.tree_map(lambda m: np.zeros(m.shape, m.dtype), meta))
    out = manager.restore(step, args=ocp.args.Composite(**items))
    manager.close()
    params = out["params"] if "ema_params" not in out or out["ema_params"] is None else \
        param_tree.overlay(out["params"], out["ema_params"])
    return jax.tree_util.tree_map(np.asarray, params)


def resolve_model(path: str | os.PathLike, which: str = "latest") -> tuple[ModelArch, dict]:
    """(arch, params) from a model directory or a training workdir.

    Args:
      path: a model directory (arch.json + params/) or a training workdir (arch.json + checkpoints/).
      which: for a workdir, 'latest' (newest checkpoint; EMA parameters if kept) or 'best' (best validation PSNR).
    Raises:
      model_dir.ModelDirError saying what was expected when `path` is not usable.
    """
    p = Path(path)
    if not p.exists():
        raise model_dir.ModelDirError(f"{p}: no such checkpoint directory")
    if model_dir.is_model_dir(p):
        return model_dir.load_model_dir(p)
    if is_workdir(p):
        if which == "best":
            if not model_dir.is_model_dir(p / BEST):
                raise model_dir.ModelDirError(f"{p} has no best checkpoint yet (it appears after an evaluation)")
            return model_dir.load_model_dir(p / BEST)
        if which != "latest":
            raise ValueError(f"which must be 'latest' or 'best', not {which!r}")
        arch, _ = model_dir.read_arch(p)
        return arch, _restore_workdir_params(p.absolute(), arch)
    raise model_dir.ModelDirError(
        f"{p} is neither a model directory (arch.json + params/, as written by `python -m convert.torch_to_flax`) "
        f"nor a training workdir (arch.json + checkpoints/, as written by `python -m restorenet_jax.main`)")
