"""The camera pipeline of `camera_pipeline.py` (Brooks et al. 2019) in JAX, batched with per-example cameras.

Same formulas and constants as the numpy reference (which the tests compare against to 1e-5); differences are
only in how they run: every pixel goes through the highlight bisection (with `where`, no boolean indexing, so
shapes stay static under jit), and the 3x3 colour matrices are applied with HIGHEST precision (GPUs would
otherwise use TF32 matmuls, ~1e-3 off).

Shapes: images [B, H, W, 3] float32; per-example matrices [B, 3, 3]; per-example gains [B, 3].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from restorenet_jax.data.camera_pipeline import (_BISECTION_STEPS, _EPS, GAMMA, HIGHLIGHT_INFLECTION, RGB2XYZ,
                                                 XYZ2CAMS)

_HI = lax.Precision.HIGHEST


def random_ccm(weights: jax.Array) -> jax.Array:
    """[B, 4] positive weights (the reference draws them U(0, 1)) -> RGB->camera matrices [B, 3, 3], rows sum to 1."""
    weights = weights / weights.sum(axis=-1, keepdims=True)
    xyz2cam = jnp.einsum('bk,kij->bij', weights, jnp.asarray(XYZ2CAMS, jnp.float32), precision=_HI)
    rgb2cam = jnp.einsum('bij,jk->bik', xyz2cam, jnp.asarray(RGB2XYZ, jnp.float32), precision=_HI)
    return rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)


def inverse_gains(rgb_gain: jax.Array, red_gain: jax.Array, blue_gain: jax.Array) -> jax.Array:
    """[B] gains -> [B, 3] per-channel gains applied by `unprocess` (the reciprocals of WB x brightness)."""
    return jnp.stack([1.0 / red_gain, jnp.ones_like(red_gain), 1.0 / blue_gain], axis=-1) / rgb_gain[:, None]


def _apply_ccm(image: jax.Array, ccm: jax.Array) -> jax.Array:
    """x @ ccm.T per example: [B, H, W, 3] x [B, 3, 3]."""
    return jnp.einsum('bhwj,bij->bhwi', image, ccm, precision=_HI)


def inverse_smoothstep(image: jax.Array) -> jax.Array:
    """Inverse of the tone curve 3x^2 - 2x^3 (input clipped to [0, 1])."""
    image = jnp.clip(image, 0.0, 1.0)
    return 0.5 - jnp.sin(jnp.arcsin(1.0 - 2.0 * image) / 3.0)


def smoothstep(image: jax.Array) -> jax.Array:
    """The tone curve 3x^2 - 2x^3."""
    return 3.0 * image**2 - 2.0 * image**3


def _safe_gains(gray: jax.Array, gains: jax.Array) -> jax.Array:
    """[B, H, W, 3] gains faded towards 1 near white (gray [B, H, W, 1], gains [B, 1, 1, 3])."""
    mask = (jnp.maximum(gray - HIGHLIGHT_INFLECTION, 0.0) / (1.0 - HIGHLIGHT_INFLECTION)) ** 2
    return jnp.maximum(mask + (1.0 - mask) * gains, gains)


def _invert_safe_gains(image: jax.Array, gains: jax.Array) -> jax.Array:
    """Exact inverse of `x * _safe_gains(mean(x), gains)`, by bisection on the gray level (see the reference)."""
    plain = image / gains
    gray0 = plain.mean(axis=-1, keepdims=True)
    lo = jnp.full_like(gray0, HIGHLIGHT_INFLECTION)
    hi = jnp.maximum(gray0, lo)

    def halve(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        positive = (image / _safe_gains(mid, gains)).mean(axis=-1, keepdims=True) > mid
        return jnp.where(positive, mid, lo), jnp.where(positive, hi, mid)

    lo, hi = lax.fori_loop(0, _BISECTION_STEPS, halve, (lo, hi))
    return jnp.where(gray0 > HIGHLIGHT_INFLECTION, image / _safe_gains(0.5 * (lo + hi), gains), plain)


def unprocess(image: jax.Array, rgb2cam: jax.Array, gains: jax.Array, preserve_highlights: bool) -> jax.Array:
    """sRGB [B, H, W, 3] in [0, 1] -> linear camera RGB (not clipped); rgb2cam [B, 3, 3], gains [B, 3]."""
    x = inverse_smoothstep(image)
    x = jnp.maximum(x, _EPS) ** GAMMA
    x = _apply_ccm(x, rgb2cam)
    g = gains[:, None, None, :]
    return x * _safe_gains(x.mean(axis=-1, keepdims=True), g) if preserve_highlights else x * g


def process(linear: jax.Array, cam2rgb: jax.Array, gains: jax.Array, preserve_highlights: bool) -> jax.Array:
    """Linear camera RGB [B, H, W, 3] -> sRGB in [0, 1]; the inverse of `unprocess` (cam2rgb = inv(rgb2cam))."""
    g = gains[:, None, None, :]
    x = _invert_safe_gains(linear, g) if preserve_highlights else linear / g
    x = jnp.clip(_apply_ccm(x, cam2rgb), 0.0, 1.0)
    x = jnp.maximum(x, _EPS) ** (1.0 / GAMMA)
    return smoothstep(x)


def add_read_shot_noise(linear: jax.Array, normal: jax.Array, shot: jax.Array, read: jax.Array) -> jax.Array:
    """y = x + z * sqrt(shot * max(x, 0) + read), z = `normal` [B, H, W, 3]; shot, read [B]."""
    variance = shot[:, None, None, None] * jnp.maximum(linear, 0.0) + read[:, None, None, None]
    return linear + normal * jnp.sqrt(variance)
