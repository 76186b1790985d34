"""The serial comparison model (original StraightNet): deblur(denoise(x)) with the official backbones.

    python -m restorenet_jax.evaluate --checkpoint runs/serial --dataset realblur_tele/j   (after one run below)
    python -m restorenet_jax.main --config configs/serial.py --workdir runs/serial

With num_train_steps = 0 the run only assembles the two converted backbones into one checkpoint and evaluates it
(the original RestoreNet's untrained serial baseline); raise num_train_steps to fine-tune both (stage 'full') on BSD-B.
"""
import ml_collections

from configs import bsd64


def get_config():
    c = bsd64.get_config()
    c.model.kind = "serial"
    c.freeze.stage = "full"
    c.freeze.groups = ml_collections.ConfigDict(dict(deblur="^deblur/", denoise="^denoise/"))
    c.num_train_steps = 0
    return c
