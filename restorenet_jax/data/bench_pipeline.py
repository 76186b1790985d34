"""Pipeline throughput: 256x256 training crops per second with every degradation on (this machine, CPU).

    python -m restorenet_jax.data.bench_pipeline [--config configs/data.py] [--batches 30] [--batch-size 8]

Uses the configured data (default: the embedded set, built on first use) with ratio '1:0:0:0' unless --ratio is
given, so every example pays for decode + crop/flip + the noise model (low_light by default). Reports crops/s for
the whole iterator (decode, augmentation, degradation, batching) after a warm-up batch.
"""
from __future__ import annotations

import time

from absl import app, flags
from ml_collections import config_flags

from restorenet_jax.data import pipeline

FLAGS = flags.FLAGS


def _define_flags() -> None:
    # Defined only when run as a program, so importing this module never clashes with other --config flags.
    config_flags.DEFINE_config_file('config', 'configs/data.py', 'data config file')
    flags.DEFINE_integer('batches', 30, 'batches to time (after one warm-up batch)')
    flags.DEFINE_integer('batch_size', 8, 'global batch size')
    flags.DEFINE_string('ratio', '1:0:0:0', 'input-kind ratio (default: all Blur+Noise, the costliest)')
    flags.DEFINE_integer('crop', 256, 'crop size')


def measure(data_cfg, batches: int, batch_size: int, seed: int = 0) -> dict:
    """Time `batches` batches from make_train_iterator; returns crops/s and seconds per batch."""
    it = pipeline.make_train_iterator(data_cfg, seed=seed, global_batch_size=batch_size)
    next(it)  # warm-up: opens sources, starts workers
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    return {'crops_per_s': batches * batch_size / elapsed, 's_per_batch': elapsed / batches}


def main(argv: list[str]) -> None:
    del argv
    cfg = FLAGS.config
    cfg.ratio, cfg.crop_size = FLAGS.ratio, FLAGS.crop
    result = measure(cfg, FLAGS.batches, FLAGS.batch_size)
    print(f'datasets={cfg.datasets} noise={cfg.noise.kind} ratio={cfg.ratio} crop={cfg.crop_size} '
          f'workers={cfg.num_workers}: {result["crops_per_s"]:.1f} crops/s '
          f'({result["s_per_batch"] * 1000:.0f} ms per batch of {FLAGS.batch_size})')


if __name__ == '__main__':
    _define_flags()
    app.run(main)
