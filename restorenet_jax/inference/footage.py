"""Resumable footage jobs: restore a video file or a live stream in batches, survive a crash, keep the audio.

A job writes its output as H.264 segments in a hidden work folder next to the output, `OUT/.<name>.parts/`, and
after each finished segment records it in `manifest.json` (written to a temporary file, flushed, then renamed over
the old one, so the manifest is always whole). A job killed at any point (power cut, SIGKILL, Ctrl-C) and started
again with the same command reads the manifest, checks that input, model and settings are the same, skips the
frames its finished segments hold (decoded and dropped inside ffmpeg, never restored twice) and goes on from the
next frame. At the end the segments are joined without re-encoding, the input's audio tracks are copied in, the
result appears under the output's name in one step (nothing is there before), and the work folder is removed. The
output has exactly the input's frames, size and frame rate (the exact fraction, constant rate).

Live sources (stream URLs) are recorded for `duration` seconds (round(duration x rate) frames), or until the
stream ends; a resumed live job records the frames still missing from the live stream as it is then, and their
audio is not kept (it cannot be fetched again afterwards).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
from tqdm import tqdm

from restorenet_jax.inference import temporal, video
from restorenet_jax.inference.media_io import UnreadableImage

# float32 [B, H, W, 3] in [0, 1] -> [B, H, W, 3] (numpy or a device array still being computed; clipped here).
FramesFn = Callable[[np.ndarray], Any]
# 2: the model's output for a fused frame gets back the detail it removed beyond the frame's noise (a job begun
# before that would mix two kinds of frames, so it is not resumed).
MANIFEST_VERSION = 2


class FootageError(OSError):
    """A footage job cannot start: its output or work folder belongs to something else, or is in use."""


@dataclass(frozen=True)
class JobOptions:
    """How a footage job runs.

    Attributes:
      batch: frames per forward pass (the last batch is padded to this size, so one program serves all).
      duration: restore only the first this-many seconds (live sources: record this long); None: everything.
      segment_frames: a segment is closed (and kept across a crash) after this many frames...
      segment_seconds: ...or after this many seconds of work, whichever comes first: at most that much is redone.
      max_pixels: refuse frames larger than this (0: no limit).
      overwrite: replace an existing output, and discard an unfinished job made with other inputs or settings.
      progress: show a progress bar (frames/s and time left).
      settings: whatever decides the output's pixels (model fingerprint, tiling, dtype...): a resumed job must
        match them. The batch size is not part of it (it changes no pixel beyond float rounding).
    """

    batch: int = 1
    duration: Optional[float] = None
    segment_frames: int = 300
    segment_seconds: float = 60.0
    max_pixels: int = 0
    overwrite: bool = False
    progress: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    temporal: int | str = 0  # radius k of temporal fusion (`temporal.fuse_stream`); "auto": `temporal.choose_k`


@dataclass
class JobResult:
    """What a finished job did: frames in the output, of them restored by earlier runs, and the audio outcome."""

    frames: int
    resumed_frames: int
    audio: str
    temporal: int = 0


def stream_stem(url: str) -> str:
    """A file-name stem for a stream URL: udp://127.0.0.1:5000 -> udp_127-0-0-1_5000, rtsp://cam/live -> cam_live."""
    scheme, _, rest = url.partition("://")
    rest = rest.split("?", 1)[0].rsplit("@", 1)[-1]  # no query string, no user:password@
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", rest.replace(".", "-")).strip("_")
    if not stem or stem.replace("-", "").replace("_", "").isdigit():
        stem = f"{scheme}_{stem}".strip("_")
    return stem[:120] or "stream"


def params_fingerprint(tree: Any) -> str:
    """A short hash of a parameter tree (nested mappings of arrays): a resumed job must use the same weights."""
    h = hashlib.sha256()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for k in sorted(node, key=str):
                walk(node[k], f"{path}/{k}")
        else:
            a = np.asarray(node)
            h.update(f"{path}:{a.dtype}:{a.shape};".encode())
            h.update(np.ascontiguousarray(a).tobytes())

    walk(tree, "")
    return h.hexdigest()[:16]


def work_dir(dst: Path) -> Path:
    """The hidden folder next to `dst` that holds an unfinished job's segments and manifest."""
    return dst.parent / f".{dst.name}.parts"


def _source_identity(source: str | Path) -> dict:
    if video.is_stream_url(source):
        return {"url": str(source)}
    st = os.stat(source)
    return {"path": str(Path(source).resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def _job_lock(work: Path) -> Iterator[None]:
    """Holds an exclusive lock on the work folder (released by the OS even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: jobs are not guarded against a second copy
        yield
        return
    with open(work / "lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise FootageError(f"another restore is working on {work.parent / work.name[1:-6]}") from None
        yield


class _Segments:
    """The segment being written plus the manifest of finished ones."""

    def __init__(self, work: Path, manifest: dict, rate: Fraction, opts: JobOptions):
        self.work, self.manifest, self.rate, self.opts = work, manifest, rate, opts
        self.size = tuple(manifest["size"])
        self.frames = sum(s["frames"] for s in manifest["segments"])
        self._writer: Optional[video.VideoWriter] = None
        self._part: Optional[Path] = None
        self._count = 0
        self._started = 0.0

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            index = len(self.manifest["segments"])
            # A per-process name: an ffmpeg left over from a killed run may still be finishing its own part file.
            self._part = self.work / f"seg_{index:06d}.{os.getpid()}.part.mp4"
            # No B-frames: with them a short last segment (no reordering delay) follows long ones (a delay of two
            # frames) and MP4 reports a longer duration, hence a wrong average frame rate, for the joined file.
            self._writer = video.VideoWriter(self._part, self.size, self.rate, bframes=False)
            self._count, self._started = 0, time.monotonic()
        self._writer.write_rgb8(frame)
        self._count += 1
        if (self._count >= self.opts.segment_frames
                or time.monotonic() - self._started >= self.opts.segment_seconds):
            self.finish()

    def finish(self) -> None:
        """Closes the open segment and records it; a no-op when none is open."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        name = f"seg_{len(self.manifest['segments']):06d}.mp4"
        _fsync_file(self._part)
        os.replace(self._part, self.work / name)
        self.manifest["segments"].append({"file": name, "frames": self._count})
        _write_json_atomic(self.work / "manifest.json", self.manifest)
        self.frames += self._count

    def abandon(self) -> None:
        """Drops the open segment (an error or interrupt): its frames are redone by the next run."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
            self._part.unlink(missing_ok=True)


def _batches(frames: Iterator[np.ndarray], size: int, limit: Optional[int]) -> Iterator[list[np.ndarray]]:
    """Lists of up to `size` frames, `limit` frames in all (None: until the source ends)."""
    taken = 0
    while limit is None or taken < limit:
        want = size if limit is None else min(size, limit - taken)
        chunk = [f for _, f in zip(range(want), frames)]
        if not chunk:
            return
        taken += len(chunk)
        yield chunk
        if len(chunk) < want:
            return


def _restored(frames_fn: FramesFn, frames: Iterator[np.ndarray], batch: int, limit: Optional[int]
              ) -> Iterator[np.ndarray]:
    """The restored frames (float, clipped to [0, 1] as `temporal.restore_clip` clips them before its fusion of
    restored frames) of `frames`, batch by batch; the next batch is decoded and dispatched before the last one's
    frames are handed on, so it computes while they are written."""
    pending: Optional[tuple[Any, int]] = None
    for chunk in _batches(frames, batch, limit):
        n = len(chunk)
        x = np.stack(chunk + [chunk[-1]] * (batch - n)).astype(np.float32)  # [batch, H, W, 3]
        if chunk[0].dtype == np.uint8:  # decoded frames; fused frames are float in [0, 1] already
            x = x / 255.0
        result = frames_fn(x)  # dispatched; a device array computes while the previous batch is written
        if pending is not None:
            yield from np.clip(np.asarray(pending[0])[:pending[1]], 0.0, 1.0)
        pending = (result, n)
    if pending is not None:
        yield from np.clip(np.asarray(pending[0])[:pending[1]], 0.0, 1.0)


def _restore_into(frames_fn: FramesFn, frames: Iterator[Any], segments: _Segments, limit: Optional[int],
                  bar: tqdm, post_k: int = 0, post_drop: int = 0) -> None:
    """Restores `frames` into `segments`, `limit` frames in all (None: until the source ends).

    With `post_k`, `frames` are fused frames with their noise variance (`temporal.fuse_stream(..., noise=True)`):
    the detail the model removed beyond that noise is put back (`temporal.with_detail`) and each restored frame is
    fused with its +-post_k restored neighbours (`temporal.fuse_stream`); the first `post_drop` frames are a
    resumed job's context, restored again but not written.
    """
    count = None if limit is None else limit + post_drop
    if post_k:
        opts = temporal.FusionOptions()
        out = temporal.with_detail(lambda f: _restored(frames_fn, f, segments.opts.batch, count), frames,
                                   opts.detail_box)
        out = temporal.fuse_stream(out, post_k, drop=post_drop, opts=opts.after_model())
    else:
        out = _restored(frames_fn, frames, segments.opts.batch, count)
    for y in out:  # clipped again: bicubic resampling in the fusion can overshoot [0, 1] a little
        segments.write(np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8))
        bar.update(1)


def restore_footage(frames_fn: FramesFn, source: str | Path, dst: Path, opts: JobOptions = JobOptions()
                    ) -> JobResult:
    """Restores a video file or stream into `dst`, resuming an unfinished job for the same `dst` if there is one.

    Args:
      frames_fn: the batched restoration function (see `FramesFn`).
      source: a video file or a stream URL.
      dst: the output video; its extension picks the container.
      opts: see `JobOptions`.
    Returns:
      the `JobResult`.
    Raises:
      FileExistsError: `dst` exists, is not this job's, and `opts.overwrite` is off.
      FootageError: an unfinished job with other inputs or settings is in the way (without `overwrite`), or
        another process is running this job.
      UnreadableImage: the source cannot be opened or gives no frame (ImageTooLarge: frames over max_pixels).
      video.IncompleteVideo: a file gave clearly fewer frames than it declares; the output holds those restored.
    An interrupted job (any other error, Ctrl-C, a kill) leaves its work folder for the next run.
    """
    live = video.is_stream_url(source)
    work = work_dir(dst)
    identity = {"version": MANIFEST_VERSION, "source": _source_identity(source), "settings": dict(opts.settings),
                "duration": None if live else opts.duration}
    identity = json.loads(json.dumps(identity))  # what a manifest read back holds (tuples become lists)
    work.mkdir(parents=True, exist_ok=True)
    with _job_lock(work):
        try:
            result, info = _run_job(frames_fn, source, dst, work, identity, opts)
        except BaseException:
            if not (work / "manifest.json").exists():  # nothing worth keeping for a next run
                shutil.rmtree(work, ignore_errors=True)
            raise
    if result.audio.startswith("dropped"):
        tqdm.write(f"warning: {dst.name}: audio {result.audio}", file=sys.stderr)
    if info is not None and not live and opts.duration is None:
        try:
            video.check_frame_count(result.frames, info)
        except video.IncompleteVideo as e:
            raise video.IncompleteVideo(f"{e}; the {result.frames} restored frames are kept in {dst}") from None
    return result


def _run_job(frames_fn: FramesFn, source: str | Path, dst: Path, work: Path, identity: dict, opts: JobOptions
             ) -> tuple[JobResult, Optional[video.VideoInfo]]:
    """`restore_footage` under the job's lock; returns the result and the source's stream facts (None when the
    job had already finished)."""
    live = video.is_stream_url(source)
    manifest = _resumable_manifest(work, identity, dst, opts.overwrite)
    if manifest is not None and manifest.get("complete"):
        # Killed between joining and publishing: only the rename is left.
        return _publish(work, dst, manifest, opts.overwrite), None
    skip = 0 if manifest is None or live else sum(s["frames"] for s in manifest["segments"])
    # Temporal fusion needs context before the first new frame: the 2 * post_radius(k) frames before it, restored
    # again (not written) for the fusion after the model, and the 2k frames before those, read again for the fusion
    # before (twice the radius: near the end of a video the fused window shifts back, `temporal.window`).
    k = manifest.get("temporal_k", 0) if manifest is not None else None
    post_context = 0 if live or not k else min(skip, 2 * temporal.post_radius(k))
    context = 0 if live or not k else min(skip - post_context, 2 * k)
    info, frames = video.open_video(source, max_pixels=opts.max_pixels, skip=skip - context - post_context)
    raw = frames  # closed at the end, whatever wraps it
    if k is None:  # a fresh job: "auto" decides from the first frame, and the manifest keeps the decision
        k, frames = _temporal_radius(opts.temporal, frames)
    if k:
        frames = temporal.fuse_stream(frames, k, drop=context, noise=True)
    if manifest is None:
        # Nothing is created under the output's name until the video is complete (`_publish`): a job killed before
        # then leaves only its hidden work folder, never an empty or partial OUT/name.mp4.
        manifest = {**identity, "rate": str(info.rate), "size": list(info.size), "temporal_k": k, "segments": []}
        _write_json_atomic(work / "manifest.json", manifest)
    elif (manifest["rate"], manifest["size"]) != (str(info.rate), list(info.size)):
        raw.close()
        raise FootageError(f"{source} now reads as {info.size[0]}x{info.size[1]} at {info.rate} frames/s, not as "
                           f"when the unfinished job in {work} started; --overwrite starts again")
    rate = Fraction(manifest["rate"])
    segments = _Segments(work, manifest, rate, opts)
    resumed = segments.frames
    target = round(opts.duration * rate) if opts.duration else None
    limit = None if target is None else max(0, target - resumed)
    # The bar's total: the frames asked for, else the file's own frame count (its duration would count audio too).
    total = target if target is not None else (None if live else video.count_frames(source)) or info.frames_estimate
    with tqdm(total=total, initial=resumed, unit="frame",
              desc=stream_stem(str(source)) if live else Path(source).name, leave=False, dynamic_ncols=True,
              disable=not opts.progress) as bar:
        try:
            _restore_into(frames_fn, frames, segments, limit, bar, temporal.post_radius(k), post_context)
            segments.finish()
            if bar.total != bar.n:  # the source ended elsewhere than counted (a truncated file): end the bar there
                bar.total = bar.n
                bar.refresh()
        except BaseException:
            segments.abandon()
            raise
        finally:
            raw.close()
    if segments.frames == 0:
        shutil.rmtree(work, ignore_errors=True)
        raise UnreadableImage("video has no frames")
    final = work / f"final{dst.suffix}"
    parts = [work / s["file"] for s in manifest["segments"]]
    manifest["audio"] = video.join_segments(parts, final, rate, None if live else str(source), opts.duration)
    _fsync_file(final)
    manifest["complete"] = True
    _write_json_atomic(work / "manifest.json", manifest)
    return _publish(work, dst, manifest, opts.overwrite, resumed), info


def _resumable_manifest(work: Path, identity: dict, dst: Path, overwrite: bool) -> Optional[dict]:
    """The manifest of an unfinished job for the same input and settings, or None for a fresh start (the work
    folder then emptied). Checks that `dst` may be written."""
    path = work / "manifest.json"
    manifest = None
    if path.exists():
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            manifest = None  # torn by a crash before its first rename: nothing finished yet
    if manifest is not None and {k: manifest.get(k) for k in identity} != identity:
        if not overwrite:
            raise FootageError(f"{work} holds an unfinished job with another input, model or settings; "
                               "--overwrite discards it and starts again")
        manifest = None
    ours = manifest is not None and (manifest.get("complete") or _is_reservation(dst))
    if not ours and not overwrite and (dst.exists() or dst.is_symlink()):
        raise FileExistsError(f"{dst} already exists, not replaced (--overwrite replaces it)")
    if manifest is None:
        for p in work.iterdir():
            if p.name != "lock":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    else:
        for p in work.glob("*.part.mp4"):  # a segment a killed run had not finished
            p.unlink(missing_ok=True)
    return manifest


def _is_reservation(dst: Path) -> bool:
    """`dst` is free for this job: absent, or the empty file by which earlier versions reserved the name."""
    return not dst.exists() or (dst.is_file() and not dst.is_symlink() and dst.stat().st_size == 0)


def _publish(work: Path, dst: Path, manifest: dict, overwrite: bool, resumed: Optional[int] = None) -> JobResult:
    """Moves the joined file onto `dst` and removes the work folder.

    Without `overwrite`, `dst` is created by a hard link, which fails if a file appeared there meanwhile (that file
    is never replaced); with it, or over an earlier version's empty reservation, one rename replaces `dst`.
    """
    final = work / f"final{dst.suffix}"
    if final.exists():
        if overwrite or (dst.exists() and _is_reservation(dst)):
            os.replace(final, dst)
        else:
            try:
                os.link(final, dst)
            except FileExistsError:
                if not os.path.samefile(final, dst):  # the same file: killed after the link, before the cleanup
                    raise FileExistsError(f"{dst} already exists, not replaced (--overwrite replaces it); the "
                                          f"restored video stays in {final}") from None
            except OSError:  # a file system without hard links: a rename, checked just before
                if dst.exists() or dst.is_symlink():
                    raise FileExistsError(f"{dst} already exists, not replaced (--overwrite replaces it); the "
                                          f"restored video stays in {final}") from None
                os.replace(final, dst)
    shutil.rmtree(work, ignore_errors=True)
    frames = sum(s["frames"] for s in manifest["segments"])
    return JobResult(frames, frames if resumed is None else resumed, manifest.get("audio", "none"),
                     manifest.get("temporal_k", 0))


def _temporal_radius(setting: int | str, frames: Iterator[np.ndarray]) -> tuple[int, Iterator[np.ndarray]]:
    """(k, frames): the fusion radius for this job and the frames, the first one peeked at for "auto"."""
    if setting != "auto":
        return int(setting), frames
    try:
        first = next(frames)
    except StopIteration:
        return 0, iter(())
    return temporal.choose_k(first), itertools.chain([first], frames)
