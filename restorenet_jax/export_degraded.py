"""`python -m restorenet_jax.export_degraded`: write a fixed degraded copy of a dataset.

The command lives in restorenet_jax.data.export.
"""
from restorenet_jax.data.export import run

if __name__ == "__main__":
    run()
