"""Where the time of one benchmark entry goes: a device trace summarised by kernel, and the optimised HLO.

    python -m restorenet_jax.bench.profile --entry infer/gopro64/bfloat16 --out /tmp/prof
    python -m restorenet_jax.bench.profile --entry train/gopro64-full/b8 --out /tmp/prof --iters 5

Compiles the entry exactly as `python -m restorenet_jax.bench` does, runs it under `jax.profiler.trace` (with a
Perfetto trace), then writes into --out: `summary.md` (kernels ranked by device time per call, with their share and
launch count, and the same grouped by kind: convolution, matmul, fusion, copy), the raw trace directory, and the
program's optimised HLO (`<entry>.hlo.txt.gz`, to map fusion names to the ops inside them). On a CPU the trace
holds host-side op events instead of kernels; the summary is then a rough guide only.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import jax

from restorenet_jax.bench import harness
from restorenet_jax.models.arch import ModelArch

# Kernel-name patterns that say what a kernel does (first match wins); the rest are XLA fusions or other.
KINDS = (("convolution", re.compile(r"conv|fprop|dgrad|wgrad|implicit_gemm|cudnn", re.I)),
         ("matmul", re.compile(r"gemm|cublas|matmul|dot|xmma|cutlass", re.I)),
         ("copy/transpose", re.compile(r"copy|transpose|memcpy|memset", re.I)),
         ("reduction", re.compile(r"reduce", re.I)),
         ("fusion", re.compile(r"fusion|loop_|input_", re.I)))


def kind_of(name: str) -> str:
    """The kind of a kernel, read off its name (see KINDS)."""
    for kind, pattern in KINDS:
        if pattern.search(name):
            return kind
    return "other"


def build_entry(entry: str, cfg: Any) -> tuple[Callable[[], Any], Any]:
    """(call, compiled) for a suite entry name such as 'infer/gopro64/bfloat16' or 'train/gopro64-full/b8', with an
    optional kernel-mode suffix ('infer/gopro64/bfloat16/plain')."""
    archs = {name: ModelArch.from_dict(m.to_dict()) for name, m in cfg.models.items()}
    parts = entry.split("/")
    kernels = parts[3] if len(parts) == 4 and parts[0] == "infer" else "auto"
    if len(parts) in (3, 4) and parts[0] == "infer" and parts[1] in archs:
        name, dtype = parts[1], parts[2]
        model = harness.suite_model(archs[name], dtype, kernels)
        params = harness.cast_conv_weights(harness.random_params(archs[name], cfg.seed), harness.jnp.dtype(dtype))
        x = jax.random.uniform(jax.random.PRNGKey(cfg.seed), (1, *cfg.infer_size, 3))
        compiled = jax.jit(lambda p, v: model.apply({"params": p}, v)).lower(params, x).compile()
        return (lambda: compiled(params, x)), compiled
    match = re.fullmatch(r"train/(\w+)-(\w+)/b(\d+)(?:/(\w+))?", entry)
    if match and match.group(1) in archs:
        step, state, data = harness.train_program(archs[match.group(1)], match.group(2), int(match.group(3)), cfg,
                                                  match.group(4) or "auto")
        compiled = jax.jit(step, donate_argnums=0).lower(state, data).compile()
        holder = [state]

        def call():
            holder[0], metrics = compiled(holder[0], data)
            return holder[0], metrics

        return call, compiled
    raise ValueError(f"unknown entry {entry!r}: use infer/<model>/<dtype> or train/<model>-<stage>/b<batch> "
                     f"with a model of configs/bench.py ({', '.join(archs)})")


def kernel_times(trace_dir: Path) -> tuple[dict[str, float], dict[str, int]]:
    """Total microseconds and launch counts per event name on device tracks of the Perfetto trace in trace_dir.

    Device tracks are the processes whose name mentions the GPU/TPU; where there are none (CPU), every complete
    event of the XLA op tracks counts.
    """
    files = sorted(trace_dir.rglob("perfetto_trace.json.gz"))
    if not files:
        raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
    events = json.loads(gzip.decompress(files[-1].read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {e["pid"]: e.get("args", {}).get("name", "") for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = {pid for pid, n in names.items() if re.search(r"/device:(GPU|TPU)", n)}
    pids = device or {pid for pid, n in names.items() if "host" in n.lower() or "cpu" in n.lower()} or set(names)
    # On a GPU, kernels sit on 'Stream' threads; the device's 'XLA Modules'/'XLA Ops' threads repeat the same time
    # as enclosing spans and would count it twice.
    threads = {(e["pid"], e["tid"]): e.get("args", {}).get("name", "") for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name" and e.get("pid") in pids}
    streams = {key for key, n in threads.items() if "stream" in n.lower()}
    total: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.defaultdict(int)
    for e in events:
        if streams and (e.get("pid"), e.get("tid")) not in streams:
            continue
        if e.get("ph") == "X" and e.get("pid") in pids and "dur" in e:
            total[e["name"]] += float(e["dur"])
            count[e["name"]] += 1
    return dict(total), dict(count)


def summary(entry: str, total: dict[str, float], count: dict[str, int], calls: int, top: int) -> str:
    """Markdown: device time per call by kind and the `top` kernels."""
    per_call = sum(total.values()) / calls / 1e3
    lines = [f"# Profile of {entry}", "", f"- device: {jax.local_devices()[0].device_kind}; {calls} traced calls; "
             f"kernel time per call {per_call:.3f} ms (sum of kernel durations; overlap counted twice)", "",
             "| kind | ms per call | share | launches per call |", "|---|---|---|---|"]
    by_kind: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for name, us in total.items():
        k = by_kind[kind_of(name)]
        k[0] += us
        k[1] += count[name]
    for kind, (us, n) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {kind} | {us / calls / 1e3:.3f} | {us / max(sum(total.values()), 1):.1%} | {n / calls:.0f} |")
    lines += ["", f"| kernel (top {top}) | kind | ms per call | share | launches per call |", "|---|---|---|---|---|"]
    for name, us in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        short = name if len(name) <= 90 else name[:87] + "..."
        lines.append(f"| `{short}` | {kind_of(name)} | {us / calls / 1e3:.3f} | "
                     f"{us / max(sum(total.values()), 1):.1%} | {count[name] / calls:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entry", required=True, help="suite entry, e.g. infer/gopro64/bfloat16, train/gopro64-full/b8")
    p.add_argument("--out", required=True, help="folder for summary.md, the trace and the optimised HLO")
    p.add_argument("--iters", type=int, default=5, help="traced calls (after 3 untraced warm-up calls)")
    p.add_argument("--top", type=int, default=40, help="kernels listed in the summary")
    p.add_argument("--quick", action="store_true", help="the tiny suite of configs/bench.py (CPU smoke run)")
    args = p.parse_args(argv)
    from restorenet_jax.configs import bench as bench_config

    cfg = bench_config.get_config("quick" if args.quick else "")
    try:
        call, compiled = build_entry(args.entry, cfg)
    except ValueError as e:
        p.exit(2, f"error: {e}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", args.entry)
    (out / f"{safe}.hlo.txt.gz").write_bytes(gzip.compress(compiled.as_text().encode()))
    for _ in range(3):
        jax.block_until_ready(call())
    trace_dir = out / f"{safe}-trace"
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        for _ in range(args.iters):
            jax.block_until_ready(call())
    total, count = kernel_times(trace_dir)
    text = summary(args.entry, total, count, args.iters, args.top)
    (out / f"{safe}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
