"""The web service through real HTTP on loopback: round trip, every bad input (decompression bombs in every format
included), a burst of concurrent uploads."""
import asyncio
import io
import re
import struct
import subprocess
import sys
import time
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import serve
from tests.live_server import live_server
from tests.tiny_model import tiny_checkpoint, tiny_restorer

H, W = 24, 32


def _png(h=H, w=W, seed=0, mode="RGB") -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def restorer(tmp_path_factory):
    r = tiny_restorer(tmp_path_factory)
    r(np.zeros((H, W, 3), np.float32))  # compile before the timing-sensitive tests
    return r


@pytest.fixture(scope="module")
def server(restorer):
    settings = serve.ServeSettings(max_upload_bytes=200_000, max_pixels=64 * 64, queue_size=4)
    with live_server(serve.create_app(restorer, settings)) as url:
        yield url


def test_round_trip(server, restorer):
    data = _png()
    r = httpx.post(f"{server}/api/restore", files={"image": ("../../etc/x.png", data, "image/png")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert 'filename="x_restored.png"' in r.headers["content-disposition"]
    out = Image.open(io.BytesIO(r.content))
    assert out.size == (W, H) and out.mode == "RGB"
    src = np.asarray(Image.open(io.BytesIO(data))).astype(np.float32) / 255
    expected = np.round(restorer(src) * 255)
    assert np.abs(np.asarray(out).astype(np.float64) - expected).max() <= 1


def test_health_page_and_docs(server):
    h = httpx.get(f"{server}/healthz").json()
    assert h["status"] == "ok" and h["model"] == "restorenet" and h["queue_size"] == 4
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and 'id="file"' in page.text and "api/restore" in page.text
    assert ", ".join(serve.ACCEPTED_FORMATS) in page.text and "GIF" in page.text  # the 415 message's list
    spec = httpx.get(f"{server}/openapi.json").json()
    assert "/api/restore" in spec["paths"] and "/healthz" in spec["paths"]
    for path in ("/docs", "/redoc"):  # offline: every script and style comes from the service itself
        page = httpx.get(f"{server}{path}")
        assert page.status_code == 200 and "cdn." not in page.text and "https://" not in page.text, path
        for asset in re.findall(r'(?:src|href)="(/static-offline-docs/[^"]+)"', page.text):
            assert httpx.get(f"{server}{asset}").status_code == 200, asset


@pytest.mark.parametrize("case,status", [
    ("too_many_bytes", 413), ("too_many_pixels", 413), ("not_an_image", 415), ("missing_field", 400),
    ("not_multipart", 400), ("corrupt_png", 415)])
def test_bad_inputs(server, case, status):
    url = f"{server}/api/restore"
    if case == "too_many_bytes":
        r = httpx.post(url, files={"image": ("a.png", b"\0" * 300_000, "image/png")})
    elif case == "too_many_pixels":
        r = httpx.post(url, files={"image": ("a.png", _png(65, 64), "image/png")})
    elif case == "not_an_image":
        r = httpx.post(url, files={"image": ("a.png", b"hello, this is text", "text/plain")})
    elif case == "missing_field":
        r = httpx.post(url, files={"picture": ("a.png", _png(), "image/png")})
    elif case == "not_multipart":
        r = httpx.post(url, content=_png(), headers={"content-type": "image/png"})
    else:  # a valid PNG header (passes the size check) with the pixel data cut off
        r = httpx.post(url, files={"image": ("a.png", _png()[:60], "image/png")})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json" and r.json()["error"]
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"


# Tiny files whose headers declare 30000x30000 (60000x60000 for JPEG) pixels: a decoder would try to allocate
# gigabytes. Each is a few dozen bytes, built field by field.
def _gif_bomb(w=30000, h=30000):
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0)
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00\x3b")


def _tiff_bomb(w=30000, h=30000):
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, w * h)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd


def _jpeg_bomb(w=60000, h=60000):
    sof = struct.pack(">BBHBHHB", 0xFF, 0xC0, 11, 8, h, w, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\xff\xd9"


def _bmp_bomb(w=30000, h=30000):
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0)


def _webp_bomb(w=30000, h=30000):
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0" * 4 + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def _png_bomb(w=30000, h=30000):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("make", [_gif_bomb, _tiff_bomb, _jpeg_bomb, _bmp_bomb, _webp_bomb, _png_bomb],
                         ids=["gif", "tiff", "jpeg", "bmp", "webp", "png"])
def test_decompression_bombs_are_refused_from_the_header(server, make, monkeypatch):
    data = make()
    assert len(data) < 200
    decoded = []
    monkeypatch.setattr(serve.media_io, "decode_image", lambda d: decoded.append(d))  # must never be reached
    r = httpx.post(f"{server}/api/restore", files={"image": ("a.img", data, "application/octet-stream")})
    assert r.status_code == 413, r.text
    assert "pixels" in r.json()["error"] and not decoded


def test_chunked_upload_over_the_limit(server):
    # No Content-Length: the cap must hold while streaming.
    def body():
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
        for _ in range(40):
            yield b"\0" * 10_000
        yield b"\r\n--xyz--\r\n"

    r = httpx.post(f"{server}/api/restore", content=body(),
                   headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and r.json()["error"]


class _Slow:
    """The real restorer, 0.2 s slower per call, so that a burst of uploads reliably meets a full queue."""

    def __init__(self, restorer):
        self.inner, self.arch = restorer, restorer.arch

    def __call__(self, x, clip=True):
        time.sleep(0.2)
        return self.inner(x, clip=clip)


def test_twenty_concurrent_uploads_with_queue_of_four(restorer):
    uploads = [_png(seed=i) for i in range(20)]
    app = serve.create_app(_Slow(restorer), serve.ServeSettings(queue_size=4, max_connections=32))  # one client
    with live_server(app) as url:
        async def burst():
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*[
                    client.post(f"{url}/api/restore", files={"image": ("x.png", d, "image/png")}) for d in uploads])

        answers = asyncio.run(burst())
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 503}, codes
        assert codes.count(200) >= 1
        assert codes.count(503) >= 1, codes  # 20 at once against 4 places: some must be turned away
        for a, d in zip(answers, uploads):
            if a.status_code == 200:
                np.testing.assert_array_equal(  # each answer belongs to its own upload
                    np.asarray(Image.open(io.BytesIO(a.content))),
                    np.round(restorer(np.asarray(Image.open(io.BytesIO(d))) / np.float32(255)) * 255))
            else:
                assert a.json()["error"] and int(a.headers["retry-after"]) >= 1
        h = httpx.get(f"{url}/healthz").json()
        assert h["status"] == "ok" and h["queue"] == 0 and h["served"] == codes.count(200)
        assert httpx.post(f"{url}/api/restore", files={"image": ("x.png", _png(), "image/png")},
                          timeout=60).status_code == 200


def test_keep_dir_and_nothing_stored_by_default(restorer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keep = tmp_path / "kept"
    with live_server(serve.create_app(restorer, serve.ServeSettings(keep_dir=keep))) as url:
        r = httpx.post(f"{url}/api/restore", files={"image": ("../evil name.png", _png(), "image/png")}, timeout=60)
    assert r.status_code == 200
    kept = sorted(p.name for p in keep.iterdir())
    assert len(kept) == 2 and all("evil" not in n for n in kept)
    before = set(tmp_path.rglob("*"))
    with live_server(serve.create_app(restorer, serve.ServeSettings())) as url:
        assert httpx.post(f"{url}/api/restore", files={"image": ("a.png", _png(), "image/png")}).status_code == 200
    assert set(tmp_path.rglob("*")) == before


def test_startup_without_checkpoint_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "restorenet_jax.serve", "--checkpoint", str(tmp_path / "none"),
                           "--port", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "checkpoint" in proc.stderr


def test_forty_sizes_compile_a_bounded_number_of_programs(tmp_path_factory):
    """40 uploads of 40 distinct sizes: a bucketed restorer (as `serve` loads it) compiles one program per size
    bucket, never holds more than max_programs, and answers every size exactly at its own size."""
    from restorenet_jax.inference.restorer import Restorer
    from restorenet_jax.models.buckets import bucket_shape

    restorer = Restorer.from_checkpoint(tiny_checkpoint(tmp_path_factory), bucketing=True, max_programs=2)
    sizes = [(20 + i % 5, 20 + i) for i in range(40)]  # heights 20..24, widths 20..59
    buckets = {bucket_shape(h, w, restorer.arch.pad_multiple) for h, w in sizes}
    held = []
    app = serve.create_app(restorer, serve.ServeSettings(max_pixels=64 * 64, queue_size=4))
    with live_server(app) as url:
        for i, (h, w) in enumerate(sizes):
            r = httpx.post(f"{url}/api/restore", files={"image": ("x.png", _png(h, w, seed=i), "image/png")},
                           timeout=120)
            assert r.status_code == 200, r.text
            assert Image.open(io.BytesIO(r.content)).size == (w, h)
            held.append(restorer.programs)
    assert restorer.compiles == len(buckets) < len(sizes)
    assert max(held) <= 2
