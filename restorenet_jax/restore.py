"""`python -m restorenet_jax.restore`: restore images and video (the command lives in restorenet_jax.apps.restore)."""
import sys

from restorenet_jax.apps.restore import main

if __name__ == "__main__":
    sys.exit(main())
