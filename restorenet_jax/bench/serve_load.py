"""Load test of the web service under a hostile mix of clients, for a fixed time, on loopback only.

    python -m restorenet_jax.bench.serve_load --checkpoint runs/demo --duration 600 --out bench/results/NAME
    python -m restorenet_jax.bench.serve_load --url http://127.0.0.1:8000 --duration 60      # a running service

It starts the service itself (`python -m restorenet_jax.serve`, on a free loopback port, stopped at the end) unless
`--url` names one already running (which must be on this machine). `--clients` clients, each from its own loopback
address (127.0.1.x, so the per-client upload cap sees distinct clients), send one request after another, each of a
kind drawn with the `--mix` weights (bench/serve_load_clients.py): normal uploads of random sizes up to `--max-side`,
slow (trickled) uploads, stalled uploads, clients that hang up mid-upload, oversize uploads and malformed requests.
Meanwhile /healthz is asked every second (its latency is reported) and the service's resident memory (RSS) is
sampled. After `--duration` seconds (or `--requests` requests) no request is started; those in flight finish or
reach the client's patience.

The report (JSON, and a short Markdown table printed and written beside it): requests served, latency percentiles
of restorations, outcomes by kind, errors by kind, *lost* responses (a request the service accepted and never
answered: must be 0; distinct from client-side timeouts under load), the service's served counter against the
answers received, and the RSS series with its growth after the warm-up and over the second half. The exit status is
0 when nothing was lost, every answer was one the kind expects (or a busy 503/429), every health check was answered
and the service ran throughout; 1 otherwise; 2 for bad arguments or a service that does not start.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import urlsplit

from restorenet_jax.bench import serve_load_report as report_mod
from restorenet_jax.bench.serve_load_clients import BUSY, KINDS, Outcome, Target, one_request

DEFAULT_MIX = "normal=6,slow=1,stalled=1,disconnect=1,oversize=1,malformed=1"


def parse_mix(text: str) -> dict[str, float]:
    """'normal=6,slow=1,...' -> {kind: weight}; raises ValueError naming the problem."""
    mix = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        kind, sep, weight = item.partition("=")
        if not sep or kind not in KINDS:
            raise ValueError(f"--mix: expected KIND=WEIGHT with KIND one of {', '.join(KINDS)}, not {item!r}")
        mix[kind] = float(weight)
        if mix[kind] < 0:
            raise ValueError(f"--mix: weights must be >= 0, not {item!r}")
    if not any(mix.values()):
        raise ValueError("--mix: at least one weight must be positive")
    return mix


def read_rss_mb(pid: int) -> Optional[float]:
    """Resident memory of process `pid` in MiB (Linux /proc), None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return None


class ServiceProcess:
    """The service started as `python -m restorenet_jax.serve` on a free loopback port; its output goes to a log."""

    def __init__(self, checkpoint: str, body_timeout: float, extra: Sequence[str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        fd, name = tempfile.mkstemp(prefix="serve-load-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        cmd = [sys.executable, "-m", "restorenet_jax.serve", "--checkpoint", checkpoint, "--host", "127.0.0.1",
               "--port", str(self.port), "--body-timeout", str(body_timeout), *extra]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        """Whether the service process is still running."""
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last lines the service printed."""
        return self.log_path.read_text(errors="replace").splitlines()[-lines:]

    def wait_ready(self, timeout: float) -> None:
        """Waits for /healthz to answer; raises RuntimeError (with the log's tail) if the service exits or is late."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("the service exited during start-up:\n" + "\n".join(self.log_tail()))
            try:
                status, _ = asyncio.run(http_get("127.0.0.1", self.port, "/healthz", 2.0))
                if status == 200:
                    return
            except (OSError, asyncio.TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the service did not answer /healthz within {timeout:g} s")

    def stop(self) -> Optional[int]:
        """Interrupts the service (as Ctrl-C would), kills it if it lingers; its exit status."""
        if self.alive():
            self.proc.send_signal(2)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


async def http_get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """(status, body) of a GET on a fresh connection; raises OSError or asyncio.TimeoutError."""
    async def go():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head:
            raise ConnectionError("empty answer")
        return int(head.split(b" ", 2)[1]), body

    return await asyncio.wait_for(go(), timeout)


async def _health_loop(target: Target, stop: asyncio.Event, rss: Callable[[dict], Optional[float]], t0: float,
                       sample_every: float, health: list, series: list) -> None:
    """Asks /healthz every second (latency, failures) and samples RSS every `sample_every` seconds."""
    next_sample = 0.0
    while not stop.is_set():
        start = time.monotonic()
        state: dict = {}
        try:
            status, body = await http_get(target.host, target.port, "/healthz", 5.0)
            ok = status == 200
            state = json.loads(body) if ok else {}
        except (OSError, asyncio.TimeoutError, ValueError):
            ok = False
        health.append((start - t0, time.monotonic() - start, ok))
        if start - t0 >= next_sample:
            mb = rss(state)
            if mb is not None:
                series.append((round(start - t0, 1), round(mb, 1), state.get("served")))
            next_sample += sample_every
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, 1.0 - (time.monotonic() - start)))
        except asyncio.TimeoutError:
            pass


async def _client(i: int, target: Target, mix: dict, deadline: float, seed: int, out: list, progress,
                  budget: list) -> None:
    rng = random.Random(seed * 1_000_003 + i)
    kinds, weights = list(mix), list(mix.values())
    source = target.sources[i % len(target.sources)] if target.sources else None
    while time.monotonic() < deadline and budget[0] != 0:
        budget[0] -= 1  # requests left to start (negative: no limit)
        outcome = await one_request(rng.choices(kinds, weights)[0], target, source, rng)
        out.append(outcome)
        progress(outcome)
        if outcome.status in BUSY or outcome.result == "connect_error":
            await asyncio.sleep(0.5)  # a polite client backs off (the answer's Retry-After would be longer)


async def _warmup(target: Target, count: int, seed: int) -> list[Outcome]:
    rng = random.Random(seed - 1)
    out = []
    for _ in range(count):
        out.append(await one_request("normal", target, None, rng))
    return out


def run_load(target: Target, duration: float, clients: int, mix: dict, *, seed: int = 0, warmup: int = 5,
             requests: int = 0,
             sample_every: float = 5.0, rss: Callable[[dict], Optional[float]] = lambda state: state.get("rss_mb"),
             alive: Callable[[], bool] = lambda: True, progress: bool = False) -> dict:
    """Runs the warm-up and then `clients` clients for `duration` seconds (or until `requests` were started, when
    positive) against `target`; the raw results {'service', 'warmup', 'outcomes', 'health', 'rss', 'served_before',
    'served_after', 'alive', 'seconds'}."""
    from tqdm import tqdm

    async def main() -> dict:
        info = {k: v for k, v in (await _state(target)).items()
                if k in ("model", "engine", "precision", "precision_reason", "queue_size", "max_connections")}
        warm = await _warmup(target, warmup, seed)
        t0 = time.monotonic()
        stop, health, series, outcomes = asyncio.Event(), [], [], []
        before = await _served(target)
        monitor = asyncio.ensure_future(_health_loop(target, stop, rss, t0, sample_every, health, series))
        with tqdm(total=int(duration), desc="serve load", unit="s", disable=not progress, file=sys.stderr) as bar:
            counts = Counter()

            def tick(o: Outcome) -> None:
                counts["ok" if o.ok else "bad"] += 1
                bar.n = min(int(duration), int(time.monotonic() - t0))
                bar.set_postfix(ok=counts["ok"], bad=counts["bad"], refresh=True)

            budget = [requests if requests > 0 else -1]
            await asyncio.gather(*(_client(i, target, mix, t0 + duration, seed, outcomes, tick, budget)
                                   for i in range(clients)))
        stop.set()
        await monitor
        mb = rss(await _state(target))
        if mb is not None:
            series.append((round(time.monotonic() - t0, 1), round(mb, 1), None))
        return {"service": info, "warmup": warm, "outcomes": outcomes, "health": health, "rss": series,
                "served_before": before, "served_after": await _served(target), "alive": alive(),
                "seconds": time.monotonic() - t0}

    return asyncio.run(main())


async def _state(target: Target) -> dict:
    try:
        status, body = await http_get(target.host, target.port, "/healthz", 10.0)
        return json.loads(body) if status == 200 else {}
    except (OSError, asyncio.TimeoutError, ValueError):
        return {}


async def _served(target: Target) -> Optional[int]:
    return (await _state(target)).get("served")


def build_parser() -> argparse.ArgumentParser:
    """The command line (`--help` shows every default)."""
    intro, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.serve_load", description=intro, epilog=rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint", help="start the service on this model (a model directory or training workdir)")
    where.add_argument("--url", help="test a running service instead (loopback only, e.g. http://127.0.0.1:8000)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    p.add_argument("--clients", type=int, default=12, help="clients at once, each from its own loopback address "
                   "(default 12)")
    p.add_argument("--mix", default=DEFAULT_MIX, help=f"weights of the request kinds (default {DEFAULT_MIX})")
    p.add_argument("--max-side", type=int, default=512, help="largest side of the random uploads (default 512)")
    p.add_argument("--min-side", type=int, default=16, help="smallest side of the random uploads (default 16)")
    p.add_argument("--body-timeout", type=float, default=10.0, help="the service's --body-timeout: passed to the "
                   "service started here, and what slow and stalled clients plan with (default 10)")
    p.add_argument("--patience", type=float, default=120.0, help="seconds a client waits for an answer before "
                   "counting a client-side timeout (default 120)")
    p.add_argument("--requests", type=int, default=0, help="stop after this many requests even before --duration "
                   "(default 0: no limit)")
    p.add_argument("--warmup", type=int, default=30, help="normal uploads sent one by one before the clock "
                   "starts; RSS growth is counted from after them (default 30)")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    p.add_argument("--serve-args", default="", help="more flags for the service started here, e.g. "
                   "\"--engine jax --queue-size 4\" (default none)")
    p.add_argument("--start-timeout", type=float, default=600.0, help="seconds to wait for the service to start "
                   "(default 600)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clients' choices and images (default 0)")
    p.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md (default: print only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _target_from_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or not (host == "localhost" or host == "::1" or host.startswith("127.")):
        raise ValueError(f"--url must be http:// on this machine's loopback (127.x.x.x, localhost, ::1), not {url!r}")
    return ("127.0.0.1" if host == "localhost" else host), parts.port or 80


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the load test; exit status as the module docstring says."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
        host, port = _target_from_url(args.url) if args.url else ("127.0.0.1", 0)
    except ValueError as e:
        parser.error(str(e))
    if args.duration <= 0 or args.clients < 1 or args.body_timeout <= 0 or args.patience <= 0 \
            or not 1 <= args.min_side <= args.max_side or args.warmup < 0 or args.sample_every <= 0 \
            or args.requests < 0:
        parser.error("--duration, --clients, --body-timeout, --patience and --sample-every must be positive, "
                     "--warmup and --requests >= 0 and 1 <= --min-side <= --max-side")
    if args.out is not None and not args.out.parent.is_dir():
        parser.error(f"--out: the folder {args.out.parent} does not exist")
    service = None
    if args.checkpoint:
        service = ServiceProcess(args.checkpoint, args.body_timeout, shlex.split(args.serve_args))
        try:
            service.wait_ready(args.start_timeout)
        except RuntimeError as e:
            service.stop()
            print(f"error: {e}", file=sys.stderr)
            return 2
        port = service.port
    sources = [f"127.0.1.{1 + i}" for i in range(min(args.clients, 250))] if host.startswith("127.") else []
    target = Target(host, port, args.body_timeout, args.max_side, args.min_side, args.patience, sources)
    rss = (lambda state: read_rss_mb(service.proc.pid)) if service else (lambda state: state.get("rss_mb"))
    try:
        raw = run_load(target, args.duration, args.clients, mix, seed=args.seed, warmup=args.warmup,
                       requests=args.requests,
                       sample_every=args.sample_every, rss=rss, alive=service.alive if service else lambda: True,
                       progress=not args.no_progress)
    finally:
        exit_status = service.stop() if service else None
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "no_progress"}
    config.update(mix=mix, cpus=os.cpu_count(), started_service=service is not None)
    rep = report_mod.summarize(raw, config)
    if service is not None:
        rep["service_exit_status"] = exit_status  # after the interrupt at the end: 0 for a clean shutdown
    if service is not None and not raw["alive"]:
        rep["service_log_tail"] = service.log_tail()
    text = report_mod.markdown(rep)
    print(text)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(rep, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text + "\n")
    if service is not None:
        service.log_path.unlink(missing_ok=True)
    return 0 if rep["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
