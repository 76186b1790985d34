"""Train RestoreNet (or a single Baseline) from a config file.

    python -m restorenet_jax.main --config configs/bsd64.py --workdir runs/bsd64
    python -m restorenet_jax.main --config configs/bsd64.py:demo --workdir runs/demo --config.num_train_steps=100

Any config field can be overridden with --config.FIELD=VALUE. Re-running the same command resumes from the newest
checkpoint in the workdir. On a TPU VM pod or a SLURM allocation, start the same command on every host.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
from absl import app, flags, logging

from restorenet_jax.apps.absl_cli import run_with_help
from restorenet_jax.configs.cli import absl_verbosity, quiet_logs
from restorenet_jax.configs.files import define_config_file_flag, exit_on_config_error
from restorenet_jax.training import sharding

_CONFIG = define_config_file_flag("config", None, "Training configuration file (configs/*.py[:variant]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the report.")
flags.mark_flags_as_required(["config", "workdir"])


def use_compilation_cache(config_dir: str) -> str | None:
    """Turns on JAX's persistent compilation cache; returns its directory (None: off).

    JAX_COMPILATION_CACHE_DIR, when set, wins over the config (JAX reads it itself).
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    if not config_dir:
        return None
    path = str(Path(config_dir).expanduser())
    jax.config.update("jax_compilation_cache_dir", path)
    return path


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_logs(absl_verbosity())  # checkpointing and data-loading INFO lines only with --verbosity 0 (absl's INFO)
    use_compilation_cache(_CONFIG.value.get("compilation_cache_dir", ""))
    sharding.maybe_initialize_distributed(_CONFIG.value.get("cluster"))
    logging.info("process %d of %d; devices: %s", jax.process_index(), jax.process_count(), jax.devices())
    if jax.process_count() > 1:  # on a cluster each process says who it is, whatever the log level
        print(f"process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local / "
              f"{jax.device_count()} global devices", file=sys.stderr, flush=True)
    from restorenet_jax.training import checkpoints, loop, stage
    from restorenet_jax.training.config_check import ConfigError
    from restorenet_jax.training.initialization import InitError

    try:
        report = loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, InitError, stage.NonFiniteError, checkpoints.CorruptCheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)  # once: the absl log would repeat it
        return 2
    o = report["overall"]
    print(f"held-out: input {o['input_psnr']:.2f} dB -> output {o['output_psnr']:.2f} dB "
          f"({o['gain_db']:+.2f} dB); SSIM {o['input_ssim']:.4f} -> {o['output_ssim']:.4f}")
    return 0


def run() -> None:
    """Console-script entry point (`restorenet-train`): parses absl flags and runs `main`."""
    # As under `python -m`, the current directory is importable, so that experiment files can build on each other
    # (configs/bsd32.py imports `configs.bsd64`).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    exit_on_config_error(sys.argv[1:], "config")
    run_with_help(main, __doc__, __name__)


if __name__ == "__main__":
    run()
