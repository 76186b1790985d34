"""Training losses on [B, H, W, C] batches (float32 accumulation whatever the compute dtype)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

_PSNR_SCALE = 10.0 / jnp.log(10.0)


def psnr_loss(pred: jax.Array, target: jax.Array, eps: float = 1e-8) -> jax.Array:
    """NAFNet's PSNRLoss: mean over images of (10 / ln 10) * log(mse + eps); negative by design (minimising it
    maximises PSNR)."""
    err = (pred.astype(jnp.float32) - target.astype(jnp.float32)) ** 2
    mse = jnp.mean(err, axis=tuple(range(1, err.ndim)))
    return _PSNR_SCALE * jnp.mean(jnp.log(mse + eps))


def l1_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def charbonnier_loss(pred: jax.Array, target: jax.Array, eps: float = 1e-3) -> jax.Array:
    diff = pred.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.mean(jnp.sqrt(diff * diff + eps * eps))


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "psnr": psnr_loss, "l1": l1_loss, "charbonnier": charbonnier_loss}


def get_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]


def batch_psnr(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean PSNR (dB, data range 1) over a batch, for training metrics."""
    err = (pred.astype(jnp.float32) - target.astype(jnp.float32)) ** 2
    mse = jnp.mean(err, axis=tuple(range(1, err.ndim)))
    return jnp.mean(-10.0 * jnp.log10(jnp.maximum(mse, 1e-10)))
