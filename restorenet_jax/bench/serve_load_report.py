"""The service load test's report: figures from the raw outcomes (bench/serve_load.py) and a short Markdown table."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Optional

import numpy as np

from restorenet_jax.bench.serve_load_clients import BUSY, EXPECTED, KINDS


def percentiles(seconds: list[float]) -> dict[str, Optional[float]]:
    """{p50, p95, p99, max} in milliseconds (None for an empty list)."""
    if not seconds:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ms = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "p99": round(float(np.percentile(ms, 99)), 1), "max": round(float(ms.max()), 1)}


def _rss_figures(series: list) -> dict[str, Any]:
    """Start (after the warm-up), max, end, growth in all and over the second half of the run, in MiB."""
    if not series:
        return {"series": [], "start_mb": None, "max_mb": None, "end_mb": None, "growth_mb": None,
                "growth_second_half_mb": None}
    t = [s[0] for s in series]
    mb = [s[1] for s in series]
    half = next(i for i, ti in enumerate(t) if ti >= t[-1] / 2)
    return {"series": [[ti, m] for ti, m, *_ in series], "start_mb": mb[0], "max_mb": max(mb), "end_mb": mb[-1],
            "growth_mb": round(mb[-1] - mb[0], 1), "growth_second_half_mb": round(mb[-1] - mb[half], 1)}


def summarize(raw: dict, config: dict) -> dict[str, Any]:
    """The report (JSON-ready) of one run: see the module docstring of bench/serve_load.py for the fields."""
    outcomes = raw["outcomes"]
    by_kind = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        by_kind[kind] = {
            "requests": len(mine), "as_expected": sum(o.ok for o in mine),
            "expected_statuses": sorted(EXPECTED[kind]) or ["none (hangs up)"],
            "statuses": {str(k): v for k, v in sorted(Counter(o.status for o in mine if o.status).items())},
            "results": dict(Counter(o.result for o in mine)),
            "latency_ms": percentiles([o.seconds for o in mine if o.result == "status"])}
    errors = Counter()
    for o in outcomes:
        if o.result in ("lost", "client_timeout", "connect_error"):
            errors[o.result] += 1
        elif o.wrong_answer:
            errors["wrong_answer"] += 1
        elif o.result == "status" and not o.ok:
            errors[f"unexpected_{o.status}_for_{o.kind}"] += 1
    served = [o for o in outcomes if o.status == 200]
    restorations = [o.seconds for o in served if o.kind == "normal"]
    health = raw["health"]
    before, after = raw.get("served_before"), raw.get("served_after")
    server_served = after - before if before is not None and after is not None else None
    rep = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "config": config,
        "service": raw.get("service", {}),  # what /healthz said at the start: model, engine, precision, limits
        "seconds": round(raw["seconds"], 1),
        "requests": len(outcomes),
        "served": len(served),
        "busy_refusals": sum(o.status in BUSY for o in outcomes),
        "throughput_per_min": round(60 * len(served) / max(raw["seconds"], 1e-9), 1),
        "latency_ms": percentiles(restorations),
        "lost": errors["lost"],
        "client_timeouts": errors["client_timeout"],
        "errors": dict(sorted(errors.items())),
        "by_kind": by_kind,
        # The service's own count of restorations answered during the run against the 200s received: a gap means
        # answers computed and never delivered (or still on their way to clients that gave up waiting).
        "service_served": server_served,
        "health": {"checks": len(health), "failures": sum(not ok for _, _, ok in health),
                   "latency_ms": percentiles([dt for _, dt, ok in health if ok])},
        "rss": _rss_figures(raw["rss"]),
        "warmup": {"requests": len(raw["warmup"]), "served": sum(o.status == 200 for o in raw["warmup"]),
                   "lost": sum(o.result == "lost" for o in raw["warmup"])},
        "service_alive": raw["alive"],
    }
    rep["passed"] = bool(rep["service_alive"] and not errors and rep["health"]["failures"] == 0
                         and rep["health"]["checks"] > 0 and rep["warmup"]["lost"] == 0)
    return rep


def _ms(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.0f}"


def _service_text(info: dict) -> str:
    shown = [f"{k} {info[k]}" for k in ("model", "engine", "precision") if k in info]
    return f" ({', '.join(shown)})" if shown else ""


def markdown(rep: dict) -> str:
    """A short human summary of `summarize`'s report."""
    c, lat, h, rss = rep["config"], rep["latency_ms"], rep["health"], rep["rss"]
    lines = [
        f"# Service load test ({rep['date']})",
        "",
        f"{rep['seconds']:.0f} s, {c['clients']} clients, uploads up to {c['max_side']} px, body timeout "
        f"{c['body_timeout']:g} s, mix {', '.join(f'{k}={v:g}' for k, v in c['mix'].items())}; "
        f"{'service started by the test' if c.get('started_service') else 'service at ' + str(c.get('url'))}"
        f"{' with ' + c['serve_args'] if c.get('serve_args') else ''}"
        f"{_service_text(rep.get('service') or {})}"
        f". **{'PASSED' if rep['passed'] else 'FAILED'}**",
        "",
        "| requests | served (200) | busy (503/429) | lost | client timeouts | other errors | restore p50 / p95 / "
        "p99 / max (ms) | /healthz p50 / p99 / max (ms), failures |",
        "|---|---|---|---|---|---|---|---|",
        f"| {rep['requests']} | {rep['served']} | {rep['busy_refusals']} | {rep['lost']} | {rep['client_timeouts']} "
        f"| {sum(v for k, v in rep['errors'].items() if k not in ('lost', 'client_timeout'))} "
        f"| {_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])} / {_ms(lat['max'])} "
        f"| {_ms(h['latency_ms']['p50'])} / {_ms(h['latency_ms']['p99'])} / {_ms(h['latency_ms']['max'])}, "
        f"{h['failures']} of {h['checks']} |",
        "",
        "| kind | requests | as expected | statuses | outcomes |",
        "|---|---|---|---|---|",
    ]
    for kind, k in rep["by_kind"].items():
        lines.append(f"| {kind} | {k['requests']} | {k['as_expected']} | "
                     f"{', '.join(f'{s}: {n}' for s, n in k['statuses'].items()) or '–'} | "
                     f"{', '.join(f'{r}: {n}' for r, n in k['results'].items())} |")
    lines += ["", f"Errors by kind: {rep['errors'] or 'none'}. The service counted {rep['service_served']} "
              f"restorations answered during the run; the clients received {rep['served']}."]
    if rss["series"]:
        lines.append(f"RSS (MiB): {rss['start_mb']:.0f} after the warm-up, max {rss['max_mb']:.0f}, end "
                     f"{rss['end_mb']:.0f}; growth {rss['growth_mb']:+.0f} in all, {rss['growth_second_half_mb']:+.0f} "
                     f"over the second half ({len(rss['series'])} samples).")
    return "\n".join(lines)
