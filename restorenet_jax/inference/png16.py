"""16-bit PNG reading and writing, which Pillow cannot do for colour images.

Pillow reads and writes 16-bit *grayscale* PNGs ("I;16") but truncates 16-bit RGB/RGBA PNGs to 8 bits and cannot
write them. Both directions go through imagecodecs' PNG codec (libpng), which keeps every sample exact for gray,
gray+alpha, RGB and RGBA and handles every filter and interlacing mode. Only the fixed-position IHDR header is read
here, to tell a 16-bit PNG from an 8-bit one before choosing a decoder.
"""
from __future__ import annotations

import struct

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = (1, 2, 3, 4)  # gray, gray+alpha, RGB, RGBA


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit_depth, color_type) from a PNG's IHDR, or None if `data` is not a PNG.

    IHDR is always the first chunk, at a fixed offset, so no chunk walking is needed.
    """
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
      ValueError: not a 16-bit PNG, or corrupt/truncated data (a one-line message without codec internals).
    """
    import imagecodecs  # imported late: only 16-bit PNGs need it

    if not is_png16(data):
        raise ValueError("not a 16-bit PNG")
    try:
        arr = imagecodecs.png_decode(data)
    except (imagecodecs.PngError, RuntimeError, ValueError) as e:
        # libpng's messages ("png_read_data_fn input stream too small", or an undecodable byte string for a bad
        # CRC) describe its internals, not the file: one plain reason serves every caller better.
        raise ValueError("corrupt or truncated 16-bit PNG data") from e
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[-1] not in _CHANNELS:
        raise ValueError("unsupported 16-bit PNG layout")
    return arr


def write_png16(array: np.ndarray) -> bytes:
    """Encodes uint16 [H, W] or [H, W, C] (C in 1..4) as a 16-bit PNG and returns the bytes."""
    import imagecodecs

    arr = np.asarray(array)
    if arr.dtype != np.uint16:
        raise ValueError(f"expected uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]  # the codec takes gray as [H, W]
    if arr.ndim == 3 and arr.shape[-1] not in _CHANNELS:
        raise ValueError(f"expected 1..4 channels, got {arr.shape[-1]}")
    # zlib level 1 with the RLE strategy and the Sub filter (the codec's documented fast setting): measured on a
    # 1920x1080 16-bit RGB photo, 5x faster than level 6 with adaptive filters and no larger.
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(arr), level=1, strategy=3, filter=16))
