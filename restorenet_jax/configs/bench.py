"""Benchmark suite for `python -m restorenet_jax.bench`: which models, shapes, dtypes and batches.

    python -m restorenet_jax.bench --out bench/results/h100.json            (the full suite: meant for a GPU/TPU)
    python -m restorenet_jax.bench --quick                                  (tiny widths/shapes; CPU, < 1 min)

`get_config()` is the full suite; `get_config('quick')` the tiny one the test runs. Model entries are fields of
restorenet_jax.models.arch.ModelArch (as in configs/default.py).
"""
import ml_collections

from restorenet_jax.configs import default
from restorenet_jax.configs.default import baseline_arch


def _extra_w64():
    """The original RestoreNet supple/extra network as shipped (width 64)."""
    return ml_collections.ConfigDict(dict(kind="baseline", width=64, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=1,
                                          dec_blk_nums=(1, 1, 1, 1), dw_expand=1, ffn_expand=2, refine_conv=False))


def _baseline(backbone):
    return ml_collections.ConfigDict(dict(kind="baseline", backbone=backbone))


def _restorenet(deblur, denoise, extra):
    return ml_collections.ConfigDict(dict(kind="restorenet", deblur=deblur, denoise=denoise, extra=extra))


def _demo_model():
    """RestoreNet with the demo widths (the model `make demo` trains)."""
    c = default.get_config().model
    default.demo_model(c)
    return _restorenet(c.deblur, c.denoise, c.extra)


def get_config(variant: str = ""):
    c = ml_collections.ConfigDict()
    c.seed = 0  # random parameters and inputs derive from this (timings do not depend on the values)
    # Named models (ModelArch fields). 'demo' is the model `make demo` trains (a CPU figure).
    c.models = ml_collections.ConfigDict(dict(
        gopro64=_baseline(default.gopro64()),  # official GoPro Baseline-width64 (deblur backbone)
        sidd64=_baseline(default.sidd64()),  # official SIDD Baseline-width64 (denoise backbone)
        restorenet64=_restorenet(default.gopro64(), default.sidd64(), _extra_w64()),  # full original RestoreNet-w64
        demo=_demo_model()))  # configs/bsd64.py:demo widths
    c.infer_models = ("gopro64", "sidd64", "restorenet64", "demo")  # inference latency entries
    c.infer_size = (720, 1280)  # [H, W] of the single inference frame (720p)
    c.dtypes = ("float32", "bfloat16")  # compute dtypes (parameters always float32)
    # Training entries: (model, stage); stage 'extra' freezes the backbones, 'full' trains everything.
    c.train = (("restorenet64", "extra"), ("gopro64", "full"), ("demo", "extra"))
    c.train_batches = (8, 32)  # images per step
    c.train_size = 256  # square training crop
    c.train_dtype = "bfloat16"  # compute dtype of the train steps (as configs/default.py)
    # Device degradations (data.device_degrade) as (noise kind, synthetic blur kind), timed at each train batch and
    # train_size on a uint8 batch: the work `make_device_inputs` adds to every training step.
    c.degrade = (("low_light", "motion"), ("cctv", "motion"))
    c.warmup = 3  # untimed calls after compilation
    c.iters = 20  # timed calls; the median is reported (at least 20 for a stable median)
    c.torch_threads = 0  # torch CPU intra-op threads (0: torch's default); 1 avoids spin-waits on a busy CPU
    c.torch = True  # also time the PyTorch reference models (restorenet_jax.convert.torch_models) when torch is importable
    c.torch_infer_models = ("gopro64", "restorenet64", "demo")  # torch inference entries (fp32 eager; +bf16 on CUDA)
    c.torch_train = (("gopro64", "full"),)  # torch train-step entries (AdamW + PSNR loss, eager)
    # torch.compile peers (bf16, channels_last) beside eager: 'cuda' times them on GPUs only (Inductor's Triton
    # kernels are what PyTorch users deploy there), 'always' on every device, 'never' not at all.
    c.torch_compile = "cuda"
    # The best mode that compiles in the time a benchmark has: 'max-autotune-no-cudagraphs' tunes GEMM/conv
    # templates (several minutes per model); 'default' is Inductor's fusion without autotuning.
    c.torch_compile_mode = "max-autotune-no-cudagraphs"
    c.torch_compile_backend = "inductor"
    # Block implementations of the JAX model (restorenet_jax.models.kernels): 'auto' picks per platform; listing
    # 'plain' too times the plain jnp path beside it in the same run (entry names gain '/plain').
    c.kernel_modes = ("auto",)
    c.optim = default.get_config().optim  # AdamW settings of the train steps (official recipe)
    c.loss = "psnr"
    # Performance targets, judged on `target_device` (a substring of JAX's device_kind); ratios are judged anywhere.
    c.target_device = "H200"
    c.targets = (
        dict(entry="infer/gopro64/bfloat16", field="ms", max=8.0),  # 720p real time with headroom
        dict(entry="infer/restorenet64/bfloat16", field="ms", max=20.0),  # >= 50 fps
        # At least 2.5x the PyTorch peer a GPU user would deploy (torch.compile, bf16), measured in the same run.
        dict(entry="torch-compile-infer/gopro64/bfloat16", over="infer/gopro64/bfloat16", field="ms", min=2.5),
        dict(entry="torch-compile-infer/restorenet64/bfloat16", over="infer/restorenet64/bfloat16", field="ms",
             min=2.5),
        dict(entry="train/gopro64-full/b8", field="ms", max=25.0),
        dict(entry="train/gopro64-full/b32", field="mfu", min=0.35),
        # Compiling: a full-size training step in <= 30 s and an inference program in <= 10 s (XLA, on the GPU).
        dict(entry="train/gopro64-full/b8", field="compile_s", max=30.0),
        dict(entry="infer/gopro64/bfloat16", field="compile_s", max=10.0),
        # Frozen branches cost a forward pass only: a stage-`extra` step is at most 1.2x a backbone step.
        dict(entry="train/restorenet64-extra/b8", over="train/gopro64-full/b8", field="ms", max=1.2),
        dict(entry="train/restorenet64-extra/b32", over="train/gopro64-full/b32", field="ms", max=1.2),
        # Making the inputs on the device costs at most 5 % of the step it feeds (same device, same batch).
        dict(entry="degrade/low_light-motion/b8", over="train/restorenet64-extra/b8", field="ms", max=0.05),
        dict(entry="degrade/cctv-motion/b8", over="train/restorenet64-extra/b8", field="ms", max=0.05),
    )
    if variant == "quick":
        _apply_quick(c)
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of bench.py (known: quick)")
    return c


def _apply_quick(c):
    """Tiny widths and shapes: every section runs on a 2-core CPU in well under a minute."""
    tiny = baseline_arch(4, (1,), 1, (1,))  # one level, three blocks: compile time dominates on a CPU
    tiny_extra = ml_collections.ConfigDict(dict(kind="baseline", width=4, enc_blk_nums=(1,), middle_blk_num=1,
                                                dec_blk_nums=(1,), dw_expand=1, ffn_expand=2, refine_conv=False))
    c.models = ml_collections.ConfigDict(dict(tiny_baseline=_baseline(tiny),
                                              tiny_restorenet=_restorenet(tiny, tiny, tiny_extra)))
    c.infer_models = ("tiny_baseline", "tiny_restorenet")
    c.infer_size = (36, 51)  # odd width: exercises the padding too
    c.train = (("tiny_restorenet", "extra"), ("tiny_baseline", "full"))
    c.train_batches = (2,)
    c.train_size = 16
    c.degrade = (("gaussian", "uniform"),)
    c.train_dtype = "float32"  # XLA:CPU compiles bf16 train steps several times slower
    c.warmup = 1
    c.iters = 3
    c.torch_infer_models = ("tiny_baseline", "tiny_restorenet")
    c.torch_train = (("tiny_baseline", "full"),)
    c.torch_compile = "never"  # Inductor's C++ compile of even a tiny model takes minutes on a CPU
    c.torch_threads = 1  # tiny ops: more threads only spin-wait on each other
    # A smoke target over the tiny entries, so the quick run exercises the targets section (not a performance goal:
    # at these sizes per-op overhead, not FLOPs, sets the time).
    c.targets = (dict(entry="train/tiny_restorenet-extra/b2", over="train/tiny_baseline-full/b2", field="ms",
                      max=10.0),)
