"""media_io without a model: decompression bombs never escape as Pillow's exceptions, 16-bit PNGs round-trip
exactly (gray, gray+alpha, RGB, RGBA) through the PNG library without ffmpeg, EXIF orientation on 16-bit PNGs,
and one-line error messages for corrupt files."""
import io
import re
import struct
import subprocess
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.inference import media_io, png16
from tests.test_restore_safety import _gif_bomb, _jpeg_bomb, _tiff_bomb

INTERNALS = ("ffmpeg", "png @", "pipe", "libpng", "png_", "bytesio", "decompression bomb", "dos attack")
ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}")  # an object's address, not a size such as 30000x30000


def _samples(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def _one_line_plain(message: str) -> bool:
    return ("\n" not in message and not any(word in message.lower() for word in INTERNALS)
            and not ADDRESS.search(message.lower()))


# --- decompression bombs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bomb", [_gif_bomb, _tiff_bomb, _jpeg_bomb])
def test_decode_refuses_bombs_with_its_own_exception(bomb):
    data = bomb()
    with pytest.raises(media_io.UnreadableImage) as e:  # what the service catches around decoding
        media_io.decode_image(data)
    assert isinstance(e.value, media_io.ImageTooLarge) and _one_line_plain(str(e.value)), str(e.value)
    # The header check names the caller's limit, whether or not the image is past Pillow's own bound.
    with pytest.raises(media_io.ImageTooLarge, match="pixels is larger than the") as e:
        media_io.check_image_size(data, 1000)
    assert _one_line_plain(str(e.value))


@pytest.mark.parametrize("kind", ["png8", "png16"])
def test_decode_bomb_warning_as_error_does_not_escape(kind, monkeypatch):
    # Past Pillow's warning bound but under its error bound: with warnings as errors (as test runners and
    # `python -W error` set them) Pillow raises its DecompressionBombWarning out of Image.open.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    if kind == "png8":
        buf = io.BytesIO()
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = png16.write_png16(_samples((40, 40, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(media_io.ImageTooLarge) as e:
            media_io.decode_image(data)
        assert isinstance(e.value, media_io.UnreadableImage)
        with pytest.raises(media_io.ImageTooLarge):
            media_io.image_size(data)
        # Over the caller's limit too: the refusal is the caller's limit, with the declared size.
        with pytest.raises(media_io.ImageTooLarge, match="40x40 pixels is larger than the limit of 999 pixels"):
            media_io.check_image_size(data, 999)


def _png_header(width, height):
    """A PNG declaring width x height 8-bit RGB with no pixel data: all a header read needs."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_one_pixel_limit_one_message_far_over_it_or_just_over(tmp_path):
    """30000x30000 is past Pillow's own decompression-bomb error bound, 5000x5000 only past the service's limit:
    both are refused with the same sentence naming the limit and the option that sets it."""
    from restorenet_jax.apps import restore

    limit = 4096 * 4096  # the service's default --max-pixels
    messages = []
    for side in (30000, 5000):
        with pytest.raises(media_io.ImageTooLarge) as e:
            media_io.check_image_size(_png_header(side, side), limit)
        messages.append(str(e.value))
    assert messages == [f"image of {s}x{s} pixels is larger than the limit of {limit} pixels (--max-pixels)"
                        for s in (30000, 5000)]
    for bomb in (_gif_bomb, _tiff_bomb, _jpeg_bomb):  # other formats, far past Pillow's bound: the same sentence
        with pytest.raises(media_io.ImageTooLarge, match=r"^image of \d+x\d+ pixels is larger than the limit of "
                           rf"{limit} pixels \(--max-pixels\)$"):
            media_io.check_image_size(bomb(), limit)
    # The restore command's path (Pillow's bound restored afterwards), and a video frame over the limit.
    for side in (30000, 5000):
        (tmp_path / f"p{side}.png").write_bytes(_png_header(side, side))
    failures = restore.restore_paths(lambda x: x, sorted(tmp_path.glob("*.png")), tmp_path / "out", progress=False,
                                     max_pixels=limit)
    assert sorted(reason for _, reason in failures) == sorted(messages)
    assert Image.MAX_IMAGE_PIXELS is not None
    assert media_io.too_large("video frames", 5000, 5000, limit) == \
        f"video frames of 5000x5000 pixels are larger than the limit of {limit} pixels (--max-pixels)"


# --- 16-bit PNG through the PNG library ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_round_trip_is_exact(channels):
    arr = _samples((13, 17, channels), seed=channels)
    data = png16.write_png16(arr)
    assert png16.png_header(data) == (17, 13, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels])
    np.testing.assert_array_equal(png16.read_png16(data), arr)
    # Through the Picture: colour, alpha and the gray flag survive decode -> encode bit for bit.
    pic = media_io.decode_image(data)
    assert pic.bit_depth == 16 and pic.gray == (channels in (1, 2))
    assert (pic.alpha is not None) == (channels in (2, 4))
    if pic.alpha is not None:
        assert pic.alpha.dtype == np.uint16
        np.testing.assert_array_equal(pic.alpha, arr[..., -1])
    again = png16.read_png16(media_io.encode_image(pic))
    np.testing.assert_array_equal(again, arr)


def test_png16_needs_no_subprocess(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("16-bit PNGs must not go through a subprocess (ffmpeg)")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    arr = _samples((8, 9, 3))
    np.testing.assert_array_equal(png16.read_png16(png16.write_png16(arr)), arr)
    assert media_io.decode_image(png16.write_png16(arr)).bit_depth == 16


def _with_chunk_after_ihdr(png: bytes, kind: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return png[:33] + chunk + png[33:]  # signature (8) + IHDR chunk (25)


def test_png16_exif_orientation_applied():
    stored = _samples((9, 6, 3))  # 9 high, 6 wide as stored; orientation 6 = rotate 90 degrees clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _with_chunk_after_ihdr(png16.write_png16(stored), b"eXIf", exif.tobytes()[6:])  # without "Exif\0\0"
    pic = media_io.decode_image(data)
    upright = np.rot90(stored, k=-1)
    assert pic.size == (9, 6)
    np.testing.assert_array_equal(np.round(pic.rgb * 65535).astype(np.uint16), upright)


# --- corrupt files: one plain line --------------------------------------------------------------------------------

def _corrupt_cases():
    good = png16.write_png16(_samples((20, 30, 3)))
    idat = good.index(b"IDAT")
    flipped = bytearray(good)
    flipped[idat + 20] ^= 0xFF  # inside the compressed data: the CRC no longer matches
    return {"png16_truncated": good[: len(good) // 2], "png16_bad_crc": bytes(flipped),
            "png16_no_idat": good[:33] + b"\0\0\0\0IEND\xaeB`\x82",
            "png8_garbage": b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 10,
            "not_an_image": b"hello, this is text"}


@pytest.mark.parametrize("case", sorted(_corrupt_cases()))
def test_corrupt_image_message_is_one_plain_line(case):
    with pytest.raises(media_io.UnreadableImage) as e:
        media_io.decode_image(_corrupt_cases()[case])
    message = str(e.value)
    assert message.startswith("cannot decode image: ") and _one_line_plain(message), message
