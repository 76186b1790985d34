"""Synthetic blur kernels of `degradations.py` built and applied in JAX, one kernel per example.

Kernels of every size live centred in one static [K, K] grid (K = the largest odd size of the configured range;
zeros around a smaller kernel), so a batch with mixed kernel sizes is one array and one convolution. The motion
kernel is the reference's trajectory from the same unit draws; its bilinear splat is written as a sum of tent
functions over the grid (the same weights, without a scatter).

Shapes: images [B, H, W, C]; kernels [B, K, K]; per-example scalars [B].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax


def odd_sizes(size_range: tuple[int, int]) -> np.ndarray:
    """The odd kernel sizes of a closed range, as the reference draws them from (static)."""
    lo, hi = size_range
    sizes = np.arange(int(lo) | 1, int(hi) + 1, 2)
    if sizes.size == 0:
        raise ValueError(f'size_range {size_range} contains no odd size')
    return sizes


def grid_size(blur_cfg: ml_collections.ConfigDict) -> int:
    """K: the side of the kernel grid for the configured blur kind (1 for 'none')."""
    if blur_cfg.kind == 'none':
        return 1
    return int(odd_sizes(blur_cfg[blur_cfg.kind].size_range).max())


def _grid_coords(size: jax.Array, k: int) -> jax.Array:
    """[B, K] coordinates of the grid cells in the frame of a centred kernel of side `size` [B]."""
    offset = (k - size) // 2  # both odd: the kernel's cell 0 sits at grid cell `offset`
    return jnp.arange(k, dtype=jnp.float32)[None, :] - offset[:, None].astype(jnp.float32)


def uniform_kernels(size: jax.Array, k: int) -> jax.Array:
    """Box kernels of side `size` [B] (odd) centred in [B, K, K] grids, each summing to 1."""
    coords = _grid_coords(size, k)
    inside = (coords >= 0) & (coords < size[:, None])  # [B, K]
    box = (inside[:, :, None] & inside[:, None, :]).astype(jnp.float32)
    return box / (size.astype(jnp.float32) ** 2)[:, None, None]


def motion_kernels(size: jax.Array, length_frac: jax.Array, heading0: jax.Array, turns: jax.Array,
                   k: int) -> jax.Array:
    """Camera-shake kernels from the reference's draws, centred in [B, K, K] grids.

    Args:
      size: [B] odd kernel sides.
      length_frac: [B] trajectory length as a fraction of (size - 1) (reference: U(length_range)).
      heading0: [B] initial direction in radians (reference: U(0, 2 pi)).
      turns: [B, num_points - 2] heading changes in radians (reference: N(0, curvature)).
      k: grid side.

    Returns:
      [B, K, K] float32, non-negative, each summing to 1.
    """
    sizef = size.astype(jnp.float32)
    half = (sizef - 1.0) / 2.0  # [B]
    num_points = turns.shape[-1] + 2
    length = length_frac * (sizef - 1.0)
    heading = heading0[:, None] + jnp.concatenate([jnp.zeros_like(turns[:, :1]), jnp.cumsum(turns, -1)], -1)
    steps = (length / (num_points - 1))[:, None, None] * jnp.stack([jnp.sin(heading), jnp.cos(heading)], -1)
    points = jnp.concatenate([jnp.zeros_like(steps[:, :1]), jnp.cumsum(steps, axis=1)], axis=1)  # [B, P, 2]
    points = points - 0.5 * (points.max(axis=1, keepdims=True) + points.min(axis=1, keepdims=True))
    extent = jnp.abs(points).max(axis=(1, 2))
    scale = jnp.where(extent > half, half / jnp.maximum(extent, 1e-12), 1.0)
    points = points * scale[:, None, None] + half[:, None, None]
    coords = _grid_coords(size, k)  # [B, K]
    # Bilinear splat = tent weights max(0, 1 - |cell - point|) per axis, summed over the trajectory points.
    wy = jnp.maximum(0.0, 1.0 - jnp.abs(coords[:, None, :] - points[:, :, 0:1]))  # [B, P, K]
    wx = jnp.maximum(0.0, 1.0 - jnp.abs(coords[:, None, :] - points[:, :, 1:2]))
    kernel = jnp.einsum('bpy,bpx->byx', wy, wx, precision=lax.Precision.HIGHEST)
    return kernel / kernel.sum(axis=(1, 2), keepdims=True)


def apply_kernels(images: jax.Array, kernels: jax.Array, pad_mode: str = 'reflect') -> jax.Array:
    """Convolves each example's channels with its kernel; borders padded with `pad_mode` (numpy.pad names).

    Args:
      images: [B, H, W, C] float32.
      kernels: [B, K, K] (K odd).
      pad_mode: as the reference's `apply_blur_kernel`.

    Returns:
      [B, H, W, C] float32 clipped to [0, 1].
    """
    k = kernels.shape[-1]
    c = images.shape[-1]
    padded = jnp.pad(images, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode=pad_mode)
    # conv_general_dilated correlates: flip the kernel to convolve as the reference (fftconvolve) does.
    rhs = jnp.broadcast_to(kernels[:, ::-1, ::-1, None, None], (*kernels.shape, 1, c))  # [B, K, K, 1, C]

    def one(image, kernel):  # [Hp, Wp, C], [K, K, 1, C]: depthwise
        return lax.conv_general_dilated(image[None], kernel, (1, 1), 'VALID', feature_group_count=c,
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                        precision=lax.Precision.HIGHEST)[0]

    return jnp.clip(jax.vmap(one)(padded, rhs), 0.0, 1.0)
