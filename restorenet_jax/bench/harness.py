"""Benchmark harness: inference latency, train-step time, compile time, memory and MFU, JAX vs PyTorch.

    python -m restorenet_jax.bench [--quick] [--out FILE] [--no-torch] [--only PATTERN ...] [--iters N] [--size HxW]

Runs unchanged on CPU, GPU and TPU (the device is whatever JAX picks). The full suite (configs/bench.py) is meant for
an accelerator; on a CPU pick a subset with --only (fnmatch patterns over entry names such as `infer/demo/float32`,
`train/gopro64-full/b8`, `torch-infer/gopro64/float32`; `--list` prints them) and fewer --iters. Every timing is
the median of --iters device-synchronised calls (block_until_ready) after warm-up; compile time is split into
lowering and XLA compilation (`--compile-only` measures just that, e.g. full-size training steps on a CPU).
Results go to stdout as a Markdown table and, with --out, to FILE.json + FILE.md, rewritten after every entry.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from restorenet_jax.bench import report
from restorenet_jax.bench import targets
from restorenet_jax.bench import flops
from restorenet_jax.training import optim
from restorenet_jax.training.losses import get_loss
from restorenet_jax.models.arch import ModelArch
from restorenet_jax.models.predictor import cast_conv_weights
from restorenet_jax.models.restorenet import abstract_params, build_model
from restorenet_jax.training.step import create_train_state, make_train_step

# Parameter groups of the train steps: RestoreNet's (as configs/default.py) and one group for a lone backbone.
RESTORENET_GROUPS = {"deblur": "^deblur/", "denoise": "^denoise/", "extra": "^(extra|refine_[0-9]+)/"}
BASELINE_GROUPS = {"backbone": ".*"}


def random_params(arch: ModelArch, seed: int) -> Any:
    """Random float32 parameters of the model's shapes, without compiling `init` (full-size inits are slow).

    Values are N(0, 0.05^2) (norm scales 1 + that), so every branch does real arithmetic; timings do not depend on
    the values, and the official zero beta/gamma would make blocks trivially identity.
    """
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        key = "/".join(str(getattr(k, "key", k)) for k in path)
        value = 0.05 * rng.standard_normal(leaf.shape, dtype=np.float32)
        return jnp.asarray(value + 1.0 if key.endswith("scale") else value)

    return jax.tree_util.tree_map_with_path(draw, abstract_params(arch))


def time_calls(call: Callable[[], Any], warmup: int, iters: int) -> dict:
    """Median/min/mean seconds of `iters` synchronised calls after `warmup` untimed ones."""
    for _ in range(warmup):
        jax.block_until_ready(call())
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "mean_s": statistics.fmean(times),
            "iters": iters}


def compile_timed(jitted: Any, *args: Any) -> tuple[Any, dict]:
    """Lowers and compiles `jitted` for `args`, timing each phase; returns (compiled, figures)."""
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    figures = {"lower_s": lowered_at - start, "compile_s": done - lowered_at}
    figures.update(compiled_memory(compiled))
    return compiled, figures


def compiled_memory(compiled: Any) -> dict:
    """Bytes the compiled program needs (arguments, outputs, temporaries) from XLA's memory analysis, if any."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        return {}
    if m is None:
        return {}
    total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
    return {"program_bytes": int(total), "temp_bytes": int(m.temp_size_in_bytes)}


def peak_memory() -> dict:
    """Peak device memory so far (device.memory_stats) or, where the backend has none (CPU), the process peak RSS."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"kind": "device_peak_bytes_in_use", "bytes": int(stats["peak_bytes_in_use"])}
    # ru_maxrss is in KiB on Linux.
    return {"kind": "process_peak_rss", "bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


def _rate_figures(flop: float, seconds: float, dtype: str) -> dict:
    """Achieved TFLOP/s and MFU (omitted where the device's peak is unknown, e.g. CPUs)."""
    out = {"gflop": flop / 1e9, "tflops_per_s": flop / seconds / 1e12}
    peak = flops.peak_flops(jax.local_devices()[0].device_kind, dtype)
    if peak:
        out["peak_tflops_per_s"] = peak / 1e12
        out["mfu"] = flop / seconds / peak
    return out


# Block implementations build_model offers in this version: only its default. The alternative forms
# ('plain', 'fast', ...) come with restorenet_jax.models.kernels; until then another mode is refused up front.
KERNEL_MODES = ("auto",)


def suite_model(arch: ModelArch, dtype: Any, kernels: str = "auto") -> Any:
    """The Flax module an entry times; `kernels` must be one of KERNEL_MODES."""
    if kernels not in KERNEL_MODES:
        raise ValueError(f"kernel mode {kernels!r} is not available in this version (available: {KERNEL_MODES})")
    return build_model(arch, dtype=jnp.dtype(dtype))


def _suffix(kernels: str) -> str:
    """Entry-name suffix of a kernel mode: none for the default ('auto'), '/plain' etc. otherwise."""
    return "" if kernels == "auto" else f"/{kernels}"


def bench_infer(model_name: str, arch: ModelArch, dtype: str, size: tuple[int, int], cfg: Any,
                kernels: str = "auto") -> dict:
    """Latency of one [1, H, W, 3] forward (compute `dtype`; convolution weights in it, as the Predictor holds them)."""
    model = suite_model(arch, dtype, kernels)
    params = cast_conv_weights(jax.device_put(random_params(arch, cfg.seed)), jnp.dtype(dtype))
    x = jax.random.uniform(jax.random.PRNGKey(cfg.seed), (1, *size, 3), jnp.float32)
    compiled, compile_figs = compile_timed(jax.jit(lambda p, v: model.apply({"params": p}, v)), params, x)
    if cfg.get("compile_only", False):
        return {"model": model_name, "dtype": dtype, "kernels": kernels, "shape": [1, *size, 3], **compile_figs}
    timing = time_calls(lambda: compiled(params, x), cfg.warmup, cfg.iters)
    entry = {"model": model_name, "dtype": dtype, "kernels": kernels, "shape": [1, *size, 3], **compile_figs,
             **timing, "ms": 1e3 * timing["median_s"], "fps": 1.0 / timing["median_s"]}
    entry.update(_rate_figures(flops.inference_flops(arch, *size), timing["median_s"], dtype))
    entry["peak_memory"] = peak_memory()
    return entry


def train_setup(arch: ModelArch, stage: str, optim_cfg: Any) -> tuple[dict, frozenset]:
    """(parameter groups, trainable groups) for a stage ('extra': backbones frozen; 'full': everything)."""
    groups = BASELINE_GROUPS if arch.kind == "baseline" else RESTORENET_GROUPS
    freeze = ml_collections.ConfigDict(dict(stage=stage, alternate_order=(), alternate_steps=()))
    phases = optim.stage_phases(freeze, list(groups))
    if len(phases) != 1:
        raise ValueError(f"the benchmark times single-phase stages ('extra', 'full'), not {stage!r}")
    return groups, phases[0][0]


def train_program(arch: ModelArch, stage: str, batch: int, cfg: Any,
                  kernels: str = "auto") -> tuple[Callable, Any, dict]:
    """(step, state, data): the suite's train step (AdamW, PSNR loss, grad clip) with its state and a batch."""
    size = cfg.train_size
    params = random_params(arch, cfg.seed)
    groups, trainable = train_setup(arch, stage, cfg.optim)
    labels = optim.group_labels(params, groups)
    tx = optim.make_optimizer(cfg.optim, labels, set(trainable))
    schedule = optim.learning_rate_schedule(cfg.optim, 1000)
    model = suite_model(arch, cfg.train_dtype, kernels)
    step = make_train_step(model, get_loss(cfg.loss), tx, schedule, labels, trainable, set(trainable), 0.0)
    state = create_train_state(params, tx, labels, set(trainable), use_ema=False)
    k1, k2 = jax.random.split(jax.random.PRNGKey(cfg.seed))
    data = {"input": jax.random.uniform(k1, (batch, size, size, 3)),
            "target": jax.random.uniform(k2, (batch, size, size, 3))}
    return step, state, data


def bench_train(model_name: str, arch: ModelArch, stage: str, batch: int, cfg: Any, kernels: str = "auto") -> dict:
    """Time of one train step (AdamW, PSNR loss, grad clip; donated state) on a [batch, S, S, 3] batch."""
    size = cfg.train_size
    step, state, data = train_program(arch, stage, batch, cfg, kernels)
    _, trainable = train_setup(arch, stage, cfg.optim)
    compiled, compile_figs = compile_timed(jax.jit(step, donate_argnums=0), state, data)
    if cfg.get("compile_only", False):
        return {"model": model_name, "stage": stage, "trainable": sorted(trainable), "dtype": cfg.train_dtype,
                "kernels": kernels, "batch": batch, "shape": [batch, size, size, 3], **compile_figs}
    holder = [state]

    def call():
        holder[0], metrics = compiled(holder[0], data)  # the state is donated: thread the new one through
        return holder[0], metrics

    timing = time_calls(call, cfg.warmup, cfg.iters)
    entry = {"model": model_name, "stage": stage, "trainable": sorted(trainable), "dtype": cfg.train_dtype,
             "kernels": kernels, "batch": batch, "shape": [batch, size, size, 3], **compile_figs, **timing,
             "ms": 1e3 * timing["median_s"], "images_per_s": batch / timing["median_s"]}
    entry.update(_rate_figures(flops.train_flops(arch, size, size, batch, trainable), timing["median_s"],
                               cfg.train_dtype))
    entry["peak_memory"] = peak_memory()
    return entry


def bench_degrade(noise_kind: str, blur_kind: str, batch: int, cfg: Any) -> dict:
    """Time of the device degradations (four input kinds by the ratio) on a [batch, S, S, 3] uint8 batch."""
    from restorenet_jax.bench.degrade_cost import degrade_program  # late: only this entry needs the data package

    size = cfg.train_size
    jitted, args = degrade_program(noise_kind, blur_kind, batch, size, cfg.seed)
    compiled, compile_figs = compile_timed(jitted, *args)
    entry = {"noise": noise_kind, "blur": blur_kind, "batch": batch, "shape": [batch, size, size, 3],
             **compile_figs}
    if cfg.get("compile_only", False):
        return entry
    timing = time_calls(lambda: compiled(*args), cfg.warmup, cfg.iters)
    return {**entry, **timing, "ms": 1e3 * timing["median_s"], "images_per_s": batch / timing["median_s"],
            "peak_memory": peak_memory()}


def plan(cfg: Any, with_torch: bool) -> list[tuple[str, str, Callable[[], dict]]]:
    """Every benchmark of the suite as (section, entry name, thunk), in run order."""
    archs = {name: ModelArch.from_dict(m.to_dict()) for name, m in cfg.models.items()}
    jobs = []
    modes = tuple(cfg.get("kernel_modes", ("auto",)))
    for name in cfg.infer_models:
        for dtype in cfg.dtypes:
            for mode in modes:
                jobs.append(("infer", f"infer/{name}/{dtype}{_suffix(mode)}",
                             lambda n=name, d=dtype, k=mode: bench_infer(n, archs[n], d, tuple(cfg.infer_size), cfg,
                                                                         k)))
    for name, stage in cfg.train:
        for batch in cfg.train_batches:
            for mode in modes:
                jobs.append(("train", f"train/{name}-{stage}/b{batch}{_suffix(mode)}",
                             lambda n=name, s=stage, b=batch, k=mode: bench_train(n, archs[n], s, b, cfg, k)))
    for noise_kind, blur_kind in cfg.get("degrade", ()):
        for batch in cfg.train_batches:
            jobs.append(("degrade", f"degrade/{noise_kind}-{blur_kind}/b{batch}",
                         lambda n=noise_kind, k=blur_kind, b=batch: bench_degrade(n, k, b, cfg)))
    if with_torch:
        from restorenet_jax.bench import torch_reference

        jobs.extend(torch_reference.plan(cfg, archs))
    return jobs


def run(cfg: Any, only: list[str] | None, with_torch: bool, progress: bool = True,
        on_entry: Callable[[dict], None] | None = None) -> dict:
    """Runs the (filtered) suite; returns the results dict (meta + one list of entries per section).

    A failing entry (e.g. out of memory at batch 32) is recorded with its error instead of stopping the run.
    `on_entry(results)` is called after every entry with the results so far (marked `partial`), so a run that is
    killed part-way (a time limit, a crash in the driver) still leaves every finished figure on disk.
    """
    jobs = [j for j in plan(cfg, with_torch) if not only or any(fnmatch.fnmatch(j[1], p) for p in only)]
    if not jobs:
        raise ValueError(f"no benchmark matches --only {only}")
    results: dict = {"meta": report.metadata(cfg, with_torch),
                     "infer": [], "train": [], "degrade": [], "torch_infer": [], "torch_train": []}
    from tqdm import tqdm

    for section, name, thunk in tqdm(jobs, desc="bench", disable=not progress, file=sys.stderr):
        try:
            entry = thunk()
        except Exception as e:  # noqa: BLE001 -- record and go on: one OOM must not lose the other figures
            entry = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
        results[section].append({"name": name, **entry})
        if on_entry is not None:
            snapshot = {k: list(v) if isinstance(v, list) else v for k, v in results.items()}
            on_entry({**snapshot, "meta": {**results["meta"], "partial": True}})
    results["comparisons"] = report.comparisons(results)
    results["targets"] = targets.evaluate(results, [dict(t) for t in cfg.get("targets", ())],
                                                cfg.get("target_device", ""))
    results["meta"]["final_peak_memory"] = peak_memory()
    return results


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 720x1280, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restorenet_jax.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny widths and shapes (CPU, < 1 minute)")
    p.add_argument("--out", help="write FILE.json and FILE.md (a .json/.md suffix is replaced)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference timings")
    p.add_argument("--only", nargs="+", metavar="PATTERN", help="fnmatch patterns over entry names (see --list)")
    p.add_argument("--list", action="store_true", help="print the entry names and exit")
    p.add_argument("--iters", type=int, help="timed calls per entry (default: the config's, 20)")
    p.add_argument("--warmup", type=int, help="untimed calls after compilation (default: the config's)")
    p.add_argument("--size", type=_parse_size, help="inference frame HxW (default 720x1280)")
    p.add_argument("--train-size", type=int, help="square training crop (default 256)")
    p.add_argument("--batches", type=int, nargs="+", help="training batch sizes (default 8 32)")
    p.add_argument("--torch-threads", type=int, help="torch CPU threads (0: torch's default)")
    p.add_argument("--compile-only", action="store_true",
                   help="lower and compile each entry without running it (compile time and program size only; "
                   "e.g. full-size training steps on a CPU)")
    p.add_argument("--kernel-modes", nargs="+", metavar="MODE", choices=KERNEL_MODES,
                   help="block implementations to time side by side (default: auto; e.g. plain auto)")
    p.add_argument("--torch-compile-mode", help="torch.compile mode of the PyTorch peers (default: the config's)")
    p.add_argument("--label", default="", help="free text stored in the results (e.g. 'CPU subset, 3 iters')")
    args = p.parse_args(argv)
    from restorenet_jax.configs import bench as bench_config

    cfg = bench_config.get_config("quick" if args.quick else "")
    overrides = {"iters": args.iters, "warmup": args.warmup, "infer_size": args.size, "train_size": args.train_size,
                 "train_batches": args.batches, "torch_threads": args.torch_threads}
    for field, value in overrides.items():
        if value is None:
            continue
        smallest = 0 if field in ("warmup", "torch_threads") else 1
        if any(v < smallest for v in (value if isinstance(value, (list, tuple)) else [value])):
            p.exit(2, f"error: --{field.replace('_', '-')} must be >= {smallest}, got {value}\n")
        cfg[field] = tuple(value) if isinstance(value, (list, tuple)) else value
    if args.kernel_modes:
        cfg.kernel_modes = tuple(args.kernel_modes)
    if args.torch_compile_mode:
        cfg.torch_compile_mode = args.torch_compile_mode
    cfg.label = args.label
    cfg.compile_only = args.compile_only
    cfg.suite = "quick" if args.quick else "full"
    with_torch = not args.no_torch and cfg.torch and not args.compile_only  # PyTorch eager has nothing to compile
    if with_torch:
        # JAX would otherwise take most of a GPU's memory up front and leave PyTorch's entries none (set before
        # JAX first touches a device; an explicit setting in the environment wins).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.list:
        print("\n".join(name for _, name, _ in plan(cfg, with_torch)))
        return 0
    def save_so_far(partial: dict) -> None:
        if args.out:
            report.write(partial, report.to_markdown(partial), args.out)

    try:
        results = run(cfg, args.only, with_torch, on_entry=save_so_far)
    except ValueError as e:
        p.exit(2, f"error: {e}\n")
    markdown = report.to_markdown(results)
    print(markdown)
    if args.out:
        for path in report.write(results, markdown, args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
