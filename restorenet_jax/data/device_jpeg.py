"""The JPEG block-DCT quantisation of `jpeg.py` in JAX, batched with a quality per example.

Same formulas and tables as the numpy reference; the 8x8 DCTs are matrix products (HIGHEST precision: GPUs would
otherwise round them through TF32) on blocks made by reshapes, so everything has static shapes and jits.

Shapes: images [B, H, W, 3] float32 in [0, 1]; quality [B] int32 (1..100).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from restorenet_jax.data.jpeg import (BLOCK, CHROMA_OFFSET, CHROMA_TABLE, LUMA_TABLE, MCU, RGB2YCBCR, YCBCR2RGB,
                                      dct_matrix)

_HI = lax.Precision.HIGHEST


def quant_tables(quality: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[B] qualities -> (luma, chroma) [B, 8, 8] float32 steps (libjpeg's integer scaling, clipped to 1..255)."""
    q = jnp.clip(quality.astype(jnp.int32), 1, 100)
    scale = jnp.where(q < 50, 5000 // q, 200 - 2 * q)[:, None, None]
    return tuple(jnp.clip((jnp.asarray(t) * scale + 50) // 100, 1, 255).astype(jnp.float32)
                 for t in (LUMA_TABLE, CHROMA_TABLE))


def rgb_to_ycbcr(rgb: jax.Array) -> jax.Array:
    """[..., 3] RGB in [0, 1] -> YCbCr on 0..255 (Cb, Cr centred on 128)."""
    m = jnp.asarray(RGB2YCBCR, jnp.float32)
    return jnp.einsum('...j,ij->...i', rgb * 255.0, m, precision=_HI) + jnp.asarray(CHROMA_OFFSET, jnp.float32)


def ycbcr_to_rgb(ycc: jax.Array) -> jax.Array:
    """Inverse of rgb_to_ycbcr (not clipped)."""
    m = jnp.asarray(YCBCR2RGB, jnp.float32)
    return jnp.einsum('...j,ij->...i', ycc - jnp.asarray(CHROMA_OFFSET, jnp.float32), m, precision=_HI) / 255.0


def _to_blocks(plane: jax.Array) -> jax.Array:
    """[B, h, w] -> [B, h/8, w/8, 8, 8]."""
    b, h, w = plane.shape
    return plane.reshape(b, h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 1, 3, 2, 4)


def _from_blocks(blocks: jax.Array) -> jax.Array:
    """[B, h/8, w/8, 8, 8] -> [B, h, w]."""
    b, hb, wb = blocks.shape[:3]
    return blocks.transpose(0, 1, 3, 2, 4).reshape(b, hb * BLOCK, wb * BLOCK)


def _dct(blocks: jax.Array, c: jax.Array) -> jax.Array:
    """C @ block @ C.T on [B, hb, wb, 8, 8]."""
    return jnp.einsum('pk,bijkl,ql->bijpq', c, blocks, c, precision=_HI)


def _idct(coefs: jax.Array, c: jax.Array) -> jax.Array:
    """C.T @ coefficients @ C on [B, hb, wb, 8, 8]."""
    return jnp.einsum('kp,bijkl,lq->bijpq', c, coefs, c, precision=_HI)


def upsample2(plane: jax.Array, axis: int) -> jax.Array:
    """jpeg.upsample2: 2x along `axis` with weights 3/4, 1/4 of the nearest two samples, edges replicated."""
    n = plane.shape[axis]
    idx = jnp.arange(n)
    before = jnp.take(plane, jnp.maximum(idx - 1, 0), axis=axis)
    after = jnp.take(plane, jnp.minimum(idx + 1, n - 1), axis=axis)
    even, odd = 0.75 * plane + 0.25 * before, 0.75 * plane + 0.25 * after
    return jnp.stack([even, odd], axis=axis + 1).reshape(plane.shape[:axis] + (2 * n,) + plane.shape[axis + 1:])


def coefficients(image: jax.Array, quality: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Y, Cb, Cr) blocks [B, hb, wb, 8, 8] of DCT coefficients / quantisation step, before rounding."""
    b, h, w, _ = image.shape
    padded = jnp.pad(image, ((0, 0), (0, -h % MCU), (0, -w % MCU), (0, 0)), mode='edge')
    ycc = rgb_to_ycbcr(padded)
    hp, wp = ycc.shape[1:3]
    chroma = ycc[..., 1:].reshape(b, hp // 2, 2, wp // 2, 2, 2).mean(axis=(2, 4))
    luma_q, chroma_q = (t[:, None, None] for t in quant_tables(quality))
    c = jnp.asarray(dct_matrix(), jnp.float32)
    planes = [(ycc[..., 0], luma_q), (chroma[..., 0], chroma_q), (chroma[..., 1], chroma_q)]
    return tuple(_dct(_to_blocks(p - 128.0), c) / q for p, q in planes)


def reconstruct(rounded: tuple[jax.Array, jax.Array, jax.Array], quality: jax.Array,
                shape: tuple[int, int]) -> jax.Array:
    """Decoded images [B, H, W, 3] in [0, 1] from rounded coefficients, cropped to `shape` (H, W)."""
    luma_q, chroma_q = (t[:, None, None] for t in quant_tables(quality))
    c = jnp.asarray(dct_matrix(), jnp.float32)
    y, cb, cr = (_from_blocks(_idct(r * q, c)) + 128.0 for r, q in zip(rounded, (luma_q, chroma_q, chroma_q)))
    chroma = upsample2(upsample2(jnp.stack([cb, cr], -1), 1), 2)
    rgb = ycbcr_to_rgb(jnp.concatenate([y[..., None], chroma], -1))
    return jnp.clip(rgb[:, :shape[0], :shape[1]], 0.0, 1.0)


def compress(image: jax.Array, quality: jax.Array) -> jax.Array:
    """JPEG-compress and decode [B, H, W, 3] images in [0, 1], quality [B]: [B, H, W, 3] in [0, 1]."""
    coefs = coefficients(image, quality)
    return reconstruct(tuple(jnp.round(k) for k in coefs), quality, image.shape[1:3])
