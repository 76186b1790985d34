"""`python -m restorenet_jax.main --config tests/training/tiny_main_config.py` for subprocess tests."""
from tests.training.tiny import tiny_config


def get_config():
    return tiny_config(**{"num_train_steps": 40, "checkpoint_every_steps": 10, "log_every_steps": 1,
                          "data.crop_size": 32, "batch_size": 4})
