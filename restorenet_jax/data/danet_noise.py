"""Learned real-camera noise: DANet's generator applied to clean sRGB images (jit-compiled, per input shape).

    noiser = DanetNoiser.from_checkpoint('runs/danet')   # written by `python -m convert.danet DANet.pt runs/danet`
    noisy = noiser(images, seed)                          # images [B, H, W, 3] or [H, W, 3] in [0, 1]

noisy = clamp(G(cat(x, z)) + x, 0, 1) with z ~ N(0, 1) one channel; x is reflect-padded at the bottom/right to a
multiple of 2**(depth-1) (16 for the official model) and the result cropped back, as in the official
test_generation_arbitrary.py.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from restorenet_jax.models.danet import UNetG, abstract_params

ARCH_FILE = 'arch.json'
PARAMS_DIR = 'params'


class DanetNoiser:
    """Holds a UNetG and its params; calling it adds generated noise to clean images."""

    def __init__(self, model: UNetG, params: dict):
        self.model = model
        self.params = params
        self._generate = jax.jit(functools.partial(_generate, model), static_argnames=('clamp',))

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str) -> 'DanetNoiser':
        """Loads a directory written by `python -m convert.danet` (arch.json + orbax params/)."""
        import orbax.checkpoint as ocp

        checkpoint_dir = os.path.abspath(checkpoint_dir)
        arch_path = os.path.join(checkpoint_dir, ARCH_FILE)
        if not os.path.isfile(arch_path):
            raise FileNotFoundError(
                f'{arch_path} not found: create the directory with `python -m convert.danet DANet.pt DIR`')
        with open(arch_path) as f:
            arch = json.load(f)
        model = UNetG(in_chans=arch['in_chans'], wf=arch['wf'], depth=arch['depth'], relu_slope=arch['relu_slope'])
        with ocp.StandardCheckpointer() as checkpointer:
            params = checkpointer.restore(os.path.join(checkpoint_dir, PARAMS_DIR), abstract_params(model))
        return cls(model, params)

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """[B, H, W, C] -> [B, Hp, Wp, 1]: the shape of z for an input of `shape` (padded to the multiple)."""
        m = self.model.size_multiple
        b, h, w = shape[:3]
        return (b, -(-h // m) * m, -(-w // m) * m, 1)

    def generate(self, images: jax.Array, z: jax.Array, clamp: bool = True) -> jax.Array:
        """Noisy images for a given z [B, Hp, Wp, 1] (see `padded_shape`); images [B, H, W, 3]."""
        return self._generate(self.params, jnp.asarray(images, jnp.float32), jnp.asarray(z, jnp.float32),
                              clamp=clamp)

    def __call__(self, images: np.ndarray | jax.Array, rng_key_or_seed: jax.Array | int) -> jax.Array:
        """Adds DANet noise.

        Args:
          images: [B, H, W, 3] or [H, W, 3] float in [0, 1].
          rng_key_or_seed: a jax PRNG key or an int seed; the same value gives the same noise.

        Returns:
          float32 array of the input's shape, in [0, 1].
        """
        images = jnp.asarray(images, jnp.float32)
        single = images.ndim == 3
        batch = images[None] if single else images
        key = rng_key_or_seed
        if isinstance(key, (int, np.integer)):
            key = jax.random.key(int(key))
        z = jax.random.normal(key, self.padded_shape(batch.shape), jnp.float32)
        noisy = self.generate(batch, z)
        return noisy[0] if single else noisy


def _generate(model: UNetG, params: dict, images: jax.Array, z: jax.Array, clamp: bool) -> jax.Array:
    h, w = images.shape[1:3]
    pad_h, pad_w = z.shape[1] - h, z.shape[2] - w
    # Bottom/right reflect padding, like the official PadUNet.
    padded = jnp.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode='reflect')
    residual = model.apply({'params': params}, jnp.concatenate([padded, z], axis=-1))
    noisy = (residual + padded)[:, :h, :w]
    return jnp.clip(noisy, 0.0, 1.0) if clamp else noisy
