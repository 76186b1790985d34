"""PyTorch side of the benchmark: the reference models of restorenet_jax/convert/torch_models.py (official key names and
semantics, NCHW), timed like the JAX entries so that the report can state JAX/PyTorch ratios.

Two modes: `eager` (fp32 everywhere, plus bf16 autocast on CUDA; on a CPU, torch bf16 autocast is not what anyone
deploys) and `compile`, the peer a PyTorch user would deploy on a GPU: `torch.compile` (cfg.torch_compile_mode,
cfg.torch_compile_backend) of the channels_last model under bf16 autocast. A compiled entry's first call (Dynamo
tracing + Inductor code generation + autotuning) is reported as its compile time. The train step is the official
recipe's: AdamW, PSNR loss, grad-norm clip; frozen groups get requires_grad=False.
Needs torch and the repository's `tests` package on sys.path (run from the repository root); otherwise `plan`
returns nothing and `unavailable_reason` says why.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

from restorenet_jax.bench import flops
from restorenet_jax.models.arch import ModelArch


def unavailable_reason() -> str | None:
    """None when the torch reference can run; else a one-line reason."""
    try:
        import torch  # noqa: F401

        from restorenet_jax.convert import torch_models  # noqa: F401
    except ImportError as e:
        return f"torch reference unavailable: {e}"
    return None


def _device(cfg: Any):
    """CUDA when present, else the CPU with cfg.torch_threads intra-op threads (0: torch's default)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    return torch.device("cpu")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(call: Callable[[], Any], device, warmup: int, iters: int) -> dict:
    for _ in range(warmup):
        call()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "mean_s": statistics.fmean(times),
            "iters": iters}


def _peak_memory(device) -> dict:
    import resource

    import torch

    if device.type == "cuda":
        return {"kind": "torch_cuda_max_memory_allocated", "bytes": int(torch.cuda.max_memory_allocated())}
    return {"kind": "process_peak_rss", "bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _compiled(model: Any, cfg: Any) -> Any:
    """`torch.compile` of a channels_last model with the configured mode and backend."""
    import torch

    model = model.to(memory_format=torch.channels_last)
    return torch.compile(model, mode=cfg.get("torch_compile_mode", "default"),
                         backend=cfg.get("torch_compile_backend", "inductor"))


def _first_call_s(call: Callable[[], Any], device) -> float:
    """Seconds of the first (compiling) call, synchronised."""
    start = time.perf_counter()
    call()
    _sync(device)
    return time.perf_counter() - start


def bench_infer(model_name: str, arch: ModelArch, dtype: str, size: tuple[int, int], cfg: Any,
                mode: str = "eager") -> dict:
    """Latency of one [1, 3, H, W] forward under no_grad (bf16 = CUDA autocast); mode 'eager' or 'compile'."""
    import torch

    from restorenet_jax.convert.torch_models import from_arch

    device = _device(cfg)
    model = from_arch(arch, seed=cfg.seed).to(device).eval()
    g = torch.Generator().manual_seed(cfg.seed)
    x = torch.rand((1, 3, *size), generator=g).to(device)
    if mode == "compile":
        model, x = _compiled(model, cfg), x.to(memory_format=torch.channels_last)
    elif mode != "eager":
        raise ValueError(f"unknown torch mode {mode!r} (eager, compile)")
    _reset_peak(device)

    @torch.no_grad()
    def call():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            return model(x)

    compile_s = _first_call_s(call, device) if mode == "compile" else None
    timing = _time(call, device, cfg.warmup, cfg.iters)
    entry = {"model": model_name, "dtype": dtype, "mode": mode, "shape": [1, *size, 3], "device": str(device),
             "threads": torch.get_num_threads(), **timing, "ms": 1e3 * timing["median_s"],
             "fps": 1.0 / timing["median_s"],
             "gflop": flops.inference_flops(arch, *size) / 1e9, "peak_memory": _peak_memory(device)}
    if compile_s is not None:
        entry.update(compile_s=compile_s, compile_mode=cfg.get("torch_compile_mode", "default"))
    return entry


def bench_train(model_name: str, arch: ModelArch, stage: str, batch: int, cfg: Any, mode: str = "eager") -> dict:
    """Train step (AdamW, PSNR loss, clip) on [batch, 3, S, S]; stage 'extra' freezes the backbones.

    mode 'eager': fp32, as the official recipe; 'compile': the compiled channels_last model under bf16 autocast (the
    loss in fp32), as the JAX step computes in bf16."""
    import torch

    from restorenet_jax.convert.torch_models import from_arch

    if mode not in ("eager", "compile"):
        raise ValueError(f"unknown torch mode {mode!r} (eager, compile)")
    device = _device(cfg)
    model = from_arch(arch, seed=cfg.seed).to(device).train()
    trainable = {"backbone"} if arch.kind == "baseline" else {"deblur", "denoise", "extra"}
    if stage == "extra":
        for sub in (model.deblur, model.denoise):
            sub.requires_grad_(False)
        trainable = {"extra"}
    elif stage != "full":
        raise ValueError(f"the torch benchmark times stages 'extra' and 'full', not {stage!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optim
    opt = torch.optim.AdamW(params, lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, weight_decay=o.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    s = cfg.train_size
    x = torch.rand((batch, 3, s, s), generator=g).to(device)
    y = torch.rand((batch, 3, s, s), generator=g).to(device)
    scale = 10.0 / math.log(10.0)
    dtype = "bfloat16" if mode == "compile" else "float32"
    forward = model
    if mode == "compile":
        forward, x = _compiled(model, cfg), x.to(memory_format=torch.channels_last)
    _reset_peak(device)

    def call():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            pred = forward(x)
        pred = pred.float()
        loss = scale * torch.log(((pred - y) ** 2).mean(dim=(1, 2, 3)) + 1e-8).mean()
        loss.backward()
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
        opt.step()
        return loss

    compile_s = _first_call_s(call, device) if mode == "compile" else None
    timing = _time(call, device, cfg.warmup, cfg.iters)
    entry = {"model": model_name, "stage": stage, "dtype": dtype, "mode": mode, "batch": batch,
             "shape": [batch, s, s, 3], "device": str(device), "threads": torch.get_num_threads(), **timing,
             "ms": 1e3 * timing["median_s"], "images_per_s": batch / timing["median_s"],
             "gflop": flops.train_flops(arch, s, s, batch, frozenset(trainable)) / 1e9,
             "peak_memory": _peak_memory(device)}
    if compile_s is not None:
        entry.update(compile_s=compile_s, compile_mode=cfg.get("torch_compile_mode", "default"))
    return entry


def modes(cfg: Any) -> list[str]:
    """The torch modes to time: eager always; compile where configured (cfg.torch_compile: 'cuda' = only on a GPU,
    where Inductor's Triton kernels are what a PyTorch user deploys; 'always'; 'never')."""
    import torch

    when = cfg.get("torch_compile", "cuda")
    if when not in ("cuda", "always", "never"):
        raise ValueError(f"torch_compile must be 'cuda', 'always' or 'never', not {when!r}")
    compile_too = when == "always" or (when == "cuda" and torch.cuda.is_available())
    return ["eager"] + (["compile"] if compile_too else [])


def plan(cfg: Any, archs: dict[str, ModelArch]) -> list[tuple[str, str, Callable[[], dict]]]:
    """The torch entries as (section, name, thunk); empty when torch or the reference models are unavailable."""
    if unavailable_reason():
        return []
    import torch

    jobs = []
    for mode in modes(cfg):
        prefix = "torch" if mode == "eager" else "torch-compile"
        # Eager: fp32 (+ bf16 autocast on CUDA); compiled: bf16 only, the precision it is deployed in.
        dtypes = ["bfloat16"] if mode == "compile" else ["float32"] + (
            ["bfloat16"] if torch.cuda.is_available() else [])
        for name in cfg.torch_infer_models:
            for dtype in dtypes:
                jobs.append(("torch_infer", f"{prefix}-infer/{name}/{dtype}",
                             lambda n=name, d=dtype, m=mode: bench_infer(n, archs[n], d, tuple(cfg.infer_size), cfg,
                                                                         m)))
        for name, stage in cfg.torch_train:
            for batch in cfg.train_batches:
                jobs.append(("torch_train", f"{prefix}-train/{name}-{stage}/b{batch}",
                             lambda n=name, s=stage, b=batch, m=mode: bench_train(n, archs[n], s, b, cfg, m)))
    return jobs
