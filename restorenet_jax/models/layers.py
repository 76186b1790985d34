"""Building blocks shared by the networks: channel LayerNorm, TLC pooling, pixel shuffle, convolutions.

All tensors are NHWC. Parameters are float32; `dtype` is the compute dtype (bf16 for speed, fp32 for parity).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


def conv(features: int, kernel: int, *, name: str, dtype: Dtype, stride: int = 1, groups: int = 1,
         use_bias: bool = True, padding: int | None = None) -> nn.Conv:
    """A PyTorch-equivalent Conv2d: symmetric zero padding of (kernel - 1) // 2 unless given."""
    pad = (kernel - 1) // 2 if padding is None else padding
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                   feature_group_count=groups, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, name=name)


class LayerNorm2d(nn.Module):
    """NAFNet's LayerNorm2d: normalise each pixel over channels (biased variance, eps inside the sqrt).

    Statistics are computed in float32 whatever the compute dtype, as bf16 means of many channels lose precision.
    """

    eps: float = 1e-6
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        x32 = x.astype(jnp.float32)
        mu = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mu), axis=-1, keepdims=True)
        y = (x32 - mu) / jnp.sqrt(var + self.eps)
        return (y * scale + bias).astype(self.dtype)


class DepthwiseConv3x3(nn.Module):
    """A 3x3 depthwise convolution (padding 1, bias) with nn.Conv's parameter names and layout
    (kernel [3, 3, 1, C], bias [C]), so checkpoints are the same whichever implementation runs.

    impl 'conv' is XLA's grouped convolution; 'shifted' sums nine shifted multiply-adds, which XLA's CPU backend runs
    7-20x faster than its grouped convolution (bench/results); 'auto' picks 'shifted' on the CPU, 'conv' elsewhere.
    Both give the same result to float32 rounding.
    """

    features: int
    impl: str = "auto"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[B, H, W, C] -> [B, H, W, C]."""
        impl = self.impl
        if impl == "auto":
            impl = "shifted" if jax.default_backend() == "cpu" else "conv"
        if impl not in ("conv", "shifted"):
            raise ValueError(f"unknown depthwise implementation {impl!r}")
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, 1, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        x, k = x.astype(self.dtype), kernel.astype(self.dtype)
        if impl == "conv":
            y = jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                             feature_group_count=self.features)
        else:
            y = depthwise3x3_shifted(x, k[:, :, 0])
        return y + bias.astype(self.dtype)


def _shifted_sum(x: jax.Array, k: jax.Array) -> jax.Array:
    """sum over the nine taps of x shifted by (i - 1, j - 1), zero-padded, times k[i, j]: [B, H, W, C], [3, 3, C]."""
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(xp[:, i:i + h, j:j + w, :] * k[i, j] for i in range(3) for j in range(3))


@jax.custom_vjp
def depthwise3x3_shifted(x: jax.Array, k: jax.Array) -> jax.Array:
    """3x3 depthwise cross-correlation (padding 1, no bias) as nine shifted multiply-adds: [B, H, W, C], k [3, 3, C].

    Its gradient is written out: XLA:CPU's own one for the kernel reduces nine products over the whole batch, which
    once they outgrow the cache runs several times slower than the same sums taken one image at a time."""
    return _shifted_sum(x, k)


def _depthwise_fwd(x, k):
    return _shifted_sum(x, k), (x, k)


def _depthwise_bwd(res, g):
    x, k = res
    dx = _shifted_sum(g, k[::-1, ::-1])  # the transpose of a cross-correlation: the flipped kernel

    def one_image(acc, xg):
        xi, gi = xg
        h, w = gi.shape[:2]
        xp = jnp.pad(xi, ((1, 1), (1, 1), (0, 0))).astype(jnp.float32)
        g32 = gi.astype(jnp.float32)
        taps = [jnp.sum(xp[i:i + h, j:j + w] * g32, axis=(0, 1)) for i in range(3) for j in range(3)]
        return acc + jnp.stack(taps).reshape(k.shape), None

    dk, _ = jax.lax.scan(one_image, jnp.zeros(k.shape, jnp.float32), (x, g))
    return dx, dk.astype(k.dtype)


depthwise3x3_shifted.defvjp(_depthwise_fwd, _depthwise_bwd)


def tlc_kernel_size(train_size: tuple[int, int], pad_multiple: int, level: int) -> tuple[int, int]:
    """The TLC pooling window at U-Net `level`, exactly as the official `Local_Base.convert` fixes it.

    The official code runs one forward pass at the (padded) training size and, at every pooling layer, sets
    kernel = feature_size * int(1.5 * train) // train with integer arithmetic; we reproduce that formula.
    """
    kernel = []
    for t in train_size:
        padded = -(-t // pad_multiple) * pad_multiple
        feature = padded // (2 ** level)
        kernel.append(feature * int(t * 1.5) // t)
    return kernel[0], kernel[1]


def _replicate_pad_to(out: jax.Array, h: int, w: int) -> jax.Array:
    """Replicate-pad [B, h', w', C] back to [B, h, w, C], the extra row/column going bottom/right (official)."""
    _h, _w = out.shape[1:3]
    top, bottom = (h - _h) // 2, (h - _h + 1) // 2
    left, right = (w - _w) // 2, (w - _w + 1) // 2
    return jnp.pad(out, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="edge")


def channel_pool(x: jax.Array, kernel: tuple[int, int] | None, valid: jax.Array | None = None) -> jax.Array:
    """Average pooling feeding channel attention: global mean, or TLC's local box mean.

    Args:
      x: [B, H, W, C].
      kernel: None for the global mean ([B, 1, 1, C]); else the TLC window. When the window covers the whole map
        the official code falls back to the global mean, so 256-sized inputs behave like the plain model.
      valid: None, or the valid size (vh, vw) at this resolution (int32 [2], may be traced): the global mean is
        then taken over x[:, :vh, :vw] only, as if the map ended there (size bucketing). Not with a TLC window.
    Returns:
      [B, 1, 1, C] or [B, H, W, C] in float32 (the sums are accumulated in float32).
    """
    x32 = x.astype(jnp.float32)
    h, w = x.shape[1:3]
    if valid is not None:
        if kernel is not None:
            raise NotImplementedError("TLC pooling does not support a valid region (size bucketing)")
        total = jnp.sum(mask_outside(x32, valid), axis=(1, 2), keepdims=True)
        return total / (valid[0] * valid[1]).astype(jnp.float32)
    if kernel is None or (kernel[0] >= h and kernel[1] >= w):
        return jnp.mean(x32, axis=(1, 2), keepdims=True)
    k1, k2 = min(h, kernel[0]), min(w, kernel[1])
    # Summed-area table with a zero row/column in front, as the official implementation does.
    s = jnp.cumsum(jnp.cumsum(x32, axis=2), axis=1)
    s = jnp.pad(s, ((0, 0), (1, 0), (1, 0), (0, 0)))
    s1 = s[:, :-k1, :-k2]
    s2 = s[:, :-k1, k2:]
    s3 = s[:, k1:, :-k2]
    s4 = s[:, k1:, k2:]
    out = (s4 + s1 - s2 - s3) / (k1 * k2)
    return _replicate_pad_to(out, h, w)


def pixel_shuffle(x: jax.Array, factor: int = 2) -> jax.Array:
    """PyTorch PixelShuffle in NHWC: out[c, f*h+i, f*w+j] = in[c*f*f + i*f + j, h, w]."""
    b, h, w, cin = x.shape
    c = cin // (factor * factor)
    x = x.reshape(b, h, w, c, factor, factor)
    x = x.transpose(0, 1, 4, 2, 5, 3)  # [B, H, i, W, j, C]
    return x.reshape(b, h * factor, w * factor, c)


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
    """Zero-pad [B, H, W, C] on the bottom and right so that H and W are multiples of `multiple`."""
    h, w = x.shape[1:3]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))


def valid_mask(shape_hw: tuple[int, int], valid: jax.Array) -> jax.Array:
    """[1, H, W, 1] bool, True where row < valid[0] and column < valid[1] (valid: int32 [2], may be traced)."""
    h, w = shape_hw
    rows = jnp.arange(h, dtype=jnp.int32)[:, None] < valid[0]
    cols = jnp.arange(w, dtype=jnp.int32)[None, :] < valid[1]
    return (rows & cols)[None, :, :, None]


def mask_outside(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Zeroes [B, H, W, C] outside the top-left valid[0] x valid[1] region.

    Size bucketing computes on a bigger zero-padded map than the exact model; zeroing what lies beyond the exact
    model's map before an op that reads neighbours (3x3 convs) or pools makes that op see exactly what the exact
    model's SAME zero padding shows it. A select, not a multiply, so that whatever lies outside cannot leak in.
    """
    return jnp.where(valid_mask(x.shape[1:3], valid), x, jnp.zeros((), x.dtype))


def level_valid(valid: jax.Array, level: int) -> jax.Array:
    """The valid size at U-Net `level` (resolution / 2**level); exact since valid is a multiple of 2**levels."""
    return valid // (2 ** level)


gelu = functools.partial(jax.nn.gelu, approximate=False)  # the exact erf form, as torch.nn.GELU()
