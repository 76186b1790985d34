"""`python -m restorenet_jax.evaluate`: score a checkpoint on prepared datasets (the command lives in restorenet_jax.apps.evaluate)."""
import sys

from restorenet_jax.apps.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
