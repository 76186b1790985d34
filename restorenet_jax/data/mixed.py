"""Noise kind 'mixed' (numpy reference for `device_mixed.py`): a broad family of camera noise, so that a model
trained on it does well on noise it was not tuned to.

Per image, every number drawn afresh (ranges in the config's 'mixed' sub-config):
  1. sensor noise, shot + read, at a level from faint to very dark (exposure drop, then the camera's auto gain),
     with a random shot/read balance; either in the camera's linear space (Brooks et al. 2019 unprocessing, the
     'low_light' camera) or, sometimes, directly on the sRGB values (the plain Gaussian/Poisson-like case);
     either per pixel and channel with a random luma share (noise common to R, G, B: grey grain rather than
     colour speckle) or on an RGGB mosaic followed by a bilinear demosaic (spatially correlated, coloured);
  2. the camera's processing in random order (BSRGAN's shuffled degradations): ISP sharpening (unsharp mask,
     amplifies the grain), ISP denoising (a blend with a blurred copy, smears it into blotches), coarse chroma
     noise (Cb/Cr blotches, as 'cctv'), row banding (a per-row offset of the read-out); each one present with
     its probability, absent = identity;
  3. compression: JPEG / H.264-intra-like 8x8 block DCT quantisation at a random quality, with a probability. The
     codec is always a round's last step, as in a camera;
  4. sometimes a second round of 1-3 on the result (Real-ESRGAN's second-order degradation: a re-processed,
     re-encoded stream) with its own draws, no exposure drop and a weaker sensor noise.

Three stages, like the device twin, so a test can feed both the same numbers: `draw_units` (every per-image unit
random number, in a fixed order), `make_params` (the config's ranges applied to them; one formula for numpy and
JAX arrays, `xp`), `draw_noise` (per-pixel unit normals) and `apply`. The camera comes from the 'low_light'
sub-config (`sample_camera_params`), drawn before the units.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import ml_collections
import numpy as np

from restorenet_jax.data import cctv, jpeg
from restorenet_jax.data.camera_pipeline import CameraParams, process, sample_camera_params, unprocess

ROUNDS = 2
ISP_OPS = ('sharpen', 'smooth', 'chroma', 'banding')  # shuffled per round (step 2)
# Separable binomial 3x3 low-pass of the ISP's sharpening and denoising (the reference blur of both).
BINOMIAL = np.array([0.25, 0.5, 0.25], np.float32)


class MixedUnits(NamedTuple):
    """Unit random numbers of one image ([ROUNDS] unless noted; a leading batch axis on the device): U(0, 1)."""

    exposure_u: Any  # [] log-uniform in exposure_range (round 1 only)
    shot_u: Any  # log-uniform in shot_noise_range
    balance_u: Any  # read / (the low-light fit's read for that shot): log-uniform in read_balance_range
    srgb_u: Any  # < srgb_prob: the sensor noise is added to the sRGB values instead of the linear ones
    mosaic_u: Any  # < mosaic_prob: RGGB mosaic + demosaic
    luma_u: Any  # share of the noise common to the three channels: U(luma_share_range)
    sharpen_u: Any  # [ROUNDS, 2]: (present if < prob, amount)
    smooth_u: Any  # [ROUNDS, 2]
    chroma_u: Any  # [ROUNDS, 3]: (present, sigma, grid scale)
    banding_u: Any  # [ROUNDS, 2]
    jpeg_u: Any  # [ROUNDS, 2]: (present, quality)
    order_u: Any  # [ROUNDS, len(ISP_OPS)]: the ops run in argsort order
    second_u: Any  # []: a second round when < second_round_prob


class MixedParams(NamedTuple):
    """One image's values ([ROUNDS] unless noted; a leading batch axis on the device)."""

    exposure: Any  # per round: round 1's drop, 1 for later rounds
    shot: Any  # linear-space shot-noise variance factor
    read: Any  # read-noise variance
    srgb: Any  # bool
    mosaic: Any  # bool
    luma: Any  # share of common (grey) noise in [0, 1]
    sharpen: Any  # unsharp-mask amount (0 = absent)
    smooth: Any  # blend weight of the blurred copy (0 = absent)
    chroma_sigma: Any  # Cb/Cr noise std on [0, 1] (0 = absent)
    chroma_scale: Any  # its grid resolution relative to the frame
    banding: Any  # per-row offset std on [0, 1] (0 = absent)
    compress: Any  # bool
    quality: Any  # int32 JPEG quality
    order: Any  # [ROUNDS, len(ISP_OPS)] int: op index at each position
    second_round: Any  # [] bool


def draw_units(rng: np.random.Generator) -> MixedUnits:
    """The unit numbers of one image, in the field order of MixedUnits."""
    u = lambda *shape: rng.uniform(size=shape)  # noqa: E731
    return MixedUnits(exposure_u=u(), shot_u=u(ROUNDS), balance_u=u(ROUNDS), srgb_u=u(ROUNDS), mosaic_u=u(ROUNDS),
                      luma_u=u(ROUNDS), sharpen_u=u(ROUNDS, 2), smooth_u=u(ROUNDS, 2), chroma_u=u(ROUNDS, 3),
                      banding_u=u(ROUNDS, 2), jpeg_u=u(ROUNDS, 2), order_u=u(ROUNDS, len(ISP_OPS)), second_u=u())


def make_params(d: MixedUnits, noise_cfg: ml_collections.ConfigDict, xp: Any = np) -> MixedParams:
    """The values from their unit draws (xp = numpy for one image, jax.numpy for a batch: same formulas)."""
    ll, mx = noise_cfg.low_light, noise_cfg.mixed
    between = lambda u, r: float(r[0]) + (float(r[1]) - float(r[0])) * u  # noqa: E731
    log_between = lambda u, r: xp.exp(between(u, np.log(np.asarray(r, np.float64))))  # noqa: E731
    present = lambda u, p: u[..., 0] < float(p)  # noqa: E731
    amount = lambda u, p, r: xp.where(present(u, p), between(u[..., 1], r), 0.0)  # noqa: E731
    # Round 1 drops the exposure; later rounds keep it and scale the noise std by second_round_noise_scale.
    first = xp.asarray(np.arange(ROUNDS) == 0)
    exposure = xp.where(first, log_between(d.exposure_u, mx.exposure_range)[..., None], 1.0)
    damp = xp.where(first, 1.0, float(mx.second_round_noise_scale) ** 2)
    log_shot = between(d.shot_u, np.log(np.asarray(mx.shot_noise_range, np.float64)))
    log_read = (ll.read_noise_slope * log_shot + ll.read_noise_intercept
                + between(d.balance_u, np.log(np.asarray(mx.read_balance_range, np.float64))))
    lo, hi = (int(v) for v in mx.jpeg_quality_range)
    quality = xp.minimum(lo + xp.floor(d.jpeg_u[..., 1] * (hi - lo + 1)), hi).astype(xp.int32)
    return MixedParams(
        exposure=exposure, shot=xp.exp(log_shot) * damp, read=xp.exp(log_read) * damp,
        srgb=d.srgb_u < float(mx.srgb_prob), mosaic=d.mosaic_u < float(mx.mosaic_prob),
        luma=between(d.luma_u, mx.luma_share_range),
        sharpen=amount(d.sharpen_u, mx.sharpen_prob, mx.sharpen_range),
        smooth=amount(d.smooth_u, mx.smooth_prob, mx.smooth_range),
        chroma_sigma=amount(d.chroma_u, mx.chroma_prob, mx.chroma_sigma_range),
        chroma_scale=between(d.chroma_u[..., 2], mx.chroma_scale_range),
        banding=amount(d.banding_u, mx.banding_prob, mx.banding_range),
        compress=present(d.jpeg_u, mx.jpeg_prob), quality=quality,
        order=xp.argsort(d.order_u, axis=-1), second_round=d.second_u < float(mx.second_round_prob))


class MixedNoise(NamedTuple):
    """Unit normals of one image: channels [ROUNDS, H, W, 3], common [ROUNDS, H, W] (the luma share and the
    mosaic's photosites), chroma [ROUNDS, H, W, 2] (its top-left corner is the blotch grid), rows [ROUNDS, H]."""

    channels: Any
    common: Any
    chroma: Any
    rows: Any


def draw_noise(rng: np.random.Generator, shape: tuple[int, int]) -> MixedNoise:
    """Unit normals for an [H, W] frame, float32."""
    h, w = shape
    n = lambda *s: rng.standard_normal((ROUNDS, *s), dtype=np.float32)  # noqa: E731
    return MixedNoise(channels=n(h, w, 3), common=n(h, w), chroma=n(h, w, 2), rows=n(h))


def blur3(image: np.ndarray) -> np.ndarray:
    """The binomial 3x3 low-pass of [H, W, 3] with edge replication."""
    p = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode='edge')
    h, w = image.shape[:2]
    rows = sum(BINOMIAL[i] * p[i:i + h] for i in range(3))
    return sum(BINOMIAL[i] * rows[:, i:i + w] for i in range(3))


def sensor_noise(image: np.ndarray, camera: CameraParams, p: MixedParams, r: int, z: MixedNoise,
                 ll: ml_collections.ConfigDict) -> np.ndarray:
    """Step 1 of round r on sRGB [H, W, 3]: shot + read noise in the linear or the sRGB domain; [0, 1]."""
    e, shot, read = (np.float32(v) for v in (p.exposure[r], p.shot[r], p.read[r]))
    luma = np.float32(p.luma[r])
    normal = np.sqrt(1 - luma) * z.channels[r] + np.sqrt(luma) * z.common[r][..., None]
    if p.srgb[r]:  # noise on the displayed values: no camera curve shapes it
        x = image * e
        noisy = x + normal * np.sqrt(shot * np.maximum(x, 0.0) + read)
        return np.clip(noisy / e, 0.0, 1.0)
    linear = unprocess(image, camera, ll.preserve_highlights) * e
    if p.mosaic[r]:
        masks = cctv.bayer_masks(*image.shape[:2])
        mosaic = (linear * masks).sum(axis=-1)
        noisy = mosaic + z.common[r] * np.sqrt(shot * np.maximum(mosaic, 0.0) + read)
        noisy = cctv.demosaic(noisy)
    else:
        noisy = linear + normal * np.sqrt(shot * np.maximum(linear, 0.0) + read)
    if ll.rebrighten:
        noisy = noisy / e
    return process(noisy, camera, ll.preserve_highlights)


def isp_op(op: int, image: np.ndarray, p: MixedParams, r: int, z: MixedNoise) -> np.ndarray:
    """ISP_OPS[op] of round r on [H, W, 3] in [0, 1] (identity when its amount is 0); clipped to [0, 1]."""
    name = ISP_OPS[op]
    if name == 'sharpen':
        out = image + np.float32(p.sharpen[r]) * (image - blur3(image))
    elif name == 'smooth':
        out = image + np.float32(p.smooth[r]) * (blur3(image) - image)
    elif name == 'chroma':
        return cctv.chroma_noise(image, float(p.chroma_sigma[r]), float(p.chroma_scale[r]), z.chroma[r])
    else:  # banding: the same offset along a row, in all channels
        out = image + np.float32(p.banding[r]) * z.rows[r][:, None, None]
    return np.clip(out, 0.0, 1.0)


def degrade_round(image: np.ndarray, camera: CameraParams, p: MixedParams, r: int, z: MixedNoise,
                  ll: ml_collections.ConfigDict) -> np.ndarray:
    """Round r: sensor noise, the ISP ops in the round's order, then compression."""
    out = sensor_noise(image, camera, p, r, z, ll)
    for op in p.order[r]:
        out = isp_op(int(op), out, p, r, z)
    return jpeg.compress(out, int(p.quality[r])) if p.compress[r] else out


def apply(image: np.ndarray, camera: CameraParams, p: MixedParams, z: MixedNoise,
          ll: ml_collections.ConfigDict) -> np.ndarray:
    """The 'mixed' degradation of [H, W, 3] sRGB in [0, 1] for fixed params and unit noise; float32 in [0, 1]."""
    out = degrade_round(np.asarray(image, np.float32), camera, p, 0, z, ll)
    for r in range(1, ROUNDS):
        if p.second_round:
            out = degrade_round(out, camera, p, r, z, ll)
    return out.astype(np.float32)


def mixed_noise(image: np.ndarray, rng: np.random.Generator, noise_cfg: ml_collections.ConfigDict) -> np.ndarray:
    """The 'mixed' noise kind on one image (see the module docstring).

    Args:
      image: [H, W, 3] sRGB in [0, 1].
      rng: randomness source: the camera, then draw_units, then draw_noise.
      noise_cfg: the whole noise config: its 'low_light' (camera, read-noise fit) and 'mixed' sub-configs.

    Returns:
      [H, W, 3] float32 in [0, 1].
    """
    camera = sample_camera_params(rng, noise_cfg.low_light)
    params = make_params(draw_units(rng), noise_cfg)
    return apply(image, camera, params, draw_noise(rng, image.shape[:2]), noise_cfg.low_light)
