"""Image and video reading/writing for the restore CLI and the web service.

Images become a `Picture`: the RGB part the model sees (float32 [H, W, 3] in [0, 1]) plus what must survive the
round trip untouched — the alpha channel, whether the source was grayscale, and its bit depth (8 or 16). EXIF
orientation is applied on reading (the pixels come out upright, the tag is not written back), so a phone photo
shot sideways is restored and saved the way a viewer shows it.

Videos go through the ffmpeg binary bundled with imageio-ffmpeg, frame by frame, so memory stays flat for long
CCTV recordings.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from typing import Iterator, Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restorenet_jax.inference import png16

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"})
# ITU-R BT.601 luma, the weights Pillow's convert('L') uses: grayscale output matches what Pillow would make.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# EXIF Orientation tag -> numpy transform, the same as ImageOps.exif_transpose (used for 16-bit PNGs).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, k=1),
}


class UnreadableImage(ValueError):
    """The bytes are not an image this module can decode."""


@dataclass
class Picture:
    """A decoded still image.

    Attributes:
      rgb: [H, W, 3] float32 in [0, 1] (grayscale sources are replicated to three channels).
      alpha: [H, W] uint8 or uint16 alpha channel, kept untouched, or None.
      gray: the source had a single colour channel.
      bit_depth: 8 or 16 bits per sample.
      format: the source format as Pillow names it ('PNG', 'JPEG', ...).
    """

    rgb: np.ndarray
    alpha: Optional[np.ndarray] = None
    gray: bool = False
    bit_depth: int = 8
    format: str = "PNG"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[1], self.rgb.shape[0]


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only, without decoding pixels (for size limits before decoding).

    Raises:
      UnreadableImage: `data` is not a recognised image.
    """
    header = png16.png_header(data)
    if header is not None:
        return header[0], header[1]
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UnreadableImage(f"not a recognised image ({e.__class__.__name__})") from e


def _from_uint(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    return arr.astype(np.float32) / float(2**bit_depth - 1)


def _decode_png16(data: bytes) -> Picture:
    arr = png16.read_png16(data)  # [H, W, C] uint16
    with Image.open(io.BytesIO(data)) as im:
        orientation = im.getexif().get(0x0112, 1)
    if orientation in _ORIENT:
        arr = np.ascontiguousarray(_ORIENT[orientation](arr))
    channels = arr.shape[-1]
    color = arr[..., :1].repeat(3, -1) if channels in (1, 2) else arr[..., :3]
    alpha = arr[..., -1].copy() if channels in (2, 4) else None
    return Picture(_from_uint(color, 16), alpha, gray=channels in (1, 2), bit_depth=16, format="PNG")


def decode_image(data: bytes) -> Picture:
    """Decodes image bytes (PNG 8/16-bit, JPEG, BMP, TIFF, WebP, ...) into a `Picture`, honouring EXIF orientation.

    Raises:
      UnreadableImage: the data is not an image or is corrupt.
    """
    try:
        if png16.is_png16(data):
            return _decode_png16(data)
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "PNG"
            im.load()  # decode now, so that truncated files fail here and not later
            im = ImageOps.exif_transpose(im)
        return _picture_from_pil(im, fmt)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        # Pillow signals corrupt data with OSError ("image file is truncated"), SyntaxError (bad headers) or
        # ValueError; all mean the same to a caller.
        raise UnreadableImage(f"cannot decode image: {e}") from e


def _picture_from_pil(im: Image.Image, fmt: str) -> Picture:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (Pillow's only 16-bit mode); "I" is 32-bit int, clipped to the 16-bit range.
        arr = np.clip(np.asarray(im, np.int64), 0, 65535).astype(np.uint16)
        return Picture(_from_uint(arr, 16)[..., None].repeat(3, -1), None, gray=True, bit_depth=16, format=fmt)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, F, ...
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    channels = arr.shape[-1]
    color = arr[..., :1].repeat(3, -1) if channels in (1, 2) else arr[..., :3]
    alpha = arr[..., -1].copy() if channels in (2, 4) else None
    return Picture(_from_uint(color, 8), alpha, gray=channels in (1, 2), bit_depth=8, format=fmt)


def read_image(path: str | os.PathLike) -> Picture:
    """Reads an image file into a `Picture` (see `decode_image`)."""
    with open(path, "rb") as f:
        return decode_image(f.read())


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> [H, W] BT.601 luma, same range as the input."""
    return rgb @ _LUMA


def encode_image(pic: Picture, fmt: str = "PNG", keep_gray: bool = True, jpeg_quality: int = 95) -> bytes:
    """Encodes a `Picture` (float RGB in [0, 1] plus alpha) with the source's bit depth.

    Args:
      pic: the picture; `rgb` is clipped to [0, 1] and rounded to `pic.bit_depth` bits.
      fmt: 'PNG' (8 or 16 bits, alpha kept) or a Pillow format such as 'JPEG' (8 bits, alpha dropped).
      keep_gray: write grayscale sources as grayscale (BT.601 luma of the RGB result); False writes RGB.
      jpeg_quality: JPEG quality when fmt is 'JPEG'.
    """
    fmt = fmt.upper()
    gray = pic.gray and keep_gray
    color = to_gray(pic.rgb)[..., None] if gray else pic.rgb
    depth = pic.bit_depth if fmt == "PNG" else 8
    top = float(2**depth - 1)
    samples = np.round(np.clip(color, 0.0, 1.0) * top)
    alpha = pic.alpha if fmt != "JPEG" else None
    if alpha is not None:
        # The alpha keeps its own samples; only rescaled if the output depth differs (16-bit alpha to 8-bit TIFF...).
        a = alpha.astype(np.float64)
        if alpha.dtype == np.uint16 and depth == 8:
            a = np.round(a / 257.0)
        samples = np.concatenate([samples, a[..., None]], axis=-1)
    if depth == 16:
        return png16.write_png16(samples.astype(np.uint16))
    arr = samples.astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[-1]]
    buf = io.BytesIO()
    opts = {"quality": jpeg_quality} if fmt == "JPEG" else {}
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode=mode).save(buf, format=fmt, **opts)
    return buf.getvalue()


def with_rgb(pic: Picture, rgb: np.ndarray) -> Picture:
    """The same picture (alpha, gray flag, depth, format) with new colour pixels."""
    return replace(pic, rgb=np.asarray(rgb, np.float32))


@dataclass
class VideoInfo:
    """Stream facts of a video file: frames per second, (width, height), and a frame-count estimate."""

    fps: float
    size: tuple[int, int]
    frames_estimate: Optional[int]


def open_video(path: str | os.PathLike) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Opens a video for frame-by-frame reading.

    Returns:
      (info, frames): frames yields uint8 [H, W, 3] RGB arrays.
    Raises:
      UnreadableImage: ffmpeg cannot open it.
    """
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as e:
        gen.close()
        raise UnreadableImage(f"cannot open video: {str(e).strip().splitlines()[-1] if str(e) else e}") from e
    width, height = meta["size"]
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


class VideoWriter:
    """Writes float [H, W, 3] frames in [0, 1] to a video with a given frame rate (H.264, no size rounding).

    Use as a context manager. Even frame sizes use yuv420p (plays everywhere); odd sizes need yuv444p, because
    4:2:0 chroma cannot represent an odd width or height and the frame size must not change.
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
