"""The header time limit (apps/serve_headers.py) through real sockets: a silent connection, headers trickled a byte
at a time, and the second request of a kept-alive connection are all dropped after the limit; a request whose
headers arrived is not (its slow body answers to the body timeout, not to this one)."""
import io
import socket
import time

import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import serve, serve_headers
from tests.live_server import live_server
from tests.tiny_model import tiny_restorer

LIMIT = 1.0
# The server's clock starts when the bytes arrive, a little before the client's: allow that much early.
EARLY = 0.1


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    restorer = tiny_restorer(tmp_path_factory)
    restorer(np.zeros((16, 16, 3), np.float32))
    app = serve.create_app(restorer, serve.ServeSettings(body_timeout=10.0))
    with live_server(app, http=serve_headers.protocol(LIMIT)) as base:
        yield base


def _connect(url: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)


def _closed_after(s: socket.socket, trickle: bytes = b"") -> float:
    """Seconds until the server closes `s`, sending `trickle` a byte every 0.2 s meanwhile."""
    start = time.monotonic()
    s.settimeout(0.2)
    for i in range(100):
        try:
            if s.recv(4096) == b"":
                return time.monotonic() - start
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if trickle:
            s.sendall(trickle[i % len(trickle): i % len(trickle) + 1])
    return float("inf")


def _upload_body() -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buf, format="PNG")
    body = (b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + buf.getvalue()
            + b"\r\n--b--\r\n")
    head = (f"POST /api/restore HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def test_a_silent_connection_is_dropped(url):
    with _connect(url) as s:
        assert LIMIT - EARLY <= _closed_after(s) < LIMIT + 2


def test_headers_trickled_forever_are_dropped(url):
    with _connect(url) as s:
        s.sendall(b"POST /api/restore HTTP/1.1\r\nHost: x\r\n")
        assert LIMIT - EARLY <= _closed_after(s, trickle=b"X-Slow: yes\r\n") < LIMIT + 2


def test_the_next_request_on_a_kept_alive_connection_gets_the_same_limit(url):
    with _connect(url) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\n")  # and then nothing more
        assert LIMIT - EARLY <= _closed_after(s) < LIMIT + 2


def test_a_slow_body_after_complete_headers_is_not_cut_by_the_header_limit(url):
    head, body = _upload_body()
    with _connect(url) as s:
        s.sendall(head)
        for i in range(0, len(body), len(body) // 4 + 1):  # the body over ~2 s: twice the header limit
            time.sleep(0.5)
            s.sendall(body[i:i + len(body) // 4 + 1])
        s.settimeout(30)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
