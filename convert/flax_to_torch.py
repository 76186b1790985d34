"""`python -m convert.flax_to_torch`: see restorenet_jax.convert.flax_to_torch (also the `restorenet-convert` command)."""
import sys

from restorenet_jax.convert.flax_to_torch import main

if __name__ == "__main__":
    sys.exit(main())
