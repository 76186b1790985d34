"""Shared pytest set-up: repository root on sys.path, a persistent JAX compilation cache, fp32 matmuls."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jax  # noqa: E402

# Tiny test models spend most of their time compiling; a persistent cache makes re-runs fast.
jax.config.update("jax_compilation_cache_dir", os.path.join(ROOT, ".cache", "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
# Reference comparisons need true fp32 convolutions.
jax.config.update("jax_default_matmul_precision", "highest")
