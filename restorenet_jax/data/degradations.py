"""Per-image synthetic degradations (numpy): noise models and blur kernels, all driven by an explicit rng.

Entry points used by the data pipeline:
  add_noise(image, rng, cfg)       cfg = configs.degradations.get_noise_config()
  synthetic_blur(image, rng, cfg)  cfg = configs.degradations.get_blur_config()
Images are [H, W, 3] float32 in [0, 1]; outputs have the same shape and dtype, clipped to [0, 1].
The same Generator state always gives the same output.
"""
from __future__ import annotations

import functools

import ml_collections
import numpy as np
from scipy import signal

from restorenet_jax.configs.degradations import NOISE_KINDS  # noqa: F401  (the one list, re-exported)
from restorenet_jax.data import cctv, mixed
from restorenet_jax.data.camera_pipeline import (  # noqa: F401  (re-exported: the low-level pieces)
    CameraParams,
    add_read_shot_noise,
    process,
    sample_camera_params,
    sample_noise_levels,
    unprocess,
)

BLUR_KINDS = ('motion', 'uniform', 'none')


def _log_uniform(rng: np.random.Generator, value_range: tuple[float, float]) -> float:
    lo, hi = value_range
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# ----------------------------------------------------------------------------------------------- noise


def low_light_noise(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Dark-scene sensor noise on an sRGB image (Brooks et al. 2019 unprocessing + an exposure drop).

    sRGB -> linear camera RGB -> x exposure -> + N(0, shot*x + read) -> (/ exposure if cfg.rebrighten) -> sRGB.

    Args:
      image: [H, W, 3] sRGB in [0, 1].
      rng: randomness source (camera, exposure, noise levels and the noise itself are all drawn from it).
      cfg: the 'low_light' sub-config of get_noise_config().

    Returns:
      [H, W, 3] float32 sRGB in [0, 1].
    """
    camera = sample_camera_params(rng, cfg)
    exposure = _log_uniform(rng, cfg.exposure_range)
    shot, read = sample_noise_levels(rng, cfg)
    linear = unprocess(image, camera, cfg.preserve_highlights) * exposure
    noisy = add_read_shot_noise(linear, rng, shot, read)
    if cfg.rebrighten:
        noisy = noisy / exposure
    return process(noisy, camera, cfg.preserve_highlights)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """x + N(0, sigma^2) with sigma ~ U(cfg.sigma_range), i.i.d. per pixel and channel (not clipped)."""
    sigma = rng.uniform(*cfg.sigma_range)
    return image + np.float32(sigma) * rng.standard_normal(image.shape, dtype=np.float32)


def poisson_noise(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Poisson(peak * x) / peak with peak log-uniform in cfg.peak_range (mean x, variance x / peak)."""
    peak = _log_uniform(rng, cfg.peak_range)
    return rng.poisson(np.maximum(image, 0.0) * peak) / peak


@functools.lru_cache(maxsize=2)
def danet_noiser(checkpoint_dir: str):
    """The DanetNoiser of a converted directory, loaded once per directory (host and device degradations)."""
    # Imported lazily: JAX/flax are only needed when the learned noise model is used.
    from restorenet_jax.data.danet_noise import DanetNoiser

    return DanetNoiser.from_checkpoint(checkpoint_dir)


def danet_noise(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Learned sRGB noise from the DANet generator loaded from cfg.danet_checkpoint (a converted directory)."""
    if not cfg.danet_checkpoint:
        raise ValueError(
            "noise kind 'danet' needs cfg.danet_checkpoint: convert the official weights first with "
            "`python -m convert.danet DANet.pt OUTPUT_DIR` and set danet_checkpoint=OUTPUT_DIR")
    seed = int(rng.integers(0, 2**31 - 1))
    return np.asarray(danet_noiser(str(cfg.danet_checkpoint))(image, seed))


def add_noise(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Adds the noise model named by cfg.kind to one image.

    Args:
      image: [H, W, 3] float32 in [0, 1].
      rng: randomness source; the same generator state gives the same output.
      cfg: get_noise_config(): cfg.kind in NOISE_KINDS, parameters in the sub-config of that name.

    Returns:
      [H, W, 3] float32 clipped to [0, 1].
    """
    image = np.asarray(image, np.float32)
    kind = cfg.kind
    if kind == 'none':
        noisy = image
    elif kind == 'low_light':
        noisy = low_light_noise(image, rng, cfg.low_light)
    elif kind == 'gaussian':
        noisy = gaussian_noise(image, rng, cfg.gaussian)
    elif kind == 'poisson':
        noisy = poisson_noise(image, rng, cfg.poisson)
    elif kind == 'cctv':
        noisy = cctv.cctv_noise(image, rng, cfg)
    elif kind == 'mixed':
        noisy = mixed.mixed_noise(image, rng, cfg)
    elif kind == 'danet':
        noisy = danet_noise(image, rng, cfg)
    else:
        raise ValueError(f'unknown noise kind {kind!r}; expected one of {NOISE_KINDS}')
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------------ blur


def uniform_blur_kernel(size: int) -> np.ndarray:
    """[size, size] box kernel summing to 1."""
    if size < 1:
        raise ValueError(f'kernel size must be >= 1, got {size}')
    return np.full((size, size), 1.0 / (size * size), np.float32)


def motion_blur_kernel(rng: np.random.Generator, size: int, *, length_range: tuple[float, float],
                       curvature: float, num_points: int) -> np.ndarray:
    """Random camera-shake kernel: a smooth random trajectory rasterised onto a [size, size] grid.

    The trajectory starts in a uniform random direction and turns by N(0, curvature) radians per step, so a
    small curvature gives a directional streak. It is centred and, if needed, shrunk to fit the grid, then
    splatted bilinearly (sub-pixel accurate) and normalised.

    Args:
      rng: randomness source.
      size: kernel side length (>= 1).
      length_range: trajectory length as a fraction of (size - 1), drawn uniformly.
      curvature: std of the heading change per step, in radians.
      num_points: trajectory samples (>= 2).

    Returns:
      [size, size] float32, non-negative, summing to 1.
    """
    if size < 1 or num_points < 2:
        raise ValueError(f'need size >= 1 and num_points >= 2, got size={size}, num_points={num_points}')
    half = (size - 1) / 2.0
    length = rng.uniform(*length_range) * (size - 1)
    heading = rng.uniform(0.0, 2.0 * np.pi) + np.concatenate(
        [[0.0], np.cumsum(rng.normal(0.0, curvature, num_points - 2))])  # [num_points - 1]
    steps = (length / (num_points - 1)) * np.stack([np.sin(heading), np.cos(heading)], axis=-1)  # (dy, dx)
    points = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])  # [num_points, 2]
    points -= 0.5 * (points.max(axis=0) + points.min(axis=0))  # centre the bounding box
    extent = np.abs(points).max()
    if extent > half:
        points *= half / extent
    points += half
    # Bilinear splat: each sample spreads unit mass over its 4 neighbouring pixels.
    base = np.floor(points).astype(int)
    frac = points - base
    kernel = np.zeros((size, size), np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            rows = np.minimum(base[:, 0] + dy, size - 1)
            cols = np.minimum(base[:, 1] + dx, size - 1)
            np.add.at(kernel, (rows, cols), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def apply_blur_kernel(image: np.ndarray, kernel: np.ndarray, pad_mode: str = 'reflect') -> np.ndarray:
    """Convolves each channel of [H, W, C] with a [k, k] kernel; borders padded with `pad_mode` (numpy.pad).

    Returns:
      float32 [H, W, C], same shape as the input, clipped to [0, 1].
    """
    image = np.asarray(image, np.float32)
    kh, kw = kernel.shape
    pad = ((kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0))
    padded = np.pad(image, pad, mode=pad_mode)
    # FFT convolution: kernels of ~25 px make the direct sum several times slower on a 256 px crop.
    out = signal.fftconvolve(padded, np.asarray(kernel, np.float32)[:, :, None], mode='valid', axes=(0, 1))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _odd_size(rng: np.random.Generator, size_range: tuple[int, int]) -> int:
    lo, hi = size_range
    sizes = np.arange(lo | 1, hi + 1, 2)  # odd sizes keep the kernel centred on a pixel
    if sizes.size == 0:
        raise ValueError(f'size_range {size_range} contains no odd size')
    return int(rng.choice(sizes))


def synthetic_blur(image: np.ndarray, rng: np.random.Generator, cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Blurs one image with a random kernel of the kind named by cfg.kind.

    Args:
      image: [H, W, 3] float32 in [0, 1].
      rng: randomness source.
      cfg: get_blur_config(): cfg.kind in BLUR_KINDS, kernel settings in the sub-config of that name.

    Returns:
      [H, W, 3] float32 in [0, 1].
    """
    kind = cfg.kind
    if kind == 'none':
        return np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if kind == 'motion':
        kernel = motion_blur_kernel(rng, _odd_size(rng, cfg.motion.size_range), **cfg.motion.params)
    elif kind == 'uniform':
        kernel = uniform_blur_kernel(_odd_size(rng, cfg.uniform.size_range))
    else:
        raise ValueError(f'unknown blur kind {kind!r}; expected one of {BLUR_KINDS}')
    return apply_blur_kernel(image, kernel, cfg.pad_mode)
