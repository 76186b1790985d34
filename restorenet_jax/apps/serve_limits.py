"""Request limits of the web service: reading an upload under a byte cap and a time limit, counted slots (open
uploads, the restoration queue), JSON error answers (with `Retry-After` on 503), and the `--keep-dir` checks.

Everything here runs on the event loop thread, so counters need no locks.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Optional

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

log = logging.getLogger("restorenet_jax.serve")

# Multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_SLACK = 64 * 1024


def error(status: int, message: str, *, retry_after: Optional[int] = None, close: bool = False) -> JSONResponse:
    """A one-line JSON error `{"error": message}`.

    Args:
      retry_after: seconds for a `Retry-After` header (every 503 carries one).
      close: ask the server to close the connection after the answer; used whenever the request body may still be
        unread, so that the rest of it is not read and thrown away on a connection kept alive for nothing.
    """
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    if close:
        headers["Connection"] = "close"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class RequestFailed(Exception):
    """An upload that cannot be served, with the answer to give."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.message, self.close = status, message, close

    def response(self) -> JSONResponse:
        """The JSON error answer."""
        return error(self.status, self.message, close=self.close)


class ClientGone(Exception):
    """The client closed the connection before its upload had arrived (nobody is left to answer)."""


class Slots:
    """A counter of requests in some stage (open uploads, queued restorations) with a fixed capacity."""

    def __init__(self, size: int):
        self.size, self.used = size, 0

    def take(self) -> bool:
        """Takes a slot if one is free; False when all are in use."""
        if self.used >= self.size:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        """Gives a slot back."""
        self.used -= 1


class PerClient:
    """Open requests counted per client address, at most `size` each (the per-client upload cap)."""

    def __init__(self, size: int):
        self.size, self.counts = size, {}

    @property
    def used(self) -> int:
        """Open requests, all clients together."""
        return sum(self.counts.values())

    def take(self, client: str) -> bool:
        """Takes a place for `client` if it has one left; False when it already holds `size`."""
        n = self.counts.get(client, 0)
        if n >= self.size:
            return False
        self.counts[client] = n + 1
        return True

    def release(self, client: str) -> None:
        """Gives `client`'s place back (its entry goes once it holds none, so the table stays small)."""
        n = self.counts.get(client, 0) - 1
        if n > 0:
            self.counts[client] = n
        else:
            self.counts.pop(client, None)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown client"


class _Counted:
    """Passes the request body through, counting bytes and failing as soon as they exceed `limit` (this holds for
    chunked uploads too, which announce no length)."""

    def __init__(self, stream: AsyncIterator[bytes], limit: int):
        self.stream, self.limit, self.received = stream, limit, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.received += len(chunk)
            if self.received > self.limit:
                raise RequestFailed(413, f"upload larger than {self.limit - MULTIPART_SLACK} bytes", close=True)
            yield chunk


async def read_upload(request: Request, max_bytes: int, timeout: float) -> tuple[bytes, str]:
    """(bytes, file name as sent) of the multipart file field `image`, held in memory only.

    The whole body must arrive within `timeout` seconds of the request's headers: a client that stalls (or trickles
    bytes) cannot hold a connection and its buffer for longer than that.

    Raises:
      RequestFailed: 400 (not multipart, malformed, no field `image`), 408 (too slow), 413 (over `max_bytes`).
      ClientGone: the client disconnected mid-upload (logged here, in one line).
    """
    limit = max_bytes + MULTIPART_SLACK
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestFailed(413, f"upload larger than {max_bytes} bytes", close=True)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestFailed(400, "send the image as multipart/form-data in a field named 'image'", close=True)
    body = _Counted(request.stream(), limit)
    parser = MultiPartParser(request.headers, body.__aiter__(), max_files=1, max_fields=10)
    parser.spool_max_size = limit  # keep the upload in memory: nothing touches the disk
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            form = await parser.parse()
            try:
                upload = form.get("image")
                if not isinstance(upload, UploadFile):
                    raise RequestFailed(400, "missing file field 'image'")
                data, name = await upload.read(), upload.filename or ""
            finally:
                await form.close()
    except TimeoutError:
        log.info("upload from %s timed out after %.0f s (%d of %s bytes received); connection closed",
                 _client(request), time.monotonic() - start, body.received, length or "unknown")
        raise RequestFailed(408, f"the upload did not arrive within {timeout:g} s", close=True) from None
    except ClientDisconnect:
        # Starlette raises this from the body stream when the peer goes away; unhandled, it would reach the server
        # as an application error and be logged with a full traceback for what is an everyday event.
        log.info("client %s disconnected during the upload (%d of %s bytes received)",
                 _client(request), body.received, length or "unknown")
        raise ClientGone from None
    except MultiPartException as e:
        raise RequestFailed(400, f"malformed multipart body: {e.message}", close=True) from None
    if len(data) > max_bytes:
        raise RequestFailed(413, f"upload larger than {max_bytes} bytes")
    return data, name


def download_stem(filename: str) -> str:
    """`<stem>_restored` for the answer's file name: the upload's base name without extension, reduced to safe
    characters (letters, digits, '-', '_', '.') and 64 of them; 'restored' when nothing is left."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in stem).strip("._")[:64]
    return f"{safe}_restored" if safe else "restored"


def check_port(host: str, port: int) -> None:
    """Binds `host:port` for a moment (as uvicorn will, with SO_REUSEADDR), so that a port in use or an address
    this machine does not have is reported in one line at start-up.

    Raises:
      OSError: the address cannot be bound.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def check_keep_dir(path: Path) -> None:
    """Creates `path` if needed and writes and deletes a probe file there, so that an unusable `--keep-dir` is
    found at start-up rather than on every request.

    Raises:
      OSError: the directory cannot be created or written.
    """
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write-probe-{uuid.uuid4().hex}"
    probe.write_bytes(b"probe")
    probe.unlink()


def keep(keep_dir: Path, data: bytes, out: bytes) -> None:
    """Saves an upload and its restoration under server-made names; a failure is logged in one line and otherwise
    ignored (the person still gets the restored image)."""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        keep_dir.mkdir(parents=True, exist_ok=True)
        (keep_dir / f"{stem}-input.bin").write_bytes(data)
        (keep_dir / f"{stem}-restored.png").write_bytes(out)
    except OSError as e:
        log.warning("could not save to keep-dir %s: %s: %s", keep_dir, e.__class__.__name__, e.strerror or e)


def setup_logging() -> None:
    """Sends the service's own log lines (timeouts, disconnects, keep-dir failures) to stderr, formatted like
    uvicorn's, without touching the root logger."""
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
