"""The footage restoration-quality benchmark (restorenet_jax/configs/footage_bench.py), as a config file;
`python -m restorenet_jax.bench.footage` uses it by default. `:quick` is the tiny one the test runs.
"""
from restorenet_jax.configs.footage_bench import get_config  # noqa: F401
