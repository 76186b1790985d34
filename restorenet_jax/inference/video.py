"""Video reading and writing for the restore CLI, through the ffmpeg binary bundled with imageio-ffmpeg.

Frames are streamed one at a time, so memory stays flat for long CCTV recordings. Sources are anything ffmpeg
opens: a file, or a stream URL (rtsp://, udp://, http://, ...). Frame rates are kept as exact fractions (NTSC
30000/1001 stays 30000/1001), and every decoded frame is passed through once (no frame is dropped or repeated to
fit a constant rate), so a restored video has exactly the source's frames.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from restorenet_jax.inference.media_io import ImageTooLarge, UnreadableImage, too_large

# A URL scheme (rtsp://, udp://, srt://, http://, file://...): the input is handed to ffmpeg as it is.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class IncompleteVideo(UnreadableImage):
    """Fewer frames could be decoded than the container declares (a truncated or damaged file)."""


@dataclass
class VideoInfo:
    """Stream facts of a video: frames per second, (width, height), and a frame-count estimate.

    `frames_estimate` is the container's duration times the frame rate, or None when the container gives no
    duration (live streams). Formats that store their duration in a header (MP4 with the index first, MKV) keep the
    full value when the file is cut short; for AVI or MPEG-TS without an index ffmpeg estimates it from the file
    size. `rate` is `fps` as an exact fraction (see `exact_rate`).
    """

    fps: float
    size: tuple[int, int]
    frames_estimate: Optional[int]
    rate: Fraction = Fraction(0)


def is_stream_url(source: str | os.PathLike) -> bool:
    """True for a URL such as rtsp://camera/stream or udp://127.0.0.1:5000 (not a local path)."""
    return bool(_URL.match(str(source)))


def exact_rate(fps: float) -> Fraction:
    """The exact frame rate behind ffmpeg's printed rate (two decimals at most).

    NTSC rates print as 29.97, 23.98, 59.94: they are taken as N*1000/1001, which is what cameras and encoders use;
    anything else is the printed decimal itself (25, 12.5, 7.5 ...).
    """
    if fps <= 0:
        return Fraction(0)
    n = round(fps * 1.001)
    if abs(fps - round(fps)) > 0.005 and abs(fps - n * 1000 / 1001) < 0.006:
        return Fraction(n * 1000, 1001)
    return Fraction(fps).limit_denominator(100)


def _ffmpeg_major() -> int:
    import imageio_ffmpeg

    m = re.search(r"(\d+)\.\d+", imageio_ffmpeg.get_ffmpeg_version())
    return int(m.group(1)) if m else 0


def _passthrough() -> list[str]:
    """Output options that hand over every decoded frame once, with no constant-rate drops or repeats."""
    return ["-fps_mode", "passthrough"] if _ffmpeg_major() >= 5 else ["-vsync", "passthrough"]


def open_video(source: str | os.PathLike, max_pixels: int = 0, skip: int = 0
               ) -> tuple[VideoInfo, "Frames"]:
    """Opens a video file or stream URL for frame-by-frame reading.

    Args:
      source: a video file or a URL ffmpeg can open.
      max_pixels: refuse frames larger than this many pixels (0: no limit), before any frame is decoded.
      skip: drop the first `skip` frames inside ffmpeg (decoded, never converted or sent): a resumed job starts at
        exactly the next frame, which a timestamp seek cannot promise.
    Returns:
      (info, frames): frames yields uint8 [H, W, 3] RGB arrays.
    Raises:
      UnreadableImage: ffmpeg cannot open it, or it has no frame rate.
      ImageTooLarge: its frames have more than `max_pixels` pixels.
    """
    import imageio_ffmpeg

    params = ["-map", "0:v:0", *_passthrough()]
    if skip:
        params += ["-vf", f"select=gte(n\\,{int(skip)})"]
    gen = imageio_ffmpeg.read_frames(str(source), pix_fmt="rgb24", output_params=params)
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration, IndexError, AttributeError) as e:
        # IndexError/AttributeError: imageio's header parser found no video stream.
        gen.close()
        raise UnreadableImage(f"cannot open video: {_open_error(e)}") from e
    width, height = meta["size"]
    if max_pixels and width * height > max_pixels:
        gen.close()  # stops ffmpeg now rather than when the generator is collected
        raise ImageTooLarge(too_large("video frames", width, height, max_pixels))
    fps = float(meta["fps"])
    if fps <= 0:
        gen.close()
        raise UnreadableImage("cannot open video: ffmpeg reports no frame rate")
    duration = meta.get("duration")
    estimate = int(round(duration * fps)) if duration and fps else None

    return VideoInfo(fps, (width, height), estimate, exact_rate(fps)), Frames(gen, (height, width, 3))


def _open_error(e: BaseException) -> str:
    """The telling line of a failed open: ffmpeg's last message, not its banner or imageio's framing."""
    text = str(e)
    header, _, stderr = text.partition("=== stderr ===")
    banner = ("ffmpeg version", "built with", "configuration:", "lib")
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.strip().startswith(banner)]
    if lines:
        return lines[-1]
    if "Could not load meta information" in header:
        return "no video arrived (nothing is sending, or the source is not a video)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else e.__class__.__name__


class Frames:
    """Decoded frames, uint8 [H, W, 3] each; `close` stops ffmpeg at once (also before the first frame)."""

    def __init__(self, gen: Iterator[bytes], shape: tuple[int, int, int]):
        self._gen, self._shape = gen, shape
        self.count = 0  # frames handed out so far

    def __iter__(self) -> "Frames":
        return self

    def __next__(self) -> np.ndarray:
        try:
            frame = np.frombuffer(next(self._gen), np.uint8).reshape(self._shape)
        except StopIteration:
            self.close()
            raise
        except RuntimeError as e:  # imageio: ffmpeg stopped in the middle of a frame
            self.close()
            raise UnreadableImage(f"video read failed after {self.count} frames") from e
        self.count += 1
        return frame

    def close(self) -> None:
        """Stops the decoder."""
        self._gen.close()


def count_frames(source: str | os.PathLike, timeout: float = 60.0) -> Optional[int]:
    """The frames a video file holds, counted from its packets (read, not decoded: fast even for long files);
    None for stream URLs, or when ffmpeg cannot tell within `timeout` seconds.

    Unlike `VideoInfo.frames_estimate` (duration x rate, which counts a longer audio track too: a 59-frame clip
    whose audio runs on reads as 60) this is the count the decoder will give, for progress bars. It does not say
    whether the frames decode, so the truncation check keeps the container's own figure.
    """
    if is_stream_url(source):
        return None
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(source), "-map", "0:v:0",
           "-c", "copy", "-f", "null", "-progress", "pipe:1", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    counts = re.findall(r"^frame=(\d+)$", out, flags=re.M)
    return int(counts[-1]) if counts and int(counts[-1]) > 0 else None


def check_frame_count(decoded: int, info: VideoInfo) -> None:
    """Raises `IncompleteVideo` when clearly fewer frames were decoded than the container declares.

    A short read is allowed one frame, 1% and a quarter of a second of slack: duration times an average frame rate
    is not an exact count for variable-frame-rate recordings, and the container's duration covers its audio too,
    which encoders pad past the last frame (MP3 in AVI: a tenth of a second and more).
    """
    expected = info.frames_estimate
    if expected and expected - decoded > max(1, expected // 100, int(info.fps / 4)):
        raise IncompleteVideo(f"only {decoded} of {expected} frames could be read (truncated?)")


class VideoWriter:
    """Writes frames to a video with a given frame rate (H.264, no size rounding, constant rate).

    Use as a context manager. Even frame sizes use yuv420p (plays everywhere); odd sizes need yuv444p, because
    4:2:0 chroma cannot represent an odd width or height and the frame size must not change. ffmpeg replaces
    `path` if it exists: callers decide beforehand whether that is allowed. A `Fraction` rate is passed to ffmpeg
    exactly; a float goes through `exact_rate`. `bframes=False` makes every frame's decode time its display time,
    so that files joined without re-encoding (`join_segments`) keep a constant rate whatever their lengths.
    """

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], fps: float | Fraction, quality: float = 8,
                 bframes: bool = True):
        import imageio_ffmpeg

        width, height = size
        rate = fps if isinstance(fps, Fraction) else exact_rate(float(fps))
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._gen = imageio_ffmpeg.write_frames(str(path), (width, height), fps=rate, quality=quality,
                                                pix_fmt_out=pix_fmt, macro_block_size=1, codec="libx264",
                                                ffmpeg_log_level="error",
                                                output_params=None if bframes else ["-bf", "0"])
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Appends one float [H, W, 3] frame in [0, 1]."""
        self.write_rgb8(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8))

    def write_rgb8(self, frame: np.ndarray) -> None:
        """Appends one uint8 [H, W, 3] frame."""
        self._gen.send(np.ascontiguousarray(frame, np.uint8).tobytes())

    def close(self) -> None:
        """Finishes the file (flushes ffmpeg)."""
        self._gen.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run_ffmpeg(args: Sequence[str]) -> tuple[bool, str]:
    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc.returncode == 0, proc.stderr.decode("utf-8", "replace").strip()


def join_segments(parts: Sequence[Path], dst: Path, rate: Fraction, audio_from: Optional[str] = None,
                  audio_seconds: Optional[float] = None) -> str:
    """Concatenates video segments (same codec and settings) into `dst` without re-encoding, adding the audio
    tracks of `audio_from` if it has any.

    Audio is copied as it is; a codec the output container cannot hold (e.g. PCM in MP4) is re-encoded to AAC; if
    even that fails the video is written without audio. `dst` is replaced if it exists.

    Args:
      parts: segment files, in order.
      dst: the output; its extension picks the container.
      rate: the segments' frame rate, declared to the container (AVI, for one, would otherwise state its time base).
      audio_from: a video file whose audio streams are copied (None: no audio).
      audio_seconds: copy only the first this-many seconds of audio (None: all of it).
    Returns:
      'copied', 'aac', 'none' (the source has no audio or none was asked for) or 'dropped: <reason>'.
    Raises:
      OSError: the segments could not be joined.
    """
    listing = dst.parent / f".{dst.name}.segments.txt"
    # The concat demuxer's quoting: single quotes, a quote inside written as '\''.
    listing.write_text("".join("file '{}'\n".format(str(Path(p).resolve()).replace("'", "'\\''")) for p in parts))
    fast = ["-r", str(rate)]  # stream copy: declares the rate, drops or repeats nothing
    if dst.suffix.lower() in (".mp4", ".m4v", ".mov"):
        fast += ["-movflags", "+faststart"]
    video_in = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    try:
        if audio_from is not None:
            limit = ["-t", f"{audio_seconds:.6f}"] if audio_seconds else []
            audio_in = [*limit, "-i", str(audio_from)]
            for codec, label in (["copy"], "copied"), (["aac"], "aac"):
                ok, err = _run_ffmpeg([*video_in, *audio_in, "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy",
                                       "-c:a", *codec, *fast, str(dst)])
                if ok:
                    return label if _has_audio(audio_from) else "none"
            dropped = f"dropped: {err.splitlines()[-1] if err else 'ffmpeg failed'}"
        ok, err = _run_ffmpeg([*video_in, "-map", "0:v:0", "-c:v", "copy", *fast, str(dst)])
        if not ok:
            raise OSError(f"cannot join the restored segments: {err.splitlines()[-1] if err else 'ffmpeg failed'}")
        return "none" if audio_from is None else dropped
    finally:
        listing.unlink(missing_ok=True)


def _has_audio(source: str) -> bool:
    """Whether ffmpeg sees an audio stream in `source` (its header printout, nothing decoded)."""
    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(source)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return any(" Audio: " in ln for ln in proc.stderr.decode("utf-8", "replace").splitlines()
               if ln.lstrip().startswith("Stream "))
