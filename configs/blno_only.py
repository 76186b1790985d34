"""The original RestoreNet's "BLNO-only" experiment (Strategy 2): every training example is Blur+Noise (ratio 1:0:0:0).

    python -m restorenet_jax.main --config configs/blno_only.py --workdir runs/blno_only

Reproduces the original RestoreNet's BLNO-only model (their RealBlur-Tele validation: 25.46 dB / 0.848).
"""
from configs import ratio_mix


def get_config():
    c = ratio_mix.get_config("11_4_4_1")
    c.data.ratio = "1:0:0:0"
    return c
