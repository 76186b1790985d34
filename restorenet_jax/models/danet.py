"""DANet's noise generator `UNetG` (Yue et al. 2020, zsyOAOA/DANet networks/UNetG.py) in flax.linen, NHWC.

A plain U-Net: per level two 3x3 convs + LeakyReLU; down = 4x4 stride-2 conv (no bias); up = 2x2 stride-2
transposed conv, concat with the skip, two 3x3 convs; last 3x3 conv to the image channels. The generator is fed
cat(clean, z) with z ~ N(0, 1) one channel and predicts the noise residual: noisy = G(cat(x, z)) + x.

Sub-module names mirror the official PyTorch attribute paths so that the checkpoint converter is a table
(`official_key_table`): `down_path.1.block.2.weight` <-> params['down_path_1']['block_2']['kernel'].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import flax.linen as nn


def _conv3x3(features: int, name: str, use_bias: bool = True) -> nn.Conv:
    # Explicit (1, 1) padding = PyTorch's padding=1.
    return nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), use_bias=use_bias, name=name)


class UpConv2x2(nn.Module):
    """2x2 stride-2 transposed conv (PyTorch ConvTranspose2d(k=2, s=2)): each input pixel paints a 2x2 patch.

    The kernel is stored as [2, 2, in, out] with kernel[a, b] painting output pixel (2i + a, 2j + b), i.e. the
    PyTorch weight [in, out, a, b] transposed without any spatial flip.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param('kernel', nn.initializers.lecun_normal(), (2, 2, x.shape[-1], self.features))
        bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
        b, h, w, _ = x.shape
        y = jnp.einsum('bhwc,pqco->bhpwqo', x, kernel)  # [B, H, 2, W, 2, out]
        return y.reshape(b, 2 * h, 2 * w, self.features) + bias


class UNetConvBlock(nn.Module):
    """Two 3x3 conv + LeakyReLU; with `downsample` also returns the 4x4 stride-2 conv of the result."""

    features: int
    downsample: bool
    relu_slope: float

    @nn.compact
    def __call__(self, x: jax.Array):
        x = nn.leaky_relu(_conv3x3(self.features, 'block_0')(x), self.relu_slope)
        x = nn.leaky_relu(_conv3x3(self.features, 'block_2')(x), self.relu_slope)
        if not self.downsample:
            return x
        down = nn.Conv(self.features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                       name='downsample')(x)
        return down, x


class UNetUpBlock(nn.Module):
    """Upsample x2, concatenate the skip ([up, bridge] channel order, as upstream), then a conv block."""

    features: int
    relu_slope: float

    @nn.compact
    def __call__(self, x: jax.Array, bridge: jax.Array) -> jax.Array:
        up = UpConv2x2(self.features, name='up')(x)
        x = jnp.concatenate([up, bridge], axis=-1)
        return UNetConvBlock(self.features, False, self.relu_slope, name='conv_block')(x)


class UNetG(nn.Module):
    """DANet generator. Input [B, H, W, in_chans] (RGB + z), H and W multiples of 2**(depth-1).

    Returns the [B, H, W, in_chans - 1] noise residual. Official model: in_chans=4, wf=32, depth=5, slope 0.2.
    """

    in_chans: int = 4
    wf: int = 32
    depth: int = 5
    relu_slope: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        skips = []
        for i in range(self.depth):
            downsample = i + 1 < self.depth
            block = UNetConvBlock(2**i * self.wf, downsample, self.relu_slope, name=f'down_path_{i}')
            if downsample:
                x, skip = block(x)
                skips.append(skip)
            else:
                x = block(x)
        # up_path_j runs from the deepest level up: width wf * 2**(depth - 2 - j).
        for j, i in enumerate(reversed(range(self.depth - 1))):
            x = UNetUpBlock(2**i * self.wf, self.relu_slope, name=f'up_path_{j}')(x, skips[i])
        return _conv3x3(self.in_chans - 1, 'last')(x)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (one halving per down level)."""
        return 2 ** (self.depth - 1)


def official_key_table(depth: int) -> dict[str, tuple[tuple[str, ...], str]]:
    """The one map of official PyTorch state-dict keys -> (flax param path, layout), for a given depth.

    Layouts: 'conv' = Conv2d weight [out, in, kh, kw] -> [kh, kw, in, out]; 'convT' = ConvTranspose2d weight
    [in, out, kh, kw] -> [kh, kw, in, out]; 'bias' = copied.
    """
    table: dict[str, tuple[tuple[str, ...], str]] = {}

    def conv_block(torch_prefix: str, flax_prefix: tuple[str, ...], downsample: bool) -> None:
        for idx in (0, 2):  # nn.Sequential(conv, lrelu, conv, lrelu): the convs are items 0 and 2
            table[f'{torch_prefix}.block.{idx}.weight'] = (flax_prefix + (f'block_{idx}', 'kernel'), 'conv')
            table[f'{torch_prefix}.block.{idx}.bias'] = (flax_prefix + (f'block_{idx}', 'bias'), 'bias')
        if downsample:
            table[f'{torch_prefix}.downsample.weight'] = (flax_prefix + ('downsample', 'kernel'), 'conv')

    for i in range(depth):
        conv_block(f'down_path.{i}', (f'down_path_{i}',), i + 1 < depth)
    for j in range(depth - 1):
        table[f'up_path.{j}.up.weight'] = ((f'up_path_{j}', 'up', 'kernel'), 'convT')
        table[f'up_path.{j}.up.bias'] = ((f'up_path_{j}', 'up', 'bias'), 'bias')
        conv_block(f'up_path.{j}.conv_block', (f'up_path_{j}', 'conv_block'), False)
    table['last.weight'] = (('last', 'kernel'), 'conv')
    table['last.bias'] = (('last', 'bias'), 'bias')
    return table


def abstract_params(model: UNetG) -> dict:
    """Shapes/dtypes of the params tree (no compile, no allocation), via jax.eval_shape."""
    m = model.size_multiple
    dummy = jax.ShapeDtypeStruct((1, m, m, model.in_chans), jnp.float32)
    return jax.eval_shape(model.init, jax.random.key(0), dummy)['params']
