"""The NAFNet-paper Baseline block and U-Net, with parameter names that map 1:1 onto the official PyTorch keys.

Official key -> Flax path (see restorenet_jax/convert/key_map.py): `encoders.L.B.conv1.weight` -> `encoders_L_B/conv1/kernel`,
`se.1` -> `se_1`, `ups.L.0.weight` -> `ups_L/kernel`, `downs.L` -> `downs_L`, `middle_blks.B` -> `middle_blks_B`,
`normN.weight` -> `normN/scale`, `beta`/`gamma` (1,C,1,1) -> (C,).

Size bucketing: every `__call__` takes an optional `valid` (int32 [2], may be traced): the official padded size
(h16, w16) of an input that was zero-padded further, to a bigger "bucket". The network then zeroes features beyond
the valid region (scaled to each level) before every op that reads neighbours and takes channel-attention means over
the valid region only, so the valid region's outputs equal the exact model's on the official padded input. 2x2
stride-2 downs and 1x1 + PixelShuffle ups map valid pixels to valid pixels, so they need no mask. `valid=None` is the
plain computation, unchanged.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from restorenet_jax.models.arch import BaselineArch
from restorenet_jax.models.layers import (DepthwiseConv3x3, LayerNorm2d, channel_pool, conv, gelu, level_valid,
                                          mask_outside, pad_to_multiple, pixel_shuffle, tlc_kernel_size)

Dtype = Any


class BaselineBlock(nn.Module):
    """One Baseline block: LN -> 1x1 -> 3x3 depthwise -> GELU -> channel attention -> 1x1, then LN -> FFN.

    Attributes:
      channels: c, the block's input/output channels.
      dw_expand, ffn_expand: channel expansions of the spatial branch and the FFN.
      pool_kernel: None for the global-mean channel attention; a (kh, kw) window for TLC local pooling.
    """

    channels: int
    dw_expand: int = 1
    ffn_expand: int = 2
    pool_kernel: tuple[int, int] | None = None
    dtype: Dtype = jnp.float32
    depthwise_impl: str = "auto"  # see layers.DepthwiseConv3x3

    @nn.compact
    def __call__(self, inp: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """[B, H, W, c] -> [B, H, W, c]; `valid`: None, or this level's valid size (module docstring)."""
        c, dt = self.channels, self.dtype
        dw = c * self.dw_expand
        x = LayerNorm2d(dtype=dt, name="norm1")(inp)
        x = conv(dw, 1, name="conv1", dtype=dt)(x)
        if valid is not None:  # the depthwise conv must read zeros beyond the valid region, as SAME padding gives
            x = mask_outside(x, valid)
        x = DepthwiseConv3x3(dw, self.depthwise_impl, dt, name="conv2")(x)
        x = gelu(x)
        # Channel attention ("se"): pool -> 1x1 -> ReLU -> 1x1 -> sigmoid, then rescale the features.
        s = channel_pool(x, self.pool_kernel, valid).astype(dt)
        s = conv(dw // 2, 1, name="se_1", dtype=dt)(s)
        s = nn.relu(s)
        s = conv(dw, 1, name="se_3", dtype=dt)(s)
        x = x * nn.sigmoid(s)
        x = conv(c, 1, name="conv3", dtype=dt)(x)
        beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32)
        y = inp + x * beta.astype(dt)

        x = LayerNorm2d(dtype=dt, name="norm2")(y)
        x = conv(c * self.ffn_expand, 1, name="conv4", dtype=dt)(x)
        x = gelu(x)
        x = conv(c, 1, name="conv5", dtype=dt)(x)
        gamma = self.param("gamma", nn.initializers.zeros, (c,), jnp.float32)
        return y + x * gamma.astype(dt)


class UNet(nn.Module):
    """The Baseline U-Net body: intro conv, encoder levels + stride-2 downs, middle, 1x1+PixelShuffle ups with
    additive skips, decoder levels, ending conv.

    Used twice: as the Baseline itself (`global_residual=True`, 3 -> 3 channels) and as RestoreNet's extra network
    (6 residual channels -> 3, no residual inside). The input must already be padded to a multiple of 2**levels.

    Attributes:
      arch: block counts, width and expansions.
      out_channels: channels produced by `ending`.
      global_residual: add the input to the output (the Baseline does; the extra network does not).
      tlc: use TLC local pooling in every block; windows derived from `train_size` and `pad_multiple`.
      pad_multiple: the multiple the enclosing model pads to (fixes the TLC windows like the official convert()).
    """

    arch: BaselineArch
    out_channels: int = 3
    global_residual: bool = True
    tlc: bool = False
    train_size: tuple[int, int] = (256, 256)
    pad_multiple: int | None = None  # None: 2**levels
    dtype: Dtype = jnp.float32

    @property
    def multiple(self) -> int:
        return self.pad_multiple or 2 ** self.arch.levels

    def _block(self, chan: int, level: int) -> BaselineBlock:
        kernel = tlc_kernel_size(self.train_size, self.multiple, level) if self.tlc else None
        return BaselineBlock(chan, self.arch.dw_expand, self.arch.ffn_expand, kernel, self.dtype)

    def setup(self):
        a, dt = self.arch, self.dtype
        self.intro = conv(a.width, 3, name="intro", dtype=dt)
        self.ending = conv(self.out_channels, 3, name="ending", dtype=dt)
        encoders, downs, ups, decoders = [], [], [], []
        chan = a.width
        for level, num in enumerate(a.enc_blk_nums):
            encoders.append([self._block(chan, level) for _ in range(num)])
            downs.append(conv(2 * chan, 2, stride=2, padding=0, name=None, dtype=dt))
            chan *= 2
        self.middle_blks = [self._block(chan, a.levels) for _ in range(a.middle_blk_num)]
        for i, num in enumerate(a.dec_blk_nums):
            ups.append(conv(chan * 2, 1, use_bias=False, name=None, dtype=dt))
            chan //= 2
            decoders.append([self._block(chan, a.levels - 1 - i) for _ in range(num)])
        self.encoders, self.downs, self.ups, self.decoders = encoders, downs, ups, decoders

    def __call__(self, inp: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """[B, H, W, Cin] (H, W multiples of 2**levels) -> [B, H, W, out_channels].

        `valid`: None, or the valid size (int32 [2], multiples of 2**levels) of a bucket-padded input; outputs
        beyond it are meaningless (module docstring)."""
        if valid is not None:
            if self.tlc:
                raise NotImplementedError("size bucketing (valid=...) does not support TLC pooling")
            valid = jnp.asarray(valid, jnp.int32)
            # The input may come from another network (serial model, RestoreNet's residuals) and hold values beyond
            # the valid region; the intro conv must see zeros there.
            inp = mask_outside(inp, valid)
        levels = self.arch.levels
        at = (lambda level: None) if valid is None else (lambda level: level_valid(valid, level))
        x = self.intro(inp.astype(self.dtype))
        skips = []
        for level, (blocks, down) in enumerate(zip(self.encoders, self.downs)):
            x = _run(blocks, x, at(level))
            skips.append(x)
            x = down(x)
        x = _run(self.middle_blks, x, at(levels))
        for i, (blocks, up, skip) in enumerate(zip(self.decoders, self.ups, skips[::-1])):
            x = pixel_shuffle(up(x), 2) + skip
            x = _run(blocks, x, at(levels - 1 - i))
        if valid is not None:
            x = mask_outside(x, valid)
        x = self.ending(x)
        if self.global_residual:
            x = x + inp.astype(self.dtype)
        return x


def _run(blocks: Sequence[nn.Module], x: jax.Array, valid: jax.Array | None) -> jax.Array:
    for block in blocks:
        x = block(x, valid)
    return x


class Baseline(UNet):
    """The official `Baseline` (and, with tlc=True, `BaselineLocal`): any H, W >= 1, output cropped back.

    Construct as `Baseline(arch, tlc=False, dtype=jnp.float32)`. Input [B, H, W, C] float, zero-padded on the
    bottom/right to a multiple of 2**levels; output float32 [B, H, W, C]. Parameters live at the top level so that
    they mirror the official state_dict keys directly.
    """

    def __call__(self, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """[B, H, W, C] -> float32 [B, H, W, C]; `valid` as in `UNet.__call__` (sizes of the padded input)."""
        h, w = x.shape[1:3]
        y = super().__call__(pad_to_multiple(x, self.multiple), valid)
        return y[:, :h, :w].astype(jnp.float32)
