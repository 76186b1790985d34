"""`python -m restorenet_jax.export_degraded` / `restorenet-export-degraded`: a fixed degraded copy of the
configured training mix (the logic: restorenet_jax.data.export).

    python -m restorenet_jax.export_degraded --config configs/data.py --out exported/ [--split train] [--seed 0]
    python -m restorenet_jax.export_degraded --config configs/data.py --config.ratio=8:4:4:1 --out exported/

Writes `OUT/<dataset>/<split>/{input,target}/<index>.png` and `OUT/manifest.json` (the input kind of every file).
Exit status 2 with a one-line message for a missing --out, an existing output, or an unknown or unprepared dataset.
"""
from __future__ import annotations

import sys

from absl import flags

from restorenet_jax.apps.absl_cli import run_with_help
from restorenet_jax.configs import data as data_config
from restorenet_jax.configs.cli import absl_verbosity, quiet_logs
from restorenet_jax.configs.files import define_config_file_flag, exit_on_config_error
from restorenet_jax.data import transforms
from restorenet_jax.data.export import export

FLAGS = flags.FLAGS


def _define_flags() -> None:
    # Defined only when run as a program, so importing this module never clashes with other --config flags.
    define_config_file_flag('config', data_config.__file__,
                            'data config file[:variant] (default: the built-in restorenet_jax/configs/data.py)')
    flags.DEFINE_string('out', None, 'output folder (created; must be empty or absent)')
    flags.DEFINE_string('split', None, 'split to export (default: config.train_split)')
    flags.DEFINE_integer('seed', 0, 'seed of the kinds and degradations')
    flags.DEFINE_integer('limit', 0, 'max examples per dataset (0 = all)')


def main(argv: list[str]) -> None:
    del argv
    quiet_logs(absl_verbosity())
    if not FLAGS.out:
        print('error: --out is required', file=sys.stderr)
        sys.exit(2)
    try:
        manifest = export(FLAGS.config, FLAGS.out, FLAGS.split, FLAGS.seed, FLAGS.limit)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError) as e:
        print(f'error: {e.args[0] if e.args else e}', file=sys.stderr)
        sys.exit(2)
    kinds = {k: sum(e['kind'] == k for e in manifest['entries']) for k in transforms.KINDS}
    print(f'{len(manifest["entries"])} pairs written to {FLAGS.out} ({kinds}; skipped {manifest["skipped"]})')


def run() -> None:
    """Console-script and `python -m` entry point: defines the flags and runs `main`."""
    _define_flags()
    exit_on_config_error(sys.argv[1:], 'config')
    run_with_help(main, __doc__, __name__)


if __name__ == '__main__':
    run()
