"""`folder`: a tree of clean images (e.g. daylight frames from one's own cameras); every degradation synthesised.

Each record holds the original file's bytes as the target (PNG or JPEG, not re-encoded) and an empty input: the
pipeline treats such 'clean' records like the noise-only kinds of SIDD, synthesising the blur (a fresh kernel each
time the image is drawn, so a small folder still yields varied training inputs) and the noise on the fly.
"""
from __future__ import annotations

from pathlib import Path

from restorenet_jax.data.builders.common import LayoutError, Pair
from restorenet_jax.data.builders.own_folders import (IMAGE_SUFFIXES, OwnFolderBuilder, decode_all, list_images,
                                                      split_folders)

LAYOUT = f"""DIR/                               (pass this folder as --manual-dir; prepare as folder or folder/NAME)
  **/*.png, **/*.jpg ...             clean images at any depth, all in the 'train' split
or, to hold some images out for evaluation:
  train/**/*.png                     'train' split
  test/**/*.png                      'test' split (and/or val/ -> 'validation')
Image types: {' '.join(IMAGE_SUFFIXES)} (8-bit); names starting with '.' are skipped."""


class Folder(OwnFolderBuilder):
    """Clean images from a folder tree; blur and noise are synthesised by the pipeline."""

    PAIR_KIND = 'clean'
    LAYOUT = LAYOUT
    DESCRIPTION = 'Clean images from a user folder (input: synthesised on the fly, target: the image).'

    def scan(self, root: Path) -> dict[str, list[Pair]]:
        splits = {}
        for split, folder in split_folders(root).items():
            images = list_images(folder)
            if not images:
                raise LayoutError(f'{folder} holds no images')
            # b'' input: "synthesise the degraded input from the target" (see transforms.decode_pair).
            splits[split] = [(f'{split}/{p.relative_to(folder).as_posix()}', b'', p) for p in images]
        return splits

    def check_images(self, splits: dict[str, list[Pair]]) -> None:
        decode_all([p for pairs in splits.values() for _, _, p in pairs], desc='checking images')
