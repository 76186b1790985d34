"""A model as a serialized `jax.export` artifact (StableHLO with the weights inside).

The artifact restores without this package's model code: `jax.export.deserialize(blob).call(x)` with x float32
[B, H, W, 3] (NHWC, RGB in [0, 1]) -> float32 [B, H, W, 3], the raw model output (not clipped). B, H and W are
symbolic unless `size` / `batch` fix them; the program pads to the model's multiple and crops back itself.

TLC pooling picks its window by comparing the map size with the training size, which needs concrete sizes: a TLC
model is exported at a fixed `size`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.predictor import DTYPES
from restorenet_jax.models.restorenet import build_model


class ExportError(ValueError):
    """The model cannot be exported as asked (e.g. TLC without a fixed size)."""


def export_stablehlo(arch: ModelArch, params: Mapping[str, Any], *, size: tuple[int, int] | None = None,
                     batch: int | None = None, dtype: str = "float32",
                     platforms: Sequence[str] | None = None) -> bytes:
    """The serialized `jax.export.Exported` of the model's forward pass (module docstring).

    Args:
      arch, params: the model.
      size: (H, W) to fix the input size; None: symbolic (not with TLC).
      batch: a fixed batch size; None: symbolic.
      dtype: compute dtype ('float32' or 'bfloat16'); inputs and outputs stay float32.
      platforms: lowering platforms (e.g. ('cpu', 'cuda')); None: the current backend only.
    """
    if arch.tlc and size is None:
        raise ExportError("a TLC model exports to StableHLO at a fixed size only: give --size HxW (or --no-tlc)")
    model = build_model(arch, dtype=DTYPES[dtype])
    weights = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float32)), dict(params))
    m = arch.pad_multiple

    def restore(x: jax.Array) -> jax.Array:
        h, w = x.shape[1:3]
        # Padding to m * ceil(n / m) (not n + (-n mod m)) keeps symbolic sizes visibly divisible by m, which the
        # U-Net's stride-2 downs and pixel-shuffle ups need to line up in shape-polymorphic lowering.
        hp, wp = m * ((h + m - 1) // m), m * ((w + m - 1) // m)
        xp = jnp.pad(x.astype(jnp.float32), ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
        return model.apply({"params": weights}, xp)[:, :h, :w].astype(jnp.float32)

    b = "b" if batch is None else str(int(batch))
    hw = "h, w" if size is None else f"{int(size[0])}, {int(size[1])}"
    shape = jax.export.symbolic_shape(f"{b}, {hw}, 3")
    kwargs = {"platforms": tuple(platforms)} if platforms else {}
    exported = jax.export.export(jax.jit(restore), **kwargs)(jax.ShapeDtypeStruct(shape, jnp.float32))
    return bytes(exported.serialize())


def load_stablehlo(path: str | os.PathLike) -> Callable[[np.ndarray], jax.Array]:
    """The restore function of a saved artifact: float32 [B, H, W, 3] -> [B, H, W, 3]."""
    with open(path, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    return exported.call
