"""Video reading and writing for the restore CLI, through the ffmpeg binary bundled with imageio-ffmpeg.

Frames are streamed one at a time, so memory stays flat for long CCTV recordings.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from restorenet_jax.inference.media_io import ImageTooLarge, UnreadableImage


class IncompleteVideo(UnreadableImage):
    """Fewer frames could be decoded than the container declares (a truncated or damaged file)."""


@dataclass
class VideoInfo:
    """Stream facts of a video file: frames per second, (width, height), and a frame-count estimate.

    `frames_estimate` is the container's duration times the frame rate, or None when the container gives no
    duration. Formats that store their duration in a header (MP4 with the index first, MKV) keep the full value
    when the file is cut short; for AVI or MPEG-TS without an index ffmpeg estimates it from the file size.
    """

    fps: float
    size: tuple[int, int]
    frames_estimate: Optional[int]


def open_video(path: str | os.PathLike, max_pixels: int = 0) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Opens a video for frame-by-frame reading.

    Args:
      path: the video file.
      max_pixels: refuse frames larger than this many pixels (0: no limit), before any frame is decoded.
    Returns:
      (info, frames): frames yields uint8 [H, W, 3] RGB arrays.
    Raises:
      UnreadableImage: ffmpeg cannot open it.
      ImageTooLarge: its frames have more than `max_pixels` pixels.
    """
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as e:
        gen.close()
        raise UnreadableImage(f"cannot open video: {str(e).strip().splitlines()[-1] if str(e) else e}") from e
    width, height = meta["size"]
    if max_pixels and width * height > max_pixels:
        gen.close()  # stops ffmpeg now rather than when the generator is collected
        raise ImageTooLarge(f"video frames of {width}x{height} pixels are larger than the limit of {max_pixels} "
                            "pixels")
    fps = float(meta["fps"])
    duration = meta.get("duration")
    estimate = int(round(duration * fps)) if duration and fps else None

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in gen:
                yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        finally:
            gen.close()

    return VideoInfo(fps, (width, height), estimate), frames()


def check_frame_count(decoded: int, info: VideoInfo) -> None:
    """Raises `IncompleteVideo` when clearly fewer frames were decoded than the container declares.

    A short read is allowed one frame and 1% of slack: duration times an average frame rate is not an exact count
    for variable-frame-rate recordings, and a stream whose audio runs a little longer stretches the duration.
    """
    expected = info.frames_estimate
    if expected and expected - decoded > max(1, expected // 100):
        raise IncompleteVideo(f"only {decoded} of {expected} frames could be read (truncated?)")


class VideoWriter:
    """Writes float [H, W, 3] frames in [0, 1] to a video with a given frame rate (H.264, no size rounding).

    Use as a context manager. Even frame sizes use yuv420p (plays everywhere); odd sizes need yuv444p, because
    4:2:0 chroma cannot represent an odd width or height and the frame size must not change. ffmpeg replaces
    `path` if it exists: callers decide beforehand whether that is allowed.
    """

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], fps: float, quality: float = 8):
        import imageio_ffmpeg

        width, height = size
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._gen = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, quality=quality,
                                                pix_fmt_out=pix_fmt, macro_block_size=1, codec="libx264",
                                                ffmpeg_log_level="error")
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Appends one float [H, W, 3] frame in [0, 1]."""
        self._gen.send(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8).tobytes())

    def close(self) -> None:
        """Finishes the file (flushes ffmpeg)."""
        self._gen.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
