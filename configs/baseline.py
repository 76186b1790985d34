"""A single NAFNet Baseline-width64 with the official recipe (options/train/{GoPro,SIDD}/Baseline-width64.yml).

    python -m restorenet_jax.main --config configs/baseline.py:gopro64 --workdir runs/gopro64
    python -m restorenet_jax.main --config configs/baseline.py:sidd64 --workdir runs/sidd64

Reproduces the official backbones (GoPro: 33.40 dB / 0.965 on the GoPro test set with TLC; SIDD: 40.30 / 0.962):
crop 256, global batch 64 (8 per GPU x 8 GPUs), AdamW lr 1e-3 betas (0.9, 0.9) weight decay 0, cosine to 1e-7 over
400k iterations, PSNR loss, gradient clipping 0.01; GoPro with flips and rot90 on blur pairs, SIDD without
augmentation on real noisy pairs.
"""
import ml_collections

from restorenet_jax.configs import default


def get_config(variant: str = "gopro64"):
    c = default.get_config()
    c.model.kind = "baseline"
    c.freeze.stage = "full"
    c.freeze.groups = ml_collections.ConfigDict(dict(backbone=".*"))
    c.init.deblur = c.init.denoise = ""
    c.batch_size = 64
    c.optim.weight_decay = 0.0
    c.compute_dtype = "bfloat16"
    if variant == "gopro64":
        c.model.backbone = default.gopro64()
        c.model.tlc = True  # the official GoPro model is evaluated as BaselineLocal
        c.data.datasets = "gopro_large/blur"
        c.data.eval_datasets = "gopro_large/blur@test"
        c.data.ratio = "0:1:0:0"  # real blur pairs, no synthetic noise
    elif variant == "sidd64":
        c.model.backbone = default.sidd64()
        c.data.datasets = "sidd"
        c.data.eval_datasets = "sidd@validation"
        c.data.ratio = "0:0:1:0"  # real noisy pairs
        c.data.random_flip = False
        c.data.random_rot90 = False
    else:
        raise ValueError(f"unknown variant {variant!r} (known: gopro64, sidd64)")
    c.data.brightness_threshold = -1.0  # the official recipes do not filter dark images
    return c
