"""Performance targets checked against a benchmark run: each target names an entry (or a ratio of two entries), a field
and a bound; the verdict is 'met', 'missed', 'not measured', or — off the target device — only informative.

Targets live in configs/bench.py (`targets`, `target_device`), e.g.
    dict(entry="infer/gopro64/bfloat16", field="ms", max=8.0)
    dict(entry="train/restorenet64-extra/b8", over="train/gopro64-full/b8", field="ms", max=1.2)
    dict(entry="torch-compile-infer/gopro64/bfloat16", over="infer/gopro64/bfloat16", field="ms", min=2.5)
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping


def _entries(results: Mapping[str, Any]) -> dict[str, dict]:
    sections = ("infer", "train", "degrade", "torch_infer", "torch_train")
    return {e["name"]: e for section in sections for e in results.get(section, []) if "error" not in e}


def _describe(target: Mapping[str, Any]) -> str:
    what = f"{target['entry']} {target['field']}"
    if target.get("over"):
        what = f"{target['entry']} / {target['over']} ({target['field']})"
    bound = f"<= {target['max']:g}" if "max" in target else f">= {target['min']:g}"
    return f"{what} {bound}"


def evaluate(results: Mapping[str, Any], targets: Iterable[Mapping[str, Any]], target_device: str) -> list[dict]:
    """One row per target: the measured value, the bound and the verdict.

    A figure taken on a device whose kind does not contain `target_device` is reported, but its verdict says the
    target does not apply there (a CPU cannot miss an H100 target). Ratios apply on any device.
    """
    entries = _entries(results)
    kind = results["meta"]["device"]["device_kind"]
    on_target = bool(target_device) and target_device.lower() in kind.lower()
    rows = []
    for t in targets:
        if ("max" in t) == ("min" in t):
            raise ValueError(f"target {dict(t)} needs exactly one of 'max' or 'min'")
        row = {"target": _describe(t), "bound": t.get("max", t.get("min")), "value": None}
        names = [t["entry"]] + ([t["over"]] if t.get("over") else [])
        missing = [n for n in names if n not in entries or t["field"] not in entries[n]]
        if missing:
            rows.append({**row, "verdict": "not measured: " + ", ".join(missing)})
            continue
        value = entries[t["entry"]][t["field"]]
        if t.get("over"):
            value /= entries[t["over"]][t["field"]]
        ok = value <= t["max"] if "max" in t else value >= t["min"]
        verdict = "met" if ok else "missed"
        if not (on_target or t.get("over")):
            verdict = f"n/a on {kind} (target is for {target_device}; would be {verdict})"
        rows.append({**row, "value": value, "verdict": verdict})
    return rows


def to_markdown(rows: list[dict], target_device: str) -> list[str]:
    """The targets as a Markdown section."""
    if not rows:
        return []
    lines = [f"## Targets (device {target_device or 'any'}; ratios on any device)", "",
             "| target | measured | verdict |", "|---|---|---|"]
    for r in rows:
        value = "–" if r["value"] is None else f"{r['value']:.3g}"
        lines.append(f"| {r['target']} | {value} | {r['verdict']} |")
    return lines + [""]
