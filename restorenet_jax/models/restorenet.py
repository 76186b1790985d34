"""RestoreNet (parallel deblur + denoise backbones, residuals into an extra network) and the serial comparison.

Parameter tree of the parallel model: {'deblur': Baseline params, 'denoise': Baseline params, 'extra': ...}; the
official keys `intro_supple`, `encoders_supple.L.B...` map to `extra/intro`, `extra/encoders_L_B/...`.

`valid` (size bucketing, see models/baseline.py): the parallel and serial models accept an optional valid size of a
bucket-padded input and then give, on it, exactly the exact model's outputs; supported with the 'baseline' extra
network and without TLC (`supports_valid`).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from restorenet_jax.models.arch import ExtraArch, ModelArch
from restorenet_jax.models.baseline import Baseline, UNet
from restorenet_jax.models.layers import conv, mask_outside, pad_to_multiple

Dtype = Any


class ConvDeconv(nn.Module):
    """The original RestoreNet's simplest extra model: strided 3x3 convs down, 2x2 transposed convs up, no skips."""

    arch: ExtraArch
    out_channels: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dt, chan = self.dtype, self.arch.width
        x = nn.relu(conv(chan, 3, name="intro", dtype=dt)(x.astype(dt)))
        for i in range(self.arch.levels):
            chan *= 2
            x = nn.relu(conv(chan, 3, stride=2, padding=1, name=f"downs_{i}", dtype=dt)(x))
        for i in range(self.arch.levels):
            chan //= 2
            x = nn.relu(nn.ConvTranspose(chan, (2, 2), strides=(2, 2), dtype=dt, param_dtype=jnp.float32,
                                         name=f"ups_{i}")(x))
        return conv(self.out_channels, 3, name="ending", dtype=dt)(x)


class PlainUNet(nn.Module):
    """The original RestoreNet's "U-Net" extra model: two 3x3 conv + ReLU per level, concatenated skips, transposed-conv ups."""

    arch: ExtraArch
    out_channels: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dt, chan = self.dtype, self.arch.width

        def double_conv(x, c, name):
            x = nn.relu(conv(c, 3, name=f"{name}_a", dtype=dt)(x))
            return nn.relu(conv(c, 3, name=f"{name}_b", dtype=dt)(x))

        x = x.astype(dt)
        skips = []
        for i in range(self.arch.levels):
            x = double_conv(x, chan, f"encoders_{i}")
            skips.append(x)
            chan *= 2
            x = conv(chan, 2, stride=2, padding=0, name=f"downs_{i}", dtype=dt)(x)
        x = double_conv(x, chan, "middle")
        for i, skip in enumerate(skips[::-1]):
            chan //= 2
            x = nn.ConvTranspose(chan, (2, 2), strides=(2, 2), dtype=dt, param_dtype=jnp.float32,
                                 name=f"ups_{i}")(x)
            x = double_conv(jnp.concatenate([x, skip], axis=-1), chan, f"decoders_{i}")
        return conv(self.out_channels, 3, name="ending", dtype=dt)(x)


def make_extra(arch: ExtraArch, *, tlc: bool, train_size: tuple[int, int], pad_multiple: int,
               dtype: Dtype) -> nn.Module:
    """RestoreNet's extra network on the 6-channel residual stack, selected by `arch.kind` (6 -> 3 channels)."""
    if arch.kind == "baseline":
        return UNet(arch.as_baseline(), out_channels=3, global_residual=False, tlc=tlc, train_size=train_size,
                    pad_multiple=pad_multiple, dtype=dtype)
    if arch.kind == "conv_deconv":
        return ConvDeconv(arch, dtype=dtype)
    return PlainUNet(arch, dtype=dtype)


def supports_valid(arch: ModelArch) -> bool:
    """Whether the model accepts `valid` (size bucketing): not with TLC pooling, nor the conv_deconv/unet extras
    (their strided 3x3 convs and transposed convs would need masks of their own)."""
    return not arch.tlc and (arch.kind != "restorenet" or arch.extra.kind == "baseline")


def _check_valid(arch: ModelArch, valid: jax.Array | None) -> jax.Array | None:
    """`valid` as int32, or None; raises for models that cannot honour it."""
    if valid is None:
        return None
    if not supports_valid(arch):
        raise NotImplementedError(f"size bucketing (valid=...) is not supported for {arch.kind} with tlc={arch.tlc}"
                                  + (f", extra {arch.extra.kind!r}" if arch.extra is not None else ""))
    return jnp.asarray(valid, jnp.int32)


class RestoreNet(nn.Module):
    """The parallel RestoreNet: out = x + extra(concat(x - deblur(x), x - denoise(x))), as the original code.

    (The original `RestoreNetLocal` is tlc=True: TLC applies to the backbones and the extra network alike.)
    Input [B, H, W, 3] with any H, W >= 1; output float32 [B, H, W, 3].
    """

    arch: ModelArch
    dtype: Dtype = jnp.float32

    def setup(self):
        a, m = self.arch, self.arch.pad_multiple
        kw = dict(tlc=a.tlc, train_size=a.train_size, pad_multiple=m, dtype=self.dtype)
        self.deblur = Baseline(a.deblur, **kw)
        self.denoise = Baseline(a.denoise, **kw)
        self.extra = make_extra(a.extra, **kw)
        if a.extra.refine_conv:  # the original RestoreNet's "+Conv": a small residual refinement after the extra network
            self.refine_0 = conv(a.extra.width, 3, name="refine_0", dtype=self.dtype)
            self.refine_1 = conv(3, 3, name="refine_1", dtype=self.dtype)

    def branches(self, x: jax.Array, valid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """The two backbone outputs on an already padded input (used by evaluation to score each branch)."""
        return self.deblur(x, valid), self.denoise(x, valid)

    def _combine(self, inp: jax.Array, deblurred: jax.Array, denoised: jax.Array,
                 valid: jax.Array | None = None) -> jax.Array:
        residuals = jnp.concatenate([inp - deblurred, inp - denoised], axis=-1)
        residuals = residuals.astype(self.dtype)
        # Only the 'baseline' extra network takes `valid` (`supports_valid`); the others keep their plain signature.
        correction = self.extra(residuals) if valid is None else self.extra(residuals, valid)
        if self.arch.extra.refine_conv:
            # The 3x3 refinement convs read neighbours: beyond the valid region they must see zeros (bucketing).
            hidden = self.refine_0(correction if valid is None else mask_outside(correction, valid))
            hidden = nn.relu(hidden)
            correction = correction + self.refine_1(hidden if valid is None else mask_outside(hidden, valid))
        return inp + correction.astype(jnp.float32)

    def __call__(self, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """[B, H, W, 3] -> float32 [B, H, W, 3]; `valid`: None, or the official padded size (h16, w16) of an
        input zero-padded further (int32 [2], may be traced; module docstring)."""
        valid = _check_valid(self.arch, valid)
        h, w = x.shape[1:3]
        inp = pad_to_multiple(x, self.arch.pad_multiple).astype(jnp.float32)
        return self._combine(inp, *self.branches(inp, valid), valid)[:, :h, :w]

    def comparison(self, x: jax.Array, valid: jax.Array | None = None) -> dict[str, jax.Array]:
        """What the evaluate command compares, each backbone run once on the input: the deblur and denoise
        backbones alone, the serial deblur(denoise(x)) of the same backbones, and RestoreNet; [B, H, W, 3] each.
        `valid` as in `__call__`."""
        valid = _check_valid(self.arch, valid)
        h, w = x.shape[1:3]
        inp = pad_to_multiple(x, self.arch.pad_multiple).astype(jnp.float32)
        deblurred, denoised = self.branches(inp, valid)
        out = {"deblur": deblurred, "denoise": denoised, "serial": self.deblur(denoised, valid),
               "restorenet": self._combine(inp, deblurred, denoised, valid)}
        return {k: v[:, :h, :w].astype(jnp.float32) for k, v in out.items()}


class SerialNet(nn.Module):
    """The serial comparison model (original `StraightNet`): deblur(denoise(x)), cropped back."""

    arch: ModelArch
    dtype: Dtype = jnp.float32

    def setup(self):
        a = self.arch
        kw = dict(tlc=a.tlc, train_size=a.train_size, pad_multiple=a.pad_multiple, dtype=self.dtype)
        self.deblur = Baseline(a.deblur, **kw)
        self.denoise = Baseline(a.denoise, **kw)

    def __call__(self, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """[B, H, W, 3] -> float32 [B, H, W, 3]; `valid` as in `RestoreNet.__call__`."""
        valid = _check_valid(self.arch, valid)
        h, w = x.shape[1:3]
        inp = pad_to_multiple(x, self.arch.pad_multiple)
        return self.deblur(self.denoise(inp, valid), valid)[:, :h, :w]

    def comparison(self, x: jax.Array, valid: jax.Array | None = None) -> dict[str, jax.Array]:
        """The backbones alone and in series, each run once on the input ([B, H, W, 3] each); `valid` as in
        `__call__`."""
        valid = _check_valid(self.arch, valid)
        h, w = x.shape[1:3]
        inp = pad_to_multiple(x, self.arch.pad_multiple)
        denoised = self.denoise(inp, valid)
        out = {"deblur": self.deblur(inp, valid), "denoise": denoised, "serial": self.deblur(denoised, valid)}
        return {k: v[:, :h, :w].astype(jnp.float32) for k, v in out.items()}


def build_model(arch: ModelArch, dtype: Dtype = jnp.float32) -> nn.Module:
    """The Flax module for an architecture. Params are float32 whatever `dtype` (the compute dtype) is."""
    if arch.kind == "baseline":
        return Baseline(arch.backbone, tlc=arch.tlc, train_size=arch.train_size, dtype=dtype)
    if arch.kind == "restorenet":
        return RestoreNet(arch, dtype=dtype)
    return SerialNet(arch, dtype=dtype)


def init_params(arch: ModelArch, rng: jax.Array, sample_size: int = 32,
                compiler_options: dict[str, Any] | None = None) -> dict:
    """Initialise parameters with a small input (shapes do not depend on the image size, compile time does).

    `compiler_options`: XLA options of the one-off init program (the trainer asks for a fast compile on CPUs)."""
    size = max(sample_size, arch.pad_multiple)
    options = tuple(sorted((compiler_options or {}).items()))
    return _compiled_init(arch, size, options, rng.shape, rng.dtype)(rng)["params"]


@functools.lru_cache(maxsize=8)
def _compiled_init(arch: ModelArch, size: int, options: tuple, rng_shape: tuple, rng_dtype: Any):
    """The init program of `arch`, compiled once per process: tracing a model's hundreds of initialisers costs
    seconds, and a process that trains several runs (or a backbone per branch) would pay it each time. Under jit,
    initialisation is one program, which the persistent compilation cache also reuses across processes."""
    model = build_model(arch)
    sample = jnp.zeros((1, size, size, 3), jnp.float32)
    rng = jax.ShapeDtypeStruct(rng_shape, rng_dtype)
    compiled = jax.jit(model.init).lower(rng, sample).compile(compiler_options=dict(options) or None)
    return lambda key: compiled(key, sample)


def abstract_params(arch: ModelArch) -> dict:
    """Parameter shapes/dtypes without computing anything (jax.eval_shape), for full-size models and restores.

    Traced once per architecture and process: tracing every initialiser of a model costs seconds even at tiny
    widths, and loading a model directory, converting a checkpoint and restoring each ask for it."""
    return jax.tree_util.tree_map(lambda leaf: leaf, _abstract_params(arch))  # a fresh tree: callers may edit it


@functools.lru_cache(maxsize=16)
def _abstract_params(arch: ModelArch) -> dict:
    model = build_model(arch)
    size = arch.pad_multiple
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3))))["params"]
