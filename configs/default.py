"""The default training configuration (every field commented in restorenet_jax/configs/default.py).

    python -m restorenet_jax.main --config configs/default.py --workdir runs/default

RestoreNet (parallel) with the official backbones (GoPro-w64 deblur, SIDD-w64 denoise, converted with
`python -m convert.torch_to_flax`), the original extra network (width 64), stage 'extra'. Experiment files in this
folder start from it.
"""
from restorenet_jax.configs.default import baseline_arch, get_config, gopro64, sidd64  # noqa: F401
