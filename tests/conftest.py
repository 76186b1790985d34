"""Shared pytest set-up: repository root on sys.path, a persistent JAX compilation cache, fp32 matmuls."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Tests run tiny models, where XLA:CPU spends far more time compiling than running: LLVM's optimisation level 0
# halves cold compile times (a tiny training run: 80 s -> 44 s, bit-identical results here). Set before JAX starts,
# and inherited by the subprocesses tests launch.
FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"
if FAST_COMPILE_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + FAST_COMPILE_FLAG).strip()

# Exact-output tests compare float32 numbers: the precision policy's `auto` would pick bf16 on CPUs that have it.
os.environ.setdefault("RESTORENET_PRECISION", "fp32")

import jax  # noqa: E402

# Tiny test models spend most of their time compiling; a persistent cache makes re-runs fast.
# The environment variable also reaches subprocesses and wins over config.compilation_cache_dir in main.
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(ROOT, ".cache", "jax")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
# Subprocesses (training runs killed and restarted, cluster processes) read the setting from the environment: there
# every program is kept, since a restarted process would otherwise compile its many sub-second programs again.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# Reference comparisons need true fp32 convolutions.
jax.config.update("jax_default_matmul_precision", "highest")


def pytest_collection_modifyitems(config, items):
    """Files holding a `slow` test run first: with one worker per core (pytest-xdist, whole files per worker), the
    long files then overlap each other instead of one of them starting last and running alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: collection order otherwise
