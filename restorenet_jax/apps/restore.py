"""Restore images, folders, globs, videos and streams with a trained or converted model.

    python -m restorenet_jax.restore --checkpoint runs/demo photos/ 'cam*/night_*.jpg' clip.mp4 --output restored/

Folders are read with their sub-folders, and outputs mirror the inputs' layout: a folder's files keep their path
relative to it, a glob's relative to its fixed leading folders, a named file its name (restorenet_jax.apps.
restore_layout). Outputs go to OUT/<relative folder>/<stem>.png for images (8-bit in -> 8-bit out, 16-bit PNG in -> 16-bit PNG out; alpha kept
untouched) and OUT/<stem>.mp4 for videos (the same frames, frame size and exact frame rate, audio copied through);
`--same-ext` keeps each image's own format (JPEG stays JPEG). Grayscale images are restored as RGB (the model is
trained on colour) and converted back to one channel with BT.601 luma; `--gray-as-rgb` keeps the RGB result instead.
EXIF orientation is applied, so outputs are upright and carry no orientation tag.

Videos are footage jobs: `--batch N` frames per forward pass, written as segments into a hidden folder
OUT/.<name>.parts/ with a manifest updated after every segment. A job that is killed and started again with the same
command continues after its last finished segment (no frame lost or repeated); the folder is removed once the
output is complete. Stream URLs (rtsp://, udp://, http://, ...) are inputs too, written to OUT/<host_port_path>.mp4;
`--duration SECONDS` records that long from a live stream (or restores only the start of a file).

An input is never overwritten: an output name that would hit an input of the run, or another output of the same
run, is reported and becomes OUT/<stem>_<ext>.<out ext> (then <stem>_restored.<out ext>, <stem>_restored1, ...). A file already in
the output folder is not replaced either: that input is reported and skipped, unless `--overwrite` is given.

Images whose header declares more than --max-pixels pixels (a decompression bomb: a few bytes that claim a huge
picture) are reported and skipped before any pixel is decoded; so are video frames that size. A video that decodes
to clearly fewer frames than its container declares (a truncated recording) is reported with both counts; the
frames that could be restored are kept in its output.

Every output OUT/x gets a processing record OUT/x.restore.json once it is complete (restorenet_jax.inference.
record): the input's and output's SHA-256, the model and its parameter hash, engine, precision, the settings,
versions and the time taken; `--no-record` writes none. `--from-record OUT/x.restore.json INPUT -o OUT2` restores
again with the recorded model and settings (the same output, bit for bit, on the same software and device).

Unreadable, too large, clashing or incomplete inputs are reported one line each and the rest are still restored;
the exit status is 1 if any input failed, 2 for bad arguments (including an unusable checkpoint or an output folder
that cannot be created), 0 otherwise.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from pathlib import Path, PurePath
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from restorenet_jax.apps.restore_layout import collect_inputs, output_path
from restorenet_jax.configs.cli import HelpFormatter, add_verbosity_argument, quiet_logs
from restorenet_jax.inference import footage
from restorenet_jax.inference import media_io
from restorenet_jax.inference import record
from restorenet_jax.inference import tiling
from restorenet_jax.inference import video
from restorenet_jax.inference.precision import add_precision_argument

# 8192 x 8192 (67 megapixels): above any CCTV or phone camera frame, below Pillow's own 89-megapixel warning bound.
# A colour image that size is 0.8 GB as float32 before the model's activations: larger ones need --tile anyway.
DEFAULT_MAX_PIXELS = 8192 * 8192

ImageFn = Callable[[np.ndarray], np.ndarray]


def make_image_fn(restorer, tile: int = 0, overlap: int = 32, tile_batch: int = 4) -> ImageFn:
    """[H, W, 3] float -> restored [H, W, 3] float in [0, 1], tiled when `tile` > 0 (see `tiling.tiled_apply`)."""
    if tile <= 0:
        return lambda x: restorer(x, clip=True)

    def batch_fn(xb: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(restorer.restore_batch(xb)), 0.0, 1.0)

    return lambda x: tiling.tiled_apply(lambda t: restorer(t, clip=True), x, tile=tile, overlap=overlap,
                                        batch_fn=batch_fn, batch_size=tile_batch)


def make_frames_fn(restorer, fn: ImageFn, tile: int = 0) -> footage.FramesFn:
    """[B, H, W, 3] float -> restored [B, H, W, 3]: one forward pass per batch (the result may still be computing
    on the device), or `fn` frame by frame when tiling (tiles are batched instead) or without a batched forward."""
    batched = getattr(restorer, "restore_batch", None)
    if tile > 0 or batched is None:
        return lambda xb: np.stack([fn(x) for x in xb])
    return batched


def restore_picture(fn: ImageFn, pic: media_io.Picture) -> media_io.Picture:
    """Restores the colour part of a picture; alpha, gray flag and bit depth are carried over."""
    return media_io.with_rgb(pic, fn(pic.rgb))


def _exists_error(dst: Path) -> FileExistsError:
    return FileExistsError(f"{dst} already exists, not replaced (--overwrite replaces it)")


def _check_free(dst: Path, overwrite: bool) -> None:
    """Fails early, before the model runs, when `dst` is there and may not be replaced."""
    if not overwrite and (dst.exists() or dst.is_symlink()):
        raise _exists_error(dst)


def _publish(dst: Path, data: bytes, overwrite: bool) -> None:
    """Writes `data` to `dst` through a hidden temporary file renamed into place, so that a crash never leaves a
    partial image under the output's name; without `overwrite` only if `dst` does not exist yet (a hard link is
    exclusive like `open(..., 'x')`, so the no-replace rule holds even if the file appears after `_check_free`)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    try:
        if overwrite:
            os.replace(tmp, dst)
        else:
            os.link(tmp, dst)
    except FileExistsError:
        raise _exists_error(dst) from None
    finally:
        tmp.unlink(missing_ok=True)


def restore_video(frames_fn: footage.FramesFn, src: Path | str, dst: Path, job: footage.JobOptions
                  ) -> footage.JobResult:
    """Restores a video file or stream URL into `dst` as a resumable footage job; returns what the job did.

    See `footage.restore_footage` (a file already at `dst` is replaced only with `job.overwrite`; an unfinished job
    for the same `dst`, input and settings is continued).

    Raises:
      UnreadableImage: the video cannot be opened or has no frames.
      ImageTooLarge: its frames have more than `job.max_pixels` pixels (0: no limit).
      video.IncompleteVideo: clearly fewer frames were decoded than the container declares; the restored frames
        are kept in `dst`.
      OSError: `dst` is not this job's to replace (FileExistsError), or the job is in use or mismatched.
    """
    return footage.restore_footage(frames_fn, src, dst, job)


def _restore_image(fn: ImageFn, src: Path, rel: PurePath, out_dir: Path, inputs: set[Path], taken: set[Path],
                   same_ext: bool, gray_as_rgb: bool, overwrite: bool, max_pixels: int) -> tuple[Path, str]:
    """Restores one image file; returns its output path and the SHA-256 of the bytes that were restored."""
    data = src.read_bytes()
    media_io.check_image_size(data, max_pixels)  # from the header alone: a bomb is refused before decoding
    pic = media_io.decode_image(data)
    fmt, ext = "PNG", ".png"
    if same_ext and pic.format != "PNG":
        fmt, ext = pic.format, src.suffix.lower()
    dst = _output(src, rel, out_dir, ext, inputs, taken)
    _check_free(dst, overwrite)
    encoded = media_io.encode_image(restore_picture(fn, pic), fmt=fmt, keep_gray=not gray_as_rgb)
    _publish(dst, encoded, overwrite)
    return dst, hashlib.sha256(data).hexdigest()


def _output(src: Path | str, rel: PurePath, out_dir: Path, ext: str, inputs: set[Path], taken: set[Path]) -> Path:
    """`restore_layout.output_path`, saying so when the input's natural output name was taken by another."""
    dst = output_path(rel, out_dir, ext, inputs, taken)
    if dst.name != f"{PurePath(rel.name).stem}{ext}":
        tqdm.write(f"note: {src} -> {dst} (its natural output name is an input or another input's output)",
                   file=sys.stderr)
    return dst


def restore_paths(fn: ImageFn, paths: Sequence[Path | tuple[Path, PurePath]], out_dir: Path, same_ext: bool = False,
                  gray_as_rgb: bool = False, progress: bool = True, overwrite: bool = False,
                  max_pixels: int = DEFAULT_MAX_PIXELS, frames_fn: Optional[footage.FramesFn] = None,
                  job: footage.JobOptions = footage.JobOptions(), streams: Sequence[str] = (),
                  recorder: Optional[record.Recorder] = None) -> list[tuple[Path | str, str]]:
    """Restores every path into `out_dir`; returns the failures as (path, reason) without raising.

    Args:
      fn: the image function (`make_image_fn`).
      paths: image and video files, or (file, relative output path) pairs from `restore_layout.collect_inputs`
        (a bare path is written under its name).
      out_dir: the output folder, created if missing.
      same_ext: keep each image's format and each video's container instead of PNG/MP4.
      gray_as_rgb: write grayscale inputs as RGB.
      progress: show progress bars.
      overwrite: replace files already in `out_dir` (inputs are never replaced); without it such an input fails.
      max_pixels: largest image or video frame in pixels, checked from the header before decoding (0: no limit).
      frames_fn: the batched function for videos (`make_frames_fn`; default: `fn` frame by frame).
      job: footage job options for videos (batch, duration, segments, settings a resumed job must match); its
        overwrite, max_pixels and progress are taken from the arguments above.
      streams: stream URLs, restored after `paths` into OUT/<stream_stem>.mp4.
      recorder: writes each finished output's processing record (`record.Recorder`); None: no records.
    """
    frames_fn = frames_fn or make_frames_fn(None, fn)
    job = dataclasses.replace(job, overwrite=overwrite, max_pixels=max_pixels, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [p if isinstance(p, tuple) else (p, PurePath(p.name)) for p in paths]
    inputs = {p.resolve() for p, _ in items}
    taken: set[Path] = set()
    failures: list[tuple[Path | str, str]] = []
    # Every image's header is checked against max_pixels before it is decoded, so Pillow's own lower guard (a
    # warning past 89 megapixels, an error past 179) would only overrule the limit the user chose. Restored on exit.
    pillow_bound, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        for src, rel in tqdm([*items, *((s, None) for s in streams)], desc="restore", unit="file",
                             disable=not progress):
            try:
                started, digest, result = time.time(), None, None
                if isinstance(src, str):  # a stream URL
                    rel = PurePath(f"{footage.stream_stem(src)}.{src.partition(':')[0].lower()}")
                    dst = _output(src, rel, out_dir, ".mp4", inputs, taken)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    result = restore_video(frames_fn, src, dst, job)
                elif src.suffix.lower() in media_io.VIDEO_EXTS:
                    dst = _output(src, rel, out_dir, src.suffix.lower() if same_ext else ".mp4", inputs, taken)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    result = restore_video(frames_fn, src, dst, job)
                else:
                    dst, digest = _restore_image(fn, src, rel, out_dir, inputs, taken, same_ext, gray_as_rgb,
                                                 overwrite, max_pixels)
                if recorder is not None:
                    recorder.write(src, dst, started, time.time(), input_sha256=digest, video=result)
            except (media_io.UnreadableImage, OSError, ValueError) as e:
                # ImageTooLarge and IncompleteVideo are ValueErrors; FileExistsError (a clash) is an OSError.
                reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
                failures.append((src, reason))
                tqdm.write(f"error: {src}: {reason}", file=sys.stderr)
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_bound
    return failures


def _temporal_arg(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError("must be 'auto' or a whole number >= 0")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.restore", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, glob patterns, or "
                   "stream URLs (rtsp://, udp://, http://, ... anything ffmpeg opens)")
    p.add_argument("--checkpoint", required=True,
                   help="converted model directory or training workdir (its latest checkpoint)")
    p.add_argument("--output", "-o", required=True, help="output folder (created if missing)")
    p.add_argument("--best", action="store_true", help="from a training workdir, use the best checkpoint by "
                   "validation PSNR instead of the latest")
    p.add_argument("--tile", type=int, default=0, help="tile size in pixels for large images (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (<= tile/2)")
    p.add_argument("--tile-batch", type=int, default=4, help="tiles per forward pass")
    add_precision_argument(p)
    p.add_argument("--engine", default="auto", choices=("auto", "jax", "onnxruntime", "openvino"),
                   help="what runs the model (same outputs): auto = JAX on an accelerator, else OpenVINO, else ONNX "
                   "Runtime when installed, else JAX (default: auto)")
    p.add_argument("--tlc", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time local converter for channel attention (default: the checkpoint's setting)")
    p.add_argument("--gray-as-rgb", action="store_true", help="write grayscale inputs as RGB results")
    p.add_argument("--same-ext", action="store_true", help="keep each input's format/extension instead of PNG/MP4")
    p.add_argument("--overwrite", action="store_true", help="replace files already in the output folder (inputs "
                   "are never replaced); without it an input whose output name exists is reported and skipped, and "
                   "the exit status is 1")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="skip (and report) images and video frames larger than N pixels, judged from the file header "
                   f"before decoding; 0: no limit (default: {DEFAULT_MAX_PIXELS} = 8192x8192)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="video frames per forward pass (default 1; "
                   "larger batches are faster on accelerators and many-core CPUs, and take N times the memory)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="record this many seconds of a "
                   "stream URL (without it a stream is recorded until it ends), or restore only the first SECONDS "
                   "of each video file")
    p.add_argument("--segment-frames", type=int, default=300, metavar="N", help="video frames per segment kept "
                   "across a crash (a segment also closes after 60 s of work, so little is redone)")
    p.add_argument("--temporal", type=_temporal_arg, default="auto", metavar="K", help="fuse each video frame with "
                   "its K aligned neighbours on each side before the model, and each restored frame with its K "
                   "restored neighbours after it (moving objects are not ghosted); 0: off; auto: K=4 when the first "
                   "frame is noisy (default: auto)")
    p.add_argument("--no-record", dest="record", action="store_false", help="write no processing record (by "
                   "default each output OUT/x gets OUT/x.restore.json: input and output SHA-256, model and its "
                   "parameter hash, engine, precision, settings, versions, time taken)")
    p.add_argument("--from-record", metavar="FILE", help="repeat a restoration: the settings and checkpoint of the "
                   "processing record FILE become the defaults (options given here still win); the model must "
                   "hash as recorded, and an output of the recorded input is compared with the recorded one")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_verbosity_argument(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 some inputs failed, 2 bad arguments)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        repeated = record.use_record_defaults(parser, argv)
    except record.RecordError as e:
        parser.error(f"--from-record: {e}")
    args = parser.parse_args(argv)
    quiet_logs(args.verbosity)
    if args.tile < 0 or (args.tile and not 0 <= 2 * args.overlap <= args.tile):
        parser.error("--tile must be >= 0 and --overlap between 0 and tile/2")
    if args.max_pixels < 0:
        parser.error("--max-pixels must be >= 0 (0: no limit)")
    if args.batch < 1 or args.segment_frames < 1:
        parser.error("--batch and --segment-frames must be >= 1")
    if args.duration is not None and not args.duration > 0:
        parser.error("--duration must be > 0 seconds")
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"--output {out_dir} exists and is not a folder")
    streams = [a for a in args.inputs if video.is_stream_url(a)]
    paths, missing = collect_inputs([a for a in args.inputs if not video.is_stream_url(a)], exclude=out_dir)
    if not paths and not streams and missing:
        parser.error(f"no input found: {', '.join(missing)}")

    from restorenet_jax.inference import engines  # jax import is slow: only after arguments are known good
    from restorenet_jax.models.model_dir import ModelDirError

    select = {"which": "best"} if args.best else {}
    try:
        restorer = engines.load_engine(args.checkpoint, args.engine, tlc=args.tlc, precision=args.precision,
                                       **select)
    except engines.EngineUnavailable as e:
        parser.error(f"--engine {args.engine} --precision {args.precision}: {e}")
    except (ModelDirError, OSError, ValueError) as e:
        parser.error(f"--checkpoint: {e}")
    if repeated is not None and args.checkpoint == repeated["settings"]["checkpoint"]:
        try:
            record.check_model(repeated, restorer)
        except record.RecordError as e:
            parser.error(f"--from-record: {e}")
    recorder = None if not args.record else record.Recorder.for_run(
        restorer, args.checkpoint, "best" if args.best else "latest", vars(args), argv, expect=repeated)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.exit(2, f"{parser.prog}: error: cannot create output folder {out_dir}: {e.strerror or e}\n")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        parser.exit(2, f"{parser.prog}: error: output folder {out_dir} is not writable\n")
    print(engines.describe(restorer), file=sys.stderr)
    fn = make_image_fn(restorer, args.tile, args.overlap, args.tile_batch)
    job = footage.JobOptions(batch=args.batch, duration=args.duration, segment_frames=args.segment_frames,
                              temporal=args.temporal)
    if streams or any(p.suffix.lower() in media_io.VIDEO_EXTS for p, _ in paths):
        # What decides a video's pixels: an unfinished job continues only with the same weights and settings.
        job = dataclasses.replace(job, settings={
            "model": recorder.model["params_fingerprint"] if recorder else
            footage.params_fingerprint(getattr(restorer, "params", {})), "arch": repr(restorer.arch),
            "dtype": restorer.dtype, "tile": args.tile, "overlap": args.overlap if args.tile else None,
            "temporal": args.temporal})
    failures = restore_paths(fn, paths, out_dir, same_ext=args.same_ext, gray_as_rgb=args.gray_as_rgb,
                             progress=not args.quiet, overwrite=args.overwrite, max_pixels=args.max_pixels,
                             frames_fn=make_frames_fn(restorer, fn, args.tile), job=job, streams=streams,
                             recorder=recorder)
    failures += [(Path(m), "no such file") for m in missing]
    for m in missing:
        print(f"error: {m}: no such file", file=sys.stderr)
    done = len(paths) + len(streams) - (len(failures) - len(missing))
    print(f"restored {done} of {len(paths) + len(streams) + len(missing)} inputs into {out_dir}"
          + (f"; {len(failures)} failed: {', '.join(str(p) for p, _ in failures)}" if failures else ""),
          file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
