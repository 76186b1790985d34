"""Saving and loading a model directory: `arch.json` (the architecture) + `params/` (an orbax checkpoint).

This is what the converters write, what `Restorer` reads, and what initialises a RestoreNet branch from a converted
backbone. Writes are atomic: everything goes to a hidden temporary directory beside the target, which is renamed
into place only when complete, so a crash never leaves a half-written model directory.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

from restorenet_jax.models.arch import BaselineArch, ModelArch

ARCH_FILE = "arch.json"
PARAMS_DIR = "params"


class ModelDirError(ValueError):
    """A directory that is not a usable model directory (missing files, wrong architecture)."""


def is_model_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / ARCH_FILE).is_file() and (p / PARAMS_DIR).is_dir()


def check_replaceable(target: str | os.PathLike, overwrite: bool) -> None:
    """Refuses to write a model directory where that would destroy anything else.

    A missing path or an empty directory may be written. An existing model directory (nothing in it but
    arch.json and params/, as this project writes them) is replaced only with `overwrite`. Anything else — a file,
    or a directory holding other files — is never replaced, whatever `overwrite` says.

    Raises:
      FileExistsError: an existing model directory and no `overwrite`.
      ModelDirError: the path is a file or a directory with other content.
    """
    p = Path(target)
    if not p.exists() and not p.is_symlink():
        return
    if not p.is_dir():
        raise ModelDirError(f"{p} exists and is not a directory; choose a new folder for the model")
    entries = sorted(e.name for e in p.iterdir())
    if not entries:
        return
    others = [e for e in entries if e not in (ARCH_FILE, PARAMS_DIR)]
    if others or not is_model_dir(p):
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "") if others else "no model files"
        raise ModelDirError(f"{p} exists and is not a model directory ({shown}); it is never replaced: "
                            f"choose a new or empty folder")
    if not overwrite:
        raise FileExistsError(f"{p} already exists and holds a model (pass --overwrite to replace it)")


def write_dir_atomically(target: str | os.PathLike, fill, overwrite: bool = False) -> Path:
    """Creates the model directory `target` through `fill(tmp_dir)`, atomically.

    Everything is written into a hidden temporary directory beside `target`, which replaces it by renames only once
    complete: a crash leaves either the old directory or the new one, never a mixture. What may be replaced is
    decided by `check_replaceable`.
    """
    target = Path(target).absolute()
    check_replaceable(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp, old = target.parent / f".{target.name}.tmp-{tag}", target.parent / f".{target.name}.old-{tag}"
    try:
        tmp.mkdir()
        fill(tmp)
        if target.exists():
            os.replace(target, old)  # moved aside, not deleted, until the new directory is in place
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return target


def save_model_dir(directory: str | os.PathLike, params: Mapping[str, Any], arch: ModelArch, *,
                   info: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Writes params + arch.json (+ optional info in the JSON) atomically to `directory`.

    Raises FileExistsError for an existing model directory unless `overwrite`, and ModelDirError for a path that
    is not a model directory (see `check_replaceable`).
    """
    def fill(tmp: Path) -> None:
        host_params = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), dict(params))
        ckptr = _local_checkpointer()
        ckptr.save(tmp / PARAMS_DIR, host_params)
        ckptr.wait_until_finished()
        (tmp / ARCH_FILE).write_text(json.dumps({"arch": arch.to_dict(), "info": dict(info or {})}, indent=2))

    return write_dir_atomically(directory, fill, overwrite)


def _local_checkpointer() -> ocp.StandardCheckpointer:
    """A checkpointer for this process alone. A model directory holds host (numpy) arrays that one process writes
    or reads by itself; orbax's default would wait at barriers for every process of a multi-process run."""
    if jax.process_count() == 1:
        return ocp.StandardCheckpointer()
    me = jax.process_index()
    return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
        primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"model-dir-{me}"))


def read_arch(directory: str | os.PathLike) -> tuple[ModelArch, dict]:
    """The architecture and info dict of a model directory."""
    p = Path(directory)
    if not (p / ARCH_FILE).is_file():
        raise ModelDirError(f"{p} is not a model directory: {ARCH_FILE} is missing")
    try:
        record = json.loads((p / ARCH_FILE).read_text())
        return ModelArch.from_dict(record["arch"]), dict(record.get("info", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise ModelDirError(f"{p / ARCH_FILE} is not a valid architecture file: {e}") from e


def load_model_dir(directory: str | os.PathLike) -> tuple[ModelArch, dict]:
    """(arch, params) of a model directory; params as a nested dict of numpy float32 arrays on the host."""
    p = Path(directory).absolute()
    arch, _ = read_arch(p)
    if not (p / PARAMS_DIR).is_dir():
        raise ModelDirError(f"{p} is not a model directory: {PARAMS_DIR}/ is missing")
    from restorenet_jax.models.restorenet import abstract_params  # local: keeps `read_arch` free of Flax

    abstract = abstract_params(arch)
    target = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), abstract)
    try:
        params = _local_checkpointer().restore(p / PARAMS_DIR, target)
    except Exception as e:  # orbax raises several types for mismatched trees
        raise ModelDirError(f"parameters in {p / PARAMS_DIR} do not match {ARCH_FILE}: {e}") from e
    return arch, jax.tree_util.tree_map(np.asarray, params)


def load_backbone_into(params: Mapping[str, Any], branch: str, directory: str | os.PathLike,
                       expected: BaselineArch | None = None) -> dict:
    """Returns a copy of RestoreNet `params` whose `branch` ('deblur' or 'denoise') comes from a converted
    single-Baseline model directory (e.g. the official GoPro or SIDD checkpoint after conversion).

    Raises ModelDirError if the directory does not hold a Baseline or its architecture differs from `expected`.
    """
    if branch not in ("deblur", "denoise"):
        raise ValueError(f"branch must be 'deblur' or 'denoise', not {branch!r}")
    arch, backbone = load_model_dir(directory)
    if arch.kind != "baseline":
        raise ModelDirError(f"{directory} holds a {arch.kind!r} model; a single Baseline is needed for {branch}")
    if expected is not None and arch.backbone != expected:
        raise ModelDirError(f"{directory} is {arch.backbone}, but the {branch} branch is configured as {expected}")
    out = dict(params)
    out[branch] = backbone
    return out
