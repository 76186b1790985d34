"""`paired_folder` / `paired_noise_folder`: one's own (degraded, clean) pairs, BasicSR's paired-folder layout.

An input folder and a target folder (BasicSR's `dataroot_lq` / `dataroot_gt`) whose images are matched by their
path relative to the folder, without the extension (`input/cam1/0001.jpg` pairs with `target/cam1/0001.png`).
Records keep the original bytes (no re-encoding).

The two names differ only in what the input is, which decides how the four input kinds are made:
  paired_folder        input = blurred target (like GoPro): B = input, BN = input + synthetic noise,
                       N = target + synthetic noise.
  paired_noise_folder  input = real noisy target (like SIDD): N = input, B and BN from synthetic blur.
"""
from __future__ import annotations

from pathlib import Path

from restorenet_jax.data.builders.common import LayoutError, Pair
from restorenet_jax.data.builders.own_folders import (IMAGE_SUFFIXES, OwnFolderBuilder, decode_all, list_images,
                                                      listing, split_folders)

# (input, target) folder names accepted, matched case-insensitively.
FOLDER_PAIRS = (('input', 'target'), ('lq', 'gt'), ('blur', 'sharp'), ('noisy', 'clean'))

LAYOUT = f"""DIR/                               (pass this folder as --manual-dir; prepare as {{name}} or {{name}}/NAME)
  input/**/0001.png                  degraded images
  target/**/0001.png                 clean images, same relative names (the extension may differ)
or with a held-out split:
  train/input/..., train/target/...  'train' split
  test/input/...,  test/target/...   'test' split (and/or val/ -> 'validation')
Folder names accepted instead of input/target: {', '.join(f'{i}/{t}' for i, t in FOLDER_PAIRS[1:])}.
Image types: {' '.join(IMAGE_SUFFIXES)} (8-bit); names starting with '.' are skipped."""


def find_folder_pair(split_dir: Path) -> tuple[Path, Path]:
    """The (input, target) folders inside `split_dir`; LayoutError when none or several name pairs are there."""
    children = {p.name.lower(): p for p in split_dir.iterdir() if p.is_dir()}
    found = [(children[i], children[t]) for i, t in FOLDER_PAIRS if i in children and t in children]
    if not found:
        half = [n for pair in FOLDER_PAIRS for n in pair if n in children]
        hint = f' (found only {", ".join(half)}/)' if half else ''
        raise LayoutError(f'{split_dir} holds no input/target folder pair{hint}')
    if len(found) > 1:
        raise LayoutError(f'{split_dir} holds several folder pairs: '
                          f'{", ".join(f"{i.name}/{t.name}" for i, t in found)}; keep one')
    return found[0]


def _by_stem(folder: Path) -> dict[str, Path]:
    """{relative path without extension: file}; LayoutError when two files differ only in their extension."""
    out, clashes = {}, []
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix('').as_posix()
        if key in out:
            clashes.append(f'{out[key]} / {path.name}')
        out[key] = path
    if clashes:
        raise LayoutError(f'{folder}: names that differ only in the extension cannot be matched: {listing(clashes)}')
    return out


def match_pairs(split: str, inp_dir: Path, tgt_dir: Path) -> list[Pair]:
    """(name, input file, target file) matched by relative name; LayoutError naming the unmatched files."""
    inputs, targets = _by_stem(inp_dir), _by_stem(tgt_dir)
    no_target = sorted(set(inputs) - set(targets))
    no_input = sorted(set(targets) - set(inputs))
    problems = []
    if no_target:
        problems.append(f'{len(no_target)} in {inp_dir} without a target: '
                        f'{listing([inputs[k].relative_to(inp_dir) for k in no_target])}')
    if no_input:
        problems.append(f'{len(no_input)} in {tgt_dir} without an input: '
                        f'{listing([targets[k].relative_to(tgt_dir) for k in no_input])}')
    if problems:
        raise LayoutError('unmatched names (pairs are matched by relative path without the extension): '
                          + '; '.join(problems))
    if not inputs:
        raise LayoutError(f'{inp_dir} and {tgt_dir} hold no images')
    return [(f'{split}/{targets[k].relative_to(tgt_dir).as_posix()}', inputs[k], targets[k]) for k in sorted(inputs)]


class PairedFolder(OwnFolderBuilder):
    """Own (blurred, sharp) pairs from input/target folders matched by file name."""

    PAIR_KIND = 'blur'
    LAYOUT = LAYOUT.format(name='paired_folder')
    DESCRIPTION = 'User (degraded, clean) pairs from input/target folders (input: blurred target).'

    def scan(self, root: Path) -> dict[str, list[Pair]]:
        splits = {}
        for split, folder in split_folders(root).items():
            splits[split] = match_pairs(split, *find_folder_pair(folder))
        return splits

    def check_images(self, splits: dict[str, list[Pair]]) -> None:
        pairs = [pair for items in splits.values() for pair in items]
        sizes = decode_all([f for _, i, t in pairs for f in (i, t)], desc='checking images')
        differ = [f'{t} {sizes[t][0]}x{sizes[t][1]} vs input {sizes[i][0]}x{sizes[i][1]}'
                  for _, i, t in pairs if sizes[i] != sizes[t]]
        if differ:
            raise LayoutError(f'{len(differ)} pair(s) of different sizes: {listing(differ)}')


class PairedNoiseFolder(PairedFolder):
    """Own (noisy, clean) pairs: the input is the real noisy image; blur is synthesised for the blur kinds."""

    PAIR_KIND = 'noise'
    LAYOUT = LAYOUT.format(name='paired_noise_folder')
    DESCRIPTION = 'User (noisy, clean) pairs from input/target folders (input: real noisy target).'
