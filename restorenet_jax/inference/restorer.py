"""`Restorer`: load a model once, restore images of any size with a jit-compiled forward pass.

    from restorenet_jax.inference import Restorer
    r = Restorer.from_checkpoint("models/restorenet")   # a converted model dir or a training workdir
    y = r(x)                                             # x: float32 [H, W, 3] in [0, 1] -> float32 [H, W, 3]

Compiled functions are cached per input shape by jax.jit, so restoring many frames of one size compiles once.
"""
from __future__ import annotations

import os
from typing import Any

from restorenet_jax.models.predictor import Predictor
from restorenet_jax.training.checkpoints import resolve_model


class Restorer(Predictor):
    """A loaded model ready to restore images (`Predictor`'s forward pass and comparison, plus loading).

    Attributes:
      arch: the architecture, with `tlc` as used for inference.
      dtype: the compute dtype (parameters stay float32).
    """

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, tlc: bool | None = None, dtype: str = "float32", *,
                        bucketing: bool = False, max_programs: int = 8, **select: Any) -> "Restorer":
        """Loads a converted model directory or a training workdir.

        Args:
          path: a model directory (arch.json + params/) or a training workdir (its latest checkpoint; pass
            `which='best'` for the best by validation PSNR).
          tlc: None keeps the checkpoint's TLC setting; True/False overrides it.
          dtype: 'float32' or 'bfloat16' compute.
          bucketing, max_programs: see `Predictor` (exact size buckets; the number of compiled programs kept).
        """
        arch, params = resolve_model(path, **select)
        if tlc is not None:
            arch = arch.replace(tlc=bool(tlc))
        return cls(arch, params, dtype=dtype, bucketing=bucketing, max_programs=max_programs)
