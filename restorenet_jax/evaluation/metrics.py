"""Image quality metrics with BasicSR / NAFNet conventions (BasicSR's `calculate_psnr` / `calculate_ssim`, NAFNet's 3-D SSIM).

Two faces:

* numpy, one image at a time (`psnr`, `ssim`): float64 arithmetic on [H, W, C] arrays, for evaluation tables. The
  options reproduce BasicSR's `calculate_psnr` / `calculate_ssim`: `crop_border`, `y_channel` (BasicSR's
  ``rgb2ycbcr(y_only=True)`` formula on RGB input), `quantize` (the GoPro protocol: clamp to [0, 1], ×255, round to
  uint8 before scoring) and `ssim3d` (NAFNet's 11×11×11 Gaussian window over (H, W, C) with replicate borders).
* jax, batched (`psnr_batch`, `ssim_batch`): [B, H, W, C] in, [B] out, jit-able, for training / validation. They
  are dm-pix (`dm_pix.psnr`, `dm_pix.ssim` with defaults), which equals the numpy 2-D SSIM up to float32 rounding.

The default SSIM is the standard one: a 2-D Gaussian window 11×11, σ 1.5, C1 = (0.01·L)², C2 = (0.03·L)², computed
per channel on the "valid" region (5 pixels lost on each side) and averaged — the same numbers as scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L)``.
"""
from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

# SSIM window: 11 taps, sigma 1.5 (Wang et al. 2004; cv2.getGaussianKernel(11, 1.5) in BasicSR).
_WIN = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
# BasicSR rgb2ycbcr(y_only=True) weights for RGB in [0, 1], giving Y in [16, 235] on the 0..255 scale.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def _gaussian_taps(size: int = _WIN, sigma: float = _SIGMA) -> np.ndarray:
    """1-D normalised Gaussian taps, identical to cv2.getGaussianKernel(size, sigma) for sigma > 0."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def rgb_to_y(img: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Luma Y of BasicSR's ``rgb2ycbcr(img, y_only=True)``, on the same scale as the input.

    Args:
      img: [H, W, 3] RGB with values in [0, data_range].
      data_range: the value of white (1.0 for float images, 255 for uint8-scale ones).
    Returns:
      [H, W, 1] float64, Y in [16/255, 235/255]·data_range.
    """
    img = np.asarray(img, np.float64) / data_range
    y = (img @ _Y_WEIGHTS + 16.0) / 255.0
    return (y * data_range)[..., None]


def _prepare(a, b, data_range: float, crop_border: int, y_channel: bool, quantize: bool):
    """Shared pre-processing of both metrics: dtype, quantisation, border crop, Y conversion."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected [H, W, C] images, got shape {a.shape}")
    if quantize:
        # GoPro protocol: the network output goes through tensor2img (clamp, ×255, round to uint8) before scoring.
        a = np.round(np.clip(a / data_range, 0.0, 1.0) * 255.0) / 255.0 * data_range
        b = np.round(np.clip(b / data_range, 0.0, 1.0) * 255.0) / 255.0 * data_range
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        if a.shape[-1] != 3:
            raise ValueError("y_channel=True needs RGB images")
        a, b = rgb_to_y(a, data_range), rgb_to_y(b, data_range)
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = False) -> float:
    """PSNR in dB, 10·log10(L² / MSE) over all pixels and channels (BasicSR ``calculate_psnr``).

    Args:
      a, b: [H, W, C] (or [H, W]) images with values in [0, data_range].
      data_range: L, the value of white.
      crop_border: pixels dropped on each edge before scoring.
      y_channel: score only BasicSR's Y channel of YCbCr (RGB input).
      quantize: round both images to uint8 levels first (clamp to [0, L], ×255/L, round).
    Returns:
      PSNR in dB; ``inf`` for identical images.
    """
    a, b = _prepare(a, b, data_range, crop_border, y_channel, quantize)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _ssim_map(a: np.ndarray, b: np.ndarray, data_range: float, axes: tuple[int, ...], mode: str) -> np.ndarray:
    """SSIM map of two same-shaped float64 arrays, Gaussian-filtered separably along `axes`."""
    taps = _gaussian_taps()

    def blur(x):
        for ax in axes:
            x = ndimage.correlate1d(x, taps, axis=ax, mode=mode)
        return x

    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return num / den


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False,
         quantize: bool = False, ssim3d: bool = False) -> float:
    """Structural similarity (BasicSR ``calculate_ssim``), Gaussian window 11, σ 1.5.

    Args:
      a, b: [H, W, C] (or [H, W]) images with values in [0, data_range].
      data_range: L, the value of white; C1 = (0.01·L)², C2 = (0.03·L)².
      crop_border: pixels dropped on each edge before scoring.
      y_channel: score only BasicSR's Y channel of YCbCr (RGB input).
      quantize: round both images to uint8 levels first (clamp to [0, L], ×255/L, round).
      ssim3d: NAFNet's variant — one 11×11×11 Gaussian window sliding over (H, W, C) with replicate padding, mean
        over the full map — instead of the standard per-channel 2-D window on the valid region (the default, equal
        to scikit-image's gaussian_weights=True, use_sample_covariance=False). Images need H, W >= 11 for 2-D.
    Returns:
      Mean SSIM.
    """
    a, b = _prepare(a, b, data_range, crop_border, y_channel, quantize)
    if ssim3d:
        # NAFNet's _ssim_3d: conv3d with padding 5, padding_mode='replicate', over the [H, W, C] volume.
        return float(_ssim_map(a, b, data_range, axes=(0, 1, 2), mode="nearest").mean())
    pad = (_WIN - 1) // 2
    if min(a.shape[0], a.shape[1]) < _WIN:
        raise ValueError(f"2-D SSIM needs images of at least {_WIN}x{_WIN}, got {a.shape[:2]}")
    # Filtered values near the border depend on the padding rule; like BasicSR (cv2 then [5:-5]) and scikit-image
    # (crop(S, pad)) only the valid region is averaged, so the padding mode does not matter.
    smap = _ssim_map(a, b, data_range, axes=(0, 1), mode="reflect")
    return float(smap[pad:-pad, pad:-pad].mean())


@jax.jit
def psnr_batch(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-image PSNR (dB) of [B, H, W, C] batches in [0, 1] -> [B]; dm-pix, jit-able."""
    return dm_pix.psnr(a.astype(jnp.float32), b.astype(jnp.float32))


@jax.jit
def ssim_batch(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-image 2-D Gaussian SSIM of [B, H, W, C] batches in [0, 1] -> [B]; dm-pix defaults (11, σ 1.5, valid)."""
    return dm_pix.ssim(a.astype(jnp.float32), b.astype(jnp.float32))
