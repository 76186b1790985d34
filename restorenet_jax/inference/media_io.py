"""Image reading and writing for the restore CLI and the web service (videos: `video`).

Images become a `Picture`: the RGB part the model sees (float32 [H, W, 3] in [0, 1]) plus what must survive the
round trip untouched — the alpha channel, whether the source was grayscale, and its bit depth (8 or 16). EXIF
orientation is applied on reading (the pixels come out upright, the tag is not written back), so a phone photo
shot sideways is restored and saved the way a viewer shows it.

Pixel limits are checked from the header alone (`check_image_size`) before anything is decoded, against one limit,
the commands' --max-pixels: a header far past Pillow's own decompression-bomb bound gets the same message as one
just over the limit (`too_large`). Decoding itself never lets Pillow's decompression-bomb error or warning out as
anything but this module's exceptions.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import threading
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


# Pillow checks a declared size against its own bomb bound in one function, called from Image.open and, before
# allocating a canvas, from plugins such as WebP. While a header is read against the caller's limit, that function is
# wrapped (under a lock, for this thread only): a size over the limit stops the read there and then, so the refusal
# is the caller's limit, with the declared width x height, and nothing the size of the image is ever allocated.
_PILLOW_SIZE_CHECK = getattr(Image, "_decompression_bomb_check", None)
_SIZE_CHECK_LOCK = threading.Lock()
_HEADER_LIMIT = threading.local()


class _DeclaredSize(Exception):
    def __init__(self, size: tuple[int, int]):
        super().__init__(size)
        self.size = size


def _size_check(size: tuple[int, int], *args, **kwargs):
    limit = getattr(_HEADER_LIMIT, "value", 0)
    if limit and size[0] * size[1] > limit:
        raise _DeclaredSize(tuple(size))
    return _PILLOW_SIZE_CHECK(size, *args, **kwargs)  # other threads, and sizes within the limit: Pillow's rule


@contextlib.contextmanager
def _header_limit(max_pixels: int) -> Iterator[None]:
    if not max_pixels or _PILLOW_SIZE_CHECK is None:
        yield
        return
    with _SIZE_CHECK_LOCK:
        _HEADER_LIMIT.value, Image._decompression_bomb_check = max_pixels, _size_check
        try:
            yield
        finally:
            _HEADER_LIMIT.value, Image._decompression_bomb_check = 0, _PILLOW_SIZE_CHECK


class UnreadableImage(ValueError):
    """The bytes are not an image this module can decode."""


class ImageTooLarge(ValueError):
    """The image's header declares more pixels than allowed (checked before any pixel is decoded)."""


class TooLargeToDecode(ImageTooLarge, UnreadableImage):
    """`decode_image` refused an image larger than Pillow's decompression-bomb bound.

    Both an `ImageTooLarge` and an `UnreadableImage`, so that callers catching either (the service catches the
    latter around decoding) handle it.
    """


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


def image_size(data: bytes, max_pixels: int = 0) -> tuple[int, int]:
    """(width, height) from the header only, without decoding pixels (for size limits before decoding).

    With `max_pixels`, a declared size over it is returned as soon as it is read (before Pillow's own bomb bound
    or any plugin allocation sees it), so the caller judges every size by its own limit.

    Raises:
      UnreadableImage: `data` is not a recognised image.
      ImageTooLarge: (without `max_pixels`) the header declares more pixels than Pillow's own bomb bound.
    """
    try:
        with _header_limit(max_pixels), Image.open(io.BytesIO(data)) as im:
            return im.size
    except _DeclaredSize as e:
        return e.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Raised from the header alone, for every format Pillow reads (the warning only where warnings are errors).
        raise ImageTooLarge(_bomb_message(e)) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UnreadableImage(f"not a recognised image ({e.__class__.__name__})") from e


def _bomb_message(e: Exception) -> str:
    # Pillow's text ends in "could be decompression bomb DOS attack."; keep the two numbers, in this module's words.
    numbers = re.findall(r"\d+", str(e))
    if len(numbers) >= 2:
        return f"image of {numbers[0]} pixels is larger than the decoder's limit of {numbers[1]} pixels"
    return "image declares too many pixels"


def too_large(what: str, width: int, height: int, max_pixels: int) -> str:
    """The one message for an image or video frame over the pixel limit, wherever it is found."""
    return (f"{what} of {width}x{height} pixels {'are' if what.endswith('s') else 'is'} larger than the limit of "
            f"{max_pixels} pixels (--max-pixels)")


def check_image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an image whose header declares at most `max_pixels` pixels (0: no limit).

    The one pixel-limit check of the service and the commands: it reads the header only, so a small file that
    declares a huge image (a decompression bomb, in any format) is refused before memory is spent on it, with the
    same message however far over the limit it is.

    Raises:
      UnreadableImage: not a recognised image.
      ImageTooLarge: more than `max_pixels` pixels.
    """
    width, height = image_size(data, max_pixels)
    if max_pixels and width * height > max_pixels:
        raise ImageTooLarge(too_large("image", width, height, max_pixels))
    return width, height


def _from_uint(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    return arr.astype(np.float32) / float(2**bit_depth - 1)


def _decode_png16(data: bytes) -> Picture:
    # Pillow opens the header first: its decompression-bomb bound then applies before libpng allocates anything.
    with Image.open(io.BytesIO(data)) as im:
        arr = png16.read_png16(data)  # [H, W, C] uint16
        orientation = im.getexif().get(0x0112, 1)  # Pillow still reads the eXIf chunk; only the pixels are 8-bit
    if orientation in _ORIENT:
        arr = np.ascontiguousarray(_ORIENT[orientation](arr))
    channels = arr.shape[-1]
    color = arr[..., :1].repeat(3, -1) if channels in (1, 2) else arr[..., :3]
    alpha = arr[..., -1].copy() if channels in (2, 4) else None
    return Picture(_from_uint(color, 16), alpha, gray=channels in (1, 2), bit_depth=16, format="PNG")


def decode_image(data: bytes) -> Picture:
    """Decodes image bytes (PNG 8/16-bit, JPEG, BMP, TIFF, WebP, ...) into a `Picture`, honouring EXIF orientation.

    Callers should check the size with `check_image_size` first; this function only enforces Pillow's own
    decompression-bomb bound (`PIL.Image.MAX_IMAGE_PIXELS`, twice that for an error).

    Raises:
      UnreadableImage: the data is not an image or is corrupt (a one-line reason).
      TooLargeToDecode: (an UnreadableImage and an ImageTooLarge) the image exceeds Pillow's bound.
    """
    try:
        if png16.is_png16(data):
            return _decode_png16(data)
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "PNG"
            im.load()  # decode now, so that truncated files fail here and not later
            im = ImageOps.exif_transpose(im)
        return _picture_from_pil(im, fmt)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # The warning arrives as an exception only where warnings are errors; either way it is a size refusal.
        raise TooLargeToDecode(f"cannot decode image: {_bomb_message(e)}") from e
    except UnidentifiedImageError as e:
        # Pillow's text names the in-memory stream object ("<_io.BytesIO object at 0x...>"): say what it means.
        raise UnreadableImage("cannot decode image: not a recognised image format") from e
    except (OSError, ValueError, SyntaxError) as e:
        # Pillow signals corrupt data with OSError ("image file is truncated"), SyntaxError (bad headers) or
        # ValueError; all mean the same to a caller.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise UnreadableImage(f"cannot decode image: {reason}") from e


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
