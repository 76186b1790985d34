"""BSD-B (from the RealBlur authors): 20,000 synthetic uniform-blur pairs made from BSD images, train list only."""
from __future__ import annotations

from pathlib import Path

from restorenet_jax.data.builders.common import (LayoutError, Pair, PairedImageBuilder, read_list_file,
                                                 resolve_root)

LIST_NAME = 'BSB_B_Centroid_train.txt'  # sic: the official file name says "BSB"

LAYOUT = f"""BSD_B/                             (pass this folder, or its parent, as --manual-dir)
  {LIST_NAME}          lines '<gt_rel> <blur_rel>'
  BSD_B_Centroid/gt/14534_153077_001355_kernel_21_gt.png
  BSD_B_Centroid/blur/14534_153077_001355_kernel_21_blurred.png"""


class BsdB(PairedImageBuilder):
    """BSD-B blurred/sharp training pairs."""

    LAYOUT = LAYOUT
    DESCRIPTION = 'BSD-B synthetic uniform-blur pairs.'

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        root = resolve_root(manual_dir, 'BSD_B', LIST_NAME)
        list_path = root / LIST_NAME
        if not list_path.is_file():
            raise LayoutError(f'{list_path} not found.\n{self.layout_message()}')
        return {'train': read_list_file(list_path, root, self.layout_message())}
