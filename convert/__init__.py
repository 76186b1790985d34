"""`python -m convert.torch_to_flax | flax_to_torch | danet`: thin entry points; the converters live in
restorenet_jax.convert."""
