"""Benchmark results: run metadata (device, versions, date), JAX/PyTorch ratios, the Markdown report, file output."""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path
from typing import Any, Callable

import jax

from restorenet_jax.bench import targets


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(cfg: Any, with_torch: bool) -> dict:
    """Where and with what the figures were taken."""
    from restorenet_jax.bench import torch_reference

    device = jax.local_devices()[0]
    torch_note = (torch_reference.unavailable_reason() or "measured") if with_torch else "skipped (--no-torch)"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "label": cfg.get("label", ""),
        "suite": cfg.get("suite", ""),
        "device": {"platform": device.platform, "device_kind": device.device_kind, "count": jax.device_count(),
                   "host_cpu": _cpu_model(), "host_cores": os.cpu_count(),
                   # Other work on the host skews CPU figures: the 1-minute load average at the start says how much.
                   "host_load_1min": os.getloadavg()[0]},
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in
                                                               ("jax", "jaxlib", "flax", "optax", "numpy", "torch")}},
        "settings": {"iters": cfg.iters, "warmup": cfg.warmup, "infer_size": list(cfg.infer_size),
                     "train_size": cfg.train_size, "train_dtype": cfg.train_dtype, "loss": cfg.loss,
                     "timing": "median of iters device-synchronised calls after warm-up"},
        "torch": torch_note,
        "target_device": cfg.get("target_device", ""),
    }


def comparisons(results: dict) -> list[dict]:
    """PyTorch/JAX time ratios (> 1: JAX is faster) for entries measured on both sides with the same shape.

    Inference pairs need the same dtype too. A train step pairs with the eager fp32 step (the official recipe) and
    with the compiled bf16 one (the JAX steps compute in bf16 on accelerators)."""
    out = []
    pairs = (("infer", "torch_infer", ("model", "dtype", "shape")),
             ("train", "torch_train", ("model", "stage", "batch")))
    for jax_sec, torch_sec, keys in pairs:
        for t in results.get(torch_sec, []):
            if "error" in t or "ms" not in t:
                continue
            for j in results.get(jax_sec, []):
                if "error" not in j and "ms" in j and all(j.get(k) == t.get(k) for k in keys):
                    out.append({"jax": j["name"], "torch": t["name"], "torch_mode": t.get("mode", "eager"),
                                "jax_dtype": j["dtype"], "torch_dtype": t["dtype"], "jax_ms": j["ms"],
                                "torch_ms": t["ms"], "torch_over_jax": t["ms"] / j["ms"]})
    return out


def _versus_compiled(results: dict) -> Callable[[dict], str]:
    """A table column: torch.compile time / this JAX entry's time on the same device (> 1: JAX is faster)."""
    ratios = {c["jax"]: c["torch_over_jax"] for c in results.get("comparisons", []) if c["torch_mode"] == "compile"}
    return lambda e: f"{ratios[e['name']]:.2f}x" if e.get("name") in ratios else "–"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _mb(entry: dict, key: str) -> str:
    if key == "peak":
        peak = entry.get("peak_memory") or {}
        return _fmt(peak["bytes"] / 2**20) if "bytes" in peak else "–"
    return _fmt(entry[key] / 2**20) if key in entry else "–"


def _table(rows: list[dict], columns: list[tuple[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['name']} | failed: {row['error']} |" + " |" * (len(columns) - 2))
            continue
        lines.append("| " + " | ".join(get(row) if callable(get) else _fmt(row.get(get)) for _, get in columns)
                     + " |")
    return lines


def _shape(entry: dict) -> str:
    return "x".join(str(s) for s in entry["shape"])


def _compile(entry: dict) -> str:
    return f"{_fmt(entry['lower_s'])} + {_fmt(entry['compile_s'])}"


def _mfu(entry: dict) -> str:
    return f"{100 * entry['mfu']:.1f} %" if "mfu" in entry else "–"


def to_markdown(results: dict) -> str:
    """The results as a Markdown report: header (device, versions, date) and one table per section."""
    m = results["meta"]
    d, v = m["device"], m["versions"]
    lines = [f"# RestoreNet-JAX benchmark — {d['device_kind']} ({d['platform']} x{d['count']})", "",
             f"- date: {m['date']}; suite: {m['suite'] or '–'}; label: {m['label'] or '–'}",
             f"- host: {d['host_cpu']}, {d['host_cores']} cores, load average {d['host_load_1min']:.1f} at start",
             "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"- timing: {m['settings']['timing']} (iters {m['settings']['iters']}, warm-up "
             f"{m['settings']['warmup']}); memory: peak so far ({_peak_kind(results)}), program = XLA "
             "arguments + outputs + temporaries", f"- PyTorch reference: {m['torch']}", ""]
    if m.get("partial"):
        lines[1:1] = ["", "**Partial:** the run was still going (or was stopped) when this was written; "
                      "entries not listed did not finish."]
    common = [("ms (median)", "ms"), ("compile s (lower + XLA)", _compile),
              ("program MiB", lambda e: _mb(e, "program_bytes")),
              ("peak MiB", lambda e: _mb(e, "peak")), ("GFLOP", "gflop"), ("TFLOP/s", "tflops_per_s"), ("MFU", _mfu)]
    lines += targets.to_markdown(results.get("targets", []), m.get("target_device", ""))
    common.append(("torch.compile / JAX", _versus_compiled(results)))
    if results["infer"]:
        lines += ["## Inference (JAX)", ""] + _table(results["infer"], [
            ("model", "model"), ("dtype", "dtype"), ("kernels", lambda e: e.get("kernels", "auto")),
            ("input", _shape), ("fps", "fps")] + common) + [""]
    if results["train"]:
        lines += ["## Training step (JAX: AdamW, PSNR loss, donated state)", ""] + _table(results["train"], [
            ("model", "model"), ("stage", "stage"), ("trainable", lambda e: ",".join(e["trainable"])),
            ("dtype", "dtype"), ("kernels", lambda e: e.get("kernels", "auto")), ("batch", _shape),
            ("images/s", "images_per_s")] + common) + [""]
    if results.get("degrade"):
        lines += ["## Device degradations (inputs made in the training step; jitted alone, uint8 batch)", ""] + _table(
            results["degrade"], [("noise", "noise"), ("synthetic blur", "blur"), ("batch", _shape),
                                 ("images/s", "images_per_s"), ("ms (median)", "ms"), ("compile s (lower + XLA)",
                                 _compile), ("program MiB", lambda e: _mb(e, "program_bytes"))]) + [""]
    torch_cols = [("ms (median)", "ms"), ("compile s (first call)", "compile_s"), ("peak MiB", lambda e: _mb(e, "peak")),
                  ("GFLOP", "gflop")]
    mode = ("mode", lambda e: e.get("mode", "eager") if "compile_mode" not in e else f"compile ({e['compile_mode']})")
    if results["torch_infer"]:
        lines += ["## Inference (PyTorch reference: eager, torch.compile)", ""] + _table(results["torch_infer"], [
            ("model", "model"), ("dtype", "dtype"), mode, ("input", _shape), ("device", "device"),
            ("threads", "threads"), ("fps", "fps")] + torch_cols) + [""]
    if results["torch_train"]:
        lines += ["## Training step (PyTorch reference: eager fp32, torch.compile bf16)", ""] + _table(
            results["torch_train"], [("model", "model"), ("stage", "stage"), ("dtype", "dtype"), mode,
                                     ("batch", _shape), ("device", "device"), ("threads", "threads"),
                                     ("images/s", "images_per_s")] + torch_cols) + [""]
    if results.get("comparisons"):
        lines += ["## JAX vs PyTorch", ""] + _table(
            [{"name": c["jax"], **c} for c in results["comparisons"]],
            [("JAX entry", "jax"), ("JAX dtype", "jax_dtype"), ("JAX ms", "jax_ms"), ("PyTorch mode", "torch_mode"),
             ("PyTorch dtype", "torch_dtype"), ("PyTorch ms", "torch_ms"),
             ("PyTorch / JAX", lambda c: f"{c['torch_over_jax']:.2f}x")]) + [""]
    return "\n".join(lines)


def _peak_kind(results: dict) -> str:
    return (results["meta"].get("final_peak_memory") or {}).get("kind", "–")


def write(results: dict, markdown: str, out: str) -> list[Path]:
    """Writes OUT.json and OUT.md (a .json or .md suffix on `out` is replaced); returns the paths."""
    base = Path(out)
    if base.suffix in (".json", ".md"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.parent / (base.name + ".json"), base.parent / (base.name + ".md")]
    paths[0].write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    paths[1].write_text(markdown + "\n")
    return paths
