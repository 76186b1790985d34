"""`python -m convert.torch_to_flax`: see restorenet_jax.convert.torch_to_flax (also the `restorenet-convert` command)."""
import sys

from restorenet_jax.convert.torch_to_flax import main

if __name__ == "__main__":
    sys.exit(main())
