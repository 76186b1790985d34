"""The original RestoreNet's BSD(32): like bsd64.py (BSD-B only) but the extra network has width 32.

    python -m restorenet_jax.main --config configs/bsd32.py --workdir runs/bsd32

Reproduces the original RestoreNet's width comparison (their RealBlur-Tele validation: BSD(32) 24.83 dB / 0.839 against
BSD(64) 25.02 / 0.845).
"""
from configs import bsd64


def get_config():
    c = bsd64.get_config()
    c.model.extra.width = 32
    return c
