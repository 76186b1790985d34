"""The one prepared GPU check: fast paths' numerics, inference and training before/after, the PyTorch peers and a
profile, in one command that fits a short lease on a fresh GPU machine.

    python -m restorenet_jax.bench.gpu_check --out bench/results/h200-2026-12-04 [--budget-s 480] [--plan]

Each step is its own process (a fresh XLA, its own flags and a time limit), run in priority order while the budget
lasts; a step that fails or runs out of time is recorded and the next one starts. Steps:
  numerics   fast block paths vs the plain path on the GPU (restorenet_jax.bench.fastpath_check)
  infer      720p bf16 inference of GoPro-w64 and RestoreNet-w64, plain and fast paths, and torch.compile
  profile    the fast GoPro-w64 inference by kernel (restorenet_jax.bench.profile): the new top kernels
  train      GoPro-w64 (full) and RestoreNet-w64 (stage extra) train steps at batch 8, plain and fast paths
  torch-train  the torch.compile GoPro-w64 training step
Files: OUT-<step>.json/.md from each step, and OUT-gpu-check.md, a summary with the before/after table, the
verdicts of the targets and the profile's top kernels. `--plan` prints the commands without running them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

INFER_ONLY = ["infer/gopro64/bfloat16*", "infer/restorenet64/bfloat16*", "torch-compile-infer/gopro64/bfloat16",
              "torch-compile-infer/restorenet64/bfloat16"]
TRAIN_ONLY = ["train/gopro64-full/b8*", "train/restorenet64-extra/b8*"]


def steps(out: str, modes: list[str], torch_mode: str, train_flags: str) -> list[dict]:
    """The check's steps in priority order: name, argv, extra environment and the most seconds it may take."""
    py = [sys.executable, "-m"]
    bench = py + ["restorenet_jax.bench", "--iters", "20", "--kernel-modes", *modes,
                  "--torch-compile-mode", torch_mode]
    return [
        dict(name="numerics", cap=100, env={},
             argv=py + ["restorenet_jax.bench.fastpath_check", "--modes", *modes, "--out", f"{out}-numerics.json"]),
        dict(name="infer", cap=330, env={},
             argv=bench + ["--only", *INFER_ONLY, "--out", f"{out}-infer", "--label", "GPU check: inference"]),
        dict(name="profile", cap=60, env={},
             argv=py + ["restorenet_jax.bench.profile", "--entry", f"infer/gopro64/bfloat16/{modes[-1]}",
                        "--out", f"{out}-profile.d", "--top", "15"]),
        dict(name="train", cap=240, env={"XLA_FLAGS": train_flags} if train_flags else {},
             argv=bench + ["--no-torch", "--iters", "10", "--only", *TRAIN_ONLY, "--out", f"{out}-train",
                           "--label", f"GPU check: training; XLA_FLAGS={train_flags or '(none)'}"]),
        dict(name="torch-train", cap=150, env={},
             argv=bench + ["--iters", "10", "--only", "torch-compile-train/gopro64-full/b8", "--out",
                           f"{out}-torch-train", "--label", "GPU check: torch.compile training"]),
    ]


def run_steps(plan: list[dict], budget_s: float, log) -> list[dict]:
    """Runs the steps while the budget lasts; returns one record per step (seconds, exit status or why not run)."""
    start = time.monotonic()
    records = []
    for step in plan:
        left = budget_s - (time.monotonic() - start)
        if left < 20:
            records.append({"step": step["name"], "status": "not run: budget spent"})
            continue
        limit = min(step["cap"], left)
        print(f"== {step['name']} (limit {limit:.0f} s): {' '.join(step['argv'])}", file=log, flush=True)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(step["argv"], env={**os.environ, **step["env"]}, timeout=limit,
                                  stdout=log, stderr=subprocess.STDOUT)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"stopped at its {limit:.0f} s limit"
        records.append({"step": step["name"], "status": status, "seconds": time.monotonic() - t0})
        print(f"== {step['name']}: {status} in {time.monotonic() - t0:.0f} s", file=log, flush=True)
    return records


def _suffix(mode: str) -> str:
    """The entry-name suffix of a kernel mode, as the harness writes it."""
    return "" if mode == "auto" else f"/{mode}"


def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def summary(out: str, records: list[dict], modes: list[str]) -> str:
    """The summary Markdown: steps, numerics, before/after per entry, torch.compile ratios, targets, profile."""
    lines = [f"# GPU check — {Path(out).name}", "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {r.get('seconds', 0):.0f} |" for r in records]
    numerics = _load(f"{out}-numerics.json")
    if numerics:
        lines += ["", f"## Fast paths vs {modes[0]} ({numerics['device']}): "
                  f"{'all within bounds' if numerics['ok'] else 'FAILED'}", "",
                  "| case | mode | output rel. error | gradient rel. error | bound |", "|---|---|---|---|---|"]
        for c in numerics["cases"]:
            if "error" in c:
                lines.append(f"| {c['case']} | – | {c['error']} | | |")
            for mode, m in c.get("modes", {}).items():
                lines.append(f"| {c['case']} | {mode} | {m['output_rel']:.2e} | {m['grad_rel']:.2e} | {c['bound']:g} |")
    entries = {}
    for part in ("infer", "train", "torch-train"):
        res = _load(f"{out}-{part}.json")
        for section in ("infer", "train", "torch_infer", "torch_train"):
            for e in res.get(section, []):
                entries[e["name"]] = e
        for t in res.get("targets", []):
            if t["value"] is not None:
                lines_t = entries.setdefault("__targets__", {})
                lines_t[t["target"]] = t
    lines += ["", f"## Before ({modes[0]}) / after ({modes[-1]}) on the same GPU, same run", "",
              "| entry | plain ms | fast ms | plain / fast | fast compile s | torch.compile ms | torch.compile / fast |",
              "|---|---|---|---|---|---|---|"]
    for base in ("infer/gopro64/bfloat16", "infer/restorenet64/bfloat16", "train/gopro64-full/b8",
                 "train/restorenet64-extra/b8"):
        plain, fast = entries.get(base + _suffix(modes[0])), entries.get(base + _suffix(modes[-1]))
        peer_name = base.replace("infer/", "torch-compile-infer/").replace("train/", "torch-compile-train/")
        peer = entries.get(peer_name)

        def ms(e):
            return f"{e['ms']:.2f}" if e and "ms" in e else "–"

        ratio = f"{plain['ms'] / fast['ms']:.2f}x" if plain and fast and "ms" in plain and "ms" in fast else "–"
        versus = f"{peer['ms'] / fast['ms']:.2f}x" if peer and fast and "ms" in peer and "ms" in fast else "–"
        compile_s = f"{fast['compile_s']:.1f}" if fast and "compile_s" in fast else "–"
        lines.append(f"| {base} | {ms(plain)} | {ms(fast)} | {ratio} | {compile_s} | {ms(peer)} | {versus} |")
    targets = entries.get("__targets__", {})
    if targets:
        lines += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['value']:.3g} | {t['verdict']} |" for t in targets.values()]
    profile = sorted(Path(f"{out}-profile.d").glob("*.md")) if Path(f"{out}-profile.d").is_dir() else []
    if profile:
        lines += ["", "## Profile of the fast GoPro-w64 inference", ""]
        lines += profile[0].read_text().splitlines()[2:]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="path prefix of the result files, e.g. bench/results/h200-DATE")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for all steps together")
    p.add_argument("--modes", nargs=2, default=["plain", "auto"], metavar=("BEFORE", "AFTER"),
                   help="kernel modes compared: the plain path and what users get by default (default: plain auto)")
    p.add_argument("--torch-compile-mode", default="default",
                   help="torch.compile mode of the peers (default: 'default', which compiles within the budget)")
    p.add_argument("--train-xla-flags", default="--xla_gpu_autotune_level=0",
                   help="XLA_FLAGS of the training step (default: no convolution autotuning, which takes most of a "
                   "full-size step's compile)")
    p.add_argument("--only", nargs="+", help="step names to run (default: all)")
    p.add_argument("--plan", action="store_true", help="print the steps' commands and exit")
    args = p.parse_args(argv)
    plan = steps(args.out, args.modes, args.torch_compile_mode, args.train_xla_flags)
    if args.only:
        unknown = set(args.only) - {s["name"] for s in plan}
        if unknown:
            p.exit(2, f"error: unknown step(s) {sorted(unknown)}; known: {[s['name'] for s in plan]}\n")
        plan = [s for s in plan if s["name"] in args.only]
    if args.plan:
        for s in plan:
            env = " ".join(f"{k}={v}" for k, v in s["env"].items())
            print(f"{s['name']} (<= {s['cap']} s): {env} {' '.join(s['argv'])}".replace("  ", " "))
        return 0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    records = run_steps(plan, args.budget_s, sys.stdout)
    text = summary(args.out, records, args.modes)
    Path(f"{args.out}-gpu-check.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
