"""The chosen RestoreNet: extra width 64, trained on BSD-B only (the original RestoreNet's "BSD(64)"); plus the `demo` variant.

    python -m restorenet_jax.main --config configs/bsd64.py --workdir runs/bsd64
Reproduces the original RestoreNet's BSD(64) model (their RealBlur-Tele validation: 25.02 dB / 0.845 SSIM). Needs BSD-B prepared
(`python -m restorenet_jax.prepare_data bsd_b --manual-dir DIR`) and the converted official backbones in
models/gopro64 and models/sidd64.

    python -m restorenet_jax.main --config configs/bsd64.py:demo --workdir runs/demo      (= make demo)
Tiny widths on the embedded default set (no downloads): pre-trains small backbones briefly (deblur on blur pairs,
denoise on noise pairs), trains the extra network, evaluates on the held-out split and writes report.json and a
side-by-side PNG. About 8 minutes on 2 CPU cores.

    python -m restorenet_jax.main --config configs/bsd64.py:demo_cctv --workdir runs/demo_cctv
The demo recipe with surveillance-camera noise (noise kind 'cctv': raw-mosaic sensor noise, chroma noise, a
resolution drop and JPEG-like 8x8 block compression, sometimes twice) in place of the i.i.d. low-light noise, for
real dark CCTV footage; evaluated on the same kind of noise.
"""
from restorenet_jax.configs import default


def get_config(variant: str = ""):
    c = default.get_config()
    c.data.datasets = "bsd_b"
    c.data.eval_datasets = "realblur_tele/j@test"
    c.data.ratio = "13:2:2:1"
    c.optim.weight_decay = 1e-3
    c.batch_size = 2  # the original ran batch 2 on one GPU
    # Full-size frames: one decoded pair gives 32 crops (decoding two 720p PNGs costs ~28 ms of a host core): about
    # 500 crops per core-second, ahead of an accelerator's step; see bench/results/cpu-2core-2026-11-26-datapath.md.
    c.data.crops_per_read = 32
    if variant == "demo":
        apply_demo(c)
    elif variant == "demo_cctv":
        apply_demo(c)
        c.data.noise.kind = "cctv"
        c.eval.held_out_families = "mixed,low_light,gaussian,poisson"  # trained on 'cctv' alone
    elif variant:
        raise ValueError(f"unknown variant {variant!r} of bsd64.py (known: demo, demo_cctv)")
    return c


def apply_demo(c):
    """Tiny models, the embedded set, short schedules: a real but small end-to-end run on a CPU."""
    c.data.datasets = "embedded"
    c.data.eval_datasets = "embedded"
    c.data.crop_size = 64
    c.data.crops_per_read = 1  # the embedded photos are small: one crop per read, as the demo always did
    default.demo_model(c.model)
    # The broad 'mixed' noise needs more denoising capacity than one noise model: width 16 for the denoise branch
    # and the extra network (a shortened demo: overall gain +0.69 dB at width 8, +1.32 dB at 16).
    c.model.denoise.width = 16
    c.model.extra.width = 16
    c.compute_dtype = "float32"  # bf16 is slow on CPUs
    c.init.deblur = ""
    c.init.denoise = ""
    # Chosen on the footage benchmark's stills (bench/results/cpu-2core-2026-12-06-demo-schedule.md): the denoise
    # backbone alone after 300 steps gains +4.95 dB on Gaussian noise at lr 2e-3, +7.27 at 4e-3, +7.87 at 8e-3 (with
    # 20 warm-up steps; +7.59 without), +6.21 at 1.6e-2; 600 pre-training steps add up to +0.5 dB to the whole
    # model, 1000 main steps instead of 400 only +0.1 (the extra network has converged by then). With it the demo is
    # ahead of ffmpeg's nlmeans in every setting of that benchmark (cpu-2core-2026-12-06-footage-demo-lr.md).
    c.pretrain.steps = 600
    c.num_train_steps = 400
    c.batch_size = 8
    c.optim.lr = 8e-3
    c.optim.warmup_steps = 20
    c.optim.grad_clip = 0.5  # tiny models on a short schedule: the official 0.01 clip would slow them to a crawl
    c.log_every_steps = 25
    c.eval_every_steps = 0
    c.checkpoint_every_steps = 100
    c.eval.limit = 8  # 8 held-out photos' crops x 3 degraded kinds
    c.data.eval_crop = 128  # one eval shape: one compile
    c.data.eval_kinds = "blur_noise,blur,noise"
    # Trained on 'mixed' (the default noise); the report adds the gain per noise family, 'cctv' never seen.
    c.eval.families = "mixed,low_light,gaussian,poisson,cctv"
    c.eval.held_out_families = "cctv"
