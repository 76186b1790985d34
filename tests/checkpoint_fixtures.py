"""Tiny model directories for tests (tiny widths so that compiles and forwards take well under a second)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from restorenet_jax.models import model_dir
from restorenet_jax.models.arch import BaselineArch, ExtraArch, ModelArch
from restorenet_jax.models.restorenet import abstract_params

TINY_DEBLUR = BaselineArch(width=4, enc_blk_nums=(1, 1, 1, 2), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1),
                           dw_expand=2, ffn_expand=2)
TINY_DENOISE = BaselineArch(width=4, enc_blk_nums=(2, 1, 1, 1), middle_blk_num=2, dec_blk_nums=(1, 1, 1, 2),
                            dw_expand=2, ffn_expand=2)
TINY_EXTRA = ExtraArch(kind="baseline", width=4, enc_blk_nums=(1, 1, 1, 2), middle_blk_num=1,
                       dec_blk_nums=(1, 1, 1, 1), dw_expand=1, ffn_expand=2)

TINY_ARCHS = {
    "baseline": ModelArch("baseline", backbone=TINY_DEBLUR),
    "restorenet": ModelArch("restorenet", deblur=TINY_DEBLUR, denoise=TINY_DENOISE, extra=TINY_EXTRA),
    "serial": ModelArch("serial", deblur=TINY_DEBLUR, denoise=TINY_DENOISE),
}


def random_params(arch: ModelArch, seed: int = 0, scale: float = 0.2) -> dict:
    """Parameters with every leaf random (beta/gamma too, so that no block is an identity)."""
    shapes = abstract_params(arch)  # shapes only: every value is drawn below, so nothing needs compiling
    rng = np.random.default_rng(seed)

    def draw(path, v):
        if path[-1].key == "scale":
            return (1.0 + scale * rng.standard_normal(v.shape)).astype(np.float32)
        return (scale * rng.standard_normal(v.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def write_tiny_checkpoint(directory: str | Path, arch: str = "restorenet", seed: int = 0, tlc: bool = False) -> Path:
    """Writes a tiny random model directory (`arch` in 'baseline', 'restorenet', 'serial') and returns its path."""
    model_arch = TINY_ARCHS[arch].replace(tlc=tlc)
    return model_dir.save_model_dir(directory, random_params(model_arch, seed), model_arch, overwrite=True,
                                   info={"source": "tests.checkpoint_fixtures"})
