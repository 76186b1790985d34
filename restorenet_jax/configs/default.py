"""Default training configuration: every field, commented. Experiment configs import this and override a few.

    python -m restorenet_jax.main --config configs/default.py --workdir runs/default

This default is RestoreNet (parallel) with the official backbones (GoPro-w64 deblur, SIDD-w64 denoise, converted
with `python -m convert.torch_to_flax`), the original supple/extra network (width 64), stage 'extra'.
"""
import ml_collections

from restorenet_jax.configs.data import get_data_config


def baseline_arch(width, enc, middle, dec, dw_expand=2, ffn_expand=2):
    """A Baseline U-Net's fields as a ConfigDict (same names as the official class)."""
    return ml_collections.ConfigDict(dict(width=width, enc_blk_nums=tuple(enc), middle_blk_num=middle,
                                          dec_blk_nums=tuple(dec), dw_expand=dw_expand, ffn_expand=ffn_expand,
                                          img_channel=3))


def gopro64():
    return baseline_arch(64, (1, 1, 1, 28), 1, (1, 1, 1, 1))  # official GoPro Baseline-width64 (deblur)


def sidd64():
    return baseline_arch(64, (2, 2, 4, 8), 12, (2, 2, 2, 2))  # official SIDD Baseline-width64 (denoise)


def demo_model(model: ml_collections.ConfigDict) -> None:
    """Sets the tiny demo widths (`make demo`, configs/bsd64.py:demo) on a RestoreNet `model` config in place."""
    model.train_size = (64, 64)
    model.deblur = baseline_arch(8, (1, 1, 1, 2), 1, (1, 1, 1, 1))
    model.denoise = baseline_arch(8, (1, 1, 2, 2), 2, (1, 1, 1, 1))
    model.extra.width = 8
    model.extra.enc_blk_nums = (1, 1, 1, 2)


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0  # every random draw (init, data order, degradations) derives from this
    c.num_train_steps = 400_000  # official recipe length
    c.batch_size = 8  # global batch (split over processes and devices); must divide by the device count
    c.log_every_steps = 100  # train metrics to metrics.jsonl / TensorBoard
    c.eval_every_steps = 5_000  # periodic evaluation on the held-out split (0 = only at the end)
    c.checkpoint_every_steps = 2_000  # orbax checkpoint (async) of state + data iterator
    c.keep_checkpoints = 3  # newest checkpoints kept
    c.max_nonfinite_steps = 20  # consecutive non-finite steps (skipped) before the run stops
    c.compute_dtype = "bfloat16"  # activations; parameters and optimiser state stay float32
    c.shard_params_min_size = 0  # > 0: shard parameters with at least this many elements over devices
    # Persistent XLA compilation cache: a restarted or repeated run skips recompiling ("" = off). The environment
    # variable JAX_COMPILATION_CACHE_DIR, when set, takes precedence.
    c.compilation_cache_dir = "~/.cache/restorenet_jax/xla"
    # Multi-process runs (every host of a pod or cluster; see README): how long to wait before giving up.
    c.cluster = ml_collections.ConfigDict(dict(
        initialization_timeout_s=300,  # for every process to join at start-up
        heartbeat_timeout_s=60,  # a process silent this long counts as lost: the others stop with an error
        shutdown_timeout_s=60,  # for every process to arrive at the exit barrier
    ))

    # Model: fields of restorenet_jax.models.arch.ModelArch.
    c.model = ml_collections.ConfigDict()
    c.model.kind = "restorenet"  # 'baseline' (single U-Net), 'restorenet' (parallel), 'serial' (deblur(denoise(x)))
    c.model.deblur = gopro64()
    c.model.denoise = sidd64()
    c.model.extra = ml_collections.ConfigDict(dict(
        kind="baseline",  # 'baseline' (original supple U-Net), 'conv_deconv', 'unet'
        width=64, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1),  # as shipped
        dw_expand=1, ffn_expand=2,
        refine_conv=False))  # the original RestoreNet's "+Conv" variant
    c.model.tlc = False  # TLC local pooling at inference/eval (training always sees train-size crops)
    c.model.train_size = (256, 256)  # defines the TLC windows; keep equal to the training crop

    # Where parameters come from. Priority: checkpoint in workdir > init.resume > backbone files > scratch.
    c.init = ml_collections.ConfigDict()
    c.init.resume = ""  # a training workdir or model dir to start from (all parameters)
    c.init.deblur = "models/gopro64"  # converted GoPro Baseline dir (python -m convert.torch_to_flax GoPro.pth ...)
    c.init.denoise = "models/sidd64"  # converted SIDD Baseline dir
    c.init.allow_random_backbones = False  # True: frozen *random* backbones are allowed (never by accident)

    # Brief in-run backbone pre-training when no backbone file is given (the demo uses it).
    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.steps = 0  # steps per backbone (0 = off)
    c.pretrain.deblur_ratio = "0:1:0:0"  # deblur learns on blur pairs
    c.pretrain.denoise_ratio = "0:0:1:0"  # denoise learns on noise pairs

    # Freezing (restorenet_jax.optim): groups by regex over parameter paths; the stage picks trainable groups.
    c.freeze = ml_collections.ConfigDict()
    c.freeze.stage = "extra"  # 'extra' (backbones frozen), 'alternate', 'full'
    c.freeze.groups = ml_collections.ConfigDict(dict(
        deblur="^deblur/", denoise="^denoise/", extra="^(extra|refine_[0-9]+)/"))
    c.freeze.alternate_order = ("deblur", "extra")  # alternate: trainable groups per phase (comma-joined)
    c.freeze.alternate_steps = (1_000, 1_000)  # alternate: steps per phase, cycled

    # Optimiser (official recipe: AdamW betas 0.9/0.9, cosine to 1e-7, clip 0.01; RestoreNet used wd 1e-3).
    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3
    c.optim.end_lr = 1e-7
    c.optim.warmup_steps = 0
    c.optim.b1 = 0.9
    c.optim.b2 = 0.9
    c.optim.eps = 1e-8
    c.optim.weight_decay = 1e-3
    c.optim.grad_clip = 0.01  # global-norm clip over trainable gradients (<= 0: off)
    c.optim.ema_decay = 0.0  # > 0: keep an EMA of parameters (used for eval/inference)
    c.loss = "psnr"  # 'psnr' (official), 'l1', 'charbonnier'

    c.data = get_data_config()
    c.data.crop_size = 256

    # Evaluation.
    c.eval = ml_collections.ConfigDict()
    c.eval.split = "test"
    c.eval.limit = 16  # source examples per dataset for periodic eval (0 = all)
    c.eval.num_samples = 4  # sample strips (input | output | target) written per eval
    # Final report: the gain per noise family (noise kinds, comma-separated; "" = off), each family's examples in
    # the input kinds `family_kinds`; families named in held_out_families are flagged as not seen in training.
    c.eval.families = ""
    c.eval.family_kinds = "noise"
    c.eval.held_out_families = ""
    return c
