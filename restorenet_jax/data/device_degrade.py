"""The four input kinds made on the accelerator: one jittable, batched `degrade(clean, blurred, key, cfg)`.

The same degradations as the host pipeline (`transforms.degrade` with `degradations.add_noise` /
`synthetic_blur`, which stay the reference), for a whole batch in one traced function, so they can run inside the
jitted training step, sharded with the batch. Three stages, so that a test can fix any of them:

  draw_params(key, batch, cfg)   -> ParamDraws    the unit random numbers behind every per-example parameter
  make_params(draws, cfg)        -> DegradeParams kind, blur kernel, camera, exposure, noise levels (the
                                                  reference's formulas applied to those unit numbers)
  draw_noise(key, shape, cfg)    -> NoiseDraws    the per-pixel unit noise
  apply(clean, blurred, pair_kind, params, noise, cfg) -> network input

Per example the kind is drawn with `cfg.ratio` (KINDS order: blur_noise, blur, noise, gt); the noise model
(`cfg.noise.kind`) and the blur kernel family (`cfg.blur.kind`) are the config's, as on the host. Which image a
kind starts from depends on the example's pair kind (PAIR_KINDS): a blur pair's `blurred` is its real blurred
image, a noise pair's `blurred` slot holds its real noisy image, a clean example has none (blur synthesised).
The learned DANet noise is not available here yet (the host pipeline still provides it).

All shapes static: every example gets every computation and `where` picks (no data-dependent branches). Keys:
`step_key(seed, step)` for training, so a resumed run draws the same degradations; any fixed key for evaluation.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from restorenet_jax.data import device_blur, device_camera, device_cctv, device_mixed
from restorenet_jax.data.transforms import KINDS, parse_ratio

PAIR_KINDS = ('blur', 'noise', 'clean')  # codes of the `pair_kind` argument (see the module docstring)
NOISE_KINDS = ('low_light', 'gaussian', 'poisson', 'cctv', 'mixed', 'danet', 'none')
_BN, _B, _N, _GT = (KINDS.index(k) for k in ('blur_noise', 'blur', 'noise', 'gt'))


class ParamDraws(NamedTuple):
    """Unit random numbers behind each example's parameters ([B] unless noted): U(0, 1) '_u', N(0, 1) '_z'."""

    kind: jax.Array  # int32 index into KINDS, drawn with the ratio
    size_index: jax.Array  # int32 index into the odd kernel sizes of the blur range
    length_u: jax.Array  # motion: trajectory length within length_range
    heading_u: jax.Array  # motion: initial direction, x 2 pi
    turns_z: jax.Array  # motion: [B, num_points - 2] heading changes, x curvature
    ccm_weights: jax.Array  # low light: [B, 4] U(0, 1) weights of the XYZ->camera matrices
    rgb_gain_z: jax.Array  # low light: 1 / rgb gain = mean + std * z
    red_u: jax.Array
    blue_u: jax.Array
    exposure_u: jax.Array  # log-uniform in exposure_range
    shot_u: jax.Array  # log-uniform in shot_noise_range
    read_z: jax.Array  # log read = slope * log shot + intercept + log_std * z
    sigma_u: jax.Array  # gaussian: sigma in sigma_range
    peak_u: jax.Array  # poisson: log-uniform in peak_range
    cctv: Any = None  # device_cctv.CctvDraws when the noise kind is 'cctv' (camera, exposure: the low-light draws)
    mixed: Any = None  # mixed.MixedUnits [B, ...] when the noise kind is 'mixed' (camera: the low-light draws)


class DegradeParams(NamedTuple):
    """Each example's degradation ([B] unless noted)."""

    kind: jax.Array  # int32 index into KINDS
    kernel: jax.Array  # [B, K, K] blur kernel centred in the grid, sums to 1
    rgb2cam: jax.Array  # [B, 3, 3] camera colour matrix, rows sum to 1
    rgb_gain: jax.Array
    red_gain: jax.Array
    blue_gain: jax.Array
    exposure: jax.Array
    shot: jax.Array  # linear-space shot-noise variance factor
    read: jax.Array  # linear-space read-noise variance
    sigma: jax.Array  # gaussian standard deviation
    peak: jax.Array  # poisson photon count of white
    cctv: Any = None  # device_cctv.CctvParams when the noise kind is 'cctv'
    mixed: Any = None  # mixed.MixedParams [B, ...] when the noise kind is 'mixed'


class NoiseDraws(NamedTuple):
    """Per-pixel unit noise: standard normals [B, H, W, C] and a key per example for Poisson counts."""

    normal: jax.Array
    poisson_keys: jax.Array  # [B] keys
    cctv: Any = None  # device_cctv.CctvNoise when the noise kind is 'cctv'
    danet_z: Any = None  # [B, Hp, Wp, 1] standard normals, DANet's noise input, when the noise kind is 'danet'
    mixed: Any = None  # mixed.MixedNoise [B, ...] when the noise kind is 'mixed'


def step_key(seed: int, step: jax.Array | int) -> jax.Array:
    """The degradation key of a training step: a function of (seed, step) only, so resuming redraws the same."""
    return jax.random.fold_in(jax.random.key(seed), step)


def _check(cfg: ml_collections.ConfigDict) -> None:
    if cfg.noise.kind not in NOISE_KINDS:
        raise ValueError(f'noise kind {cfg.noise.kind!r} is not available on the device; use one of {NOISE_KINDS}')
    if cfg.blur.kind not in device_blur_kinds():
        raise ValueError(f'unknown blur kind {cfg.blur.kind!r}; expected one of {device_blur_kinds()}')


def device_blur_kinds() -> tuple[str, ...]:
    """Blur kinds `degrade` can synthesise."""
    return ('motion', 'uniform', 'none')


def _is_cctv(cfg: ml_collections.ConfigDict) -> bool:
    # Its draws come from a key folded off the stage's key, leaving every other kind's draws unchanged.
    return cfg.noise.kind == 'cctv'


def _is_mixed(cfg: ml_collections.ConfigDict) -> bool:
    # Folded off the stage's key too (a fold constant of its own), leaving the other kinds' draws unchanged.
    return cfg.noise.kind == 'mixed'


def _num_turns(cfg: ml_collections.ConfigDict) -> int:
    if cfg.blur.kind != 'motion':
        return 0
    num_points = int(cfg.blur.motion.params.num_points)
    if num_points < 2:
        raise ValueError(f'blur.motion.params.num_points must be >= 2, got {num_points}')
    return num_points - 2


def draw_params(key: jax.Array, batch: int, cfg: ml_collections.ConfigDict) -> ParamDraws:
    """The unit random numbers of `batch` examples' parameters (kinds drawn with cfg.ratio)."""
    _check(cfg)
    keys = iter(jax.random.split(key, 14))
    u = lambda shape=(batch,): jax.random.uniform(next(keys), shape)  # noqa: E731
    z = lambda shape=(batch,): jax.random.normal(next(keys), shape)  # noqa: E731
    probs = jnp.asarray(parse_ratio(cfg.ratio), jnp.float32)
    kind = jax.random.choice(next(keys), len(KINDS), (batch,), p=probs).astype(jnp.int32)
    num_sizes = len(device_blur.odd_sizes(cfg.blur[cfg.blur.kind].size_range)) if cfg.blur.kind != 'none' else 1
    size_index = jax.random.randint(next(keys), (batch,), 0, num_sizes, jnp.int32)
    return ParamDraws(kind=kind, size_index=size_index, length_u=u(), heading_u=u(),
                      turns_z=z((batch, _num_turns(cfg))), ccm_weights=u((batch, 4)), rgb_gain_z=z(), red_u=u(),
                      blue_u=u(), exposure_u=u(), shot_u=u(), read_z=z(), sigma_u=u(), peak_u=u(),
                      cctv=device_cctv.draw_params(jax.random.fold_in(key, 1), batch) if _is_cctv(cfg) else None,
                      mixed=device_mixed.draw_units(jax.random.fold_in(key, 2), batch) if _is_mixed(cfg) else None)


def _between(u: jax.Array, value_range) -> jax.Array:
    lo, hi = (float(v) for v in value_range)
    return lo + (hi - lo) * u


def _log_between(u: jax.Array, value_range) -> jax.Array:
    lo, hi = (float(v) for v in value_range)
    return jnp.exp(_between(u, (np.log(lo), np.log(hi))))


def make_kernels(d: ParamDraws, blur_cfg: ml_collections.ConfigDict) -> jax.Array:
    """[B, K, K] kernels of the configured blur family from the unit draws (K = device_blur.grid_size)."""
    k = device_blur.grid_size(blur_cfg)
    if blur_cfg.kind == 'none':
        return jnp.ones((d.kind.shape[0], 1, 1), jnp.float32)
    size = jnp.asarray(device_blur.odd_sizes(blur_cfg[blur_cfg.kind].size_range), jnp.int32)[d.size_index]
    if blur_cfg.kind == 'uniform':
        return device_blur.uniform_kernels(size, k)
    p = blur_cfg.motion.params
    return device_blur.motion_kernels(size, _between(d.length_u, p.length_range), 2.0 * np.pi * d.heading_u,
                                      float(p.curvature) * d.turns_z, k)


def make_params(d: ParamDraws, cfg: ml_collections.ConfigDict) -> DegradeParams:
    """Per-example parameters from their unit draws, with the reference's formulas and the config's ranges."""
    ll, noise = cfg.noise.low_light, cfg.noise
    log_shot = jnp.log(_log_between(d.shot_u, ll.shot_noise_range))
    log_read = ll.read_noise_slope * log_shot + ll.read_noise_intercept + ll.read_noise_log_std * d.read_z
    return DegradeParams(
        kind=d.kind, kernel=make_kernels(d, cfg.blur), rgb2cam=device_camera.random_ccm(d.ccm_weights),
        rgb_gain=1.0 / (ll.rgb_gain_inverse_mean + ll.rgb_gain_inverse_std * d.rgb_gain_z),
        red_gain=_between(d.red_u, ll.red_gain_range), blue_gain=_between(d.blue_u, ll.blue_gain_range),
        exposure=_log_between(d.exposure_u, ll.exposure_range), shot=jnp.exp(log_shot), read=jnp.exp(log_read),
        sigma=_between(d.sigma_u, noise.gaussian.sigma_range), peak=_log_between(d.peak_u, noise.poisson.peak_range),
        cctv=device_cctv.make_params(d.cctv, noise) if d.cctv is not None else None,
        mixed=device_mixed.make_params(d.mixed, noise) if d.mixed is not None else None)


def draw_noise(key: jax.Array, shape: tuple[int, ...], cfg: ml_collections.ConfigDict,
               noise_model: Any = None) -> NoiseDraws:
    """Unit noise for a batch of images of `shape` [B, H, W, C] (normals only when the noise model uses them);
    `noise_model` is the DanetNoiser of noise kind 'danet' (its input z has the padded size)."""
    k_normal, k_poisson = jax.random.split(key)
    needs_normal = cfg.noise.kind in ('low_light', 'gaussian')
    normal = jax.random.normal(k_normal, shape) if needs_normal else jnp.zeros(shape, jnp.float32)
    danet_z = None
    if cfg.noise.kind == 'danet':
        danet_z = jax.random.normal(jax.random.fold_in(key, 2), _noise_model(noise_model).padded_shape(shape))
    return NoiseDraws(normal=normal, poisson_keys=jax.random.split(k_poisson, shape[0]),
                      cctv=device_cctv.draw_noise(jax.random.fold_in(key, 1), shape) if _is_cctv(cfg) else None,
                      danet_z=danet_z,
                      mixed=device_mixed.draw_noise(jax.random.fold_in(key, 3), shape) if _is_mixed(cfg) else None)


def _noise_model(noise_model: Any) -> Any:
    if noise_model is None:
        raise ValueError("noise kind 'danet' on the device needs its generator: pass noise_model "
                         "(data.danet_noise.DanetNoiser.from_checkpoint(data.noise.danet_checkpoint))")
    return noise_model


def _inverse_3x3(m: jax.Array) -> jax.Array:
    """[B, 3, 3] inverses by the adjugate (no solver call; the camera matrices are far from singular)."""
    cof = jnp.stack([jnp.cross(m[:, 1], m[:, 2]), jnp.cross(m[:, 2], m[:, 0]), jnp.cross(m[:, 0], m[:, 1])], 1)
    det = (m[:, 0] * cof[:, 0]).sum(-1)
    return jnp.swapaxes(cof, 1, 2) / det[:, None, None]


def add_noise(image: jax.Array, params: DegradeParams, noise: NoiseDraws,
              noise_cfg: ml_collections.ConfigDict, noise_model: Any = None) -> jax.Array:
    """The configured noise model on [B, H, W, C] images in [0, 1], per-example parameters; clipped to [0, 1].
    `noise_model`: the DanetNoiser of noise kind 'danet' (its generator runs in the same program)."""
    col = lambda v: v[:, None, None, None]  # noqa: E731  [B] -> [B, 1, 1, 1]
    kind = noise_cfg.kind
    if kind == 'none':
        noisy = image
    elif kind == 'gaussian':
        noisy = image + col(params.sigma) * noise.normal
    elif kind == 'poisson':
        lam = jnp.maximum(image, 0.0) * col(params.peak)
        counts = jax.vmap(lambda k, l: jax.random.poisson(k, l, l.shape))(noise.poisson_keys, lam)
        noisy = counts.astype(jnp.float32) / col(params.peak)
    elif kind == 'low_light':
        ll = noise_cfg.low_light
        gains = device_camera.inverse_gains(params.rgb_gain, params.red_gain, params.blue_gain)
        linear = device_camera.unprocess(image, params.rgb2cam, gains, ll.preserve_highlights) * col(params.exposure)
        linear = device_camera.add_read_shot_noise(linear, noise.normal, params.shot, params.read)
        if ll.rebrighten:
            linear = linear / col(params.exposure)
        noisy = device_camera.process(linear, _inverse_3x3(params.rgb2cam), gains, ll.preserve_highlights)
    elif kind == 'cctv':
        gains = device_camera.inverse_gains(params.rgb_gain, params.red_gain, params.blue_gain)
        camera = (params.rgb2cam, _inverse_3x3(params.rgb2cam), gains)
        noisy = device_cctv.apply(image, camera, params.exposure, params.cctv, noise.cctv, noise_cfg.low_light)
    elif kind == 'mixed':
        gains = device_camera.inverse_gains(params.rgb_gain, params.red_gain, params.blue_gain)
        camera = (params.rgb2cam, _inverse_3x3(params.rgb2cam), gains)
        noisy = device_mixed.apply(image, camera, params.mixed, noise.mixed, noise_cfg.low_light)
    elif kind == 'danet':
        noisy = _noise_model(noise_model).generate(image, noise.danet_z)
    else:
        raise ValueError(f'noise kind {kind!r} is not available on the device; use one of {NOISE_KINDS}')
    return jnp.clip(noisy, 0.0, 1.0)


def to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] or float [0, 1] images -> float32 [0, 1]."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def apply(clean: jax.Array, blurred: jax.Array | None, pair_kind: jax.Array, params: DegradeParams,
          noise: NoiseDraws, cfg: ml_collections.ConfigDict, noise_model: Any = None) -> jax.Array:
    """The network inputs [B, H, W, C] float32 for fixed parameters and unit noise (see the module docstring).

    Args:
      clean: [B, H, W, C] targets, uint8 or float in [0, 1].
      blurred: [B, H, W, C] each example's real degraded image (blurred for blur pairs, noisy for noise pairs;
        ignored for clean ones), or None when every example is clean.
      pair_kind: [B] int codes into PAIR_KINDS.
      params, noise: from make_params / draw_noise.
      cfg: the data config (ratio, noise, blur).
      noise_model: the DanetNoiser of noise kind 'danet', else unused.
    """
    clean = to_float(clean)
    real = clean if blurred is None else to_float(blurred)
    col = lambda v: v[:, None, None, None]  # noqa: E731
    if cfg.blur.kind == 'none':
        synthetic = jnp.clip(clean, 0.0, 1.0)
    else:
        synthetic = device_blur.apply_kernels(clean, params.kernel, cfg.blur.pad_mode)
    blur_pair = col(pair_kind == PAIR_KINDS.index('blur'))
    noise_pair = col(pair_kind == PAIR_KINDS.index('noise'))
    kind = col(params.kind)
    blurred_img = jnp.where(blur_pair, real, synthetic)
    noisy = add_noise(jnp.where(kind == _BN, blurred_img, clean), params, noise, cfg.noise, noise_model)
    out = jnp.where(kind == _B, blurred_img, clean)
    out = jnp.where(kind == _N, jnp.where(noise_pair, real, noisy), out)
    return jnp.where(kind == _BN, noisy, out)


def degrade(clean: jax.Array, blurred: jax.Array | None, key: jax.Array, cfg: ml_collections.ConfigDict,
            pair_kind: jax.Array | None = None, noise_model: Any = None) -> tuple[jax.Array, jax.Array]:
    """Degrade a batch on the device: each example becomes one of KINDS, drawn with cfg.ratio.

    Traceable (call it inside a jitted step, `cfg` closed over) and sharding-friendly: all work is per example.

    Args:
      clean: [B, H, W, C] targets, uint8 or float in [0, 1].
      blurred: [B, H, W, C] real degraded images (see `apply`), or None (all examples clean).
      key: a jax.random key, e.g. step_key(seed, step).
      cfg: the data config (its ratio, noise and blur sub-configs).
      pair_kind: [B] codes into PAIR_KINDS; default: all 'blur' pairs, or all 'clean' when blurred is None.
      noise_model: for noise kind 'danet', the DanetNoiser (data.danet_noise) whose generator makes the noise.

    Returns:
      (inputs [B, H, W, C] float32 in [0, 1], kinds [B] int32 indices into KINDS).
    """
    batch = clean.shape[0]
    if pair_kind is None:
        pair_kind = jnp.full((batch,), PAIR_KINDS.index('clean' if blurred is None else 'blur'), jnp.int32)
    k_params, k_noise = jax.random.split(key)
    params = make_params(draw_params(k_params, batch, cfg), cfg)
    noise = draw_noise(k_noise, clean.shape, cfg, noise_model)
    inputs = apply(clean, blurred, pair_kind, params, noise, cfg, noise_model)
    return inputs, params.kind
