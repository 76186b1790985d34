"""The clients of the service load test (`bench/serve_load.py`): raw HTTP/1.1 over asyncio streams, so that each kind
can misbehave exactly as a real client would (trickle, stall, hang up mid-upload, send garbage).

Every request is one connection (`Connection: close`) and ends in exactly one `Outcome`:
  * `status`: the server answered (status code, and for a 200 whether the PNG has the upload's size);
  * `lost`: the connection ended (closed or reset) without an answer to a request the client did not abandon: the
    server accepted it and never answered, which must never happen;
  * `client_timeout`: the client stopped waiting (`patience` seconds): slow under load, not lost;
  * `connect_error`: no connection could be made (listen backlog full, server gone);
  * `aborted`: the client hung up on purpose (the `disconnect` kind), so no answer is expected.
"""
from __future__ import annotations

import asyncio
import io
import random
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image

KINDS = ("normal", "slow", "stalled", "disconnect", "oversize", "malformed")
BOUNDARY = "restorenetloadtest"
# What each kind expects; 503 and 429 (busy, with Retry-After) are correct answers for any kind under load.
EXPECTED = {"normal": {200}, "slow": {200}, "stalled": {408}, "disconnect": set(), "oversize": {413},
            "malformed": {400, 415}}
BUSY = {429, 503}


@dataclass
class Outcome:
    """How one request ended (module docstring); `seconds` from connecting to the end."""

    kind: str
    result: str  # 'status' | 'lost' | 'client_timeout' | 'connect_error' | 'aborted'
    seconds: float
    status: Optional[int] = None
    wrong_answer: bool = False  # a 200 whose PNG is not the upload's size
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether this is what the kind should get (its expected status, a busy refusal, or a planned hang-up)."""
        if self.result == "aborted":
            return self.kind == "disconnect"
        return self.result == "status" and not self.wrong_answer and (
            self.status in EXPECTED[self.kind] or self.status in BUSY)


@dataclass
class Target:
    """Where and how to send: the service's host and port, limits the clients need to know, and the image sizes."""

    host: str
    port: int
    body_timeout: float
    max_side: int = 512
    min_side: int = 16
    patience: float = 120.0
    sources: list = field(default_factory=list)  # loopback addresses the clients connect from (one per client)


def random_image(rng: random.Random, max_side: int, min_side: int = 16) -> tuple[bytes, int, int, str]:
    """(encoded bytes, height, width, file name) of a random-size picture: a smooth scene with grain, PNG or JPEG."""
    h, w = rng.randint(min_side, max_side), rng.randint(min_side, max_side)
    g = np.random.default_rng(rng.getrandbits(32))
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = 0.1 + 0.5 * x * np.array([1, 0.8, 0.6], np.float32) + 0.2 * y + 0.05 * g.standard_normal((h, w, 3),
                                                                                                  np.float32)
    arr = np.clip(img * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    fmt = rng.choice(("PNG", "JPEG"))
    Image.fromarray(arr).save(buf, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 85}))
    return buf.getvalue(), h, w, f"cam{rng.randint(1, 9)}.{'png' if fmt == 'PNG' else 'jpg'}"


def pixel_bomb(side: int = 30000) -> bytes:
    """A valid, tiny PNG whose header declares side x side pixels (refused from the header, never decoded)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def multipart(data: bytes, name: str, field_name: str = "image") -> bytes:
    """A multipart/form-data body holding one file field."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(target: Target, length: int, content_type: str = f"multipart/form-data; boundary={BOUNDARY}") -> bytes:
    """Request line and headers of an upload announcing `length` body bytes."""
    return (f"POST /api/restore HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def png_size(data: bytes) -> Optional[tuple[int, int]]:
    """(height, width) from a PNG's header, None if it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return h, w


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Optional[int], bytes]:
    """(status, body) of one response; status None when the connection ended before a whole response arrived."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None, b""
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, b""
    length = next((int(v.split(":", 1)[1]) for v in lines[1:] if v.lower().startswith("content-length:")), None)
    try:
        body = await (reader.readexactly(length) if length is not None else reader.read())
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, b""
    return status, body


async def exchange(target: Target, source: Optional[str], kind: str, parts: list[tuple[bytes, float]], *,
                   hang_up: bool = False, reset: bool = False, expect_hw: Optional[tuple[int, int]] = None) -> Outcome:
    """Sends `parts` ([(bytes, seconds to wait after them)]) on a fresh connection and reads the answer.

    The answer is read concurrently with the sending: a server that answers before the body is complete (413 from
    Content-Length, 408) is heard, and the client stops sending. With `hang_up` the client closes after the parts
    (`reset`: abruptly, with a TCP reset).
    """
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            target.host, target.port, local_addr=(source, 0) if source else None), timeout=30)
    except (OSError, asyncio.TimeoutError) as e:
        return Outcome(kind, "connect_error", time.monotonic() - start, detail=type(e).__name__)
    answer = asyncio.ensure_future(_read_answer(reader))
    try:
        send_error = ""
        for data, pause in parts:
            if answer.done():
                break
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError as e:
                send_error = type(e).__name__
                break
            if pause:
                await asyncio.wait([answer], timeout=pause)
        if hang_up and not answer.done():
            if reset:  # a reset (RST) instead of an orderly close, as a client that crashes or loses its network
                writer.transport.abort()
            return Outcome(kind, "aborted", time.monotonic() - start)
        try:
            status, body = await asyncio.wait_for(asyncio.shield(answer), timeout=target.patience)
        except asyncio.TimeoutError:
            return Outcome(kind, "client_timeout", time.monotonic() - start)
        if status is None:
            return Outcome(kind, "lost", time.monotonic() - start, detail=send_error or "closed without an answer")
        wrong = status == 200 and expect_hw is not None and png_size(body) != expect_hw
        return Outcome(kind, "status", time.monotonic() - start, status=status, wrong_answer=wrong)
    finally:
        answer.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def one_request(kind: str, target: Target, source: Optional[str], rng: random.Random) -> Outcome:
    """One request of `kind` (KINDS) as that kind of client sends it."""
    if kind in ("normal", "slow", "disconnect"):
        data, h, w, name = random_image(rng, target.max_side, target.min_side)
        body = multipart(data, name)
        head = request_head(target, len(body))
        if kind == "normal":
            return await exchange(target, source, kind, [(head + body, 0)], expect_hw=(h, w))
        if kind == "slow":  # the whole body over about a third of the body timeout, in ten pieces
            step = -(-len(body) // 10)
            pause = target.body_timeout / 30
            pieces = [(head, pause)] + [(body[i:i + step], pause) for i in range(0, len(body), step)]
            return await exchange(target, source, kind, pieces, expect_hw=(h, w))
        cut = rng.randint(1, max(1, len(body) - 1))  # hang up somewhere inside the body
        return await exchange(target, source, kind, [(head + body[:cut], rng.uniform(0.05, 0.5))],
                              hang_up=True, reset=rng.random() < 0.5)
    if kind == "stalled":  # headers and 1 kB, then silence until the server's body timeout answers 408
        head = request_head(target, 1_000_000)
        return await exchange(target, source, kind, [(head + multipart(b"\0" * 1000, "a.png")[:1100], 0)])
    if kind == "oversize":
        if rng.random() < 0.5:  # announced too large: refused from Content-Length before the body is read
            return await exchange(target, source, kind, [(request_head(target, 500 * 2**20) + b"\0" * 1024, 0)])
        body = multipart(pixel_bomb(), "bomb.png")  # tiny file, huge declared image: refused from its header
        return await exchange(target, source, kind, [(request_head(target, len(body)) + body, 0)])
    if kind == "malformed":
        choice = rng.randrange(4)
        if choice == 0:
            body = multipart(b"this is not an image" * 10, "notes.png")
        elif choice == 1:
            png, *_ = random_image(rng, 32, 16)
            body = multipart(png[: len(png) // 2], "cut.png")  # a truncated image
        elif choice == 2:
            body = multipart(b"\x89PNG", "a.png", field_name="picture")  # no field `image`
        else:
            body = b"--" + BOUNDARY.encode() + b"\r\nbroken multipart without an end"
        # One write: the server reads all of it before answering, so closing never resets an unread body.
        return await exchange(target, source, kind, [(request_head(target, len(body)) + body, 0)])
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
