"""Pipeline throughput: training crops per second (wall clock, and per CPU-second = per core) on this machine.

    python -m restorenet_jax.data.bench_pipeline [--config configs/data.py] [--batches 30] [--batch_size 8]
        [--degrade_on auto|device|host] [--crops_per_read N] [--workers N] [--json results.json]

Uses the configured data (default: the embedded set, built on first use) with ratio '1:0:0:0' unless --ratio is
given. With --degrade_on host every example pays for decode + crop/flip + the noise model (low_light by default);
with --degrade_on device (what 'auto' picks on an accelerator) the host only decodes, filters and crops uint8 and the
degradations are left to the training step. Reports the whole iterator's rate (decode, augmentation, [degradation],
batching) after a warm-up batch, and the rate per CPU-second of this process and its worker processes, which is
what one core delivers however busy the machine is.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from absl import app, flags

from restorenet_jax.configs import data as data_config
from restorenet_jax.configs.cli import absl_verbosity, quiet_logs
from restorenet_jax.configs.files import define_config_file_flag, exit_on_config_error
from restorenet_jax.data import pipeline

FLAGS = flags.FLAGS


def _define_flags() -> None:
    # Defined only when run as a program, so importing this module never clashes with other --config flags.
    define_config_file_flag('config', data_config.__file__,
                            'data config file[:variant] (default: the built-in restorenet_jax/configs/data.py)')
    flags.DEFINE_integer('batches', 30, 'batches to time (after one warm-up batch)')
    flags.DEFINE_integer('batch_size', 8, 'global batch size')
    flags.DEFINE_string('ratio', '1:0:0:0', 'input-kind ratio (default: all Blur+Noise, the costliest)')
    flags.DEFINE_integer('crop', 256, 'crop size')
    flags.DEFINE_enum('degrade_on', None, pipeline.DEGRADE_ON, 'override data.degrade_on')
    flags.DEFINE_integer('crops_per_read', None, 'override data.crops_per_read')
    flags.DEFINE_integer('workers', None, 'override data.num_workers (grain worker processes)')
    flags.DEFINE_string('json', '', 'append the result as one JSON line to this file')


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live child processes (grain workers), Linux /proc."""
    t = os.times()
    total = t.user + t.system
    tick = os.sysconf('SC_CLK_TCK')
    me = str(os.getpid())
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if fields[1] == me:  # ppid; then utime, stime at fields 11, 12
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(data_cfg, batches: int, batch_size: int, seed: int = 0) -> dict:
    """Time `batches` batches from make_train_iterator.

    Returns crops_per_s (wall clock), crops_per_cpu_s (per CPU-second of this process and its workers, i.e. per
    core) and s_per_batch."""
    it = pipeline.make_train_iterator(data_cfg, seed=seed, global_batch_size=batch_size)
    next(it)  # warm-up: opens sources, starts workers
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    for _ in range(batches):
        next(it)
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    crops = batches * batch_size
    return {'crops_per_s': crops / elapsed, 'crops_per_cpu_s': crops / max(cpu, 1e-9),
            's_per_batch': elapsed / batches}


def main(argv: list[str]) -> None:
    del argv
    quiet_logs(absl_verbosity())
    cfg = FLAGS.config
    cfg.ratio, cfg.crop_size = FLAGS.ratio, FLAGS.crop
    for field, value in (('degrade_on', FLAGS.degrade_on), ('crops_per_read', FLAGS.crops_per_read),
                         ('num_workers', FLAGS.workers)):
        if value is not None:
            cfg[field] = value
    result = measure(cfg, FLAGS.batches, FLAGS.batch_size)
    where = 'device' if pipeline.degrades_on_device(cfg) else 'host'
    print(f'datasets={cfg.datasets} degrade_on={where} noise={cfg.noise.kind} ratio={cfg.ratio} '
          f'crop={cfg.crop_size} crops_per_read={pipeline.crops_per_read(cfg)} workers={cfg.num_workers}: '
          f'{result["crops_per_s"]:.1f} crops/s, {result["crops_per_cpu_s"]:.1f} crops per CPU-second '
          f'({result["s_per_batch"] * 1000:.0f} ms per batch of {FLAGS.batch_size})')
    if FLAGS.json:
        entry = {'datasets': cfg.datasets, 'degrade_on': where, 'noise': cfg.noise.kind, 'ratio': cfg.ratio,
                 'crop': cfg.crop_size, 'crops_per_read': pipeline.crops_per_read(cfg),
                 'workers': cfg.num_workers, 'batch_size': FLAGS.batch_size, 'batches': FLAGS.batches, **result}
        with open(FLAGS.json, 'a') as f:
            f.write(json.dumps(entry) + '\n')


def run() -> None:
    """The `python -m` entry point: defines the flags, refuses a bad --config in one line (exit 2), runs `main`."""
    _define_flags()
    if any(a in ('-h', '--help', '-help') for a in sys.argv[1:]):  # absl's own help exits 1 and lists every module
        name = sys.modules[__name__].__name__
        print(__doc__ + FLAGS.module_help(name).replace(f'{name}:', 'flags:'))
        sys.exit(0)
    exit_on_config_error(sys.argv[1:], 'config')
    app.run(main)


if __name__ == '__main__':
    run()
