"""Prepare one dataset as TFDS array_record files from its manual dir, and print the examples per split.

    python -m restorenet_jax.prepare_data gopro_large/blur_gamma --manual-dir ~/data/GoPro_Large
    python -m restorenet_jax.prepare_data RealBlur-J --manual-dir ~/data/RealBlur --data-dir /fast/tfds
    python -m restorenet_jax.prepare_data embedded            # no manual dir: built from bundled photos
    python -m restorenet_jax.prepare_data folder/cam1 --manual-dir ~/frames/cam1     # own clean images
    python -m restorenet_jax.prepare_data paired_folder --manual-dir ~/pairs   # own input/ + target/ pairs

A missing folder or a wrong layout exits with status 2 and prints the expected layout; so do unmatched pair
names and unreadable images in one's own folders (named in the message). Preparing a changed own folder again
rebuilds it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tensorflow_datasets as tfds

from restorenet_jax.configs.data import get_data_config
from restorenet_jax.data.builders import BUILDERS, LayoutError, canonical_name, embedded_builder_config


def _layouts() -> str:
    return '\n\n'.join(f'{name}:\n{cls.LAYOUT}' for name, cls in BUILDERS.items())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m restorenet_jax.prepare_data', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog='Expected layouts:\n\n' + _layouts())
    p.add_argument('name', help=f'dataset NAME[/CONFIG]; names: {", ".join(BUILDERS)} (case and -/_ ignored); '
                   'configs: gopro_large/{blur,blur_gamma}, realblur_tele/{j,r}; own folders: folder/NAME, '
                   'paired_folder/NAME, paired_noise_folder/NAME (NAME of your choice, default "default"; '
                   'mix them as e.g. datasets="folder/cam1:1,gopro_large/blur_gamma:1")')
    p.add_argument('--manual-dir', help='folder holding the downloaded dataset (not needed for embedded)')
    p.add_argument('--data-dir', default=None, help='TFDS data dir (default: data_dir of configs/data.py)')
    return p


def prepare(name: str, manual_dir: str | None, data_dir: str | None) -> dict[str, int]:
    """Build dataset `name` ('NAME[/CONFIG]') and return {split: num_examples}. Raises LayoutError / KeyError."""
    cfg = get_data_config()
    data_dir = str(Path(data_dir or cfg.data_dir).expanduser())
    base, _, config = name.partition('/')
    key = canonical_name(base)
    cls = BUILDERS[key]
    if key == 'embedded':
        builder = cls(data_dir=data_dir, file_format='array_record',
                      config=embedded_builder_config(cfg.embedded, cfg.blur))
        builder.download_and_prepare()
    else:
        if cls.BUILDER_CONFIGS and not config:
            config = cls.BUILDER_CONFIGS[0].name
        known = [c.name for c in cls.BUILDER_CONFIGS]
        if config and cls.get_builder_config(config) is None:  # own folders take any NAME of [A-Za-z0-9_]
            raise KeyError(f'{key} has no config {config!r}; configs: {known or "none"}')
        builder = cls(data_dir=data_dir, file_format='array_record', config=config or None)
        if not manual_dir:
            raise LayoutError(f'{key} needs --manual-dir.\n{builder.layout_message()}')
        builder.check_manual_dir(manual_dir)  # fails early, with the layout, before TFDS starts writing
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(Path(manual_dir).expanduser())))
    return {split: info.num_examples for split, info in builder.info.splits.items()}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        counts = prepare(args.name, args.manual_dir, args.data_dir)
    except (LayoutError, KeyError) as e:
        print(f'error: {e.args[0] if e.args else e}', file=sys.stderr)
        return 2
    for split, n in sorted(counts.items()):
        print(f'{split}: {n} examples')
    return 0


if __name__ == '__main__':
    sys.exit(main())
