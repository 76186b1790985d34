"""Restore images, folders, globs and videos with a trained or converted model.

    python -m restorenet_jax.restore --checkpoint runs/demo photos/ 'cam*/night_*.jpg' clip.mp4 --output restored/

Outputs go to OUT/<stem>.png for images (8-bit in -> 8-bit out, 16-bit PNG in -> 16-bit PNG out; alpha kept
untouched) and OUT/<stem>.mp4 for videos (same frame size and frame rate, restored frame by frame); `--same-ext`
keeps each image's own format (JPEG stays JPEG). Grayscale images are restored as RGB (the model is trained on
colour) and converted back to one channel with BT.601 luma; `--gray-as-rgb` keeps the RGB result instead. EXIF
orientation is applied, so outputs are upright and carry no orientation tag. An input is never overwritten.

Unreadable inputs are reported and skipped; the exit status is 1 if any input failed, 2 for bad arguments (including
an unusable checkpoint), 0 otherwise.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm import tqdm

from restorenet_jax.inference import media_io
from restorenet_jax.inference import tiling

ImageFn = Callable[[np.ndarray], np.ndarray]


def make_image_fn(restorer, tile: int = 0, overlap: int = 32, tile_batch: int = 4) -> ImageFn:
    """[H, W, 3] float -> restored [H, W, 3] float in [0, 1], tiled when `tile` > 0 (see `tiling.tiled_apply`)."""
    if tile <= 0:
        return lambda x: restorer(x, clip=True)

    def batch_fn(xb: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(restorer.restore_batch(xb)), 0.0, 1.0)

    return lambda x: tiling.tiled_apply(lambda t: restorer(t, clip=True), x, tile=tile, overlap=overlap,
                                        batch_fn=batch_fn, batch_size=tile_batch)


def restore_picture(fn: ImageFn, pic: media_io.Picture) -> media_io.Picture:
    """Restores the colour part of a picture; alpha, gray flag and bit depth are carried over."""
    return media_io.with_rgb(pic, fn(pic.rgb))


def collect_inputs(args: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Expands files, folders (their images and videos, sorted, not recursive) and globs.

    Returns:
      (paths, missing): existing files in order without duplicates, and the arguments that matched nothing.
    """
    found: list[Path] = []
    missing: list[str] = []
    known = media_io.IMAGE_EXTS | media_io.VIDEO_EXTS
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in known)
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if os.path.isfile(m))
            if matches:
                found += matches
            else:
                missing.append(arg)
    seen, unique = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique, missing


def output_path(src: Path, out_dir: Path, ext: str, inputs: set[Path], taken: set[Path]) -> Path:
    """OUT/<stem><ext>, made unique within this run and never equal to an input file."""
    candidates = [out_dir / f"{src.stem}{ext}", out_dir / f"{src.stem}_{src.suffix.lstrip('.').lower()}{ext}"]
    candidates += [out_dir / f"{src.stem}_restored{i or ''}{ext}" for i in range(100)]
    for c in candidates:
        if c.resolve() not in inputs and c.resolve() not in taken:
            taken.add(c.resolve())
            return c
    raise RuntimeError(f"no free output name for {src}")


def restore_video(fn: ImageFn, src: Path, dst: Path, progress: bool = True) -> int:
    """Restores a video frame by frame into `dst` with the same size and frame rate; returns the frame count."""
    info, frames = media_io.open_video(src)
    count = 0
    with media_io.VideoWriter(dst, info.size, info.fps) as writer:
        for frame in tqdm(frames, total=info.frames_estimate, desc=src.name, unit="frame", leave=False,
                          disable=not progress):
            writer.write(fn(frame.astype(np.float32) / 255.0))
            count += 1
    if count == 0:
        raise media_io.UnreadableImage("video has no frames")
    return count


def restore_paths(fn: ImageFn, paths: Sequence[Path], out_dir: Path, same_ext: bool = False,
                  gray_as_rgb: bool = False, progress: bool = True) -> list[tuple[Path, str]]:
    """Restores every path into `out_dir`; returns the failures as (path, reason) without raising."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = {p.resolve() for p in paths}
    taken: set[Path] = set()
    failures: list[tuple[Path, str]] = []
    for src in tqdm(paths, desc="restore", unit="file", disable=not progress):
        try:
            if src.suffix.lower() in media_io.VIDEO_EXTS:
                ext = src.suffix.lower() if same_ext else ".mp4"
                restore_video(fn, src, output_path(src, out_dir, ext, inputs, taken), progress)
                continue
            pic = media_io.read_image(src)
            fmt, ext = "PNG", ".png"
            if same_ext and pic.format != "PNG":
                fmt, ext = pic.format, src.suffix.lower()
            data = media_io.encode_image(restore_picture(fn, pic), fmt=fmt, keep_gray=not gray_as_rgb)
            output_path(src, out_dir, ext, inputs, taken).write_bytes(data)
        except (media_io.UnreadableImage, OSError, ValueError) as e:
            failures.append((src, str(e)))
            tqdm.write(f"error: {src}: {e}", file=sys.stderr)
    return failures


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.restore", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, or glob patterns")
    p.add_argument("--checkpoint", required=True,
                   help="converted model directory or training workdir (its latest checkpoint)")
    p.add_argument("--output", "-o", required=True, help="output folder (created if missing)")
    p.add_argument("--best", action="store_true", help="from a training workdir, use the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--tile", type=int, default=0, help="tile size in pixels for large images (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (<= tile/2)")
    p.add_argument("--tile-batch", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--bf16", action="store_true", help="compute in bfloat16 (faster on accelerators)")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter for channel attention (default: the checkpoint's setting)")
    p.add_argument("--gray-as-rgb", action="store_true", help="write grayscale inputs as RGB results")
    p.add_argument("--same-ext", action="store_true", help="keep each input's format/extension instead of PNG/MP4")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 some inputs failed, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tile < 0 or (args.tile and not 0 <= 2 * args.overlap <= args.tile):
        parser.error("--tile must be >= 0 and --overlap between 0 and tile/2")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"--output {out_dir} exists and is not a folder")
    paths, missing = collect_inputs(args.inputs)
    if not paths and missing:
        parser.error(f"no input found: {', '.join(missing)}")

    from restorenet_jax.inference.restorer import Restorer  # jax import is slow: only after arguments are known good
    from restorenet_jax.models.model_dir import ModelDirError

    select = {"which": "best"} if args.best else {}
    try:
        restorer = Restorer.from_checkpoint(args.checkpoint, tlc=args.tlc,
                                            dtype="bfloat16" if args.bf16 else "float32", **select)
    except (ModelDirError, OSError, ValueError) as e:
        parser.error(f"--checkpoint: {e}")
    fn = make_image_fn(restorer, args.tile, args.overlap, args.tile_batch)
    failures = restore_paths(fn, paths, out_dir, same_ext=args.same_ext, gray_as_rgb=args.gray_as_rgb,
                             progress=not args.quiet)
    failures += [(Path(m), "no such file") for m in missing]
    for m in missing:
        print(f"error: {m}: no such file", file=sys.stderr)
    done = len(paths) - (len(failures) - len(missing))
    print(f"restored {done} of {len(paths) + len(missing)} inputs into {out_dir}"
          + (f"; {len(failures)} failed: {', '.join(str(p) for p, _ in failures)}" if failures else ""),
          file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
