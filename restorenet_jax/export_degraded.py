"""`python -m restorenet_jax.export_degraded`: write a fixed degraded copy of a dataset.

The command lives in restorenet_jax.apps.export_degraded.
"""
from restorenet_jax.apps.export_degraded import run

if __name__ == "__main__":
    run()
