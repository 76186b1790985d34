"""SIDD-Medium sRGB (Abdelhamed et al. 2018): real noisy/clean pairs, plus the validation blocks from .mat files.

Validation .mat files are read with scipy.io.loadmat, as the public SIDD evaluation scripts read the official
`Validation*BlocksSrgb.mat` (MATLAB v5). A file re-saved as v7.3 (HDF5) cannot be read that way: a clear error asks
to re-save it as v5 (`scipy.io.savemat(path, {...})`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from restorenet_jax.data.builders.common import LayoutError, Pair, PairedImageBuilder, encode_png, resolve_root

LAYOUT = """SIDD/                              (pass this folder as --manual-dir)
  SIDD_Medium_Srgb/Data/<scene>/<id>_GT_SRGB_010.PNG      (and _011)
  SIDD_Medium_Srgb/Data/<scene>/<id>_NOISY_SRGB_010.PNG
  ValidationNoisyBlocksSrgb.mat      optional, MATLAB v5, key 'ValidationNoisyBlocksSrgb', uint8 (40,32,256,256,3)
  ValidationGtBlocksSrgb.mat         optional, key 'ValidationGtBlocksSrgb'"""

_NOISY = re.compile(r'^(.*)_NOISY_SRGB_(\d+)\.png$', re.IGNORECASE)


def _load_mat_blocks(path: Path, key: str) -> np.ndarray:
    import scipy.io  # only needed for the validation split

    try:
        blocks = scipy.io.loadmat(str(path))[key]
    except NotImplementedError as e:  # scipy raises this for v7.3 (HDF5) files
        raise LayoutError(f'{path} is MATLAB v7.3 (HDF5); re-save it as v5 with scipy.io.savemat.') from e
    except KeyError as e:
        raise LayoutError(f'{path} lacks the array {key!r}.\n{LAYOUT}') from e
    if blocks.ndim != 5 or blocks.shape[-1] != 3:
        raise LayoutError(f'{path}: expected [scenes, blocks, H, W, 3], got {blocks.shape}.\n{LAYOUT}')
    return blocks.astype(np.uint8)


class Sidd(PairedImageBuilder):
    """SIDD-Medium sRGB pairs (split 'train') and validation blocks (split 'validation', when the .mat are there)."""

    PAIR_KIND = 'noise'
    LAYOUT = LAYOUT
    DESCRIPTION = 'SIDD-Medium sRGB real noisy/clean pairs (input: noisy, target: clean).'

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        root = resolve_root(manual_dir, 'SIDD', 'SIDD_Medium_Srgb')
        data = root / 'SIDD_Medium_Srgb' / 'Data'
        if not data.is_dir():
            raise LayoutError(f'{data} not found.\n{self.layout_message()}')
        pairs = []
        for scene in sorted(p for p in data.iterdir() if p.is_dir()):
            for noisy in sorted(scene.iterdir()):
                m = _NOISY.match(noisy.name)
                if not m:
                    continue
                gt = noisy.with_name(noisy.name.replace('NOISY', 'GT').replace('noisy', 'gt'))
                if not gt.is_file():
                    raise LayoutError(f'{gt} missing (paired with {noisy}).\n{self.layout_message()}')
                pairs.append((f'{scene.name}/{noisy.name}', noisy, gt))
        if not pairs:
            raise LayoutError(f'{data} holds no *_NOISY_SRGB_*.PNG files.\n{self.layout_message()}')
        splits: dict[str, list[Pair]] = {'train': pairs}
        noisy_mat, gt_mat = root / 'ValidationNoisyBlocksSrgb.mat', root / 'ValidationGtBlocksSrgb.mat'
        if noisy_mat.is_file() != gt_mat.is_file():
            raise LayoutError(f'need both validation .mat files or neither.\n{self.layout_message()}')
        if noisy_mat.is_file():
            # Lazy: the blocks are read and encoded only while TFDS writes the split.
            splits['validation'] = self._validation_pairs(noisy_mat, gt_mat)  # type: ignore[assignment]
        return splits

    def _validation_pairs(self, noisy_mat: Path, gt_mat: Path) -> Iterator[Pair]:
        noisy = _load_mat_blocks(noisy_mat, 'ValidationNoisyBlocksSrgb')
        gt = _load_mat_blocks(gt_mat, 'ValidationGtBlocksSrgb')
        if noisy.shape != gt.shape:
            raise LayoutError(f'validation shapes differ: {noisy.shape} vs {gt.shape}.\n{self.layout_message()}')
        for i in range(noisy.shape[0]):
            for j in range(noisy.shape[1]):
                yield f'validation/{i:02d}_{j:02d}', encode_png(noisy[i, j]), encode_png(gt[i, j])
