"""The service load test (bench/serve_load.py) at a small scale: the real command starts the service on the tiny
model and throws every kind of client at it for a few seconds; nothing may be lost. And the load test's own
accounting: a server that drops a request is caught as `lost`, one that is merely slow as a client-side timeout."""
import json
import random
import socket
import threading

import pytest

from restorenet_jax.bench import serve_load, serve_load_report
from restorenet_jax.bench.serve_load_clients import KINDS, Target, one_request
from tests.tiny_model import tiny_checkpoint

EVERY_KIND = "normal=3,slow=1,stalled=1,disconnect=1,oversize=1,malformed=1"


def test_small_scale_load_loses_nothing(tmp_path_factory, tmp_path):
    out = tmp_path / "load"
    # Sides 17..32 share one size bucket, compiled at start-up (--warmup): the run measures the service, not XLA.
    rc = serve_load.main(["--checkpoint", str(tiny_checkpoint(tmp_path_factory)), "--duration", "5", "--clients", "6",
                          "--mix", EVERY_KIND, "--min-side", "17", "--max-side", "32", "--body-timeout", "1.5",
                          "--warmup", "2", "--sample-every", "1", "--patience", "60", "--no-progress",
                          "--serve-args", "--engine jax --warmup 32x32", "--out", str(out)])
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rc == 0 and rep["passed"], {k: rep[k] for k in ("errors", "by_kind", "health", "service_alive")}
    assert rep["lost"] == 0 and rep["client_timeouts"] == 0 and rep["errors"] == {}
    assert rep["served"] > 0 and rep["service_served"] == rep["served"]  # every restoration reached its client
    assert set(rep["by_kind"]) == set(KINDS), rep["by_kind"].keys()
    assert rep["by_kind"]["stalled"]["statuses"].get("408", 0) >= 1
    assert rep["by_kind"]["disconnect"]["results"] == {"aborted": rep["by_kind"]["disconnect"]["requests"]}
    assert rep["by_kind"]["oversize"]["statuses"].get("413", 0) >= 1
    for key in ("p50", "p95", "p99", "max"):
        assert rep["latency_ms"][key] > 0
    assert rep["health"]["failures"] == 0 and rep["health"]["checks"] >= 4
    assert len(rep["rss"]["series"]) >= 4 and rep["rss"]["start_mb"] > 0
    assert {"growth_mb", "growth_second_half_mb", "max_mb"} <= set(rep["rss"])
    assert rep["service_exit_status"] == 0  # shut down cleanly by the interrupt at the end
    md = out.with_suffix(".md").read_text()
    assert "PASSED" in md and "lost" in md and "RSS" in md


def _bad_server(behaviour: str):
    """A loopback server that reads a request and then closes without answering ('drop') or never answers
    ('hang'); yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(1 << 20)
            if behaviour == "drop":
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return listener, held


@pytest.mark.parametrize("behaviour,result", [("drop", "lost"), ("hang", "client_timeout")])
def test_dropped_requests_are_lost_and_slow_ones_client_timeouts(behaviour, result):
    import asyncio

    listener, held = _bad_server(behaviour)
    try:
        target = Target("127.0.0.1", listener.getsockname()[1], body_timeout=1.0, max_side=24, patience=0.5)
        outcome = asyncio.run(one_request("normal", target, None, random.Random(0)))
    finally:
        listener.close()
        for c in held:
            c.close()
    assert outcome.result == result and not outcome.ok
    raw = {"outcomes": [outcome], "health": [(0.0, 0.01, True)], "rss": [], "warmup": [], "alive": True,
           "seconds": 1.0}
    rep = serve_load_report.summarize(raw, {})
    assert not rep["passed"] and rep["errors"] == {result: 1}
    assert (rep["lost"], rep["client_timeouts"]) == ((1, 0) if result == "lost" else (0, 1))


@pytest.mark.parametrize("argv", [["--url", "http://10.0.0.1:8000"], ["--url", "http://127.0.0.1:1", "--mix", "x=1"],
                                  ["--url", "http://127.0.0.1:1", "--clients", "0"]])
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        serve_load.main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("python -m restorenet_jax.bench.serve_load: "
                                                                      "error:")
