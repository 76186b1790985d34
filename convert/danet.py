"""`python -m convert.danet`: see restorenet_jax.convert.danet (also the `restorenet-convert` command)."""
import sys

from restorenet_jax.convert.danet import main

if __name__ == "__main__":
    sys.exit(main())
