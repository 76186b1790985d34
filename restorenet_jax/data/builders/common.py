"""Shared pieces of the paired-image TFDS builders: features, the layout error, the manual-dir base class.

Records keep the original encoded PNG bytes (no re-encoding, small files); the pipeline decodes them itself so a
corrupt image can be skipped instead of crashing a reader. Builders write `array_record` files and are read back
with `builder.as_data_source(split)` (no TensorFlow is installed, so `tfrecord`/`as_dataset` are out).
"""
from __future__ import annotations

import abc
import inspect
import io
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

# (name, input bytes or path, target bytes or path) for one example.
Pair = tuple[str, "Path | bytes", "Path | bytes"]


class LayoutError(ValueError):
    """A manual dir is missing or not in the expected on-disk layout; the message shows that layout."""


def pair_features() -> tfds.features.FeaturesDict:
    """'input' (degraded image), 'target' (clean image), both PNG-encoded uint8 RGB, and 'name' (relative id)."""
    return tfds.features.FeaturesDict({
        'input': tfds.features.Image(shape=(None, None, 3), encoding_format='png'),
        'target': tfds.features.Image(shape=(None, None, 3), encoding_format='png'),
        'name': tfds.features.Text(),
    })


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (TFDS can only encode arrays with TensorFlow, so we pass bytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format='PNG')
    return buf.getvalue()


def resolve_root(manual_dir: str | Path, folder_name: str, marker: str) -> Path:
    """Accept either the dataset folder itself or a parent that contains `folder_name`.

    `marker` is a path (relative to the dataset folder) that must exist there.
    """
    root = Path(manual_dir).expanduser()
    for candidate in (root, root / folder_name):
        if (candidate / marker).exists():
            return candidate
    return root


def read_list_file(list_path: Path, root: Path, layout: str) -> list[Pair]:
    """Parse a '<gt_rel> <blur_rel>' list file into (name, blur_path, gt_path), checking every file exists."""
    pairs = []
    for line_no, line in enumerate(list_path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise LayoutError(f'{list_path}:{line_no}: expected "<gt_rel> <blur_rel>", got {line!r}.\n{layout}')
        gt_rel, blur_rel = parts[0], parts[1]
        # Some lists put the blurred path first; the '/gt/' folder tells them apart.
        if '/gt/' not in '/' + gt_rel and '/gt/' in '/' + blur_rel:
            gt_rel, blur_rel = blur_rel, gt_rel
        gt_path, blur_path = root / gt_rel, root / blur_rel
        for p in (gt_path, blur_path):
            if not p.is_file():
                raise LayoutError(f'{list_path}:{line_no}: file not found: {p}\n{layout}')
        pairs.append((blur_rel, blur_path, gt_path))
    if not pairs:
        raise LayoutError(f'{list_path} lists no pairs.\n{layout}')
    return pairs


def _as_bytes(x: Path | bytes) -> bytes:
    return x if isinstance(x, bytes) else Path(x).read_bytes()


class PairedImageBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
    """Base class: subclasses implement `find_pairs(manual_dir) -> {split: [Pair]}` and set LAYOUT.

    Abstract, so TFDS does not register it as a dataset of its own.
    """

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'Initial release.'}
    # 'blur': input is the blurred version of target; 'noise': input is the real noisy version (SIDD).
    PAIR_KIND = 'blur'
    LAYOUT = ''  # expected on-disk layout, shown in every LayoutError
    DESCRIPTION = ''

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:  # noqa: N805
        # TFDS' own lookup needs the optional `importlib_resources` package (not installed); our modules are
        # plain files, so point at them directly (used only to look for a checksums file, which we never have).
        return epath.Path(inspect.getfile(cls))

    @property
    def MANUAL_DOWNLOAD_INSTRUCTIONS(self) -> str:  # noqa: N802 (TFDS attribute name)
        return 'Place the dataset in the manual dir in this layout:\n' + self.LAYOUT

    @abc.abstractmethod
    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        """Scan `manual_dir` and return the pairs per split; raise LayoutError when the layout does not match."""

    def check_manual_dir(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        """Like find_pairs, but first turns a missing folder into a LayoutError."""
        root = Path(manual_dir).expanduser()
        if not root.is_dir():
            raise LayoutError(f'{self.name}: manual dir {root} does not exist.\n{self.layout_message()}')
        return self.find_pairs(root)

    def layout_message(self) -> str:
        """The expected layout, for error messages and --help."""
        return f'Expected layout for {self.name}:\n{self.LAYOUT}'

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo(builder=self, ...) works for builders defined inside a package.
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=pair_features())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = self.check_manual_dir(dl_manager.manual_dir)
        return {split: self._generate_examples(items) for split, items in splits.items()}

    def _generate_examples(self, items: Iterable[Pair]) -> Iterator[tuple[str, dict]]:
        for name, inp, tgt in items:
            yield name, {'input': _as_bytes(inp), 'target': _as_bytes(tgt), 'name': name}
