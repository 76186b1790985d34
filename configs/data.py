"""The default data configuration (datasets, ratios, augmentation, filtering; fields commented in
restorenet_jax/configs/data.py), as a config file:

    python -m restorenet_jax.data.bench_pipeline --config configs/data.py
    python -m restorenet_jax.export_degraded --config configs/data.py --out DIR
"""
from restorenet_jax.configs.data import get_config  # noqa: F401
