"""`python -m restorenet_jax.serve`: the web service (the command lives in restorenet_jax.apps.serve)."""
import sys

from restorenet_jax.apps.serve import main

if __name__ == "__main__":
    sys.exit(main())
