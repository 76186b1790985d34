"""Where `restore` finds its inputs and where each output goes: outputs mirror the inputs' relative paths.

Every input gets a relative path, and its output is OUT/<relative folder>/<stem><ext>:
  * a file named on the command line: its name (OUT/<name>);
  * a folder: every image and video below it, sub-folders included, relative to that folder
    (`restore cams/ -o OUT` writes cams/north/a.png to OUT/north/a.png);
  * a glob: relative to the pattern's fixed leading folders (`'cams/**/*.png'` -> relative to cams/).
So two files of the same name in different folders never meet. Hidden files and folders (names starting with '.',
e.g. an unfinished footage job's parts) and the output folder, when it is a sub-folder of an input folder, are not
walked (files and globs named on the command line are taken as given). Only when two inputs still claim the same name (the same relative path under two arguments, an output that
would replace an input) does one of them get a suffixed name, and the command says which.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path, PurePath
from typing import Iterable, Optional, Sequence

from restorenet_jax.inference import media_io

KNOWN_EXTS = media_io.IMAGE_EXTS | media_io.VIDEO_EXTS
_MAGIC = set("*?[")


def _hidden(rel: PurePath) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _inside(path: Path, folder: Optional[Path]) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def walk_folder(folder: Path, exclude: Optional[Path] = None) -> list[tuple[Path, PurePath]]:
    """(file, path relative to `folder`) of every image and video below `folder`, sorted by relative path;
    hidden entries and anything under `exclude` (the output folder) left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(root_path / d, exclude))
        for name in files:
            p = root_path / name
            if not name.startswith(".") and p.suffix.lower() in KNOWN_EXTS and p.is_file():
                found.append((p, PurePath(p.relative_to(folder))))
    return sorted(found, key=lambda item: item[1].parts)


def glob_root(pattern: str) -> Path:
    """The leading folders of a glob pattern that contain no wildcard ('cams/**/n_*.jpg' -> 'cams')."""
    parts = PurePath(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _MAGIC & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def collect_inputs(args: Sequence[str], exclude: Optional[Path] = None
                   ) -> tuple[list[tuple[Path, PurePath]], list[str]]:
    """Expands files, folders (recursively) and globs into (file, relative output path) pairs.

    Returns:
      (inputs, missing): existing files in order without duplicates (the first mention of a file wins), and the
      arguments that matched nothing.
    """
    found: list[tuple[Path, PurePath]] = []
    missing: list[str] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found += walk_folder(p, exclude)
        elif p.is_file():
            found.append((p, PurePath(p.name)))
        else:
            root = glob_root(arg)
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if os.path.isfile(m))
            if matches:
                found += [(m, _relative(m, root)) for m in matches]
            else:
                missing.append(arg)
    seen, unique = set(), []
    for p, rel in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((p, rel))
    return unique, missing


def _relative(path: Path, root: Path) -> PurePath:
    try:
        rel = PurePath(os.path.relpath(path, root))
    except ValueError:  # another drive (Windows)
        return PurePath(path.name)
    return rel if ".." not in rel.parts else PurePath(path.name)


def output_path(rel: PurePath, out_dir: Path, ext: str, inputs: Iterable[Path], taken: set[Path]) -> Path:
    """OUT/<rel's folder>/<rel's stem><ext>, made unique within this run and never equal to an input file.

    When the natural name is taken the alternatives are <stem>_<input ext><ext>, then <stem>_restored<ext>,
    <stem>_restored1<ext>, ...; files already on disk are not considered here (the caller refuses to replace them).
    """
    inputs = inputs if isinstance(inputs, set) else set(inputs)
    folder = out_dir / rel.parent
    stem, suffix = PurePath(rel.name).stem, PurePath(rel.name).suffix
    candidates = [folder / f"{stem}{ext}", folder / f"{stem}_{suffix.lstrip('.').lower()}{ext}"]
    candidates += [folder / f"{stem}_restored{i or ''}{ext}" for i in range(100)]
    for c in candidates:
        key = c.resolve()
        if key not in inputs and key not in taken:
            taken.add(key)
            return c
    raise RuntimeError(f"no free output name for {rel}")
