"""The service under abuse, through real sockets on loopback: stalled and trickled uploads, a flood over the
open-upload cap, clients that disconnect mid-upload, and an unusable --keep-dir (at start-up and at request time).

Raw sockets send request headers with a large Content-Length and a little body, then stall: the server must drop
them after its body timeout (short here) and keep answering normal requests meanwhile.
"""
import io
import logging
import select
import selectors
import socket
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from restorenet_jax.apps import serve, serve_limits
from tests.live_server import live_server
from tests.tiny_model import tiny_restorer

H, W = 24, 32
STALLED_HEAD = ("POST /api/restore HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {length}\r\n\r\n")
PART_HEAD = b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'


def _png(seed=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def restorer(tmp_path_factory):
    r = tiny_restorer(tmp_path_factory)
    r(np.zeros((H, W, 3), np.float32))  # compile before the timing-sensitive tests
    return r


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _stalled_upload(port: int, length: int = 1_000_000, source: str = "127.0.0.1") -> socket.socket:
    """Headers announcing `length` bytes, then 1 kB of body, then nothing; sent from loopback address `source`
    (any 127.x.y.z reaches the server on Linux, so one test can play many clients)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall(STALLED_HEAD.format(length=length).encode() + PART_HEAD + b"\0" * 1000)
    return s


def _answers(socks: list, deadline: float) -> list:
    """Reads every socket until the server closes it (or `deadline`): [(status line, headers text, close time)],
    None for a socket still open at the deadline."""
    sel = selectors.DefaultSelector()
    got = {s: b"" for s in socks}
    closed = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _mask in sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[sock] += chunk
            else:
                closed[sock] = time.monotonic()
                sel.unregister(sock)
    sel.close()
    out = []
    for s in socks:
        if s not in closed:
            out.append(None)
            continue
        head = got[s].split(b"\r\n\r\n", 1)[0].decode("latin-1")
        out.append((head.split("\r\n", 1)[0], head.lower(), closed[s]))
    return out


def _wait_for(url: str, key: str, value: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/healthz").json()[key] != value:
        assert time.monotonic() < deadline, f"healthz {key} never reached {value}"
        time.sleep(0.05)


def _restore_ok(url: str) -> float:
    start = time.monotonic()
    r = httpx.post(f"{url}/api/restore", files={"image": ("a.png", _png(), "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (W, H)
    return time.monotonic() - start


def test_two_hundred_stalled_uploads_are_dropped_after_the_body_timeout(restorer):
    settings = serve.ServeSettings(body_timeout=3.0, max_connections=256)
    with live_server(serve.create_app(restorer, settings)) as url:
        socks = []
        try:
            start = time.monotonic()
            socks = [_stalled_upload(_port(url)) for _ in range(200)]
            _wait_for(url, "uploads", 200, timeout=2.5)  # all 200 hold a slot...
            _restore_ok(url)  # ...and a normal upload is served meanwhile
            assert httpx.get(f"{url}/healthz").json()["uploads"] == 200, "stalls were dropped too early"
            answers = _answers(socks, start + 15)
        finally:
            for s in socks:
                s.close()
        assert all(a is not None for a in answers), f"{answers.count(None)} stalled uploads still held after 15 s"
        held = [t - start for _, _, t in answers]
        assert {status for status, _, _ in answers} == {"HTTP/1.1 408 Request Timeout"}
        assert all("connection: close" in head for _, head, _ in answers)
        assert 3.0 <= min(held) and max(held) < 8.0, (min(held), max(held))
        _wait_for(url, "uploads", 0, timeout=2.0)
        _restore_ok(url)


def test_stalled_uploads_from_many_clients_do_not_take_the_work_limit(restorer):
    # 60 stalled uploads from 20 client addresses (3 each, under the per-client cap), against a queue of 2: the
    # queue counts restorations only, so health checks and a normal upload are answered while all 60 hang.
    settings = serve.ServeSettings(body_timeout=20.0, queue_size=2, max_connections=4)
    with live_server(serve.create_app(restorer, settings)) as url:
        socks = []
        try:
            socks = [_stalled_upload(_port(url), source=f"127.0.1.{1 + i % 20}") for i in range(60)]
            _wait_for(url, "uploads", 60, timeout=5)
            start = time.monotonic()
            h = httpx.get(f"{url}/healthz", timeout=5)
            assert h.status_code == 200 and time.monotonic() - start < 1.0
            assert h.json()["queue"] == 0  # hanging uploads hold no place of the work limit
            _restore_ok(url)
            assert httpx.get(f"{url}/", timeout=5).status_code == 200
            assert httpx.get(f"{url}/healthz").json()["uploads"] == 60, "stalls were dropped too early"
        finally:
            for s in socks:
                s.close()
        _wait_for(url, "uploads", 0, timeout=5)


def test_uploads_over_the_per_client_cap_get_429_with_retry_after_at_once(restorer):
    settings = serve.ServeSettings(body_timeout=3.0, max_connections=10, retry_after=7)
    with live_server(serve.create_app(restorer, settings)) as url:
        socks = []
        try:
            start = time.monotonic()
            socks = [_stalled_upload(_port(url)) for _ in range(30)]
            answers = _answers(socks, start + 15)
        finally:
            for s in socks:
                s.close()
        assert all(a is not None for a in answers)
        refused = [(head, t - start) for status, head, t in answers if status.startswith("HTTP/1.1 429")]
        timed_out = [t - start for status, _, t in answers if status.startswith("HTTP/1.1 408")]
        assert len(refused) == 20 and len(timed_out) == 10, [a[0] for a in answers]
        assert all("retry-after: 7" in head and "connection: close" in head for head, _ in refused)
        assert max(t for _, t in refused) < 2.0 and min(timed_out) >= 3.0
        _restore_ok(url)


def test_a_trickled_upload_is_cut_off_at_the_body_timeout(restorer):
    # A byte every 0.2 s keeps the connection busy forever; the limit is on the whole body, not on silence.
    with live_server(serve.create_app(restorer, serve.ServeSettings(body_timeout=1.5))) as url:
        s = _stalled_upload(_port(url))
        try:
            start, status = time.monotonic(), b""
            while time.monotonic() - start < 6 and not status:
                # Look for the answer before each byte: writing to a socket the server has closed draws a reset,
                # which would discard the answer unread.
                if select.select([s], [], [], 0.2)[0]:
                    status = s.recv(100)
                    break
                s.sendall(b"\0")
            elapsed = time.monotonic() - start
        finally:
            s.close()
        assert status.startswith(b"HTTP/1.1 408"), status
        assert 1.5 - 0.1 <= elapsed < 3.5  # the server's clock started as the head arrived, before `start`


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_disconnect_mid_upload_is_one_log_line_not_a_traceback(restorer, caplog):
    caplog.set_level(logging.INFO, logger=serve_limits.log.name)
    uvicorn_log = _Collect()
    with live_server(serve.create_app(restorer, serve.ServeSettings())) as url:
        logging.getLogger("uvicorn.error").addHandler(uvicorn_log)  # after uvicorn configured its loggers
        try:
            for _ in range(3):
                s = _stalled_upload(_port(url))
                _wait_for(url, "uploads", 1)
                s.close()
                _wait_for(url, "uploads", 0)
            _restore_ok(url)
        finally:
            logging.getLogger("uvicorn.error").removeHandler(uvicorn_log)
    ours = [r for r in caplog.records if r.name == serve_limits.log.name]
    assert len(ours) == 3, [r.getMessage() for r in ours]
    for r in ours:
        assert "disconnected" in r.getMessage() and "\n" not in r.getMessage() and not r.exc_info
    assert not uvicorn_log.records, [r.getMessage()[:200] for r in uvicorn_log.records]


def test_unusable_keep_dir_stops_start_up_with_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rc = serve.main(["--checkpoint", str(tmp_path / "none"), "--keep-dir", str(blocker / "kept")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--keep-dir" in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_keep_dir_check_creates_the_directory_and_leaves_nothing(tmp_path):
    target = tmp_path / "a" / "kept"
    serve_limits.check_keep_dir(target)
    assert target.is_dir() and not any(target.iterdir())


def test_keep_dir_failing_at_request_time_still_answers(restorer, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=serve_limits.log.name)
    broken = tmp_path / "kept"
    broken.write_text("a file where the directory should be")  # as if the directory vanished after start-up
    with live_server(serve.create_app(restorer, serve.ServeSettings(keep_dir=broken))) as url:
        _restore_ok(url)
    ours = [r for r in caplog.records if r.name == serve_limits.log.name]
    assert len(ours) == 1 and "keep-dir" in ours[0].getMessage() and not ours[0].exc_info


def test_help_states_the_limits():
    text = serve.build_parser().format_help()
    for needle in ("--body-timeout", "--max-connections", "--max-upload-mb", "--max-pixels", "--queue-size",
                   "Retry-After", "408", "413", "429", "503"):
        assert needle in text, needle


def test_port_in_use_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    from restorenet_jax.inference import engines

    monkeypatch.setattr(engines, "load_engine", lambda *a, **k: object())  # the port check needs no model
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        rc = serve.main(["--checkpoint", str(tmp_path), "--port", str(taken.getsockname()[1])])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot listen" in err and err.strip().count("\n") == 0


def test_download_name_follows_the_upload():
    assert serve_limits.download_stem("../../etc/holiday photo.jpg") == "holiday_photo_restored"
    assert serve_limits.download_stem("C:\\pics\\cam1.tiff") == "cam1_restored"
    assert serve_limits.download_stem("") == "restored"
