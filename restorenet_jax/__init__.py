"""restorenet-jax: a JAX/Flax reimplementation of RestoreNet (joint deblur + denoise for dark CCTV images)."""

__version__ = "0.1.0"
