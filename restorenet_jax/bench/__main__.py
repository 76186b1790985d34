"""`python -m restorenet_jax.bench`: see restorenet_jax.bench.harness."""
import sys

from restorenet_jax.bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
