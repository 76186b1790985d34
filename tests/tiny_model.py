"""One tiny checkpoint and Restorer per test session, shared by the use-side tests (metrics/tiling/restore/serve).

Writing the tiny checkpoint runs `model.init` eagerly (~20 s here), so it is done once per process, not per module.
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


def tiny_restorer(tmp_path_factory):
    """A float32 `Restorer` on `tiny_checkpoint`, loaded once per session (its jit cache is shared too)."""
    if "restorer" not in _CACHE:
        from restorenet_jax.inference import Restorer

        _CACHE["restorer"] = Restorer.from_checkpoint(tiny_checkpoint(tmp_path_factory))
    return _CACHE["restorer"]
