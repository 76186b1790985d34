"""`python -m restorenet_jax.export`: export a model as ONNX, OpenVINO IR or StableHLO (restorenet_jax.apps.export)."""
import sys

from restorenet_jax.apps.export import main

if __name__ == "__main__":
    sys.exit(main())
