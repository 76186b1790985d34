"""Frames through the ffmpeg binary that imageio-ffmpeg ships: a filter graph or an H.264 round trip, as raw rgb24.

Frames go to ffmpeg's stdin and come back on its stdout (no files, nothing re-encoded besides what is asked for).
"""
from __future__ import annotations

import functools
import os
import subprocess
import tempfile

import numpy as np


class FfmpegError(RuntimeError):
    """ffmpeg failed; the message ends with its last error lines."""


@functools.lru_cache(maxsize=1)
def executable() -> str:
    """Path of imageio-ffmpeg's ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def available_filters() -> frozenset[str]:
    """Names of the video filters this ffmpeg binary has (`ffmpeg -filters`)."""
    out = subprocess.run([executable(), "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    # Lines look like " TSC hqdn3d            V->V       Apply a High Quality 3D Denoiser."
    return frozenset(parts[1] for parts in (line.split() for line in out.splitlines())
                     if len(parts) >= 3 and "->" in parts[2])


def _run(args: list[str], frames: np.ndarray, what: str) -> bytes:
    proc = subprocess.run([executable(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
                          input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise FfmpegError(f"ffmpeg {what} failed: " + " | ".join(tail))
    return proc.stdout


def _raw_input(frames: np.ndarray, fps: int) -> list[str]:
    t, h, w, c = frames.shape
    if frames.dtype != np.uint8 or c != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]


def _frames_from(raw: bytes, like: np.ndarray, what: str) -> np.ndarray:
    if len(raw) != like.size:
        raise FfmpegError(f"ffmpeg {what} returned {len(raw)} bytes, expected {like.size} (frames lost or added)")
    return np.frombuffer(raw, np.uint8).reshape(like.shape)


def apply_filter(frames: np.ndarray, graph: str, fps: int = 25) -> np.ndarray:
    """Runs the filter graph (e.g. 'hqdn3d=4:3:6:4.5') on uint8 [T, H, W, 3] frames; returns the same shape.

    ffmpeg converts to each filter's pixel format and back to rgb24 itself; `-vsync passthrough` keeps the frame
    count exact (temporal filters that buffer frames flush them at the end of the input).
    """
    args = _raw_input(frames, fps) + ["-vf", graph, "-fps_mode", "passthrough", "-f", "rawvideo",
                                      "-pix_fmt", "rgb24", "pipe:1"]
    return _frames_from(_run(args, frames, graph), frames, graph)


def h264_round_trip(frames: np.ndarray, crf: int, preset: str = "medium", fps: int = 25) -> np.ndarray:
    """Encodes uint8 [T, H, W, 3] frames with libx264 (4:2:0, inter frames, the given CRF) and decodes them back."""
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"4:2:0 H.264 needs even frame sides, got {frames.shape[1:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        _run(_raw_input(frames, fps) + ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt",
                                        "yuv420p", "-y", path], frames, "H.264 encode")
        raw = _run(["-i", path, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                   frames[:0], "H.264 decode")
    return _frames_from(raw, frames, "H.264 decode")
