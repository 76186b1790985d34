"""The benchmark suite (restorenet_jax/configs/bench.py), as a config file; `python -m restorenet_jax.bench` uses
it by default. `:quick` is the tiny CPU suite.
"""
from restorenet_jax.configs.bench import get_config  # noqa: F401
