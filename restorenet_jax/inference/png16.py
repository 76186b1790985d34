"""16-bit PNG reading and writing, which Pillow cannot do for colour images.

Pillow reads and writes 16-bit *grayscale* PNGs ("I;16") but truncates 16-bit RGB/RGBA PNGs to 8 bits and cannot
write them. Writing is done here directly (zlib + the PNG chunk format: a few lines, no dependency). Reading uses
the ffmpeg binary that imageio-ffmpeg ships, whose PNG decoder handles every filter and interlacing mode and can
emit raw 16-bit samples.
"""
from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> (channels, ffmpeg raw little-endian pixel format for 16-bit samples).
_COLOR_TYPES = {0: (1, "gray16le"), 2: (3, "rgb48le"), 4: (2, "ya16le"), 6: (4, "rgba64le")}
_CHANNELS_TO_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit_depth, color_type) from a PNG's IHDR, or None if `data` is not a PNG."""
    if len(data) < 33 or not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, ctype


def is_png16(data: bytes) -> bool:
    """True for a PNG with 16 bits per sample."""
    header = png_header(data)
    return header is not None and header[2] == 16


def read_png16(data: bytes) -> np.ndarray:
    """Decodes a 16-bit PNG to uint16 [H, W, C] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).

    Raises:
      ValueError: not a 16-bit PNG, or ffmpeg could not decode it (corrupt data).
    """
    import imageio_ffmpeg  # a pinned dependency; imported late so that plain image use does not need it

    header = png_header(data)
    if header is None or header[2] != 16 or header[3] not in _COLOR_TYPES:
        raise ValueError("not a 16-bit PNG")
    width, height, _, ctype = header
    channels, pix_fmt = _COLOR_TYPES[ctype]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "png_pipe", "-i", "pipe:0",
           "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    expected = width * height * channels * 2
    if proc.returncode != 0 or len(proc.stdout) != expected:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ValueError(f"cannot decode 16-bit PNG: {msg[-1] if msg else 'truncated data'}")
    return np.frombuffer(proc.stdout, "<u2").reshape(height, width, channels).copy()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png16(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Encodes uint16 [H, W] or [H, W, C] (C in 1..4) as a 16-bit PNG and returns the bytes."""
    arr = np.asarray(array)
    if arr.dtype != np.uint16:
        raise ValueError(f"expected uint16, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    height, width, channels = arr.shape
    if channels not in _CHANNELS_TO_TYPE:
        raise ValueError(f"expected 1..4 channels, got {channels}")
    ihdr = struct.pack(">IIBBBBB", width, height, 16, _CHANNELS_TO_TYPE[channels], 0, 0, 0)
    rows = np.ascontiguousarray(arr.astype(">u2")).reshape(height, -1).view(np.uint8)  # big-endian samples
    # Filter type 0 (None) on every row: simple, and zlib still compresses well.
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    return (_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, compress_level))
            + _chunk(b"IEND", b""))
