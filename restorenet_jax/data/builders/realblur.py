"""RealBlur (Rim et al. 2020) J and R, and RealBlur-Tele, from the official list files.

Each list line is `<gt_rel> <blur_rel>` relative to the dataset folder.
"""
from __future__ import annotations

import re
from pathlib import Path

import tensorflow_datasets as tfds

from restorenet_jax.data.builders.common import (LayoutError, Pair, PairedImageBuilder, read_list_file,
                                                 resolve_root)

_LAYOUT = """RealBlur/                          (pass this folder, or its parent, as --manual-dir)
  RealBlur_{v}_train_list.txt        lines '<gt_rel> <blur_rel>'
  RealBlur_{v}_test_list.txt
  RealBlur-{v}_ECC_IMCORR_centroid_itensity_ref/sceneNNN/gt/gt_7.png
  RealBlur-{v}_ECC_IMCORR_centroid_itensity_ref/sceneNNN/blur/blur_7.png"""

_TELE_LAYOUT = """RealBlur-Tele/                     (pass this folder, or its parent, as --manual-dir)
  a test list for each variant: a .txt whose name contains 'Tele', the variant letter (J or R) between
  '-'/'_' and 'test', e.g. RealBlur-J-Tele_test_list.txt; lines '<gt_rel> <blur_rel>'
  RealBlur-J-Tele_ECC_IMCORR_centroid_itensity_ref/sceneNNN/{gt,blur}/*.png   (and the R folder)"""


class _RealBlurBase(PairedImageBuilder):
    VARIANT = ''

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        v = self.VARIANT
        root = resolve_root(manual_dir, 'RealBlur', f'RealBlur_{v}_train_list.txt')
        splits = {}
        for split in ('train', 'test'):
            list_path = root / f'RealBlur_{v}_{split}_list.txt'
            if not list_path.is_file():
                raise LayoutError(f'{list_path} not found.\n{self.layout_message()}')
            splits[split] = read_list_file(list_path, root, self.layout_message())
        return splits


class RealblurJ(_RealBlurBase):
    """RealBlur-J (JPEG, camera-processed) train/test pairs."""

    VARIANT = 'J'
    LAYOUT = _LAYOUT.format(v='J')
    DESCRIPTION = 'RealBlur-J real blurred/sharp pairs.'


class RealblurR(_RealBlurBase):
    """RealBlur-R (raw, linear) train/test pairs."""

    VARIANT = 'R'
    LAYOUT = _LAYOUT.format(v='R')
    DESCRIPTION = 'RealBlur-R real blurred/sharp pairs.'


def _find_tele_list(root: Path, variant: str) -> Path | None:
    pattern = re.compile(rf'(^|[-_]){variant.lower()}([-_])')
    for path in sorted(root.glob('*.txt')):
        name = path.name.lower()
        if 'tele' in name and 'test' in name and pattern.search(name):
            return path
    return None


class RealblurTele(PairedImageBuilder):
    """RealBlur-Tele (telephoto) test pairs; builder configs `j` and `r`."""

    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name='j', description='RealBlur-J-Tele test pairs.'),
        tfds.core.BuilderConfig(name='r', description='RealBlur-R-Tele test pairs.'),
    ]
    LAYOUT = _TELE_LAYOUT
    DESCRIPTION = 'RealBlur-Tele real blurred/sharp test pairs (telephoto lens).'

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        variant = self.builder_config.name.upper()
        root = Path(manual_dir).expanduser()
        if _find_tele_list(root, variant) is None and (root / 'RealBlur-Tele').is_dir():
            root = root / 'RealBlur-Tele'
        list_path = _find_tele_list(root, variant)
        if list_path is None:
            raise LayoutError(f'no {variant} test list in {root}.\n{self.layout_message()}')
        return {'test': read_list_file(list_path, root, self.layout_message())}
