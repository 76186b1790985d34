"""Tiny checkpoints and Restorers shared by the use-side tests (tiling / restore / serve / browser).

Writing the tiny checkpoint is done once per process, not per module.
Two flavours:
  * `tiny_checkpoint`: tests.checkpoint_fixtures as written by the lead (every weight random, scale 0.2). Its
    output is close to saturated noise: a strong test of plumbing, useless for "does it look like the input".
  * `gentle_checkpoint`: the same weights with their random part ×0.25 (norm scales 1 + 0.05·n, others 0.05·n),
    so the output is a mildly changed image: what tests of lossy paths (video, browser display) need.
"""
from __future__ import annotations

from pathlib import Path

_CACHE: dict = {}


def tiny_checkpoint(tmp_path_factory) -> Path:
    """Path of a tiny random RestoreNet model dir (tests.checkpoint_fixtures, seed 0), written once per session."""
    if "ckpt" not in _CACHE:
        from tests.checkpoint_fixtures import write_tiny_checkpoint

        _CACHE["ckpt"] = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))
    return _CACHE["ckpt"]


def gentle_checkpoint(tmp_path_factory) -> Path:
    """Path of the tiny model with its random weights shrunk ×0.25 (near-identity, image-like output)."""
    if "gentle" not in _CACHE:
        import jax
        import numpy as np

        from restorenet_jax.models import model_dir

        arch, params = model_dir.load_model_dir(tiny_checkpoint(tmp_path_factory))

        def shrink(path, v):
            v = np.asarray(v, np.float32)
            return 1.0 + 0.25 * (v - 1.0) if path[-1].key == "scale" else 0.25 * v

        params = jax.tree_util.tree_map_with_path(shrink, params)
        _CACHE["gentle"] = model_dir.save_model_dir(tmp_path_factory.mktemp("gentle_ckpt") / "model", params, arch)
    return _CACHE["gentle"]


def _restorer(key: str, path: Path):
    if key not in _CACHE:
        from restorenet_jax.inference.restorer import Restorer

        _CACHE[key] = Restorer.from_checkpoint(path)
    return _CACHE[key]


def tiny_restorer(tmp_path_factory):
    """A float32 `Restorer` on `tiny_checkpoint`, loaded once per session (its jit cache is shared too)."""
    return _restorer("restorer", tiny_checkpoint(tmp_path_factory))


def gentle_restorer(tmp_path_factory):
    """A float32 `Restorer` on `gentle_checkpoint`, loaded once per session."""
    return _restorer("gentle_restorer", gentle_checkpoint(tmp_path_factory))
