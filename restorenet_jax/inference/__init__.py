"""Inference: `Restorer` (load a converted model directory or a training workdir once, restore images of any size),
tiling, and media I/O (images incl. 16-bit PNG, video).

    from restorenet_jax.inference import Restorer

May import every lower layer (it reads training workdirs through `training.checkpoints`); never the commands.
`Restorer` is imported lazily so that the media helpers load without JAX.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Restorer":
        from restorenet_jax.inference.restorer import Restorer

        return Restorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
