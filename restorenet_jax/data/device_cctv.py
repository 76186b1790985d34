"""The 'cctv' degradation of `cctv.py` in JAX: batched, per-example draws, static shapes, jittable.

The reference works on each round's true low-resolution size; here every example keeps the frame's [H, W] and its
low-resolution image occupies the top-left [m_h, m_w] corner (m = cctv.low_side(side, scale), traced): the
resampling matrices are [B, H, H] / [B, W, W] with zero rows / columns past m, and the demosaic's photosite masks
are zero there, so the corner holds exactly the reference's values and the rest never reaches the output.
Both rounds are computed for every example; `where` keeps the second one for the examples that drew it.

Stages (see device_degrade.py): draw_params -> CctvDraws (unit numbers), make_params -> CctvParams,
draw_noise -> CctvNoise, apply. Camera and exposure come from device_degrade's low-light parameters.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from restorenet_jax.data import device_camera, device_jpeg
from restorenet_jax.data.cctv import DEMOSAIC_KERNELS, MIN_SIDE, ROUNDS

_HI = lax.Precision.HIGHEST


class CctvDraws(NamedTuple):
    """Unit random numbers, [B, ROUNDS] unless noted: U(0, 1) '_u', N(0, 1) '_z'."""

    scale_u: jax.Array
    shot_u: jax.Array  # log-uniform in low_light.shot_noise_range
    read_z: jax.Array  # log read = slope * log shot + intercept + log_std * z
    chroma_sigma_u: jax.Array
    chroma_scale_u: jax.Array
    quality_u: jax.Array
    second_u: jax.Array  # [B]: second round when < second_round_prob


class CctvParams(NamedTuple):
    """Per-example values, [B, ROUNDS] unless noted (the fields of cctv.CctvParams but the camera)."""

    scale: jax.Array
    shot: jax.Array
    read: jax.Array
    chroma_sigma: jax.Array
    chroma_scale: jax.Array
    quality: jax.Array  # int32
    second_round: jax.Array  # [B] bool


class CctvNoise(NamedTuple):
    """Unit normals: mosaic [B, ROUNDS, H, W], chroma [B, ROUNDS, H, W, 2] (as cctv.draw_noise, per example)."""

    mosaic: jax.Array
    chroma: jax.Array


def draw_params(key: jax.Array, batch: int) -> CctvDraws:
    """The unit random numbers of `batch` examples."""
    keys = iter(jax.random.split(key, 7))
    u = lambda: jax.random.uniform(next(keys), (batch, ROUNDS))  # noqa: E731
    return CctvDraws(scale_u=u(), shot_u=u(), read_z=jax.random.normal(next(keys), (batch, ROUNDS)),
                     chroma_sigma_u=u(), chroma_scale_u=u(), quality_u=u(),
                     second_u=jax.random.uniform(next(keys), (batch,)))


def _between(u: jax.Array, value_range) -> jax.Array:
    lo, hi = (float(v) for v in value_range)
    return lo + (hi - lo) * u


def make_params(d: CctvDraws, noise_cfg: ml_collections.ConfigDict) -> CctvParams:
    """Per-example values from their unit draws, with the reference's formulas (cctv.sample_params)."""
    ll, cc = noise_cfg.low_light, noise_cfg.cctv
    log_shot = _between(d.shot_u, np.log(np.asarray(ll.shot_noise_range, np.float64)))
    log_read = ll.read_noise_slope * log_shot + ll.read_noise_intercept + ll.read_noise_log_std * d.read_z
    # Later rounds' noise variance scaled down (cctv.sample_params).
    damp = jnp.asarray([1.0] + [float(cc.second_round_noise_scale) ** 2] * (ROUNDS - 1), jnp.float32)
    lo, hi = (int(v) for v in cc.jpeg_quality_range)
    quality = jnp.minimum(lo + jnp.floor(d.quality_u * (hi - lo + 1)), hi).astype(jnp.int32)
    return CctvParams(scale=_between(d.scale_u, cc.scale_range), shot=jnp.exp(log_shot) * damp,
                      read=jnp.exp(log_read) * damp, chroma_sigma=_between(d.chroma_sigma_u, cc.chroma_sigma_range),
                      chroma_scale=_between(d.chroma_scale_u, cc.chroma_scale_range), quality=quality,
                      second_round=d.second_u < cc.second_round_prob)


def draw_noise(key: jax.Array, shape: tuple[int, ...]) -> CctvNoise:
    """Unit normals for a batch of frames of `shape` [B, H, W, C]."""
    b, h, w = shape[:3]
    k_mosaic, k_chroma = jax.random.split(key)
    return CctvNoise(mosaic=jax.random.normal(k_mosaic, (b, ROUNDS, h, w)),
                     chroma=jax.random.normal(k_chroma, (b, ROUNDS, h, w, 2)))


def low_side(n: int, scale: jax.Array) -> jax.Array:
    """cctv.low_side per example: [B] int32."""
    return jnp.clip(jnp.floor(n * scale + 0.5), MIN_SIDE, n).astype(jnp.int32)


def down_matrices(n: int, m: jax.Array) -> jax.Array:
    """[B, n, n]: cctv.down_matrix(n, m_b) in the first m_b rows, zeros below."""
    ratio = (n / m.astype(jnp.float32))[:, None, None]
    i = jnp.arange(n, dtype=jnp.float32)
    centre = (i[None, :, None] + 0.5) * ratio - 0.5
    w = jnp.maximum(0.0, 1.0 - jnp.abs(i[None, None, :] - centre) / ratio)
    w = jnp.where(i[None, :, None] < m[:, None, None], w, 0.0)
    return w / jnp.maximum(w.sum(axis=2, keepdims=True), 1e-12)


def up_matrices(n: int, m: jax.Array) -> jax.Array:
    """[B, n, n]: cctv.up_matrix(n, m_b) in the first m_b columns, zeros beyond."""
    mf = m.astype(jnp.float32)[:, None, None]
    i = jnp.arange(n, dtype=jnp.float32)
    pos = jnp.clip((i[None, :, None] + 0.5) * (mf / n) - 0.5, 0.0, mf - 1.0)
    w = jnp.maximum(0.0, 1.0 - jnp.abs(pos - i[None, None, :]))
    return jnp.where(i[None, None, :] < mf, w, 0.0)


def resample(image: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """rows @ image @ cols.T per example over the spatial axes: [B, H, W, C] with [B, H, H], [B, W, W]."""
    out = jnp.einsum('bih,bhwc->biwc', rows, image, precision=_HI)
    return jnp.einsum('biwc,bjw->bijc', out, cols, precision=_HI)


def bayer_masks(h: int, w: int, mh: jax.Array, mw: jax.Array) -> jax.Array:
    """[B, h, w, 3] RGGB photosite colours inside each example's [mh, mw] corner, zeros outside."""
    y, x = np.mgrid[:h, :w]
    colour = np.array([[0, 1], [1, 2]])[y % 2, x % 2]
    onehot = jnp.asarray((colour[..., None] == np.arange(3)).astype(np.float32))
    inside = (jnp.arange(h)[None, :, None] < mh[:, None, None]) & (jnp.arange(w)[None, None, :] < mw[:, None, None])
    return onehot[None] * inside[..., None].astype(jnp.float32)


def _conv3(x: jax.Array, kernels: np.ndarray) -> jax.Array:
    """Per-channel 3x3 correlation with zero padding on [B, h, w, 3] (cctv._conv3, same summation order)."""
    h, w = x.shape[1:3]
    p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    k = jnp.asarray(kernels)
    return sum(p[:, dy:dy + h, dx:dx + w] * k[:, dy, dx] for dy in range(3) for dx in range(3))


def demosaic(mosaic: jax.Array, masks: jax.Array) -> jax.Array:
    """Bilinear demosaic [B, h, w] -> [B, h, w, 3] inside the masks' corner (zeros outside)."""
    num = _conv3(mosaic[..., None] * masks, DEMOSAIC_KERNELS)
    return num / jnp.maximum(_conv3(masks, DEMOSAIC_KERNELS), 1e-12)


def chroma_noise(image: jax.Array, sigma: jax.Array, scale: jax.Array, normal: jax.Array) -> jax.Array:
    """cctv.chroma_noise per example: image [B, H, W, 3], sigma/scale [B], normal [B, H, W, 2]."""
    return add_chroma(image, sigma, chroma_blotches(image.shape[1:3], scale, normal))


def chroma_blotches(shape: tuple[int, int], scale: jax.Array, normal: jax.Array) -> jax.Array:
    """[B, H, W, 2] unit Cb/Cr blotches: the [low_side(H, scale), low_side(W, scale)] corner of `normal`
    bilinearly upsampled to the frame (cctv.chroma_noise's grid); independent of the image, so computable once."""
    h, w = shape
    return resample(normal, up_matrices(h, low_side(h, scale)), up_matrices(w, low_side(w, scale)))


def add_chroma(image: jax.Array, sigma: jax.Array, blotches: jax.Array) -> jax.Array:
    """Adds sigma [B] x blotches [B, H, W, 2] to the Cb/Cr of images [B, H, W, 3]; clipped to [0, 1]."""
    ycc = device_jpeg.rgb_to_ycbcr(image)
    ycc = jnp.concatenate([ycc[..., :1], ycc[..., 1:] + (255.0 * sigma)[:, None, None, None] * blotches], axis=-1)
    return jnp.clip(device_jpeg.ycbcr_to_rgb(ycc), 0.0, 1.0)


def capture(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], exposure: jax.Array,
            p: CctvParams, r: int, noise: CctvNoise, ll: ml_collections.ConfigDict) -> jax.Array:
    """Round r of cctv.capture for a batch (all but the compression); camera = (rgb2cam, cam2rgb, gains [B, 3])."""
    h, w = image.shape[1:3]
    rgb2cam, cam2rgb, gains = camera
    col = lambda v: v[:, None, None, None]  # noqa: E731
    mh, mw = low_side(h, p.scale[:, r]), low_side(w, p.scale[:, r])
    low = resample(image, down_matrices(h, mh), down_matrices(w, mw))  # corner [mh, mw], zeros elsewhere
    masks = bayer_masks(h, w, mh, mw)
    linear = device_camera.unprocess(low, rgb2cam, gains, ll.preserve_highlights) * col(exposure)
    mosaic = (linear * masks).sum(axis=-1)
    variance = p.shot[:, r, None, None] * jnp.maximum(mosaic, 0.0) + p.read[:, r, None, None]
    noisy = mosaic + noise.mosaic[:, r] * jnp.sqrt(variance)
    if ll.rebrighten:
        noisy = noisy / exposure[:, None, None]
    low = device_camera.process(demosaic(noisy, masks), cam2rgb, gains, ll.preserve_highlights)
    frame = resample(low, up_matrices(h, mh), up_matrices(w, mw))  # columns past m are zero: the rest is ignored
    return chroma_noise(frame, p.chroma_sigma[:, r], p.chroma_scale[:, r], noise.chroma[:, r])


def degrade_round(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], exposure: jax.Array,
                  p: CctvParams, r: int, noise: CctvNoise, ll: ml_collections.ConfigDict) -> jax.Array:
    """Round r of cctv.degrade_round: `capture`, then JPEG compression at each example's quality."""
    return device_jpeg.compress(capture(image, camera, exposure, p, r, noise, ll), p.quality[:, r])


def apply(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], exposure: jax.Array, p: CctvParams,
          noise: CctvNoise, ll: ml_collections.ConfigDict) -> jax.Array:
    """The 'cctv' degradation of [B, H, W, 3] images in [0, 1]; camera = (rgb2cam, cam2rgb, gains [B, 3])."""
    out = degrade_round(image, camera, exposure, p, 0, noise, ll)
    for r in range(1, ROUNDS):  # later rounds: no exposure drop (cctv.degrade_round)
        again = degrade_round(out, camera, jnp.ones_like(exposure), p, r, noise, ll)
        out = jnp.where(p.second_round[:, None, None, None], again, out)
    return out
