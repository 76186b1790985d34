"""GoPro_Large (Nah et al. 2017): 2,103 train / 1,111 test blurred/sharp pairs, 1280x720.

Builder configs pick the blurred version: `blur` (linear CRF) or `blur_gamma` (gamma-corrected).
"""
from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from restorenet_jax.data.builders.common import LayoutError, Pair, PairedImageBuilder, resolve_root

LAYOUT = """GoPro_Large/                       (pass this folder, or its parent, as --manual-dir)
  train/GOPRxxxx_xx_xx/blur/000047.png
  train/GOPRxxxx_xx_xx/blur_gamma/000047.png
  train/GOPRxxxx_xx_xx/sharp/000047.png
  test/GOPRxxxx_xx_xx/{blur,blur_gamma,sharp}/*.png"""


class GoproLarge(PairedImageBuilder):
    """GoPro_Large blurred/sharp pairs from a manual dir."""

    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name='blur', description='Blurred images with a linear camera response.'),
        tfds.core.BuilderConfig(name='blur_gamma', description='Gamma-corrected blurred images.'),
    ]
    LAYOUT = LAYOUT
    DESCRIPTION = 'GoPro_Large deblurring pairs (input: blurred, target: sharp).'

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        root = resolve_root(manual_dir, 'GoPro_Large', 'train')
        blur_dir = self.builder_config.name
        splits = {}
        for split in ('train', 'test'):
            split_dir = root / split
            if not split_dir.is_dir():
                raise LayoutError(f'{split_dir} not found.\n{self.layout_message()}')
            pairs = []
            for seq in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                sharp, blur = seq / 'sharp', seq / blur_dir
                if not sharp.is_dir() or not blur.is_dir():
                    raise LayoutError(f'{seq} lacks sharp/ or {blur_dir}/.\n{self.layout_message()}')
                for target in sorted(sharp.glob('*.png')):
                    source = blur / target.name
                    if not source.is_file():
                        raise LayoutError(f'{source} missing (paired with {target}).\n{self.layout_message()}')
                    pairs.append((f'{split}/{seq.name}/{target.name}', source, target))
            if not pairs:
                raise LayoutError(f'{split_dir} holds no image pairs.\n{self.layout_message()}')
            splits[split] = pairs
        return splits
