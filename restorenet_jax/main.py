"""`python -m restorenet_jax.main`: train from a config file (the command lives in restorenet_jax.apps.train)."""
from restorenet_jax.apps.train import run

if __name__ == "__main__":
    run()
