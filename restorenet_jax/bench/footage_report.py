"""Footage benchmark results: scores per frame, best strength per method, targets, the Markdown table.

Scores are on uint8 frames (as a video carries them): PSNR and SSIM per frame against the clean frame, averaged
over every frame of every clip of a setting; the moving-object PSNR pools the squared error of the pixels inside
the moving figure's mask over all frames (where methods that blend frames without following motion leave ghosts).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from restorenet_jax.evaluation import metrics


def masked_sse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(sum of squared errors on the [0, 1] scale, number of values) over the pixels inside mask (all channels).

    a, b: uint8 [T, H, W, 3]; mask: bool [T, H, W]."""
    diff = (a.astype(np.float64) - b.astype(np.float64))[mask] / 255.0
    return float(np.sum(diff ** 2)), int(diff.size)


def psnr_from_sse(sse: float, count: int) -> float | None:
    """PSNR (dB, peak 1) of a pooled squared error; None when nothing was inside the mask."""
    if count == 0:
        return None
    return float("inf") if sse == 0 else float(10.0 * math.log10(count / sse))


def score_clip(restored: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict:
    """Per-frame PSNR/SSIM lists and the masked squared error of one clip (uint8 frames)."""
    psnrs = [metrics.psnr(r / 255.0, c / 255.0) for r, c in zip(restored, clean)]
    ssims = [metrics.ssim(r / 255.0, c / 255.0) for r, c in zip(restored, clean)]
    sse, count = masked_sse(restored, clean, mask)
    return {"psnr": psnrs, "ssim": ssims, "mask_sse": sse, "mask_count": count}


def aggregate(scores: Iterable[dict], seconds: float = 0.0) -> dict:
    """Pools clip scores: mean PSNR/SSIM over frames, the mask PSNR, seconds per frame."""
    scores = list(scores)
    psnrs = [p for s in scores for p in s["psnr"]]
    ssims = [p for s in scores for p in s["ssim"]]
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "mask_psnr": psnr_from_sse(sum(s["mask_sse"] for s in scores), sum(s["mask_count"] for s in scores)),
            "s_per_frame": seconds / len(psnrs), "frames": len(psnrs),
            "clip_psnr": [float(np.mean(s["psnr"])) for s in scores]}


def best_strength(strengths: dict[str, dict]) -> str:
    """The strength with the highest mean PSNR (the first one on a tie)."""
    return max(strengths, key=lambda k: strengths[k]["psnr"])


def _best(entry: dict, name: str) -> dict | None:
    m = entry["methods"].get(name)
    return m["strengths"][m["best"]] if m else None


TEMPORAL_NAMES = ("ours_temporal", "temporal")  # the temporal restorer the targets judge: the first one present


def targets(section: str, results: dict, cfg_targets: dict, ffmpeg_names: Iterable[str]) -> list[dict]:
    """Targets judged on one section ('stills' or 'footage'), per setting: ours vs nlmeans (stills), ours vs the
    best ffmpeg denoiser (footage); on footage the temporal restorer (TEMPORAL_NAMES) vs the best ffmpeg denoiser
    and vs ours (PSNR), vs ours inside the moving figure (ghosting), and its seconds per frame over ours' (a ratio:
    `ratio`, `needed_ratio`; the others carry `margin_db`, `needed_db`)."""
    out = []
    ffmpeg_names = list(ffmpeg_names)
    for setting, entry in results.items():
        ours = _best(entry, "ours")
        temporal = next((_best(entry, n) for n in TEMPORAL_NAMES if n in entry["methods"]), None)
        present = [n for n in ffmpeg_names if n in entry["methods"]]
        best_ff = max(present, key=lambda n: _best(entry, n)["psnr"]) if present else None
        checks = []
        if section == "stills" and ours and "nlmeans" in entry["methods"]:
            checks.append(("ours >= nlmeans", ours, _best(entry, "nlmeans"), cfg_targets["single_vs_nlmeans"]))
        if section == "footage" and ours and best_ff:
            checks.append((f"ours >= best ffmpeg ({best_ff})", ours, _best(entry, best_ff),
                           cfg_targets["footage_vs_ffmpeg"]))
        if section == "footage" and temporal and best_ff:
            checks.append((f"temporal >= best ffmpeg ({best_ff}) + {cfg_targets['temporal_vs_ffmpeg']} dB",
                           temporal, _best(entry, best_ff), cfg_targets["temporal_vs_ffmpeg"]))
        if section == "footage" and temporal and ours:
            checks.append((f"temporal >= ours + {cfg_targets['temporal_vs_single']} dB", temporal, ours,
                           cfg_targets["temporal_vs_single"]))
        for what, a, b, margin in checks:
            out.append({"section": section, "setting": setting, "target": what, "margin_db": a["psnr"] - b["psnr"],
                        "needed_db": margin, "met": a["psnr"] - b["psnr"] >= margin})
        if section == "footage" and temporal and ours:
            need = cfg_targets.get("temporal_figure_vs_single", 0.0)
            if temporal["mask_psnr"] is not None and ours["mask_psnr"] is not None:
                gain = temporal["mask_psnr"] - ours["mask_psnr"]
                out.append({"section": section, "setting": setting, "target": f"temporal figure PSNR >= ours "
                            f"{need:+.1f} dB (no ghosting)", "margin_db": gain, "needed_db": need, "met": gain >= need})
            most = cfg_targets.get("temporal_cost_vs_single", 2.0)
            ratio = temporal["s_per_frame"] / max(ours["s_per_frame"], 1e-12)
            out.append({"section": section, "setting": setting, "target": f"temporal s/frame <= {most:g}x ours",
                        "ratio": ratio, "needed_ratio": most, "met": ratio <= most})
    return out


def _f(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _section(title: str, results: dict, names: list[str]) -> list[str]:
    lines = [f"## {title}", "", "Gain in PSNR over the noisy input (dB), best strength per setting; then SSIM, "
             "PSNR inside the moving figure (dB, gain over the input's), seconds per frame.", ""]
    head = ["setting", "input PSNR / SSIM"] + names
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting, entry in results.items():
        inp = entry["input"]
        row = [setting + (" (held out)" if entry["info"].get("held_out") else ""),
               f"{_f(inp['psnr'])} / {_f(inp['ssim'], 3)}"]
        for n in names:
            b = _best(entry, n)
            row.append("–" if b is None else f"**{b['psnr'] - inp['psnr']:+.2f}**")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| setting | method | best strength | PSNR | SSIM | figure PSNR (gain) | s/frame |",
              "|---|---|---|---|---|---|---|"]
    for setting, entry in results.items():
        inp = entry["input"]
        lines.append(f"| {setting} | input | – | {_f(inp['psnr'])} | {_f(inp['ssim'], 3)} | "
                     f"{_f(inp['mask_psnr'])} | – |")
        for n in names:
            m = entry["methods"].get(n)
            if not m:
                continue
            b = m["strengths"][m["best"]]
            gain = (None if b["mask_psnr"] is None or inp["mask_psnr"] is None else b["mask_psnr"] - inp["mask_psnr"])
            fig = "–" if b["mask_psnr"] is None else f"{_f(b['mask_psnr'])} ({gain:+.2f})"
            lines.append(f"| {setting} | {n} | `{m['best'] or '–'}` | {_f(b['psnr'])} | {_f(b['ssim'], 3)} | {fig} | "
                         f"{_f(b['s_per_frame'], 3)} |")
    return lines + [""]


def to_markdown(results: dict) -> str:
    """The report: header, single-frame table, footage table, targets, skipped methods."""
    meta, cfg = results["meta"], results["config"]
    names = [m["name"] for m in results["methods"]]
    lines = ["# Restoration quality on synthetic dark footage", "",
             f"- date: {meta['date']}; host: {meta['host']}, load average {meta['load_1min']:.1f} at start",
             f"- checkpoint (ours): {meta['checkpoint'] or '–'}; ffmpeg: {meta['ffmpeg']}",
             f"- clips: {cfg['height']}x{cfg['width']}, {cfg['frames']} frames, scenes {', '.join(cfg['scenes'])}; "
             f"stills: {cfg['stills_per_clip']} frames per clip restored alone; seed {cfg['seed']}",
             "- scores on uint8 frames; each ffmpeg filter's best strength per setting (an oracle choice, in its "
             "favour); s/frame is wall time per clip / frames (ffmpeg: includes process start; ours: compiled "
             "before timing) on a shared machine", ""]
    if meta.get("partial"):
        lines += ["**Partial:** the run was still going when this was written.", ""]
    if results["skipped"]:
        lines += ["Skipped: " + "; ".join(f"{s['method']} ({s['reason']})" for s in results["skipped"]), ""]
    lines += _section("Single frames (each frame restored alone)", results["stills"], names)
    lines += _section("Footage (whole clips; temporal filters use neighbouring frames)", results["footage"], names)
    if results.get("targets"):
        lines += ["## Targets", "", "| section | setting | target | margin (dB) or ratio | met |",
                  "|---|---|---|---|---|"]
        lines += [f"| {t['section']} | {t['setting']} | {t['target']} | "
                  + (f"{t['margin_db']:+.2f}" if "margin_db" in t else f"{t['ratio']:.2f}x")
                  + f" | {'yes' if t['met'] else '**no**'} |" for t in results["targets"]]
        lines.append("")
    return "\n".join(lines)
