"""Shared pieces of the builders for users' own image folders (`folder`, `paired_folder`).

Unlike the named public datasets, a user's folder changes: the builders take a free instance name
(`folder/NAME`, default `default`) so several folders can be prepared side by side and mixed, and they store a
fingerprint of the files (relative names, sizes, modification times) so that preparing a changed folder again
rebuilds it instead of silently reusing the old copy. Every image is fully decoded once before anything is
written, so unreadable files are named up front instead of being skipped during training.
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import tensorflow_datasets as tfds
from PIL import Image
from tqdm import tqdm

from restorenet_jax.data.builders.common import LayoutError, Pair, PairedImageBuilder, pair_features

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
# Top-level folders read as splits; any other folder is just part of the single 'train' split.
SPLIT_FOLDERS = {'train': 'train', 'test': 'test', 'val': 'validation', 'validation': 'validation'}
_INSTANCE_NAME = re.compile(r'^[A-Za-z0-9_]+$')
_MAX_LISTED = 10  # file names shown in one error message
_DECODE_THREADS = 4  # PIL releases the GIL while decoding


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (any depth), sorted; hidden files (macOS '._x.jpg', '.DS_Store') are skipped."""
    return sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith('.') for part in p.relative_to(folder).parts))


def split_folders(root: Path) -> dict[str, Path]:
    """{split: folder}: the top-level train/test/val(idation) folders, or {'train': root} when there are none."""
    found = {}
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if split is not None:
            if split in found:
                raise LayoutError(f'{root}: both {found[split].name}/ and {child.name}/ name the {split} split')
            found[split] = child
    if not found:
        return {'train': root}
    inside = tuple(found.values())
    stray = [p for p in list_images(root) if not any(p.is_relative_to(f) for f in inside)]
    if stray:  # silently leaving them out would surprise; putting them in 'train' could leak test images
        raise LayoutError(f'{root}: {len(stray)} image(s) outside the split folders '
                          f'{", ".join(f.name + "/" for f in inside)}: {listing(stray)}')
    return found


def listing(paths: Iterable[object], total: int | None = None) -> str:
    """'a, b, c (and 7 more)' for an error message."""
    paths = list(paths)
    total = len(paths) if total is None else total
    shown = ', '.join(str(p) for p in paths[:_MAX_LISTED])
    return shown + (f' (and {total - _MAX_LISTED} more)' if total > _MAX_LISTED else '')


def _check_image(path: Path) -> tuple[Path, tuple[int, int] | None, str]:
    """(path, (width, height) or None, problem or '') after a full decode."""
    try:
        with Image.open(path) as im:
            if im.mode.startswith(('I', 'F')):  # 16-bit / float: PIL's RGB conversion would clip them to white
                return path, None, f'{im.mode} pixels (only 8-bit images are supported; convert to 8-bit)'
            im.load()  # truncated files fail here, not in the middle of training
            return path, im.size, ''
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...) for bad files
        return path, None, str(e) or type(e).__name__


def decode_all(paths: list[Path], desc: str) -> dict[Path, tuple[int, int]]:
    """Fully decodes every image once (progress bar on a terminal); LayoutError naming the unreadable ones."""
    sizes, bad = {}, []
    with ThreadPoolExecutor(_DECODE_THREADS) as pool:
        for path, size, problem in tqdm(pool.map(_check_image, paths), total=len(paths), desc=desc, unit='img',
                                        disable=None, leave=False):
            if problem:
                bad.append(f'{path} ({problem})')
            else:
                sizes[path] = size
    if bad:
        raise LayoutError(f'{len(bad)} unreadable image(s): {listing(bad)}')
    return sizes


def fingerprint(splits: dict[str, list[Pair]]) -> str:
    """Hash of every file's split, name, size and modification time: changes when the folder changes."""
    digest = hashlib.sha1()
    for split in sorted(splits):
        for name, *files in splits[split]:
            digest.update(f'{split}\0{name}'.encode())
            for f in files:
                if isinstance(f, Path):
                    st = f.stat()
                    digest.update(f'\0{f}\0{st.st_size}\0{st.st_mtime_ns}'.encode())
    return digest.hexdigest()


class OwnFolderBuilder(PairedImageBuilder, abc.ABC):
    """Base of the own-folder builders: free instance names, rebuild on change, images checked up front.

    Subclasses implement `scan(root) -> {split: [Pair]}` (layout only) and `check_images(splits)`.
    """

    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='default', description='An own folder (no name given).')]

    @classmethod
    def get_builder_config(cls, name: str, version=None) -> tfds.core.BuilderConfig | None:
        """Any NAME in `folder/NAME` is an instance of its own (letters, digits, '_'), not only 'default'."""
        config = super().get_builder_config(name, version)
        if config is None:
            if not _INSTANCE_NAME.match(name):
                raise KeyError(f'{cls.name}/{name}: the NAME after {cls.name}/ may hold only letters, digits and _')
            config = tfds.core.BuilderConfig(name=name, description=f'Own folder {name!r}.')
        return config

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._checked: dict[Path, dict[str, list[Pair]]] = {}

    @abc.abstractmethod
    def scan(self, root: Path) -> dict[str, list[Pair]]:
        """The pairs per split from the folder layout alone; LayoutError when it does not match."""

    @abc.abstractmethod
    def check_images(self, splits: dict[str, list[Pair]]) -> None:
        """Decode the images once; LayoutError naming unreadable (or mismatched) files."""

    def find_pairs(self, manual_dir: str | Path) -> dict[str, list[Pair]]:
        # Cached per folder: prepare_data checks before TFDS starts, and TFDS asks again while writing.
        root = Path(manual_dir).expanduser().resolve()
        if root not in self._checked:
            try:
                splits = self.scan(root)
            except LayoutError as e:  # a layout problem: show the expected layout
                raise LayoutError(f'{self.name}: {e.args[0]}\n{self.layout_message()}') from None
            try:
                self.check_images(splits)
            except LayoutError as e:  # unreadable or mismatched files: the message names them
                raise LayoutError(f'{self.name}: {e.args[0]}') from None
            self._checked[root] = splits
        return self._checked[root]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION, features=pair_features(),
                                     metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = self.check_manual_dir(dl_manager.manual_dir)
        self.info.metadata['fingerprint'] = fingerprint(splits)
        self.info.metadata['manual_dir'] = str(Path(dl_manager.manual_dir).expanduser().resolve())
        return {split: self._generate_examples(items) for split, items in splits.items()}

    def download_and_prepare(self, *, download_config: tfds.download.DownloadConfig | None = None, **kwargs):
        """Like TFDS', but a prepared copy whose folder has changed since is rebuilt instead of reused."""
        download_config = download_config or tfds.download.DownloadConfig()
        if self.is_prepared() and download_config.manual_dir:
            current = fingerprint(self.check_manual_dir(download_config.manual_dir))
            if self.info.metadata.get('fingerprint') != current:
                download_config = dataclasses.replace(download_config,
                                                      download_mode=tfds.download.GenerateMode.FORCE_REDOWNLOAD)
        super().download_and_prepare(download_config=download_config, **kwargs)
