"""The 'mixed' noise of `mixed.py` in JAX: batched, per-example draws, static shapes, jittable.

The same unit numbers (`mixed.MixedUnits` with a leading batch axis) and the same parameter formulas
(`mixed.make_params` with xp = jax.numpy); the per-pixel work is written here for a batch. Where the reference
branches per image (sRGB or linear domain, mosaic or not, which ISP op comes next, compression or not, a second
round or not), every example computes each branch and `where` keeps its own: shapes and the program stay static.
The shuffled ISP ops cost len(ISP_OPS)^2 cheap op evaluations per round (each position computes every op); the
codec runs once per round.

Stages (see device_degrade.py): draw_units -> make_params -> draw_noise -> apply. The camera comes from
device_degrade's low-light draws, as for 'cctv'.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from restorenet_jax.data import device_camera, device_cctv, device_jpeg, mixed
from restorenet_jax.data.mixed import BINOMIAL, ISP_OPS, ROUNDS, MixedNoise, MixedParams, MixedUnits


def draw_units(key: jax.Array, batch: int) -> MixedUnits:
    """The unit random numbers of `batch` examples (mixed.draw_units with a leading batch axis)."""
    shapes = {'exposure_u': (), 'second_u': (), 'sharpen_u': (ROUNDS, 2), 'smooth_u': (ROUNDS, 2),
              'chroma_u': (ROUNDS, 3), 'banding_u': (ROUNDS, 2), 'jpeg_u': (ROUNDS, 2),
              'order_u': (ROUNDS, len(ISP_OPS))}
    keys = jax.random.split(key, len(MixedUnits._fields))
    return MixedUnits(*(jax.random.uniform(k, (batch, *shapes.get(name, (ROUNDS,))))
                        for k, name in zip(keys, MixedUnits._fields)))


def make_params(d: MixedUnits, noise_cfg: ml_collections.ConfigDict) -> MixedParams:
    """Per-example values ([B, ROUNDS] unless noted): the reference's formulas on the batch."""
    return mixed.make_params(d, noise_cfg, xp=jnp)


def draw_noise(key: jax.Array, shape: tuple[int, ...]) -> MixedNoise:
    """Unit normals for a batch of [B, H, W, C] frames (mixed.draw_noise per example)."""
    b, h, w = shape[:3]
    keys = jax.random.split(key, 4)
    n = lambda k, *s: jax.random.normal(k, (b, ROUNDS, *s))  # noqa: E731
    return MixedNoise(channels=n(keys[0], h, w, 3), common=n(keys[1], h, w), chroma=n(keys[2], h, w, 2),
                      rows=n(keys[3], h))


def blur3(image: jax.Array) -> jax.Array:
    """mixed.blur3 on [B, H, W, 3] (same summation order)."""
    h, w = image.shape[1:3]
    p = jnp.pad(image, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
    rows = sum(float(BINOMIAL[i]) * p[:, i:i + h] for i in range(3))
    return sum(float(BINOMIAL[i]) * rows[:, :, i:i + w] for i in range(3))


def _col(v: jax.Array) -> jax.Array:
    return v[:, None, None, None]


def sensor_noise(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], p: MixedParams, r: int,
                 z: MixedNoise, ll: ml_collections.ConfigDict) -> jax.Array:
    """mixed.sensor_noise of round r for a batch; camera = (rgb2cam, cam2rgb, gains [B, 3])."""
    rgb2cam, cam2rgb, gains = camera
    e, shot, read, luma = (_col(v[:, r]) for v in (p.exposure, p.shot, p.read, p.luma))
    common = z.common[:, r][..., None]
    normal = jnp.sqrt(1 - luma) * z.channels[:, r] + jnp.sqrt(luma) * common
    x = image * e
    srgb = jnp.clip((x + normal * jnp.sqrt(shot * jnp.maximum(x, 0.0) + read)) / e, 0.0, 1.0)
    linear = device_camera.unprocess(image, rgb2cam, gains, ll.preserve_highlights) * e
    h, w = image.shape[1:3]
    full = jnp.full((image.shape[0],), h, jnp.int32), jnp.full((image.shape[0],), w, jnp.int32)
    masks = device_cctv.bayer_masks(h, w, *full)
    mosaic = (linear * masks).sum(axis=-1, keepdims=True)
    mosaic = mosaic + common * jnp.sqrt(shot * jnp.maximum(mosaic, 0.0) + read)
    mosaic = device_cctv.demosaic(mosaic[..., 0], masks)
    per_pixel = linear + normal * jnp.sqrt(shot * jnp.maximum(linear, 0.0) + read)
    noisy = jnp.where(_col(p.mosaic[:, r]), mosaic, per_pixel)
    if ll.rebrighten:
        noisy = noisy / e
    processed = device_camera.process(noisy, cam2rgb, gains, ll.preserve_highlights)
    return jnp.where(_col(p.srgb[:, r]), srgb, processed)


def isp_op(op: int, image: jax.Array, p: MixedParams, r: int, z: MixedNoise, blotches: jax.Array) -> jax.Array:
    """mixed.isp_op for a batch; `blotches`: the round's device_cctv.chroma_blotches (made once per round)."""
    name = ISP_OPS[op]
    if name == 'sharpen':
        out = image + _col(p.sharpen[:, r]) * (image - blur3(image))
    elif name == 'smooth':
        out = image + _col(p.smooth[:, r]) * (blur3(image) - image)
    elif name == 'chroma':
        return device_cctv.add_chroma(image, p.chroma_sigma[:, r], blotches)
    else:
        out = image + _col(p.banding[:, r]) * z.rows[:, r][:, :, None, None]
    return jnp.clip(out, 0.0, 1.0)


def degrade_round(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], p: MixedParams, r: int,
                  z: MixedNoise, ll: ml_collections.ConfigDict) -> jax.Array:
    """mixed.degrade_round for a batch: each position of the order computes every op and keeps its own."""
    out = sensor_noise(image, camera, p, r, z, ll)
    blotches = device_cctv.chroma_blotches(image.shape[1:3], p.chroma_scale[:, r], z.chroma[:, r])
    for position in range(len(ISP_OPS)):
        which = p.order[:, r, position]
        candidates = [isp_op(op, out, p, r, z, blotches) for op in range(len(ISP_OPS))]
        out = jnp.select([_col(which == op) for op in range(len(ISP_OPS))], candidates)
    compressed = device_jpeg.compress(out, p.quality[:, r])
    return jnp.where(_col(p.compress[:, r]), compressed, out)


def apply(image: jax.Array, camera: tuple[jax.Array, jax.Array, jax.Array], p: MixedParams, z: MixedNoise,
          ll: ml_collections.ConfigDict) -> jax.Array:
    """The 'mixed' degradation of [B, H, W, 3] images in [0, 1]; camera = (rgb2cam, cam2rgb, gains [B, 3])."""
    out = degrade_round(image, camera, p, 0, z, ll)
    for r in range(1, ROUNDS):
        again = degrade_round(out, camera, p, r, z, ll)
        out = jnp.where(_col(p.second_round), again, out)
    return out
