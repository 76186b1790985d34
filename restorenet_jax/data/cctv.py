"""Surveillance-camera degradation 'cctv' (numpy reference for `device_cctv.py`).

What a real dark CCTV frame carries, per round:
  1. resolution drop: antialiased (triangle-filter) downscale to round(side * scale) pixels -- the sensor and the
     analog/D1 chain resolve less than the output frame;
  2. sensor noise in the raw Bayer mosaic: unprocess (Brooks et al. 2019, the 'low_light' camera) -> x exposure ->
     RGGB mosaic -> shot + read noise per photosite -> (/ exposure: auto gain) -> bilinear demosaic -> process.
     Demosaicing interpolates each colour from neighbouring photosites, so the noise becomes spatially correlated
     and coloured;
  3. bilinear re-upscale to the frame size (the noise grows into blotches of 1 / scale pixels);
  4. chroma noise: Gaussian noise on Cb and Cr drawn on a grid of `chroma_scale` times the frame's resolution,
     bilinearly upsampled (the colour blotches of analog transmission and aggressive chroma subsampling);
  5. JPEG/H.264-intra-like 8x8 block DCT quantisation at a random quality (`jpeg.py`).
A second round (probability `second_round_prob`, Real-ESRGAN's high-order degradation) repeats 1-5 with its own
draws on the result: a re-encoded, re-scaled stream; it has no exposure drop and its noise is scaled down.

Three stages, like the device version, so a test can fix each: `sample_params` (every per-image number),
`draw_noise` (unit normals at the frame size; a round uses their top-left corner of its low-resolution size) and
`apply`. Camera, exposure and noise levels come from the 'low_light' sub-config; the rest from 'cctv'.
"""
from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from restorenet_jax.data import jpeg
from restorenet_jax.data.camera_pipeline import (CameraParams, process, sample_camera_params, sample_noise_levels,
                                                 unprocess)

ROUNDS = 2
BAYER = 'RGGB'  # colour of the photosites at (even, even), (even, odd), (odd, even), (odd, odd)
# Bilinear demosaic weights (normalised by the weights of the photosites present, so borders need no padding
# rule): red and blue from up to 4 diagonal / 2 straight neighbours, green from its 4 straight neighbours.
DEMOSAIC_KERNELS = np.array([[[1, 2, 1], [2, 4, 2], [1, 2, 1]],
                             [[0, 1, 0], [1, 4, 1], [0, 1, 0]],
                             [[1, 2, 1], [2, 4, 2], [1, 2, 1]]], np.float32)  # [3 (RGB), 3, 3]
MIN_SIDE = 2  # a low-resolution side keeps at least one full Bayer period


@dataclasses.dataclass(frozen=True)
class CctvParams:
    """One image's draws; per-round tuples have ROUNDS entries."""

    camera: CameraParams
    exposure: float  # round 1's exposure drop (round 2 has none)
    scale: tuple[float, ...]  # resolution factor of each round
    shot: tuple[float, ...]  # linear-space shot-noise variance factor of each round
    read: tuple[float, ...]  # linear-space read-noise variance of each round
    chroma_sigma: tuple[float, ...]  # std of the Cb/Cr noise on the [0, 1] scale
    chroma_scale: tuple[float, ...]  # chroma-noise grid resolution relative to the frame
    quality: tuple[int, ...]  # JPEG quality 1..100
    second_round: bool


def low_side(n: int, scale: float) -> int:
    """Side of a round's low-resolution grid: round(n * scale), at least MIN_SIDE and at most n."""
    return int(min(max(np.floor(n * scale + 0.5), MIN_SIDE), n))


def quality_from_unit(u: float, quality_range) -> int:
    """An integer quality uniform over the closed range from a U(0, 1) number."""
    lo, hi = (int(v) for v in quality_range)
    return int(min(lo + np.floor(u * (hi - lo + 1)), hi))


def sample_params(rng: np.random.Generator, noise_cfg: ml_collections.ConfigDict) -> CctvParams:
    """Every per-image number of the 'cctv' kind, in a fixed draw order (the device test replays it).

    Order: camera (sample_camera_params), exposure (log-uniform), then per round: scale, shot/read
    (sample_noise_levels), chroma sigma, chroma scale, quality; finally the second-round coin. The second
    round's numbers are drawn even when the coin skips it, so the stream of draws never depends on the coin.
    """
    ll, cc = noise_cfg.low_light, noise_cfg.cctv
    camera = sample_camera_params(rng, ll)
    lo, hi = ll.exposure_range
    exposure = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    rounds = []
    for r in range(ROUNDS):
        scale = float(rng.uniform(*cc.scale_range))
        shot, read = sample_noise_levels(rng, ll)
        if r > 0:  # both are variances: the noise std scales by second_round_noise_scale
            shot, read = (v * cc.second_round_noise_scale**2 for v in (shot, read))
        rounds.append((scale, shot, read, float(rng.uniform(*cc.chroma_sigma_range)),
                       float(rng.uniform(*cc.chroma_scale_range)),
                       quality_from_unit(rng.uniform(), cc.jpeg_quality_range)))
    second = bool(rng.uniform() < cc.second_round_prob)
    scale, shot, read, chroma_sigma, chroma_scale, quality = zip(*rounds)
    return CctvParams(camera=camera, exposure=exposure, scale=scale, shot=shot, read=read,
                      chroma_sigma=chroma_sigma, chroma_scale=chroma_scale, quality=quality, second_round=second)


def draw_noise(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals for an [H, W] frame: (mosaic [ROUNDS, H, W], chroma [ROUNDS, H, W, 2]), float32."""
    h, w = shape
    mosaic = rng.standard_normal((ROUNDS, h, w), dtype=np.float32)
    chroma = rng.standard_normal((ROUNDS, h, w, 2), dtype=np.float32)
    return mosaic, chroma


def down_matrix(n: int, m: int) -> np.ndarray:
    """[m, n] antialiased downscale: a triangle filter n/m pixels wide at each low-res pixel centre, rows sum to 1."""
    ratio = n / m
    centre = (np.arange(m) + 0.5) * ratio - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n)[None, :] - centre[:, None]) / ratio)
    return w / w.sum(axis=1, keepdims=True)


def up_matrix(n: int, m: int) -> np.ndarray:
    """[n, m] bilinear upscale (pixel centres aligned, edge pixels replicated), rows sum to 1."""
    pos = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0.0, m - 1)
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(m)[None, :]))


def _resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows @ image @ cols.T over the two spatial axes of [h, w, C]."""
    out = np.einsum('ih,hwc->iwc', rows.astype(np.float32), image, optimize=True)
    return np.einsum('iwc,jw->ijc', out, cols.astype(np.float32), optimize=True)


def bayer_masks(h: int, w: int) -> np.ndarray:
    """[h, w, 3] one-hot colour of each photosite of the RGGB mosaic."""
    y, x = np.mgrid[:h, :w]
    colour = np.array([[0, 1], [1, 2]])[y % 2, x % 2]  # R G / G B
    return (colour[..., None] == np.arange(3)).astype(np.float32)


def _conv3(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Per-channel 3x3 correlation with zero padding: [h, w, 3] x [3, 3, 3] -> [h, w, 3]."""
    h, w = x.shape[:2]
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    return sum(p[dy:dy + h, dx:dx + w] * kernels[:, dy, dx] for dy in range(3) for dx in range(3))


def demosaic(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an RGGB mosaic [h, w] -> [h, w, 3]."""
    masks = bayer_masks(*mosaic.shape)
    num = _conv3(mosaic[..., None] * masks, DEMOSAIC_KERNELS)
    return num / _conv3(masks, DEMOSAIC_KERNELS)


def sensor_noise(image: np.ndarray, camera: CameraParams, exposure: float, shot: float, read: float,
                 normal: np.ndarray, ll: ml_collections.ConfigDict) -> np.ndarray:
    """sRGB [h, w, 3] -> raw RGGB mosaic with shot + read noise -> bilinear demosaic -> sRGB [h, w, 3] in [0, 1].

    `normal` [h, w]: one unit normal per photosite.
    """
    linear = unprocess(image, camera, ll.preserve_highlights) * np.float32(exposure)
    mosaic = (linear * bayer_masks(*image.shape[:2])).sum(axis=-1)
    noisy = mosaic + normal * np.sqrt(np.float32(shot) * np.maximum(mosaic, 0.0) + np.float32(read))
    if ll.rebrighten:
        noisy = noisy / np.float32(exposure)
    return process(demosaic(noisy), camera, ll.preserve_highlights)


def chroma_noise(image: np.ndarray, sigma: float, scale: float, normal: np.ndarray) -> np.ndarray:
    """Adds coarse Cb/Cr noise (std `sigma` on [0, 1] at the grid points) to [H, W, 3] RGB; clipped to [0, 1].

    `normal` [H, W, 2]: its top-left [low_side(H, scale), low_side(W, scale)] corner is the noise grid.
    """
    h, w = image.shape[:2]
    mh, mw = low_side(h, scale), low_side(w, scale)
    blotches = _resample(normal[:mh, :mw], up_matrix(h, mh), up_matrix(w, mw))  # [H, W, 2]
    ycc = jpeg.rgb_to_ycbcr(image)
    ycc = np.concatenate([ycc[..., :1], ycc[..., 1:] + np.float32(255.0 * sigma) * blotches], axis=-1)
    return np.clip(jpeg.ycbcr_to_rgb(ycc), 0.0, 1.0)


def capture(image: np.ndarray, params: CctvParams, r: int, noise: tuple[np.ndarray, np.ndarray],
            ll: ml_collections.ConfigDict) -> np.ndarray:
    """Round r (0-based) of the module docstring's steps 1-4 (all but the compression) on [H, W, 3] in [0, 1]."""
    h, w = image.shape[:2]
    mh, mw = low_side(h, params.scale[r]), low_side(w, params.scale[r])
    low = _resample(image, down_matrix(h, mh), down_matrix(w, mw))
    exposure = params.exposure if r == 0 else 1.0
    low = sensor_noise(low, params.camera, exposure, params.shot[r], params.read[r], noise[0][r, :mh, :mw], ll)
    frame = _resample(low, up_matrix(h, mh), up_matrix(w, mw))
    return chroma_noise(frame, params.chroma_sigma[r], params.chroma_scale[r], noise[1][r])


def degrade_round(image: np.ndarray, params: CctvParams, r: int, noise: tuple[np.ndarray, np.ndarray],
                  ll: ml_collections.ConfigDict) -> np.ndarray:
    """Round r (0-based): `capture`, then JPEG compression at the round's quality."""
    return jpeg.compress(capture(image, params, r, noise, ll), params.quality[r])


def apply(image: np.ndarray, params: CctvParams, noise: tuple[np.ndarray, np.ndarray],
          ll: ml_collections.ConfigDict) -> np.ndarray:
    """The 'cctv' degradation of [H, W, 3] sRGB in [0, 1] for fixed params and unit noise; float32 in [0, 1]."""
    out = degrade_round(np.asarray(image, np.float32), params, 0, noise, ll)
    if params.second_round:
        out = degrade_round(out, params, 1, noise, ll)
    return out


def cctv_noise(image: np.ndarray, rng: np.random.Generator, noise_cfg: ml_collections.ConfigDict) -> np.ndarray:
    """The 'cctv' noise kind on one image (see the module docstring).

    Args:
      image: [H, W, 3] sRGB in [0, 1].
      rng: randomness source (parameters first, then the unit noise).
      noise_cfg: the whole noise config (get_noise_config()): its 'low_light' and 'cctv' sub-configs are read.

    Returns:
      [H, W, 3] float32 in [0, 1].
    """
    params = sample_params(rng, noise_cfg)
    return apply(image, params, draw_noise(rng, image.shape[:2]), noise_cfg.low_light)
