"""`Predictor`: a model's one jitted forward pass, its parameters placed on the device once.

Every prediction in the project goes through this class: training's periodic evaluation and final report, the
evaluate command (all compared methods in one pass), `Restorer` (restore, serve). The forward is traced and compiled
once per input shape and dtype; parameters are arguments of the compiled function, so swapping them (a new training
step's parameters) neither re-traces nor re-uploads anything when they already live on the device.
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.restorenet import build_model

DTYPES = {"float32": jnp.float32, "fp32": jnp.float32, "bfloat16": jnp.bfloat16, "bf16": jnp.bfloat16}


class Predictor:
    """A model ready to predict.

    Attributes:
      arch: the architecture (its `tlc` as used here).
      dtype: the compute dtype name (parameters stay float32).
      params: the parameter tree, as device arrays.
      traces: how many times a forward pass has been traced (one per new input shape): a cheap check that repeated
        calls reuse the compiled program.
    """

    def __init__(self, arch: ModelArch, params: Mapping[str, Any], dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
        self.arch = arch
        self.dtype = dtype
        self.model = build_model(arch, dtype=DTYPES[dtype])
        self.traces = 0
        self._forward = jax.jit(self._traced(lambda p, x: self.model.apply({"params": p}, x)))
        self._compare = jax.jit(self._traced(self._comparison))
        self.params: Any = None
        self.set_params(params)

    def _traced(self, fn):
        def counted(*args):
            self.traces += 1  # runs only while tracing, never when a compiled program is reused
            return fn(*args)

        return counted

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Predicts with `params` from now on: host arrays are uploaded once; device arrays (e.g. a training
        state's, replicated or sharded) are used where they are, without a copy."""
        self.params = jax.tree_util.tree_map(_local, dict(params))

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

    @property
    def methods(self) -> tuple[str, ...]:
        """The names `compare` returns: every way this checkpoint can be scored."""
        return {"baseline": ("model",), "serial": ("deblur", "denoise", "serial"),
                "restorenet": ("deblur", "denoise", "serial", "restorenet")}[self.arch.kind]

    def _comparison(self, params: Any, x: jax.Array) -> jax.Array:
        if self.arch.kind == "baseline":
            return self.model.apply({"params": params}, x)
        out = self.model.apply({"params": params}, x, method="comparison")
        return jnp.concatenate([out[m] for m in self.methods], axis=-1)

    def compare_stacked(self, x: np.ndarray) -> np.ndarray:
        """[H, W, 3] -> [H, W, 3 * len(methods)]: every method's raw output, stacked along channels (one pass;
        tiling can blend it as one image)."""
        return np.asarray(self._compare(self.params, jnp.asarray(np.asarray(x)[None], jnp.float32))[0])

    def compare(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every method's raw output on one image {method: [H, W, 3]}, each backbone run once (RestoreNet: the
        deblur and denoise backbones alone, serial deblur(denoise(x)) and RestoreNet)."""
        return split_methods(self.compare_stacked(x), self.methods)


def _local(a: Any) -> jax.Array:
    """A parameter as an array this process can compute with, copied only when it must be."""
    if not isinstance(a, jax.Array):
        return jax.device_put(np.asarray(a))
    if a.is_fully_addressable:
        return a
    if a.is_fully_replicated:  # a multi-process replicated parameter: this process's own copy
        return a.addressable_data(0)
    from jax.experimental import multihost_utils  # sharded over processes: every process gathers it

    return jax.device_put(np.asarray(multihost_utils.process_allgather(a, tiled=True)))


def split_methods(stacked: np.ndarray, methods: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Undoes `compare_stacked`'s channel stacking."""
    return {m: stacked[..., 3 * i: 3 * i + 3] for i, m in enumerate(methods)}
