"""The original RestoreNet's ratio experiments ("Strategy 1"): GoPro + RealBlur-J + BSD-B mixed, each example degraded as
Blur+Noise : Blur : Noise : GT in a fixed ratio. RestoreNet, extra width 64, backbones frozen.

    python -m restorenet_jax.main --config configs/ratio_mix.py:13_2_2_1 --workdir runs/ratio_13_2_2_1
    python -m restorenet_jax.main --config configs/ratio_mix.py:13_3_3_2 --workdir runs/ratio_13_3_3_2
    python -m restorenet_jax.main --config configs/ratio_mix.py:11_4_4_1 --workdir runs/ratio_11_4_4_1
    python -m restorenet_jax.main --config configs/ratio_mix.py:8_4_4_1  --workdir runs/ratio_8_4_4_1

Reproduces the original RestoreNet's ratio comparison (their RealBlur-Tele validation: 11:4:4:1 reached 27.43 dB / 0.853, the best
of their runs, though with a noisier loss and too few iterations). Needs gopro_large, realblur_j and bsd_b prepared
and the converted backbones in models/gopro64, models/sidd64.
"""
from restorenet_jax.configs import default

RATIOS = ("13_2_2_1", "13_3_3_2", "11_4_4_1", "8_4_4_1")


def get_config(variant: str = "11_4_4_1"):
    if variant not in RATIOS:
        raise ValueError(f"unknown ratio variant {variant!r}; expected one of {RATIOS}")
    c = default.get_config()
    c.data.datasets = "gopro_large/blur_gamma:1,realblur_j:1,bsd_b:1"  # equal weight per data set
    c.data.eval_datasets = "realblur_tele/j@test"
    c.data.ratio = variant.replace("_", ":")
    c.batch_size = 2  # as the original single-GPU runs
    return c
