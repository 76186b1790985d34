"""`Restorer`: load a model once, restore images of any size with a jit-compiled forward pass.

    from restorenet_jax.inference import Restorer
    r = Restorer.from_checkpoint("models/restorenet")   # a converted model dir or a training workdir
    y = r(x)                                             # x: float32 [H, W, 3] in [0, 1] -> float32 [H, W, 3]

Compiled functions are cached per input shape by jax.jit, so restoring many frames of one size compiles once.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax import model_io
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.restorenet import build_model

_DTYPES = {"float32": jnp.float32, "fp32": jnp.float32, "bfloat16": jnp.bfloat16, "bf16": jnp.bfloat16}


class Restorer:
    """A loaded model ready to restore images.

    Attributes:
      arch: the architecture, with `tlc` as used for inference.
      dtype: the compute dtype (parameters stay float32).
    """

    def __init__(self, arch: ModelArch, params: Mapping[str, Any], dtype: str = "float32"):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
        self.arch = arch
        self.dtype = dtype
        self.params = jax.device_put(jax.tree_util.tree_map(jnp.asarray, dict(params)))
        model = build_model(arch, dtype=_DTYPES[dtype])
        self._forward = jax.jit(lambda p, x: model.apply({"params": p}, x))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, tlc: bool | None = None, dtype: str = "float32",
                        **select: Any) -> "Restorer":
        """Loads a converted model directory or a training workdir.

        Args:
          path: a model directory (arch.json + params/) or a training workdir (its latest checkpoint; pass
            `which='best'` for the best by validation PSNR).
          tlc: None keeps the checkpoint's TLC setting; True/False overrides it.
          dtype: 'float32' or 'bfloat16' compute.
        """
        from restorenet_jax.checkpoints import resolve_model  # training checkpoints live with the trainer

        arch, params = resolve_model(path, **select)
        if tlc is not None:
            arch = arch.replace(tlc=bool(tlc))
        return cls(arch, params, dtype=dtype)

    def restore_batch(self, x: np.ndarray | jax.Array) -> jax.Array:
        """[B, H, W, 3] -> raw model output [B, H, W, 3] float32 (a device array, not clipped)."""
        return self._forward(self.params, jnp.asarray(x, jnp.float32))

    def __call__(self, x: np.ndarray, clip: bool = True) -> np.ndarray:
        """Restores one image.

        Args:
          x: float32 [H, W, 3] in [0, 1], any H, W >= 1.
          clip: clip the output to [0, 1]; False returns the raw model output.
        Returns:
          float32 numpy [H, W, 3].
        """
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"expected an image of shape [H, W, 3], got {x.shape}")
        y = np.asarray(self.restore_batch(x[None].astype(np.float32))[0])
        return np.clip(y, 0.0, 1.0) if clip else y
