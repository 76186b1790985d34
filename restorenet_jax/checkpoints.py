"""Resolving a "checkpoint" argument to (architecture, parameters) for inference, evaluation and serving.

Accepted: a converted model directory (arch.json + params/, see model_io).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from restorenet_jax import model_io
from restorenet_jax.models.arch import ModelArch


def resolve_model(path: str | os.PathLike, which: str = "latest") -> tuple[ModelArch, dict]:
    """(arch, params) from a model directory.

    Raises model_io.ModelDirError with a message saying what was expected when `path` is not usable.
    """
    p = Path(path)
    if not p.exists():
        raise model_io.ModelDirError(f"{p}: no such checkpoint directory")
    if model_io.is_model_dir(p):
        return model_io.load_model_dir(p)
    raise model_io.ModelDirError(
        f"{p} is not a model directory (expected arch.json and params/ inside, as written by "
        f"`python -m convert.torch_to_flax`)")
