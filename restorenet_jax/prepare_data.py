"""`python -m restorenet_jax.prepare_data`: prepare a dataset from its on-disk layout (the command lives in restorenet_jax.data.prepare)."""
import sys

from restorenet_jax.data.prepare import main

if __name__ == "__main__":
    sys.exit(main())
